-- One-stop counters (DESIGN.md, "Counters"): an officer's shift with its float and its blind
-- count, the bills collected at it in cash or by QR, supervised voids, cash refunds paid out of
-- the drawer, and the unit's cash deposited at the State Treasury.
--
-- The ledger sees cash as money held outside civicpay, like a provider's clearing account: a
-- shift's drawer account goes negative by the cash it took in for billers (a collection posts
-- drawer -amount, biller +amount), a void or a refund brings it back, and closing the shift
-- moves what it holds to the unit's cash account, which a Treasury deposit brings back towards
-- zero (treasury clearing taking the other side). The float is the unit's change money, not
-- anyone's payment: it is recorded on the shift, not in the ledger.

ALTER TABLE ledger_accounts DROP CONSTRAINT ledger_accounts_kind_valid;
ALTER TABLE ledger_accounts ADD CONSTRAINT ledger_accounts_kind_valid CHECK (kind IN (
    'wallet', 'merchant', 'biller', 'counter_drawer', 'provider_clearing', 'system_fee',
    'suspense', 'treasury_clearing', 'unit_cash'));

ALTER TABLE journal_entries DROP CONSTRAINT journal_entries_kind_valid;
ALTER TABLE journal_entries ADD CONSTRAINT journal_entries_kind_valid CHECK (kind IN (
    'transfer', 'funding', 'topup', 'withdrawal', 'payment', 'refund', 'fee', 'adjustment',
    'bill_payment', 'void', 'cash_handover', 'remittance'));

CREATE TABLE counter_shifts (
    id                uuid PRIMARY KEY,
    unit_code         text NOT NULL REFERENCES units (code),
    officer_id        uuid NOT NULL REFERENCES accounts (id),
    opening_float     bigint NOT NULL,
    drawer_account_id uuid NOT NULL UNIQUE REFERENCES ledger_accounts (id),
    opened_at         timestamptz NOT NULL DEFAULT now(),
    status            text NOT NULL DEFAULT 'open',
    closed_at         timestamptz,
    -- The close's report, as answered then and forever after (a closed shift never changes).
    report            jsonb,

    CONSTRAINT counter_shifts_float_range CHECK (opening_float BETWEEN 0 AND 10000000000),
    CONSTRAINT counter_shifts_status_valid CHECK (status IN ('open', 'closed')),
    CONSTRAINT counter_shifts_closed_whole CHECK (
        (status = 'closed') = (closed_at IS NOT NULL) AND (closed_at IS NULL) = (report IS NULL))
);

CREATE UNIQUE INDEX counter_shifts_one_open ON counter_shifts (officer_id) WHERE status = 'open';
CREATE INDEX counter_shifts_unit_day_idx ON counter_shifts (unit_code, opened_at, id);

CREATE TABLE counter_collections (
    id           uuid PRIMARY KEY,
    shift_id     uuid NOT NULL REFERENCES counter_shifts (id),
    bill_id      uuid NOT NULL REFERENCES bills (id),
    method       text NOT NULL,
    amount       bigint NOT NULL,
    status       text NOT NULL,
    -- The cash's ledger entry (cash only; a QR collection's money comes from the payer's wallet).
    entry_id     uuid REFERENCES journal_entries (id),
    -- Set with the payment; a QR collection's is written by the paying transaction just before
    -- the receipt itself, so it is checked at commit.
    receipt_id   uuid REFERENCES receipts (id) DEFERRABLE INITIALLY DEFERRED,
    qr_payload   text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    completed_at timestamptz,
    voided_at    timestamptz,
    void_entry_id uuid REFERENCES journal_entries (id),

    CONSTRAINT counter_collections_method_valid CHECK (method IN ('cash', 'qr')),
    CONSTRAINT counter_collections_status_valid CHECK (status IN ('pending', 'completed', 'voided', 'cancelled')),
    CONSTRAINT counter_collections_amount_positive CHECK (amount > 0),
    CONSTRAINT counter_collections_cash_entry CHECK ((method = 'cash') = (entry_id IS NOT NULL)),
    CONSTRAINT counter_collections_qr_payload CHECK ((method = 'qr') = (qr_payload IS NOT NULL)),
    CONSTRAINT counter_collections_completed_whole CHECK (
        (status IN ('completed', 'voided')) = (completed_at IS NOT NULL AND receipt_id IS NOT NULL)),
    CONSTRAINT counter_collections_voided_whole CHECK (
        (status = 'voided') = (voided_at IS NOT NULL AND void_entry_id IS NOT NULL))
);

CREATE INDEX counter_collections_shift_idx ON counter_collections (shift_id);
-- A bill waits for one QR payment at a time; the paying transaction finds it by the bill.
CREATE UNIQUE INDEX counter_collections_one_pending ON counter_collections (bill_id) WHERE status = 'pending';

