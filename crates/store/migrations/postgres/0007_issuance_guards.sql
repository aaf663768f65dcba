-- A CA with require_template issues only requests that name a template. CAs that exist keep
-- issuing as before; new ones are created with it on unless asked otherwise.
ALTER TABLE cas ADD COLUMN require_template BIGINT NOT NULL DEFAULT 0;
