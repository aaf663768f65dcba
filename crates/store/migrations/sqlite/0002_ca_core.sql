-- The CA core: private keys (sealed), CA certificates, issued and imported
-- certificates, templates, and the events outbox.

-- A private key. Software keys are sealed with the vault (AES-256-GCM);
-- the public key is kept in clear to match certificates and CSRs.
CREATE TABLE keys (
    id          INTEGER PRIMARY KEY,
    refid       TEXT   NOT NULL UNIQUE,
    key_type    TEXT   NOT NULL,
    backend     TEXT   NOT NULL,
    sealed      BLOB,
    public_key  BLOB  NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE cas (
    id                  INTEGER PRIMARY KEY,
    refid               TEXT   NOT NULL UNIQUE,
    name                TEXT   NOT NULL UNIQUE,
    description         TEXT,
    ca_type             TEXT   NOT NULL,
    parent_id           BIGINT REFERENCES cas (id) ON DELETE SET NULL,
    key_id              BIGINT REFERENCES keys (id),
    subject             TEXT   NOT NULL,
    common_name         TEXT,
    issuer              TEXT   NOT NULL,
    serial              TEXT   NOT NULL,
    not_before          BIGINT NOT NULL,
    not_after           BIGINT NOT NULL,
    key_type            TEXT   NOT NULL,
    signature_algorithm TEXT   NOT NULL,
    path_len            BIGINT,
    subject_key_id      TEXT,
    authority_key_id    TEXT,
    fingerprint_sha256  TEXT   NOT NULL UNIQUE,
    der                 BLOB  NOT NULL,
    is_active           BIGINT NOT NULL DEFAULT 1,
    is_default          BIGINT NOT NULL DEFAULT 0,
    source              TEXT   NOT NULL,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL
);
CREATE INDEX cas_parent ON cas (parent_id);
CREATE INDEX cas_ski ON cas (subject_key_id);

CREATE TABLE templates (
    id           INTEGER PRIMARY KEY,
    name         TEXT   NOT NULL UNIQUE,
    description  TEXT,
    builtin      BIGINT NOT NULL DEFAULT 0,
    body         TEXT   NOT NULL,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);

-- Every certificate certmint issued or was given. status is 'valid',
-- 'revoked' or 'on_hold'; expiry is read from not_after, never stored.
-- sans holds the names, lower-case, space-separated, for search.
CREATE TABLE certificates (
    id                  INTEGER PRIMARY KEY,
    refid               TEXT   NOT NULL UNIQUE,
    ca_id               BIGINT REFERENCES cas (id) ON DELETE SET NULL,
    key_id              BIGINT REFERENCES keys (id),
    template_id         BIGINT REFERENCES templates (id) ON DELETE SET NULL,
    owner_id            BIGINT REFERENCES users (id) ON DELETE SET NULL,
    renewed_from        BIGINT,
    description         TEXT,
    subject             TEXT   NOT NULL,
    common_name         TEXT,
    issuer              TEXT   NOT NULL,
    serial              TEXT   NOT NULL,
    sans                TEXT   NOT NULL,
    not_before          BIGINT NOT NULL,
    not_after           BIGINT NOT NULL,
    status              TEXT   NOT NULL,
    revoked_at          BIGINT,
    revocation_reason   TEXT,
    revocation_comment  TEXT,
    key_type            TEXT   NOT NULL,
    signature_algorithm TEXT   NOT NULL,
    is_ca               BIGINT NOT NULL DEFAULT 0,
    subject_key_id      TEXT,
    authority_key_id    TEXT,
    fingerprint_sha256  TEXT   NOT NULL UNIQUE,
    source              TEXT   NOT NULL,
    der                 BLOB  NOT NULL,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL
);
CREATE INDEX certificates_ca ON certificates (ca_id, id);
CREATE INDEX certificates_status ON certificates (status, not_after, id);
CREATE INDEX certificates_expiry ON certificates (not_after, id);
CREATE INDEX certificates_serial ON certificates (serial);

-- Events written in the same transaction as the change they announce;
-- delivery (webhooks, mail, websockets) reads them from here.
CREATE TABLE outbox (
    id             INTEGER PRIMARY KEY,
    event_type     TEXT   NOT NULL,
    resource_type  TEXT   NOT NULL,
    resource_id    TEXT   NOT NULL,
    payload        TEXT   NOT NULL,
    created_at     BIGINT NOT NULL,
    delivered_at   BIGINT
);
CREATE INDEX outbox_pending ON outbox (delivered_at, id);
