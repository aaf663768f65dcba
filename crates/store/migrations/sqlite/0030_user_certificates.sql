-- Client certificates that log their user in (mTLS). The certificate itself stays in the
-- inventory (certificates); this row says whose it is, what the user calls it and whether it
-- may log in. A certificate logs in one user at most.
CREATE TABLE user_certificates (
    id              INTEGER PRIMARY KEY,
    user_id         BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    certificate_id  BIGINT NOT NULL UNIQUE REFERENCES certificates (id) ON DELETE CASCADE,
    name            TEXT   NOT NULL,
    enabled         BIGINT NOT NULL DEFAULT 1,
    created_at      BIGINT NOT NULL,
    last_used_at    BIGINT
);
CREATE INDEX user_certificates_user ON user_certificates (user_id);
