-- Issuance inserts certificates with random serials and fingerprints, so every
-- index keyed on either takes each insert on a random page, and each of those
-- pages is written to the log and again to the database. Two such indexes,
-- the serial (32 hex digits) and the UNIQUE fingerprint (64), cost more than a
-- fifth of issuance throughput. One compact index on the serial's last 16 hex
-- digits replaces both: a certificate is found by serial through it, and by
-- fingerprint through its serial (an import knows both).
-- Without the UNIQUE constraint an import's check and its insert must not race
-- another write: every write transaction first updates the audit head row, so
-- write transactions run one at a time.
--
-- SQLite drops a UNIQUE constraint only by rebuilding the table. csrs, the one
-- table that refers to certificates, is rebuilt with it, so that nothing refers
-- to the old table when it is dropped (dropping a referenced table would run
-- csrs' ON DELETE SET NULL).

CREATE TABLE certificates_new (
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
    fingerprint_sha256  TEXT   NOT NULL,
    source              TEXT   NOT NULL,
    der                 BLOB  NOT NULL,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL
);
INSERT INTO certificates_new SELECT
    id, refid, ca_id, key_id, template_id, owner_id, renewed_from, description,
    subject, common_name, issuer, serial, sans, not_before, not_after, status,
    revoked_at, revocation_reason, revocation_comment, key_type,
    signature_algorithm, is_ca, subject_key_id, authority_key_id,
    fingerprint_sha256, source, der, created_at, updated_at
FROM certificates;

CREATE TABLE csrs_new (
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
    certificate_id      BIGINT REFERENCES certificates_new (id) ON DELETE SET NULL,
    source              TEXT   NOT NULL,
    der                 BLOB  NOT NULL,
    owner_id            BIGINT REFERENCES users (id) ON DELETE SET NULL,
    created_at          BIGINT NOT NULL,
    signed_at           BIGINT,
    updated_at          BIGINT NOT NULL
);
INSERT INTO csrs_new SELECT
    id, refid, name, subject, common_name, sans, key_type, signature_algorithm,
    public_key, key_id, status, certificate_id, source, der, owner_id,
    created_at, signed_at, updated_at
FROM csrs;

DROP TABLE csrs;
DROP TABLE certificates;
-- Renaming also rewrites csrs_new's reference to certificates_new.
ALTER TABLE certificates_new RENAME TO certificates;
ALTER TABLE csrs_new RENAME TO csrs;

CREATE INDEX certificates_ca ON certificates (ca_id, id);
CREATE INDEX certificates_status ON certificates (status, not_after, id);
CREATE INDEX certificates_expiry ON certificates (not_after, id);
CREATE INDEX certificates_created ON certificates (created_at);
CREATE INDEX certificates_serial_tail ON certificates (substr(serial, -16));
CREATE INDEX csrs_status ON csrs (status, id);
