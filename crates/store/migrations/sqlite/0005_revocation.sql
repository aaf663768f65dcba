-- Revocation publishing: per-CA CRL and OCSP settings, every CRL by CA and
-- number, pre-signed OCSP responses, and leases for jobs that run on one node.

-- Per-CA settings (RFC 5280 CDP and AIA toggles, CRL timing, OCSP signing).
-- crl_dirty_since / crl_dirty_at: the first and the latest revocation change
-- not yet in a CRL, so that regeneration waits for a burst to end.
ALTER TABLE cas ADD COLUMN cdp_enabled BIGINT NOT NULL DEFAULT 1;
ALTER TABLE cas ADD COLUMN ocsp_enabled BIGINT NOT NULL DEFAULT 1;
ALTER TABLE cas ADD COLUMN aia_ca_issuers_enabled BIGINT NOT NULL DEFAULT 1;
ALTER TABLE cas ADD COLUMN crl_validity_hours BIGINT NOT NULL DEFAULT 168;
ALTER TABLE cas ADD COLUMN crl_refresh_hours BIGINT NOT NULL DEFAULT 24;
ALTER TABLE cas ADD COLUMN delta_crl_enabled BIGINT NOT NULL DEFAULT 0;
ALTER TABLE cas ADD COLUMN delta_crl_validity_hours BIGINT NOT NULL DEFAULT 24;
ALTER TABLE cas ADD COLUMN ocsp_signer TEXT NOT NULL DEFAULT 'delegated';
ALTER TABLE cas ADD COLUMN ocsp_validity_hours BIGINT NOT NULL DEFAULT 24;
ALTER TABLE cas ADD COLUMN ocsp_responder_id BIGINT REFERENCES certificates (id) ON DELETE SET NULL;
ALTER TABLE cas ADD COLUMN crl_dirty_since BIGINT;
ALTER TABLE cas ADD COLUMN crl_dirty_at BIGINT;

-- When a certificate's revocation state last changed (revoked, held, released),
-- which delta CRLs and OCSP caches follow; and the RFC 5280 §5.3.2 invalidity
-- date when the revoker knows it.
ALTER TABLE certificates ADD COLUMN revocation_changed_at BIGINT;
ALTER TABLE certificates ADD COLUMN invalidity_date BIGINT;
-- Both partial: revoked certificates are few among millions, so these stay
-- small and issuance never touches them.
CREATE INDEX certificates_revoked ON certificates (ca_id) WHERE status = 'revoked';
CREATE INDEX certificates_revocation_changes ON certificates (revocation_changed_at)
    WHERE revocation_changed_at IS NOT NULL;

-- Every CRL a CA has published; delta_of is the base CRL number of a delta.
CREATE TABLE crls (
    ca_id        BIGINT NOT NULL REFERENCES cas (id) ON DELETE CASCADE,
    number       BIGINT NOT NULL,
    delta_of     BIGINT,
    this_update  BIGINT NOT NULL,
    next_update  BIGINT NOT NULL,
    entries      BIGINT NOT NULL,
    der          BLOB  NOT NULL,
    PRIMARY KEY (ca_id, number)
);

-- Pre-signed OCSP responses, one per CertID (hex of its DER, as requests carry
-- it: the response echoes it octet for octet) of a CA's certificate;
-- each is signed again from refresh_at on, well before its nextUpdate, or as
-- soon as its CA's signer (responder certificate, key, validity) changes.
CREATE TABLE ocsp_responses (
    ca_id        BIGINT NOT NULL REFERENCES cas (id) ON DELETE CASCADE,
    serial       TEXT   NOT NULL,
    cert_id      TEXT   NOT NULL,
    status       TEXT   NOT NULL,
    signer       TEXT   NOT NULL,
    this_update  BIGINT NOT NULL,
    next_update  BIGINT NOT NULL,
    refresh_at   BIGINT NOT NULL,
    der          BLOB  NOT NULL,
    PRIMARY KEY (ca_id, serial, cert_id)
);
CREATE INDEX ocsp_responses_refresh ON ocsp_responses (refresh_at);

-- A job that must run on one node at a time is run by the lease's holder.
CREATE TABLE leases (
    name        TEXT   PRIMARY KEY,
    holder      TEXT   NOT NULL,
    expires_at  BIGINT NOT NULL
);
