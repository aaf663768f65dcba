-- Scheduled jobs. Each runs on one node at a time, under the lease 'job:<name>';
-- the row says when it is due next, whether someone asked for a run now, and how
-- the last run went. A node that dies mid-run leaves its lease to expire, and the
-- job is taken over by another node.
CREATE TABLE jobs (
    name             TEXT   PRIMARY KEY,
    enabled          BIGINT NOT NULL DEFAULT 1,
    schedule         TEXT   NOT NULL,
    next_run_at      BIGINT NOT NULL,
    run_requested_at BIGINT,
    last_started_at  BIGINT,
    last_finished_at BIGINT,
    last_duration_ms BIGINT,
    last_outcome     TEXT,
    last_summary     TEXT,
    last_error       TEXT,
    last_node        TEXT,
    runs             BIGINT NOT NULL DEFAULT 0,
    failures         BIGINT NOT NULL DEFAULT 0
);

-- Settings changed through the API, one JSON document per key, read by every
-- node (so a change needs no restart).
CREATE TABLE settings (
    key        TEXT   PRIMARY KEY,
    value      TEXT   NOT NULL,
    updated_at BIGINT NOT NULL
);

-- The recovery job looks for ACME orders a dead node left processing.
CREATE INDEX acme_orders_processing ON acme_orders (updated_at) WHERE status = 'processing';
