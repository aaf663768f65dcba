-- What a trusted certificate is trusted for (a label such as trust_anchor) and free notes.
ALTER TABLE trusted_certificates ADD COLUMN purpose TEXT NOT NULL DEFAULT 'trust_anchor';
ALTER TABLE trusted_certificates ADD COLUMN notes TEXT;
