DROP TABLE admin_api_keys;
DROP TABLE users;
