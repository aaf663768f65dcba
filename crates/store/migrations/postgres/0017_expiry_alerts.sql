-- Expiry notices: a certificate or CA crossed one of the alert thresholds (days before
-- not_after; 0 means it expired). One row per subject and threshold, so each is announced
-- once, whichever node runs the scan and however often. `mail` holds what the alert mail
-- says about it until the mail has gone out; NULL when there is nothing left to send.
CREATE TABLE expiry_notices (
    subject_type   TEXT   NOT NULL,
    subject_id     BIGINT NOT NULL,
    threshold_days BIGINT NOT NULL,
    noticed_at     BIGINT NOT NULL,
    mail           TEXT,
    PRIMARY KEY (subject_type, subject_id, threshold_days)
);
CREATE INDEX expiry_notices_unmailed ON expiry_notices (noticed_at) WHERE mail IS NOT NULL;
