-- Scorecards (DESIGN.md, "Scorecards"): every unit's figures are counted from the dossiers,
-- fee bills and ratings themselves; these indexes make each count one index range per unit and
-- period, and the targets an admin may change live in one row.

-- Received in a period, with what the online and digitized rates need.
CREATE INDEX dossiers_unit_received_idx ON dossiers (unit_code, received_at) INCLUDE (channel)
    WHERE received_at IS NOT NULL;
-- Finished in a period, with what the on-time rate needs.
CREATE INDEX dossiers_unit_finished_idx ON dossiers (unit_code, finished_at) INCLUDE (due_at)
    WHERE finished_at IS NOT NULL;
-- Unfinished and due: overdue now, and the overdue list (most late first).
CREATE INDEX dossiers_unit_unfinished_idx ON dossiers (unit_code, due_at, id)
    WHERE finished_at IS NULL AND due_at IS NOT NULL
      AND status NOT IN ('refused', 'withdrawn', 'returned');
-- Paid in a period, with what the cashless rates need.
CREATE INDEX bills_biller_paid_idx ON bills (biller_id, paid_at) INCLUDE (paid_via, amount)
    WHERE paid_at IS NOT NULL;
CREATE INDEX dossier_ratings_created_idx ON dossier_ratings (created_at);

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