CREATE TABLE counter_void_requests (
    id            uuid PRIMARY KEY,
    collection_id uuid NOT NULL REFERENCES counter_collections (id),
    reason        text NOT NULL,
    requested_by  uuid NOT NULL REFERENCES accounts (id),
    requested_at  timestamptz NOT NULL DEFAULT now(),
    status        text NOT NULL DEFAULT 'pending',
    approved_by   uuid REFERENCES accounts (id),
    approved_at   timestamptz,

    CONSTRAINT counter_void_requests_status_valid CHECK (status IN ('pending', 'approved')),
    CONSTRAINT counter_void_requests_reason_length CHECK (char_length(reason) BETWEEN 1 AND 500),
    CONSTRAINT counter_void_requests_approved_whole CHECK (
        (status = 'approved') = (approved_by IS NOT NULL AND approved_at IS NOT NULL)),
    -- Four eyes: whoever asked never approves.
    CONSTRAINT counter_void_requests_four_eyes CHECK (approved_by <> requested_by)
);

CREATE UNIQUE INDEX counter_void_requests_one_per_collection ON counter_void_requests (collection_id);

-- Cash paid back at a counter for a bill cancelled with its dossier after it was paid in cash.
CREATE TABLE counter_refunds (
    id         uuid PRIMARY KEY,
    shift_id   uuid NOT NULL REFERENCES counter_shifts (id),
    bill_id    uuid NOT NULL REFERENCES bills (id),
    amount     bigint NOT NULL,
    entry_id   uuid NOT NULL REFERENCES journal_entries (id),
    created_at timestamptz NOT NULL DEFAULT now(),

    CONSTRAINT counter_refunds_amount_positive CHECK (amount > 0)
);

CREATE INDEX counter_refunds_shift_idx ON counter_refunds (shift_id);

-- A deposit of a unit's cash of a day at the State Treasury.
CREATE TABLE counter_remittances (
    id           uuid PRIMARY KEY,
    unit_code    text NOT NULL REFERENCES units (code),
    day          date NOT NULL,
    amount       bigint NOT NULL,
    slip_number  text NOT NULL,
    entry_id     uuid NOT NULL REFERENCES journal_entries (id),
    recorded_by  uuid NOT NULL REFERENCES accounts (id),
    created_at   timestamptz NOT NULL DEFAULT now(),

    CONSTRAINT counter_remittances_amount_positive CHECK (amount > 0 AND amount <= 10000000000000),
    CONSTRAINT counter_remittances_slip_length CHECK (char_length(slip_number) BETWEEN 1 AND 64)
);

CREATE INDEX counter_remittances_unit_day_idx ON counter_remittances (unit_code, day);
-- A Treasury slip is recorded once.
CREATE UNIQUE INDEX counter_remittances_slip_key ON counter_remittances (unit_code, slip_number);

-- Where a biller's bills (other than dossier fees, which their own unit collects) may be paid
-- in cash or by QR at a counter.
CREATE TABLE collection_points (
    biller_id  uuid NOT NULL REFERENCES billers (id),
    unit_code  text NOT NULL REFERENCES units (code),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (biller_id, unit_code)
);

-- A cash payment voided at the counter is sent back to the drawer; it is written with that entry.
ALTER TABLE bill_payments DROP CONSTRAINT bill_payments_refund_reason_valid;
ALTER TABLE bill_payments ADD CONSTRAINT bill_payments_refund_reason_valid
    CHECK (refund_reason IN ('double_payment', 'dossier_closed', 'voided'));

-- A voided bill is paid again later: it keeps its cancelled receipt and gets a new one.
ALTER TABLE receipts DROP CONSTRAINT receipts_bill_id_key;
CREATE UNIQUE INDEX receipts_one_live_per_bill ON receipts (bill_id) WHERE cancelled_at IS NULL;
CREATE INDEX receipts_bill_idx ON receipts (bill_id);

-- A bill's receipt is its latest one: the live one, or the last cancelled of a cancelled bill. An
-- unpaid bill (its cash payment voided) has none.
CREATE OR REPLACE VIEW bill_details AS
SELECT b.id, b.code, b.biller_id, m.code AS biller_code, m.name AS biller_name, bl.kind,
       b.reference, b.customer_code, b.payer_account_id, b.payer_name, b.items, b.amount, b.due_date,
       b.status, b.paid_at, b.paid_via, b.paid_by, b.cancelled_at, b.refunded_at, b.dossier_id,
       d.code AS dossier_code, b.request_hash, b.created_at,
       (SELECT r.id FROM receipts r WHERE r.bill_id = b.id AND b.status <> 'unpaid'
        ORDER BY r.seq DESC LIMIT 1) AS receipt_id
FROM bills b
JOIN billers bl ON bl.id = b.biller_id
JOIN merchants m ON m.id = b.biller_id
LEFT JOIN dossiers d ON d.id = b.dossier_id;
