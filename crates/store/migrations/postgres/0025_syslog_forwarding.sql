-- Audit forwarding to syslog. The audit table is the queue and this one row its cursor:
-- after_id is the newest audit record the syslog server took, and it moves only after the
-- records up to it were written to the server, so a restart resumes where the last node
-- stopped. failures counts the attempts that failed since the last success; the forwarder
-- waits until next_attempt_at before the next. The settings themselves are the
-- 'audit_syslog' row of `settings`.
CREATE TABLE syslog_forwarding (
    id              BIGINT PRIMARY KEY CHECK (id = 1),
    after_id        BIGINT NOT NULL,
    forwarded       BIGINT NOT NULL DEFAULT 0,
    last_sent_at    BIGINT,
    failures        BIGINT NOT NULL DEFAULT 0,
    last_error      TEXT,
    last_error_at   BIGINT,
    next_attempt_at BIGINT
);
