-- Append-only: the service has no code path that updates or deletes these rows.
CREATE TABLE audit_logs (
    id           TEXT COLLATE "C" PRIMARY KEY,
    type         TEXT NOT NULL,
    effective_at BIGINT NOT NULL,
    -- The key (or, for bootstrap, the user) that acted; for the actor_ids[] filter.
    actor_id     TEXT NOT NULL,
    -- The actor object as served, JSON.
    actor        TEXT NOT NULL,
    -- The object acted on; for the resource_ids[] filter.
    resource_id  TEXT NOT NULL,
    -- The event's details object as served under its type, JSON.
    details      TEXT NOT NULL
);

CREATE INDEX audit_logs_effective_at_id ON audit_logs (effective_at, id);
CREATE INDEX audit_logs_resource_id ON audit_logs (resource_id);
CREATE INDEX audit_logs_actor_id ON audit_logs (actor_id);
