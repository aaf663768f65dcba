-- Second factors and password resets.
--
-- user_totp: a user's TOTP secret, sealed by the vault. confirmed_at is NULL until the first
-- code was entered (until then it does not guard logins); last_step is the newest time step a
-- code was accepted for, so no code is accepted twice.
CREATE TABLE user_totp (
    id            INTEGER PRIMARY KEY,
    user_id       BIGINT NOT NULL UNIQUE REFERENCES users (id) ON DELETE CASCADE,
    secret        BLOB   NOT NULL,
    confirmed_at  BIGINT,
    last_step     BIGINT,
    created_at    BIGINT NOT NULL
);

-- Single-use recovery codes, stored as SHA-256 (each carries 60 random bits).
CREATE TABLE recovery_codes (
    id          INTEGER PRIMARY KEY,
    user_id     BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash   TEXT   NOT NULL,
    used_at     BIGINT,
    created_at  BIGINT NOT NULL
);
CREATE INDEX recovery_codes_user ON recovery_codes (user_id, code_hash);

-- Logins whose first step succeeded and that wait for a second factor. The bearer token is
-- stored only as SHA-256; attempts counts the codes tried against it.
CREATE TABLE pending_logins (
    id           INTEGER PRIMARY KEY,
    user_id      BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash   TEXT   NOT NULL UNIQUE,
    auth_method  TEXT   NOT NULL,
    setup        BIGINT NOT NULL DEFAULT 0,
    attempts     BIGINT NOT NULL DEFAULT 0,
    ip_address   TEXT,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
);
CREATE INDEX pending_logins_expiry ON pending_logins (expires_at);

-- Password reset tokens sent by mail: SHA-256 only, single use, short-lived.
CREATE TABLE password_resets (
    id           INTEGER PRIMARY KEY,
    user_id      BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash   TEXT   NOT NULL UNIQUE,
    ip_address   TEXT,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    used_at      BIGINT
);
CREATE INDEX password_resets_user ON password_resets (user_id);
