-- A NOTIFY at commit takes a database-wide lock that serializes every committing transaction
-- that sent one: one per payment made payments wait on each other. Delivery workers are now
-- woken in their own process right after the commit of what they deliver, and poll for the
-- rest (other processes' events, retries), so the trigger goes.
DROP TRIGGER callback_deliveries_due ON callback_deliveries;
DROP FUNCTION callback_due_notify();

-- The purge of finished deliveries walks the oldest events first.
CREATE INDEX outbox_events_merchant_created_idx ON outbox_events (created_at) WHERE merchant_id IS NOT NULL;
