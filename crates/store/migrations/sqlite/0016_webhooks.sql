-- Webhook endpoints: where events are sent, signed with the endpoint's secret (sealed
-- by the vault). events and ca_filter are JSON lists; empty means every event, every CA.
CREATE TABLE webhook_endpoints (
    id             INTEGER PRIMARY KEY,
    name           TEXT   NOT NULL,
    url            TEXT   NOT NULL,
    secret         BLOB   NOT NULL,
    events         TEXT   NOT NULL,
    ca_filter      TEXT   NOT NULL,
    custom_headers TEXT   NOT NULL,
    enabled        BIGINT NOT NULL DEFAULT 1,
    -- The last outbox event before it was registered: it receives only later ones.
    after_event    BIGINT NOT NULL,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL
);

-- One row per event and endpoint: the delivery job fans each outbox event out to the
-- endpoints it matches (and marks the event delivered), then sends each endpoint's
-- deliveries in event order, retrying with backoff until delivered or dead.
CREATE TABLE webhook_deliveries (
    id                INTEGER PRIMARY KEY,
    endpoint_id       BIGINT NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_id          BIGINT NOT NULL,
    event_type        TEXT   NOT NULL,
    payload           TEXT   NOT NULL,
    status            TEXT   NOT NULL,
    attempts          BIGINT NOT NULL DEFAULT 0,
    next_attempt_at   BIGINT NOT NULL,
    last_status_code  BIGINT,
    latency_ms        BIGINT,
    response_excerpt  TEXT,
    last_error        TEXT,
    created_at        BIGINT NOT NULL,
    delivered_at      BIGINT,
    UNIQUE (endpoint_id, event_id)
);
CREATE INDEX webhook_deliveries_open ON webhook_deliveries (endpoint_id, status, event_id);
