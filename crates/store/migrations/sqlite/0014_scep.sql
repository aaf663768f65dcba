-- SCEP (RFC 8894): the instance-wide switch; profiles (one URL each: /scep for
-- the default, /scep/{name} for the others), each bound to a CA, a template, an
-- approval mode, an optional static challenge (its keyed digest) and the RA
-- certificate clients encrypt to; the requests received; one-time challenges.
CREATE TABLE scep_state (
    id      BIGINT PRIMARY KEY CHECK (id = 1),
    enabled BIGINT NOT NULL DEFAULT 1
);
INSERT INTO scep_state (id) VALUES (1);

CREATE TABLE scep_profiles (
    id                       INTEGER PRIMARY KEY,
    name                     TEXT   NOT NULL UNIQUE,
    is_default               BIGINT NOT NULL DEFAULT 0,
    enabled                  BIGINT NOT NULL DEFAULT 1,
    ca_id                    BIGINT REFERENCES cas (id) ON DELETE SET NULL,
    ca_ident                 TEXT   NOT NULL DEFAULT '',
    template_id              BIGINT REFERENCES templates (id) ON DELETE SET NULL,
    auto_approve             BIGINT NOT NULL DEFAULT 1,
    challenge_digest         TEXT,
    challenge_validity_hours BIGINT NOT NULL DEFAULT 24,
    ra_certificate_id        BIGINT REFERENCES certificates (id) ON DELETE SET NULL,
    created_at               BIGINT NOT NULL,
    updated_at               BIGINT NOT NULL
);
CREATE UNIQUE INDEX scep_profiles_default ON scep_profiles (is_default) WHERE is_default = 1;
-- The profile at /scep: the default CA, issuing at once to clients with a good
-- challenge (there is none until an administrator sets or makes one).
INSERT INTO scep_profiles (name, is_default, created_at, updated_at) VALUES ('default', 1, 0, 0);

-- Every PKCSReq and RenewalReq, with what came of it. The CSR is kept while the
-- request waits for approval; renewed_from is the certificate a RenewalReq was
-- signed with.
CREATE TABLE scep_requests (
    id             INTEGER PRIMARY KEY,
    profile_id     BIGINT NOT NULL REFERENCES scep_profiles (id) ON DELETE CASCADE,
    transaction_id TEXT   NOT NULL,
    message_type   TEXT   NOT NULL,
    status         TEXT   NOT NULL,
    subject        TEXT   NOT NULL,
    public_key_sha256 TEXT NOT NULL,
    csr            BLOB,
    renewed_from   BIGINT REFERENCES certificates (id) ON DELETE SET NULL,
    certificate_id BIGINT REFERENCES certificates (id) ON DELETE SET NULL,
    reason         TEXT,
    decided_by     TEXT,
    origin_ip      TEXT,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL
);
CREATE INDEX scep_requests_transaction ON scep_requests (profile_id, transaction_id);
CREATE INDEX scep_requests_status ON scep_requests (status, id);

CREATE TABLE scep_challenges (
    id         INTEGER PRIMARY KEY,
    ca_id      BIGINT NOT NULL REFERENCES cas (id) ON DELETE CASCADE,
    digest     TEXT   NOT NULL UNIQUE,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT,
    created_by TEXT   NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX scep_challenges_ca ON scep_challenges (ca_id, used_at);
