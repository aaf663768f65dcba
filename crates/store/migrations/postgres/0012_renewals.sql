-- A certificate's page names the certificates that renewed it: found through
-- this index, not by reading the inventory.
CREATE INDEX certificates_renewed_from ON certificates (renewed_from)
    WHERE renewed_from IS NOT NULL;
