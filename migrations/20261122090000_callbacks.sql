-- Signed callbacks: one delivery per merchant event, its attempts, and webhook-secret rotation.

-- During a rotation the previous secret keeps signing (a second signature) until it expires.
ALTER TABLE merchants
    ADD COLUMN previous_webhook_secret            text,
    ADD COLUMN previous_webhook_secret_expires_at timestamptz;

CREATE INDEX outbox_events_merchant_idx ON outbox_events (merchant_id, seq) WHERE merchant_id IS NOT NULL;

-- The delivery of one event to the merchant it belongs to. A pending delivery is due when
-- next_attempt_at has passed; a worker claims it by moving next_attempt_at to the end of its
-- lease (and stamping lease_token), so a worker that dies leaves it due again once the lease
-- runs out, and no two workers ever hold it at the same moment.
CREATE TABLE callback_deliveries (
    event_id           uuid PRIMARY KEY REFERENCES outbox_events (id),
    merchant_id        uuid NOT NULL REFERENCES merchants (id),
    state              text NOT NULL,
    -- Every attempt made, and those made since the backoff schedule last started
    -- (a redelivery starts it again).
    attempt_count      integer NOT NULL DEFAULT 0,
    scheduled_attempts integer NOT NULL DEFAULT 0,
    next_attempt_at    timestamptz NOT NULL DEFAULT now(),
    lease_token        uuid,
    last_attempt_at    timestamptz,
    delivered_at       timestamptz,

    -- skipped: the merchant had no callback URL or did not subscribe to the type when the
    -- event happened (a redelivery can still send it).
    CONSTRAINT callback_deliveries_state_valid CHECK (state IN ('pending', 'delivered', 'failed', 'skipped'))
);

CREATE INDEX callback_deliveries_due_idx ON callback_deliveries (next_attempt_at) WHERE state = 'pending';

CREATE TABLE callback_attempts (
    id            bigserial PRIMARY KEY,
    event_id      uuid NOT NULL REFERENCES callback_deliveries (event_id),
    attempted_at  timestamptz NOT NULL,
    url           text NOT NULL,
    -- NULL when no answer came (refused connection, timeout, refused address).
    status_code   integer,
    latency_ms    integer NOT NULL,
    error         text,
    -- The first KiB of the answer.
    response_body text NOT NULL DEFAULT ''
);

CREATE INDEX callback_attempts_event_idx ON callback_attempts (event_id, id);

-- A merchant's events as its API lists them: the envelope with how its delivery stands.
CREATE VIEW merchant_events AS
SELECT e.id, e.seq, e.merchant_id, e.type AS event_type, e.created_at, e.data,
       d.state AS delivery_state, d.attempt_count,
       CASE WHEN d.state = 'pending' THEN d.next_attempt_at END AS next_attempt_at,
       d.last_attempt_at, d.delivered_at
FROM outbox_events e JOIN callback_deliveries d ON d.event_id = e.id;

-- Every merchant event gets its delivery in the transaction that records the event, whoever
-- records it: no committed payment without its callback, none for a rolled-back one.
CREATE FUNCTION callback_deliveries_for_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO callback_deliveries (event_id, merchant_id, state)
    SELECT NEW.id, m.id,
           CASE WHEN m.callback_url IS NOT NULL AND NEW.type = ANY (m.events) THEN 'pending' ELSE 'skipped' END
    FROM merchants m WHERE m.id = NEW.merchant_id;
    RETURN NULL;
END $$;

CREATE TRIGGER outbox_events_callback_delivery AFTER INSERT ON outbox_events
    FOR EACH ROW WHEN (NEW.merchant_id IS NOT NULL) EXECUTE FUNCTION callback_deliveries_for_event();

-- Wakes the delivery workers (LISTEN callback_due) when a delivery becomes due now: a new
-- event or a redelivery. Delivered at commit, so never for a rolled-back change; workers also
-- poll, in case a notification is lost.
CREATE FUNCTION callback_due_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('callback_due', '');
    RETURN NULL;
END $$;

CREATE TRIGGER callback_deliveries_due AFTER INSERT OR UPDATE ON callback_deliveries
    FOR EACH ROW WHEN (NEW.state = 'pending' AND NEW.next_attempt_at <= now())
    EXECUTE FUNCTION callback_due_notify();

-- Events recorded before deliveries existed are listed, not sent.
INSERT INTO callback_deliveries (event_id, merchant_id, state)
SELECT id, merchant_id, 'skipped' FROM outbox_events WHERE merchant_id IS NOT NULL;
