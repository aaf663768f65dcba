-- Checkpoints of the audit chain, kept in the database so that a verification re-hashes only
-- what is new: after one finds the chain whole up to a record, that record's id and hash and
-- the chain's keyed_from, signed with the checkpoint key (authority audit.rs, Checkpoint). The
-- next verification trusts the newest checkpoint whose signature holds and whose record still
-- carries that hash, and walks the chain from the record after it.
CREATE TABLE audit_checkpoints (
    record_id  BIGINT PRIMARY KEY,
    hash       TEXT   NOT NULL,
    keyed_from BIGINT NOT NULL,
    signature  TEXT   NOT NULL,
    created_at BIGINT NOT NULL
);
