-- Scorecards (DESIGN.md, "Scorecards"): every unit's figures come from its dossiers, fee bills
-- and ratings, summed per day as they change; the targets an admin may change live in one row.

-- Overdue now is counted live (it is about now, not a period): unfinished and due, one index
-- range per unit, answered from the index alone.
CREATE INDEX dossiers_unit_unfinished_idx ON dossiers (unit_code, due_at, id)
    INCLUDE (paused_at, rescheduled_at)
    WHERE finished_at IS NULL AND due_at IS NOT NULL
      AND status NOT IN ('refused', 'withdrawn', 'returned');

-- The period figures, per unit and Vietnam-time day, kept up to date by triggers in the very
-- transactions that change dossiers, their documents, fee bills and ratings: a year of a
-- province is 150 units x 365 days of rows, whatever the number of dossiers (measured with 1
-- million dossiers: counting them live took 2.7 s for a year; see the scorecards issue's note).
-- Each trigger takes away what the old row counted and adds what the new row counts, so any
-- change (a payment voided, a bill paid by another channel, a dossier finished) keeps the sums
-- right. `tests/it/scorecards.rs` proves they equal a full recount after a mixed workload.
CREATE TABLE scorecard_days (
    unit_code            text NOT NULL REFERENCES units (code),
    day                  date NOT NULL,
    received             bigint NOT NULL DEFAULT 0,
    received_online      bigint NOT NULL DEFAULT 0,
    received_digitized   bigint NOT NULL DEFAULT 0,
    finished             bigint NOT NULL DEFAULT 0,
    finished_on_time     bigint NOT NULL DEFAULT 0,
    fees_paid            bigint NOT NULL DEFAULT 0,
    fees_paid_cashless   bigint NOT NULL DEFAULT 0,
    fees_amount          bigint NOT NULL DEFAULT 0,
    fees_amount_cashless bigint NOT NULL DEFAULT 0,
    ratings              bigint NOT NULL DEFAULT 0,
    ratings_good         bigint NOT NULL DEFAULT 0,
    rating_points        bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (unit_code, day)
);

CREATE FUNCTION vietnam_day(at timestamptz) RETURNS date LANGUAGE sql IMMUTABLE AS $$
    SELECT (at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date
$$;

-- Adds `sign` times one dossier's, bill's or rating's counts to its unit's day.
CREATE FUNCTION scorecard_add(unit text, at timestamptz, sign integer, counts bigint[]) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO scorecard_days AS s (unit_code, day, received, received_online, received_digitized,
                                     finished, finished_on_time, fees_paid, fees_paid_cashless,
                                     fees_amount, fees_amount_cashless, ratings, ratings_good, rating_points)
    VALUES (unit, vietnam_day(at), sign * counts[1], sign * counts[2], sign * counts[3], sign * counts[4],
            sign * counts[5], sign * counts[6], sign * counts[7], sign * counts[8], sign * counts[9],
            sign * counts[10], sign * counts[11], sign * counts[12])
    ON CONFLICT (unit_code, day) DO UPDATE SET
        received = s.received + EXCLUDED.received,
        received_online = s.received_online + EXCLUDED.received_online,
        received_digitized = s.received_digitized + EXCLUDED.received_digitized,
        finished = s.finished + EXCLUDED.finished,
        finished_on_time = s.finished_on_time + EXCLUDED.finished_on_time,
        fees_paid = s.fees_paid + EXCLUDED.fees_paid,
        fees_paid_cashless = s.fees_paid_cashless + EXCLUDED.fees_paid_cashless,
        fees_amount = s.fees_amount + EXCLUDED.fees_amount,
        fees_amount_cashless = s.fees_amount_cashless + EXCLUDED.fees_amount_cashless,
        ratings = s.ratings + EXCLUDED.ratings,
        ratings_good = s.ratings_good + EXCLUDED.ratings_good,
        rating_points = s.rating_points + EXCLUDED.rating_points
$$;

-- A dossier counts on the day it was received (received, online, digitized: the `received`
-- part) and on the day it finished (finished, on time: the `finished` part).
CREATE FUNCTION scorecard_dossier_counts(d dossiers, sign integer, received boolean, finished boolean)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF received AND d.received_at IS NOT NULL THEN
        PERFORM scorecard_add(d.unit_code, d.received_at, sign, ARRAY[
            1, (d.channel = 'online')::int,
            EXISTS (SELECT 1 FROM dossier_documents dd WHERE dd.dossier_id = d.id)::int,
            0, 0, 0, 0, 0, 0, 0, 0, 0]::bigint[]);
    END IF;
    IF finished AND d.finished_at IS NOT NULL THEN
        PERFORM scorecard_add(d.unit_code, d.finished_at, sign, ARRAY[
            0, 0, 0, 1, COALESCE(d.finished_at <= d.due_at, false)::int, 0, 0, 0, 0, 0, 0, 0]::bigint[]);
    END IF;
END $$;

-- Only the part a change touches is moved, so an ordinary move (a status, a paused clock's due
-- time) writes no summary row, and one that does writes one: two transactions never wait for
-- each other's summary rows in opposite orders.
CREATE FUNCTION scorecard_dossier_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    received boolean;
    finished boolean;
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM scorecard_dossier_counts(NEW, 1, true, true);
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM scorecard_dossier_counts(OLD, -1, true, true);
    ELSE
        received := NEW.received_at IS DISTINCT FROM OLD.received_at
            OR NEW.channel IS DISTINCT FROM OLD.channel OR NEW.unit_code IS DISTINCT FROM OLD.unit_code;
        finished := NEW.finished_at IS DISTINCT FROM OLD.finished_at OR NEW.unit_code IS DISTINCT FROM OLD.unit_code
            OR (NEW.finished_at IS NOT NULL AND NEW.due_at IS DISTINCT FROM OLD.due_at);
        IF received OR finished THEN
            PERFORM scorecard_dossier_counts(OLD, -1, received, finished);
            PERFORM scorecard_dossier_counts(NEW, 1, received, finished);
        END IF;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER dossiers_scorecard AFTER INSERT OR UPDATE OR DELETE ON dossiers
    FOR EACH ROW EXECUTE FUNCTION scorecard_dossier_changed();

-- A received dossier's first document makes it digitized.
CREATE FUNCTION scorecard_document_added() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    d dossiers;
BEGIN
    SELECT * INTO d FROM dossiers WHERE id = NEW.dossier_id;
    IF d.received_at IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM dossier_documents dd WHERE dd.dossier_id = NEW.dossier_id AND dd.id <> NEW.id) THEN
        PERFORM scorecard_add(d.unit_code, d.received_at, 1,
            ARRAY[0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]::bigint[]);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER dossier_documents_scorecard AFTER INSERT ON dossier_documents
    FOR EACH ROW EXECUTE FUNCTION scorecard_document_added();

-- A fee bill counts on the day it was paid, by whether it was paid in cash.
CREATE FUNCTION scorecard_bill_counts(b bills, sign integer) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    unit text;
BEGIN
    IF b.paid_at IS NULL THEN
        RETURN;
    END IF;
    SELECT unit_code INTO unit FROM billers WHERE id = b.biller_id;
    IF unit IS NOT NULL THEN
        PERFORM scorecard_add(unit, b.paid_at, sign, ARRAY[
            0, 0, 0, 0, 0, 1, (b.paid_via <> 'cash')::int, b.amount,
            CASE WHEN b.paid_via <> 'cash' THEN b.amount ELSE 0 END, 0, 0, 0]::bigint[]);
    END IF;
END $$;

CREATE FUNCTION scorecard_bill_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.paid_at IS NOT DISTINCT FROM OLD.paid_at
       AND NEW.paid_via IS NOT DISTINCT FROM OLD.paid_via AND NEW.amount = OLD.amount THEN
        RETURN NULL;
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM scorecard_bill_counts(OLD, -1);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        PERFORM scorecard_bill_counts(NEW, 1);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER bills_scorecard AFTER INSERT OR UPDATE OR DELETE ON bills
    FOR EACH ROW EXECUTE FUNCTION scorecard_bill_changed();

-- A rating counts on the day it was given, for the dossier's unit.
CREATE FUNCTION scorecard_rating_added() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM scorecard_add(d.unit_code, NEW.created_at, 1,
        ARRAY[0, 0, 0, 0, 0, 0, 0, 0, 0, 1, (NEW.score >= 4)::int, NEW.score]::bigint[])
    FROM dossiers d WHERE d.id = NEW.dossier_id;
    RETURN NULL;
END $$;

CREATE TRIGGER dossier_ratings_scorecard AFTER INSERT ON dossier_ratings
    FOR EACH ROW EXECUTE FUNCTION scorecard_rating_added();

-- What existed before the triggers, counted once.
SELECT scorecard_dossier_counts(d, 1, true, true) FROM dossiers d;
SELECT scorecard_bill_counts(b, 1) FROM bills b;
SELECT scorecard_add(d.unit_code, r.created_at, 1,
    ARRAY[0, 0, 0, 0, 0, 0, 0, 0, 0, 1, (r.score >= 4)::int, r.score]::bigint[])
FROM dossier_ratings r JOIN dossiers d ON d.id = r.dossier_id;

-- The targets (fractions) and band widths (fraction points), one row. DESIGN.md's defaults.
CREATE TABLE scorecard_targets (
    id                   boolean PRIMARY KEY DEFAULT true CHECK (id),
    on_time              numeric(5, 4) NOT NULL DEFAULT 0.96,
    online_above_commune numeric(5, 4) NOT NULL DEFAULT 0.30,
    online_commune       numeric(5, 4) NOT NULL DEFAULT 0.20,
    cashless             numeric(5, 4) NOT NULL DEFAULT 0.05,
    digitized            numeric(5, 4) NOT NULL DEFAULT 0.15,
    satisfaction         numeric(5, 4) NOT NULL DEFAULT 0.93,
    yellow_width         numeric(5, 4) NOT NULL DEFAULT 0.05,
    orange_width         numeric(5, 4) NOT NULL DEFAULT 0.15,
    updated_at           timestamptz NOT NULL DEFAULT now(),

    CONSTRAINT scorecard_targets_fractions CHECK (
        on_time BETWEEN 0 AND 1 AND online_above_commune BETWEEN 0 AND 1
        AND online_commune BETWEEN 0 AND 1 AND cashless BETWEEN 0 AND 1
        AND digitized BETWEEN 0 AND 1 AND satisfaction BETWEEN 0 AND 1),
    CONSTRAINT scorecard_targets_widths CHECK (yellow_width BETWEEN 0 AND 1 AND orange_width BETWEEN yellow_width AND 1)
);

INSERT INTO scorecard_targets DEFAULT VALUES;
