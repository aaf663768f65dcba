-- Groups of users. Members hold the group's permissions (a JSON array of permission strings)
-- and, when the group names one, its role's, on top of their own role's. member_role is the
-- member's place in the group (member or owner); it grants nothing by itself.
CREATE TABLE user_groups (
    id           INTEGER PRIMARY KEY,
    name         TEXT   NOT NULL UNIQUE,
    description  TEXT,
    role         TEXT,
    permissions  TEXT   NOT NULL,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);

CREATE TABLE group_members (
    group_id     BIGINT NOT NULL REFERENCES user_groups (id) ON DELETE CASCADE,
    user_id      BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    member_role  TEXT   NOT NULL,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX group_members_user ON group_members (user_id);
