-- From keyed_from on, each audit record's hash is an HMAC-SHA256 under a key derived from the
-- master key, which the database never holds; the records before it (written by earlier
-- versions) keep their plain SHA-256 hashes and are checked as such. keyed_seal, an HMAC of
-- keyed_from under the same key, is written by the start that applies this migration; without
-- a valid seal the whole chain must be keyed, so moving keyed_from cannot unkey a tail.
ALTER TABLE audit_head ADD COLUMN keyed_from BIGINT NOT NULL DEFAULT 1;
ALTER TABLE audit_head ADD COLUMN keyed_seal TEXT;
UPDATE audit_head SET keyed_from = last_id + 1;
