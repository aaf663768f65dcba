-- A user's saved views of the certificate list (issue 25): a name and the list's query
-- string, kept per user.
CREATE TABLE saved_views (
    id          INTEGER PRIMARY KEY,
    user_id     BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name        TEXT   NOT NULL,
    query       TEXT   NOT NULL,
    created_at  BIGINT NOT NULL,
    UNIQUE (user_id, name)
);
