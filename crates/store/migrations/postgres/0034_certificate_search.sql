-- Substring search over certificates: the common name, SANs, serial, subject and fingerprint.
--
-- A pg_trgm GIN index over one text per certificate, lower case: its common name (unless its
-- subject already holds it, as it nearly always does), SANs, serial, subject and the first 16
-- hex digits of its fingerprint, joined by a character no search holds (U+001F). A search
-- (certificates.rs, text_search) looks up its text's first characters with `LIKE '%…%'` on this
-- very expression (INDEXED_TEXT), and checks the whole text on the rows the index names; so a
-- fingerprint is found from its first digit, not from the middle. pg_trgm ships with
-- PostgreSQL and is a trusted extension: the database's owner may create it.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE INDEX certificates_search ON certificates USING gin ((LOWER(
    CASE WHEN strpos(subject, common_name) > 0 THEN '' ELSE COALESCE(common_name, '') END
    || chr(31) || sans || chr(31) || serial || chr(31) || subject
    || chr(31) || left(fingerprint_sha256, 16)
)) gin_trgm_ops);
