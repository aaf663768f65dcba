-- From keyed_from on, each audit record's hash is an HMAC-SHA256 under a key derived from the
-- master key, which the database never holds; the records before it (written by earlier
-- versions) keep their plain SHA-256 hashes and are checked as such.
ALTER TABLE audit_head ADD COLUMN keyed_from BIGINT NOT NULL DEFAULT 1;
UPDATE audit_head SET keyed_from = last_id + 1;
