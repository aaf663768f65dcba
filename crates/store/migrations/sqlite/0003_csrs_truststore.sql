-- Certificate signing requests kept to be signed later, whether uploaded or
-- made here with a server-side key. status is 'pending' or 'signed'.
-- sans holds the requested names, space-separated `kind:value`.
CREATE TABLE csrs (
    id                  INTEGER PRIMARY KEY,
    refid               TEXT   NOT NULL UNIQUE,
    name                TEXT   NOT NULL,
    subject             TEXT   NOT NULL,
    common_name         TEXT,
    sans                TEXT   NOT NULL,
    key_type            TEXT   NOT NULL,
    signature_algorithm TEXT   NOT NULL,
    public_key          BLOB  NOT NULL,
    key_id              BIGINT REFERENCES keys (id) ON DELETE SET NULL,
    status              TEXT   NOT NULL,
    certificate_id      BIGINT REFERENCES certificates (id) ON DELETE SET NULL,
    source              TEXT   NOT NULL,
    der                 BLOB  NOT NULL,
    owner_id            BIGINT REFERENCES users (id) ON DELETE SET NULL,
    created_at          BIGINT NOT NULL,
    signed_at           BIGINT,
    updated_at          BIGINT NOT NULL
);
CREATE INDEX csrs_status ON csrs (status, id);

-- Certificates of other CAs that certmint trusts (for client certificates,
-- chains of imported certificates): added by hand, imported, or synced from
-- the operating system's bundle (source 'system').
CREATE TABLE trusted_certificates (
    id                  INTEGER PRIMARY KEY,
    name                TEXT   NOT NULL,
    description         TEXT,
    subject             TEXT   NOT NULL,
    issuer              TEXT   NOT NULL,
    serial              TEXT   NOT NULL,
    not_before          BIGINT NOT NULL,
    not_after           BIGINT NOT NULL,
    is_root             BIGINT NOT NULL,
    fingerprint_sha256  TEXT   NOT NULL UNIQUE,
    der                 BLOB  NOT NULL,
    source              TEXT   NOT NULL,
    created_at          BIGINT NOT NULL
);

-- The dashboard counts certificates issued per day.
CREATE INDEX certificates_created ON certificates (created_at);
