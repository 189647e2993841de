-- Merchants (acceptance points) and their payment orders, paid from wallets by QR.

CREATE TABLE merchants (
    id                uuid PRIMARY KEY,
    -- Short, printable, carried by static QR codes.
    code              text NOT NULL,
    name              text NOT NULL,
    -- ISO 18245 merchant category code, 4 digits (EMVCo tag 52).
    category_code     text NOT NULL,
    limit_category    text NOT NULL REFERENCES limit_policies (category),
    callback_url      text,
    fee_rate          numeric(7, 6) NOT NULL,
    events            text[] NOT NULL DEFAULT '{}',
    city              text NOT NULL DEFAULT 'Hue',
    -- Standard Webhooks secret (whsec_…); kept to sign callbacks.
    webhook_secret    text NOT NULL,
    ledger_account_id uuid NOT NULL UNIQUE REFERENCES ledger_accounts (id),
    disabled_at       timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),

    CONSTRAINT merchants_code_key UNIQUE (code),
    CONSTRAINT merchants_code_format CHECK (code ~ '^[A-Z0-9]{3,20}$'),
    CONSTRAINT merchants_name_length CHECK (char_length(name) BETWEEN 1 AND 100),
    CONSTRAINT merchants_category_code_format CHECK (category_code ~ '^[0-9]{4}$'),
    CONSTRAINT merchants_fee_rate_range CHECK (fee_rate >= 0 AND fee_rate <= 0.1)
);

-- API keys (mk_…), stored as SHA-256. A rotated-out key works until expires_at.
CREATE TABLE merchant_api_keys (
    id          uuid PRIMARY KEY,
    merchant_id uuid NOT NULL REFERENCES merchants (id),
    key_hash    bytea NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz
);

CREATE TABLE orders (
    id              uuid PRIMARY KEY,
    merchant_id     uuid NOT NULL REFERENCES merchants (id),
    order_ref       text NOT NULL,
    code            text NOT NULL,
    amount          bigint NOT NULL CHECK (amount > 0),
    description     text NOT NULL DEFAULT '',
    status          text NOT NULL DEFAULT 'pending',
    -- SHA-256 of the creating request, to tell a repeat from a conflicting reuse of order_ref.
    request_hash    bytea NOT NULL,
    expires_at      timestamptz NOT NULL,
    paid_at         timestamptz,
    paid_by         uuid REFERENCES accounts (id),
    fee             bigint NOT NULL DEFAULT 0 CHECK (fee >= 0),
    amount_refunded bigint NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL DEFAULT now(),

    CONSTRAINT orders_status_valid CHECK (status IN ('pending', 'paid', 'expired', 'cancelled')),
    CONSTRAINT orders_order_ref_key UNIQUE (merchant_id, order_ref),
    CONSTRAINT orders_code_key UNIQUE (code),
    CONSTRAINT orders_refunds_within_amount CHECK (amount_refunded >= 0 AND amount_refunded <= amount)
);

CREATE INDEX orders_pending_expiry_idx ON orders (expires_at) WHERE status = 'pending';
CREATE INDEX orders_merchant_paid_idx ON orders (merchant_id, paid_at) WHERE paid_at IS NOT NULL;

CREATE TABLE refunds (
    id         uuid PRIMARY KEY,
    order_id   uuid NOT NULL REFERENCES orders (id),
    amount     bigint NOT NULL CHECK (amount > 0),
    reason     text NOT NULL DEFAULT '',
    entry_id   uuid NOT NULL REFERENCES journal_entries (id),
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX refunds_order_idx ON refunds (order_id, created_at);
