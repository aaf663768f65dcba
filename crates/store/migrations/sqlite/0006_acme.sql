-- ACME (RFC 8555): profiles (one directory each), accounts, orders with their
-- authorizations, used nonces, external account binding keys.

-- A profile binds a directory to a CA, a template, a validity and options.
-- allowed_identifiers: space-separated DNS suffixes and IP networks (CIDR);
-- empty allows any. challenge_types: space-separated, the ones offered.
CREATE TABLE acme_profiles (
    id                  INTEGER PRIMARY KEY,
    name                TEXT   NOT NULL UNIQUE,
    description         TEXT   NOT NULL DEFAULT '',
    enabled             BIGINT NOT NULL DEFAULT 1,
    is_default          BIGINT NOT NULL DEFAULT 0,
    ca_id               BIGINT REFERENCES cas (id) ON DELETE SET NULL,
    template_id         BIGINT REFERENCES templates (id) ON DELETE SET NULL,
    validity_days       BIGINT NOT NULL DEFAULT 90,
    require_eab         BIGINT NOT NULL DEFAULT 0,
    allowed_identifiers TEXT   NOT NULL DEFAULT '',
    challenge_types     TEXT   NOT NULL DEFAULT 'http-01 dns-01 tls-alpn-01',
    terms_of_service    TEXT   NOT NULL DEFAULT '',
    website             TEXT   NOT NULL DEFAULT '',
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL
);
CREATE UNIQUE INDEX acme_profiles_default ON acme_profiles (is_default) WHERE is_default = 1;

-- Instance-wide ACME state: the switch, rate limits, and the key that
-- authenticates nonces (sealed by the vault), shared by every node.
CREATE TABLE acme_state (
    id                       BIGINT PRIMARY KEY CHECK (id = 1),
    enabled                  BIGINT NOT NULL DEFAULT 1,
    orders_per_account_hour  BIGINT NOT NULL DEFAULT 300,
    accounts_per_address_hour BIGINT NOT NULL DEFAULT 100,
    nonce_key                BLOB
);
INSERT INTO acme_state (id) VALUES (1);

-- An account is its key (thumbprint, RFC 7638) within one profile.
CREATE TABLE acme_accounts (
    id          INTEGER PRIMARY KEY,
    refid       TEXT   NOT NULL UNIQUE,
    profile_id  BIGINT NOT NULL REFERENCES acme_profiles (id) ON DELETE CASCADE,
    thumbprint  TEXT   NOT NULL,
    jwk         TEXT   NOT NULL,
    status      TEXT   NOT NULL,
    contact     TEXT   NOT NULL DEFAULT '',
    tos_agreed  BIGINT NOT NULL DEFAULT 0,
    eab_key_id  BIGINT,
    origin_ip   TEXT,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    UNIQUE (profile_id, thumbprint)
);

-- An order and its authorizations (JSON: identifier, status, expiry,
-- challenges), which live and die with it.
CREATE TABLE acme_orders (
    id             INTEGER PRIMARY KEY,
    refid          TEXT   NOT NULL UNIQUE,
    account_id     BIGINT NOT NULL REFERENCES acme_accounts (id) ON DELETE CASCADE,
    status         TEXT   NOT NULL,
    identifiers    TEXT   NOT NULL,
    authorizations TEXT   NOT NULL,
    not_before     BIGINT,
    not_after      BIGINT,
    expires_at     BIGINT NOT NULL,
    error          TEXT,
    certificate_id BIGINT REFERENCES certificates (id) ON DELETE SET NULL,
    replaces       TEXT,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL
);
CREATE INDEX acme_orders_account ON acme_orders (account_id, id);
CREATE INDEX acme_orders_certificate ON acme_orders (certificate_id) WHERE certificate_id IS NOT NULL;
-- RFC 9773: a certificate is replaced by one finalized order only.
CREATE INDEX acme_orders_replaces ON acme_orders (replaces) WHERE replaces IS NOT NULL;

-- Nonces already used, until they would have expired anyway.
CREATE TABLE acme_used_nonces (
    nonce      TEXT   NOT NULL PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
CREATE INDEX acme_used_nonces_expiry ON acme_used_nonces (expires_at);

-- External account binding keys (RFC 8555 §7.3.4): the HMAC key sealed by
-- the vault, shown once; bound to the first account that uses it.
CREATE TABLE acme_eab_keys (
    id          INTEGER PRIMARY KEY,
    key_id      TEXT   NOT NULL UNIQUE,
    profile_id  BIGINT NOT NULL REFERENCES acme_profiles (id) ON DELETE CASCADE,
    hmac_key    BLOB   NOT NULL,
    description TEXT   NOT NULL DEFAULT '',
    account_id  BIGINT REFERENCES acme_accounts (id) ON DELETE SET NULL,
    created_by  BIGINT,
    created_at  BIGINT NOT NULL,
    used_at     BIGINT,
    revoked_at  BIGINT
);

-- Rate-limit counters shared by every node: one row per key and window.
CREATE TABLE acme_rate_counters (
    key          TEXT   NOT NULL,
    window_start BIGINT NOT NULL,
    count        BIGINT NOT NULL,
    PRIMARY KEY (key, window_start)
);
