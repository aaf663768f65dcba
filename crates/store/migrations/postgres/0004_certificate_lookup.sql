-- Issuance inserts certificates with random serials and fingerprints, so every
-- index keyed on either takes each insert on a random page. One compact index
-- on the serial's last 16 hex digits replaces the serial index and the UNIQUE
-- fingerprint: a certificate is found by serial through it, and by fingerprint
-- through its serial (an import knows both). The schema matches SQLite's.
-- Without the UNIQUE constraint an import's check and its insert must not race
-- another write: every write transaction first updates the audit head row, so
-- write transactions run one at a time.

ALTER TABLE certificates DROP CONSTRAINT certificates_fingerprint_sha256_key;
DROP INDEX certificates_serial;
CREATE INDEX certificates_serial_tail ON certificates (right(serial, 16));
