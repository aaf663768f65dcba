-- Substring search over certificates: the common name, SANs, serial, subject and fingerprint.
--
-- An FTS5 index with the trigram tokenizer holds one text per certificate, `search_text`: its
-- common name (unless its subject already holds it, as it nearly always does), SANs, serial,
-- subject and the first 16 hex digits of its fingerprint, joined by U+001F. It keeps no
-- positions (detail 'none') and no copy of the text (contentless), which makes it about a
-- fifth of the size and half the cost per write of a full index over the five columns.
-- A search (certificates.rs, text_search) asks it for the rows holding each trigram of the
-- text's first characters, and checks those rows' own columns for the whole text; so a
-- fingerprint is found from its first digit, not from the middle.
-- Triggers keep it in the transaction of every write; a later migration that rebuilds the
-- certificates table must make the column and the triggers again, and refill the index.
ALTER TABLE certificates ADD COLUMN search_text TEXT GENERATED ALWAYS AS (
    CASE WHEN instr(subject, common_name) > 0 THEN '' ELSE COALESCE(common_name, '') END
    || char(31) || sans || char(31) || serial || char(31) || subject
    || char(31) || substr(fingerprint_sha256, 1, 16)
) VIRTUAL;

CREATE VIRTUAL TABLE certificate_search USING fts5(
    search_text, content = '', contentless_delete = 1, detail = 'none', tokenize = 'trigram'
);
INSERT INTO certificate_search (rowid, search_text) SELECT id, search_text FROM certificates;

CREATE TRIGGER certificate_search_insert AFTER INSERT ON certificates BEGIN
    INSERT INTO certificate_search (rowid, search_text) VALUES (new.id, new.search_text);
END;

CREATE TRIGGER certificate_search_delete AFTER DELETE ON certificates BEGIN
    DELETE FROM certificate_search WHERE rowid = old.id;
END;

CREATE TRIGGER certificate_search_update
AFTER UPDATE OF common_name, sans, serial, subject, fingerprint_sha256 ON certificates BEGIN
    DELETE FROM certificate_search WHERE rowid = old.id;
    INSERT INTO certificate_search (rowid, search_text) VALUES (new.id, new.search_text);
END;
