-- Substring search over certificates: the common name, SANs, serial, subject and fingerprint.
--
-- An FTS5 index with the trigram tokenizer, over the certificate rows themselves (external
-- content: the index holds trigrams, not a second copy of the text). A quoted MATCH of three
-- characters or more finds the rows that contain it, in any case, in one of those columns.
-- Triggers keep it in the transaction of every write; a later migration that rebuilds the
-- certificates table must make them again (and 'rebuild' the index).
CREATE VIRTUAL TABLE certificate_search USING fts5(
    common_name, sans, serial, subject, fingerprint_sha256,
    content = 'certificates', content_rowid = 'id', tokenize = 'trigram'
);
INSERT INTO certificate_search (certificate_search) VALUES ('rebuild');

CREATE TRIGGER certificate_search_insert AFTER INSERT ON certificates BEGIN
    INSERT INTO certificate_search (rowid, common_name, sans, serial, subject, fingerprint_sha256)
    VALUES (new.id, new.common_name, new.sans, new.serial, new.subject, new.fingerprint_sha256);
END;

CREATE TRIGGER certificate_search_delete AFTER DELETE ON certificates BEGIN
    INSERT INTO certificate_search
        (certificate_search, rowid, common_name, sans, serial, subject, fingerprint_sha256)
    VALUES ('delete', old.id, old.common_name, old.sans, old.serial, old.subject,
            old.fingerprint_sha256);
END;

CREATE TRIGGER certificate_search_update
AFTER UPDATE OF common_name, sans, serial, subject, fingerprint_sha256 ON certificates BEGIN
    INSERT INTO certificate_search
        (certificate_search, rowid, common_name, sans, serial, subject, fingerprint_sha256)
    VALUES ('delete', old.id, old.common_name, old.sans, old.serial, old.subject,
            old.fingerprint_sha256);
    INSERT INTO certificate_search (rowid, common_name, sans, serial, subject, fingerprint_sha256)
    VALUES (new.id, new.common_name, new.sans, new.serial, new.subject, new.fingerprint_sha256);
END;
