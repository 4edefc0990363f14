-- The projects an invite grants (OpenAI's invite `projects`): on acceptance the new member
-- joins each project that is still active, with the role given here. Withdrawing or
-- deleting the invite deletes its rows. No trigger: an invitee has no keys to invalidate.
CREATE TABLE invite_projects (
    invite_id  TEXT NOT NULL REFERENCES invites (id) ON DELETE CASCADE,
    project_id TEXT NOT NULL REFERENCES projects (id),
    role       TEXT NOT NULL,
    PRIMARY KEY (invite_id, project_id)
);
CREATE INDEX invite_projects_project_id ON invite_projects (project_id);
