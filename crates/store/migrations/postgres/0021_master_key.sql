-- The master-key rotation tells what each sealed private key serves (a CA's, a
-- certificate's, a CSR's) by looking it up from the rows that hold it.
CREATE INDEX certificates_key ON certificates (key_id);
CREATE INDEX csrs_key ON csrs (key_id);
