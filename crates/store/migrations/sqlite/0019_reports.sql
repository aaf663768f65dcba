-- Scheduled report deliveries: one row per report type and scheduled occurrence (`period`,
-- the occurrence's time as RFC 3339). The node that inserts the row sends the report; any
-- other node, or the same one after a restart, finds the row and sends nothing, so a report
-- goes out at most once per occurrence. `error` says why a claimed delivery failed.
CREATE TABLE report_deliveries (
    report_type TEXT   NOT NULL,
    period      TEXT   NOT NULL,
    claimed_at  BIGINT NOT NULL,
    finished_at BIGINT,
    error       TEXT,
    PRIMARY KEY (report_type, period)
);
