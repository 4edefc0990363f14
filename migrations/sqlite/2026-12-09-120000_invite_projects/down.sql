DROP TABLE invite_projects;
