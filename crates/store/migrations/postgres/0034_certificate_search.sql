-- Substring search over certificates: the common name, SANs, serial, subject and fingerprint.
--
-- A pg_trgm GIN index over those columns joined by a character no search holds (U+001F), lower
-- case: `LIKE '%text%'` on the same expression (certificates.rs, SEARCH_TEXT) looks up the
-- text's trigrams when it has three characters or more. pg_trgm ships with PostgreSQL and is a
-- trusted extension: the database's owner may create it.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE INDEX certificates_search ON certificates USING gin ((LOWER(
    COALESCE(common_name, '') || chr(31) || sans || chr(31) || serial || chr(31) || subject
    || chr(31) || fingerprint_sha256
)) gin_trgm_ops);
