-- Bills (DESIGN.md, "Bills"): billers, their bills, the citizens' billing accounts, and every
-- payment a bill received.

-- A biller is a merchant row of role 'biller': it shares the merchants' API keys (bk_ rather
-- than mk_), rotation, webhook secret, callback deliveries, attempt log and redelivery, and
-- its money is a deferred ledger account of kind 'biller'. Merchant routes refuse biller keys
-- and biller routes merchant keys; billers are never paid by QR.
ALTER TABLE merchants
    ADD COLUMN role text NOT NULL DEFAULT 'merchant',
    ADD CONSTRAINT merchants_role_valid CHECK (role IN ('merchant', 'biller'));

CREATE TABLE billers (
    id        uuid PRIMARY KEY REFERENCES merchants (id),
    kind      text NOT NULL,
    -- The unit whose dossier fees it collects: every unit that handles dossiers is one.
    unit_code text UNIQUE REFERENCES units (code),
    tax_code  text,

    CONSTRAINT billers_kind_valid CHECK (kind IN ('dossier_fee', 'electricity', 'water', 'sanitation', 'tuition', 'other')),
    CONSTRAINT billers_unit_for_dossier_fees CHECK ((kind = 'dossier_fee') = (unit_code IS NOT NULL))
);

-- The total of a bill's items: its amount must equal it (CHECK below).
CREATE FUNCTION bill_items_total(items jsonb) RETURNS numeric LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT COALESCE(sum((item ->> 'amount')::numeric), 0) FROM jsonb_array_elements(items) AS item
$$;

