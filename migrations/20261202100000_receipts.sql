-- Receipts (DESIGN.md, "Receipts"): one per paid bill, created unnumbered in the paying
-- transaction and numbered right after commit by one sequencer per series, so numbering never
-- serializes payments and a rolled-back payment never takes a number.

-- A biller's receipt series: a form number and a series symbol (Decree 123/2020), one per
-- channel it chooses (`method` NULL: every channel without a series of its own).
CREATE TABLE receipt_series (
    id        uuid PRIMARY KEY,
    biller_id uuid NOT NULL REFERENCES billers (id),
    method    text,
    form      text NOT NULL,
    series    text NOT NULL,

    CONSTRAINT receipt_series_method_valid CHECK (method IN ('wallet', 'provider', 'cash', 'counter_qr')),
    CONSTRAINT receipt_series_symbol_key UNIQUE (biller_id, series)
);

CREATE UNIQUE INDEX receipt_series_channel_key ON receipt_series (biller_id, COALESCE(method, ''));

-- The last number given in a series and (Vietnam-time) year; only the sequencer writes it.
CREATE TABLE receipt_numbers (
    series_id   uuid NOT NULL REFERENCES receipt_series (id),
    year        integer NOT NULL,
    last_number bigint NOT NULL,
    PRIMARY KEY (series_id, year)
);

CREATE TABLE receipts (
    id          uuid PRIMARY KEY,
    -- The order receipts were written in: the sequencer takes a series' committed receipts in
    -- this order, so numbers follow commit order (a receipt committed late numbers after).
    seq         bigserial NOT NULL UNIQUE,
    bill_id     uuid NOT NULL UNIQUE REFERENCES bills (id),
    series_id   uuid NOT NULL REFERENCES receipt_series (id),
    method      text NOT NULL,
    paid_at     timestamptz NOT NULL,
    -- The year its number belongs to: the Vietnam-time year it was paid in.
    year        integer NOT NULL,
    -- Set together by the sequencer.
    number      bigint,
    issued_at   timestamptz,
    -- The receipt as signed: its RFC 8785 canonical JSON (without the signature), the
    -- signature and the key that made it.
    canonical   text,
    signature   text,
    key_id      text,
    cancelled_at timestamptz,

    CONSTRAINT receipts_method_valid CHECK (method IN ('wallet', 'provider', 'cash', 'counter_qr')),
    CONSTRAINT receipts_numbered_whole CHECK (
        (number IS NULL) = (issued_at IS NULL) AND (number IS NULL) = (canonical IS NULL)
        AND (number IS NULL) = (signature IS NULL) AND (number IS NULL) = (key_id IS NULL)),
    CONSTRAINT receipts_number_positive CHECK (number > 0)
);

-- Gapless means unique too: a number is given once per series and year.
CREATE UNIQUE INDEX receipts_number_key ON receipts (series_id, year, number) WHERE number IS NOT NULL;
-- What the sequencer looks for: small, as receipts are numbered within a second.
CREATE INDEX receipts_unnumbered_idx ON receipts (series_id, seq) WHERE number IS NULL;

CREATE OR REPLACE VIEW bill_details AS
SELECT b.id, b.code, b.biller_id, m.code AS biller_code, m.name AS biller_name, bl.kind,
       b.reference, b.customer_code, b.payer_account_id, b.payer_name, b.items, b.amount, b.due_date,
       b.status, b.paid_at, b.paid_via, b.paid_by, b.cancelled_at, b.refunded_at, b.dossier_id,
       d.code AS dossier_code, b.request_hash, b.created_at, r.id AS receipt_id
FROM bills b
JOIN billers bl ON bl.id = b.biller_id
JOIN merchants m ON m.id = b.biller_id
LEFT JOIN dossiers d ON d.id = b.dossier_id
LEFT JOIN receipts r ON r.bill_id = b.id;
