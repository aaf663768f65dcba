-- Accounts, sessions, API keys and the hash-chained audit log.
-- Timestamps are unix microseconds (UTC); flags are 0/1 integers so that the
-- same queries read the same types on SQLite and PostgreSQL.

CREATE TABLE users (
    id                   INTEGER PRIMARY KEY,
    username             TEXT    NOT NULL UNIQUE,
    email                TEXT,
    full_name            TEXT,
    role                 TEXT    NOT NULL,
    password_hash        TEXT    NOT NULL,
    enabled              BIGINT  NOT NULL DEFAULT 1,
    failed_logins        BIGINT  NOT NULL DEFAULT 0,
    locked_until         BIGINT,
    last_login_at        BIGINT,
    password_changed_at  BIGINT  NOT NULL,
    created_at           BIGINT  NOT NULL,
    updated_at           BIGINT  NOT NULL
);
CREATE INDEX users_role ON users (role);

CREATE TABLE sessions (
    id            INTEGER PRIMARY KEY,
    user_id       BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash    TEXT   NOT NULL UNIQUE,
    csrf_token    TEXT   NOT NULL,
    auth_method   TEXT   NOT NULL,
    ip_address    TEXT,
    user_agent    TEXT,
    created_at    BIGINT NOT NULL,
    last_seen_at  BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    revoked_at    BIGINT
);
CREATE INDEX sessions_user ON sessions (user_id, revoked_at);

CREATE TABLE api_keys (
    id            INTEGER PRIMARY KEY,
    user_id       BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name          TEXT   NOT NULL,
    key_prefix    TEXT   NOT NULL,
    key_hash      TEXT   NOT NULL UNIQUE,
    permissions   TEXT   NOT NULL,
    enabled       BIGINT NOT NULL DEFAULT 1,
    expires_at    BIGINT,
    last_used_at  BIGINT,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
CREATE INDEX api_keys_user ON api_keys (user_id);

-- Record ids are handed out by audit_head, never by the database, so that
-- the chain has no gaps that were not made by a deletion.
CREATE TABLE audit_log (
    id             BIGINT PRIMARY KEY,
    created_at     BIGINT NOT NULL,
    username       TEXT,
    action         TEXT   NOT NULL,
    resource_type  TEXT,
    resource_id    TEXT,
    details        TEXT,
    ip_address     TEXT,
    user_agent     TEXT,
    success        BIGINT NOT NULL,
    prev_hash      TEXT   NOT NULL,
    hash           TEXT   NOT NULL
);
CREATE INDEX audit_log_created ON audit_log (created_at);
CREATE INDEX audit_log_username ON audit_log (username, created_at);
CREATE INDEX audit_log_action ON audit_log (action, created_at);

-- One row: the chain's tip, and its anchor (where verification starts after
-- retention cleanup removed older records).
CREATE TABLE audit_head (
    id           BIGINT PRIMARY KEY CHECK (id = 1),
    last_id      BIGINT NOT NULL,
    last_hash    TEXT   NOT NULL,
    anchor_id    BIGINT NOT NULL,
    anchor_hash  TEXT   NOT NULL
);
INSERT INTO audit_head (id, last_id, last_hash, anchor_id, anchor_hash) VALUES
    (1, 0, '0000000000000000000000000000000000000000000000000000000000000000',
     1, '0000000000000000000000000000000000000000000000000000000000000000');
