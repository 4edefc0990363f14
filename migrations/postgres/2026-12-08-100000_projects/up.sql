-- OpenAI's project tree: projects, their members, their service accounts, the keys
-- applications hold (project keys, owned by a member or a service account) and per-model
-- rate limits. Ids are TEXT made in Rust, times BIGINT Unix seconds, as everywhere.

CREATE TABLE projects (
    id              TEXT COLLATE "C" PRIMARY KEY,
    name            TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    -- Set once by archiving (one-way): the project's keys stop working, the project is
    -- read-only and listed only with `include_archived=true`.
    archived_at     BIGINT,
    external_key_id TEXT,
    residency       TEXT
);
CREATE INDEX projects_created_at_id ON projects (created_at, id);

-- Organisation members added to a project, with their project role (`owner` or `member`).
-- A member's project keys work only while this row exists and the user is enabled.
CREATE TABLE project_users (
    project_id TEXT COLLATE "C" NOT NULL REFERENCES projects (id),
    user_id    TEXT COLLATE "C" NOT NULL REFERENCES users (id),
    role       TEXT NOT NULL,
    added_at   BIGINT NOT NULL,
    PRIMARY KEY (project_id, user_id)
);
CREATE INDEX project_users_project_added ON project_users (project_id, added_at, user_id);
CREATE INDEX project_users_user_id ON project_users (user_id);

-- Non-human owners of project keys; their keys outlive any member. Deleting one deletes
-- its keys.
CREATE TABLE service_accounts (
    id         TEXT COLLATE "C" PRIMARY KEY,
    project_id TEXT COLLATE "C" NOT NULL REFERENCES projects (id),
    name       TEXT NOT NULL,
    role       TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX service_accounts_project_created ON service_accounts (project_id, created_at, id);

-- Keys of a project: `sk-proj-…` owned by a member, `sk-svcacct-…` owned by a service
-- account (exactly one of the two owners). Hashed like admin keys; the plaintext is never
-- stored. `scopes` are free-form strings for the services behind the proxy, stored like
-- admin keys' permissions (sorted, space-separated).
CREATE TABLE project_api_keys (
    id                 TEXT COLLATE "C" PRIMARY KEY,
    project_id         TEXT COLLATE "C" NOT NULL REFERENCES projects (id),
    name               TEXT NOT NULL,
    key_hash           TEXT COLLATE "C" NOT NULL UNIQUE,
    redacted_value     TEXT NOT NULL,
    owner_user_id      TEXT COLLATE "C" REFERENCES users (id),
    service_account_id TEXT COLLATE "C" REFERENCES service_accounts (id),
    scopes             TEXT NOT NULL DEFAULT '',
    created_at         BIGINT NOT NULL,
    last_used_at       BIGINT,
    expires_at         BIGINT,
    enabled            BOOLEAN NOT NULL DEFAULT TRUE,
    CHECK ((owner_user_id IS NULL) <> (service_account_id IS NULL))
);
CREATE INDEX project_api_keys_project_created ON project_api_keys (project_id, created_at, id);
CREATE INDEX project_api_keys_owner_user_id ON project_api_keys (owner_user_id);
CREATE INDEX project_api_keys_service_account_id ON project_api_keys (service_account_id);

-- Models known by first sight (named at forward auth); the configured ones come from
-- settings. Every project has a rate limit for every known model.
CREATE TABLE rate_limit_models (
    model         TEXT COLLATE "C" PRIMARY KEY,
    first_seen_at BIGINT NOT NULL
);

-- A project's limits for one model where an operator changed them; a NULL column (or no
-- row) means the model's default.
CREATE TABLE project_rate_limits (
    project_id                       TEXT COLLATE "C" NOT NULL REFERENCES projects (id),
    model                            TEXT COLLATE "C" NOT NULL,
    max_requests_per_1_minute        BIGINT,
    max_tokens_per_1_minute          BIGINT,
    max_images_per_1_minute          BIGINT,
    max_audio_megabytes_per_1_minute BIGINT,
    max_requests_per_1_day           BIGINT,
    batch_1_day_max_input_tokens     BIGINT,
    updated_at                       BIGINT NOT NULL,
    PRIMARY KEY (project_id, model)
);

-- The project an audit entry concerns, for the `project_ids[]` filter.
ALTER TABLE audit_logs ADD COLUMN project_id TEXT COLLATE "C";
CREATE INDEX audit_logs_project_id ON audit_logs (project_id);