CREATE TABLE bills (
    id                uuid PRIMARY KEY,
    -- Short and printable, what a QR code or a bank transfer carries (no 0/O, 1/I/L).
    code              text NOT NULL,
    biller_id         uuid NOT NULL REFERENCES billers (id),
    -- The biller's own id for it, unique per biller.
    reference         text NOT NULL,
    customer_code     text,
    -- The citizen it is addressed to, when known (a dossier's applicant); others see it through
    -- their billing accounts, or look it up by its code.
    payer_account_id  uuid REFERENCES accounts (id),
    payer_name        text NOT NULL,
    -- [{name, amount}]
    items             jsonb NOT NULL,
    amount            bigint NOT NULL,
    due_date          date,
    status            text NOT NULL DEFAULT 'unpaid',
    paid_at           timestamptz,
    paid_via          text,
    -- Who paid it (a relative may pay): a refund goes back to them.
    paid_by           uuid REFERENCES accounts (id),
    cancelled_at      timestamptz,
    -- A paid bill cancelled with its dossier had its money sent back.
    refunded_at       timestamptz,
    dossier_id        uuid UNIQUE REFERENCES dossiers (id),
    -- SHA-256 of the creating request as the biller sent it: the same body again is the same
    -- bill, another body under the reference is a conflict.
    request_hash      bytea,
    created_at        timestamptz NOT NULL DEFAULT now(),

    CONSTRAINT bills_code_key UNIQUE (code),
    CONSTRAINT bills_reference_key UNIQUE (biller_id, reference),
    CONSTRAINT bills_status_valid CHECK (status IN ('unpaid', 'paid', 'cancelled')),
    CONSTRAINT bills_paid_via_valid CHECK (paid_via IN ('wallet', 'provider', 'cash', 'counter_qr')),
    CONSTRAINT bills_amount_positive CHECK (amount > 0 AND amount <= 10000000000),
    CONSTRAINT bills_amount_is_items_total CHECK (amount = bill_items_total(items)),
    CONSTRAINT bills_items_shape CHECK (jsonb_typeof(items) = 'array' AND jsonb_array_length(items) BETWEEN 1 AND 50),
    CONSTRAINT bills_paid_consistent CHECK ((status = 'unpaid') = (paid_at IS NULL AND cancelled_at IS NULL)
                                           AND (paid_at IS NULL) = (paid_via IS NULL)),
    CONSTRAINT bills_reference_length CHECK (char_length(reference) BETWEEN 1 AND 64),
    CONSTRAINT bills_customer_code_length CHECK (char_length(customer_code) BETWEEN 1 AND 64),
    CONSTRAINT bills_payer_name_length CHECK (char_length(payer_name) BETWEEN 1 AND 200)
);

CREATE INDEX bills_customer_idx ON bills (biller_id, customer_code, status);
CREATE INDEX bills_payer_idx ON bills (payer_account_id, status) WHERE payer_account_id IS NOT NULL;
CREATE INDEX bills_biller_list_idx ON bills (biller_id, created_at, id);

-- Every payment a bill received, the first and any later double payment (refunded at once).
CREATE TABLE bill_payments (
    id               uuid PRIMARY KEY,
    bill_id          uuid NOT NULL REFERENCES bills (id),
    via              text NOT NULL,
    amount           bigint NOT NULL,
    payer_account_id uuid REFERENCES accounts (id),
    entry_id         uuid NOT NULL REFERENCES journal_entries (id),
    -- Set for a payment that arrived after the bill was paid, or whose bill was later cancelled:
    -- the entry that sent the money back, and why.
    refund_entry_id  uuid REFERENCES journal_entries (id),
    refund_reason    text,
    created_at       timestamptz NOT NULL DEFAULT now(),

    CONSTRAINT bill_payments_via_valid CHECK (via IN ('wallet', 'provider', 'cash', 'counter_qr')),
    CONSTRAINT bill_payments_refund_reason CHECK ((refund_entry_id IS NULL) = (refund_reason IS NULL)),
    CONSTRAINT bill_payments_refund_reason_valid CHECK (refund_reason IN ('double_payment', 'dossier_closed'))
);

CREATE INDEX bill_payments_bill_idx ON bill_payments (bill_id);
-- A bill keeps at most one payment: any other was refunded (and is written with its refund).
CREATE UNIQUE INDEX bill_payments_one_kept ON bill_payments (bill_id) WHERE refund_entry_id IS NULL;

-- A citizen's link to a biller's customer code: their bills show in the citizen's one list.
CREATE TABLE billing_accounts (
    id            uuid PRIMARY KEY,
    account_id    uuid NOT NULL REFERENCES accounts (id),
    biller_id     uuid NOT NULL REFERENCES billers (id),
    customer_code text NOT NULL,
    label         text,
    created_at    timestamptz NOT NULL DEFAULT now(),

    CONSTRAINT billing_accounts_link_key UNIQUE (account_id, biller_id, customer_code),
    CONSTRAINT billing_accounts_customer_code_length CHECK (char_length(customer_code) BETWEEN 1 AND 64),
    CONSTRAINT billing_accounts_label_length CHECK (char_length(label) BETWEEN 1 AND 100)
);

-- A top-up may pay a bill: the provider's money goes on to the biller in the transaction that
-- takes the notification.
ALTER TABLE topups ADD COLUMN bill_id uuid REFERENCES bills (id);

ALTER TABLE journal_entries DROP CONSTRAINT journal_entries_kind_valid;
ALTER TABLE journal_entries ADD CONSTRAINT journal_entries_kind_valid CHECK (kind IN (
    'transfer', 'funding', 'topup', 'withdrawal', 'payment', 'refund', 'fee', 'adjustment', 'bill_payment'));

-- Wrong bill codes looked up, counted per citizen (a guessing loop is refused), in the table
-- that counts the other failures.
ALTER TABLE login_failures DROP CONSTRAINT login_failures_kind_valid;
ALTER TABLE login_failures ADD CONSTRAINT login_failures_kind_valid CHECK (kind IN ('login', 'tracking', 'bill_lookup'));

-- A bill with what every answer about it shows: its biller's code, name and kind, its dossier's code.
CREATE VIEW bill_details AS
SELECT b.id, b.code, b.biller_id, m.code AS biller_code, m.name AS biller_name, bl.kind,
       b.reference, b.customer_code, b.payer_account_id, b.payer_name, b.items, b.amount, b.due_date,
       b.status, b.paid_at, b.paid_via, b.paid_by, b.cancelled_at, b.refunded_at, b.dossier_id,
       d.code AS dossier_code, b.request_hash, b.created_at
FROM bills b
JOIN billers bl ON bl.id = b.biller_id
JOIN merchants m ON m.id = b.biller_id
LEFT JOIN dossiers d ON d.id = b.dossier_id;
