-- The certificate list's filters (issue 25). A filter on a column equal to a value reads the
-- column's index in id order, so a page of matches newest first stops after the page, and a
-- count reads index entries only. The source index keeps created_at for the EST statistics.
DROP INDEX certificates_source;
CREATE INDEX certificates_source ON certificates (source, id, created_at);
CREATE INDEX certificates_key_type ON certificates (key_type, id);
CREATE INDEX certificates_signature ON certificates (signature_algorithm, id);
CREATE INDEX certificates_issuer ON certificates (issuer, id);
CREATE INDEX certificates_owner ON certificates (owner_id, id) WHERE owner_id IS NOT NULL;
-- A window on notBefore is counted, and a list sorted by it walked, through this.
CREATE INDEX certificates_not_before ON certificates (not_before, id);
-- The ids of the certificates whose key certmint holds, in id order: a page of them newest
-- first, and their count, however few they are.
CREATE INDEX certificates_held_key ON certificates (id) WHERE key_id IS NOT NULL;
-- The ids of the certificates with an IP address, email or URI SAN, in id order; the
-- condition is the one the list's SAN type filter states (certificates.rs, san_kind_search).
CREATE INDEX certificates_san_ip ON certificates (id) WHERE ' ' || sans GLOB '* ip:*';
CREATE INDEX certificates_san_email ON certificates (id) WHERE ' ' || sans GLOB '* email:*';
CREATE INDEX certificates_san_uri ON certificates (id) WHERE ' ' || sans GLOB '* uri:*';
