-- EST (RFC 7030): the settings of /.well-known/est/ and the labels, each served at
-- /.well-known/est/{label}/ with its own CA, template and HTTP Basic credentials.
-- A password is kept as an Argon2id hash. The CA and template are not foreign keys on
-- purpose: a label whose CA or template was deleted must refuse to enroll, not fall back
-- to the default CA.
CREATE TABLE est_config (
    id            BIGINT PRIMARY KEY CHECK (id = 1),
    enabled       BIGINT NOT NULL DEFAULT 0,
    ca_id         BIGINT,
    template_id   BIGINT,
    username      TEXT   NOT NULL DEFAULT '',
    password_hash TEXT,
    updated_at    BIGINT NOT NULL DEFAULT 0
);
INSERT INTO est_config (id) VALUES (1);

CREATE TABLE est_labels (
    id            INTEGER PRIMARY KEY,
    label         TEXT   NOT NULL UNIQUE,
    ca_id         BIGINT,
    template_id   BIGINT,
    username      TEXT   NOT NULL DEFAULT '',
    password_hash TEXT,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);

-- The EST statistics count certificates by source without reading the whole table.
CREATE INDEX certificates_source ON certificates (source, created_at);
