-- Single sign-on: identity providers (OIDC and LDAP), the external identities linked to local
-- users, and the OIDC logins in flight.
--
-- sso_providers: config is the provider type's settings as JSON (issuer, client id, LDAP
-- server and search; nothing secret); secret is the OIDC client secret or the LDAP service
-- account's password, sealed by the vault. role_mappings is a JSON list of
-- {"group": ..., "role": ...} rules: an IdP group or claim value and the role it gives.
-- link_existing lets a first login take over the local user of the same name, for operators
-- moving existing accounts to the provider; off, such a login is refused.
CREATE TABLE sso_providers (
    id                 INTEGER PRIMARY KEY,
    name               TEXT   NOT NULL UNIQUE,
    provider_type      TEXT   NOT NULL,
    display_name       TEXT   NOT NULL,
    icon               TEXT,
    enabled            BIGINT NOT NULL DEFAULT 0,
    default_role       TEXT   NOT NULL,
    auto_create_users  BIGINT NOT NULL DEFAULT 1,
    auto_update_users  BIGINT NOT NULL DEFAULT 0,
    link_existing      BIGINT NOT NULL DEFAULT 0,
    config             TEXT   NOT NULL,
    role_mappings      TEXT   NOT NULL,
    secret             BLOB,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL
);

-- Who a provider's subject (the OIDC `sub`, the LDAP entry's DN) is here: one local user per
-- subject and provider, fixed at the first login so that a renamed IdP account stays the same
-- user and a reused name does not become someone else.
CREATE TABLE sso_identities (
    id             INTEGER PRIMARY KEY,
    provider_id    BIGINT NOT NULL REFERENCES sso_providers (id) ON DELETE CASCADE,
    subject        TEXT   NOT NULL,
    user_id        BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at     BIGINT NOT NULL,
    last_login_at  BIGINT,
    UNIQUE (provider_id, subject)
);
CREATE INDEX sso_identities_user ON sso_identities (user_id);

-- An OIDC login sent to its provider and not yet back: found by the SHA-256 of its state
-- (which the browser brings back, and holds in a cookie), deleted when the callback uses it.
-- The PKCE verifier is worthless without the code the provider gives the browser.
CREATE TABLE sso_logins (
    id             INTEGER PRIMARY KEY,
    state_hash     TEXT   NOT NULL UNIQUE,
    provider_id    BIGINT NOT NULL REFERENCES sso_providers (id) ON DELETE CASCADE,
    nonce          TEXT   NOT NULL,
    pkce_verifier  TEXT   NOT NULL,
    return_to      TEXT,
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL
);
CREATE INDEX sso_logins_expiry ON sso_logins (expires_at);
