-- What an operator records about a certificate beyond what it says (issue 25): the team that
-- answers for it next to its owner, free labels (tags), and where it is deployed (locations).
-- The team and a tag are filters of the list, each read through an index in id order.
ALTER TABLE certificates ADD COLUMN team_id BIGINT REFERENCES user_groups (id) ON DELETE SET NULL;
CREATE INDEX certificates_team ON certificates (team_id, id) WHERE team_id IS NOT NULL;
CREATE TABLE certificate_tags (
    certificate_id  BIGINT NOT NULL REFERENCES certificates (id) ON DELETE CASCADE,
    tag             TEXT   NOT NULL,
    PRIMARY KEY (certificate_id, tag)
);
CREATE INDEX certificate_tags_tag ON certificate_tags (tag, certificate_id);
CREATE TABLE certificate_locations (
    id              INTEGER PRIMARY KEY,
    certificate_id  BIGINT NOT NULL REFERENCES certificates (id) ON DELETE CASCADE,
    host            TEXT   NOT NULL,
    port            BIGINT,
    path            TEXT,
    note            TEXT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX certificate_locations_certificate ON certificate_locations (certificate_id, id);
