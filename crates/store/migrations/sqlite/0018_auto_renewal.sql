-- Auto-renewal, one row per certificate that has a policy of its own or inherits one from
-- its template. `enabled` NULL means the certificate follows its template; otherwise the
-- row's own policy (days_before or lifetime_ppm, key_policy) overrides the template's.
-- `due_at` is when the policy in force says to renew (NULL when off, renewed, revoked or
-- expired), so the job reads only the due rows along one small index. `attempts`,
-- `next_attempt_at` and `last_error` hold the backoff after failed attempts.
CREATE TABLE auto_renewals (
    certificate_id  BIGINT PRIMARY KEY REFERENCES certificates (id) ON DELETE CASCADE,
    enabled         BIGINT,
    days_before     BIGINT,
    lifetime_ppm    BIGINT,
    key_policy      TEXT,
    due_at          BIGINT,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT,
    last_attempt_at BIGINT,
    last_error      TEXT,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX auto_renewals_due ON auto_renewals (due_at, certificate_id) WHERE due_at IS NOT NULL;
-- Applying a template's changed policy to the certificates issued from it.
CREATE INDEX certificates_template ON certificates (template_id) WHERE template_id IS NOT NULL;
