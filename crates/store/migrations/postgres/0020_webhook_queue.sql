-- The delivery job reads each endpoint's open deliveries in event order, a page at a time.
-- This index holds open deliveries only, so that read costs the same after a million
-- deliveries as after ten; the index it replaces held every delivered one too, and the
-- query that used it scanned the whole table once per delivery.
DROP INDEX webhook_deliveries_open;
CREATE INDEX webhook_deliveries_queue ON webhook_deliveries (endpoint_id, event_id)
    WHERE status IN ('pending', 'failed');
