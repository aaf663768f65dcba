-- Passkeys (WebAuthn credentials), and the ceremonies between their two steps.
--
-- user_passkeys: credential_id is the authenticator's own id (base64url), unique over all
-- users so that one authenticator cannot sign in to two accounts. passkey is the credential as
-- webauthn-rs stores it (JSON: public key, signature counter, flags; nothing secret);
-- sign_count and the backup flags repeat what it holds, for listing. user_handle is the random
-- id the authenticator keeps for the account and hands back at a discoverable login.
CREATE TABLE user_passkeys (
    id               INTEGER PRIMARY KEY,
    user_id          BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    credential_id    TEXT   NOT NULL UNIQUE,
    user_handle      TEXT   NOT NULL,
    name             TEXT   NOT NULL,
    passkey          TEXT   NOT NULL,
    sign_count       BIGINT NOT NULL DEFAULT 0,
    backup_eligible  BIGINT NOT NULL DEFAULT 0,
    backup_state     BIGINT NOT NULL DEFAULT 0,
    enabled          BIGINT NOT NULL DEFAULT 1,
    created_at       BIGINT NOT NULL,
    last_used_at     BIGINT
);
CREATE INDEX user_passkeys_user ON user_passkeys (user_id);

-- The server's half of a registration or login begun and not yet finished, in the database so
-- that any node can finish a ceremony another began. Found by the SHA-256 of its challenge
-- (which the browser's answer carries) and deleted by the step that finishes it: single use.
-- user_id is NULL for a login, whose user the passkey names.
CREATE TABLE webauthn_ceremonies (
    id              INTEGER PRIMARY KEY,
    challenge_hash  TEXT   NOT NULL UNIQUE,
    kind            TEXT   NOT NULL,
    user_id         BIGINT REFERENCES users (id) ON DELETE CASCADE,
    state           TEXT   NOT NULL,
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL
);
CREATE INDEX webauthn_ceremonies_expiry ON webauthn_ceremonies (expires_at);
