-- PKCS#11 tokens that hold CA keys, and the keys in them.
--
-- hsm_providers: a token reached through a PKCS#11 module (a shared library the settings file
-- allows), found by its token label or its slot id. Its user PIN is either read from an
-- environment variable (pin_env) or sealed by the vault (pin); it is never handed back.
-- max_sessions bounds the sessions opened on the token, which is also how many signatures
-- are in flight at once. allow_key_import lets an administrator move a software CA key into
-- the token.
CREATE TABLE hsm_providers (
    id                INTEGER PRIMARY KEY,
    name              TEXT   NOT NULL UNIQUE,
    provider_type     TEXT   NOT NULL,
    module_path       TEXT   NOT NULL,
    token_label       TEXT,
    slot_id           BIGINT,
    pin_env           TEXT,
    pin               BLOB,
    max_sessions      BIGINT NOT NULL,
    allow_key_import  BIGINT NOT NULL DEFAULT 0,
    enabled           BIGINT NOT NULL DEFAULT 1,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL
);

-- A key in a token is a keys row of backend 'pkcs11' with no sealed material, and this row:
-- its provider, its CKA_ID in the token and its CKA_LABEL. A provider with keys cannot be
-- deleted.
CREATE TABLE hsm_keys (
    key_id       BIGINT NOT NULL PRIMARY KEY REFERENCES keys (id) ON DELETE CASCADE,
    provider_id  BIGINT NOT NULL REFERENCES hsm_providers (id),
    object_id    BLOB  NOT NULL,
    label        TEXT   NOT NULL,
    UNIQUE (provider_id, object_id)
);
