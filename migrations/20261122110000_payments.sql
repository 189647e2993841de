-- Money in and out through payment providers: top-ups, withdrawals, the raw notifications,
-- and the sandbox bank's own books.

-- One clearing account per provider: the money on its way between the provider and wallets.
INSERT INTO ledger_accounts (id, kind, code, allow_negative, deferred) VALUES
    (gen_random_uuid(), 'provider_clearing', 'provider_clearing:sandbox', true, true),
    (gen_random_uuid(), 'provider_clearing', 'provider_clearing:vnpay', true, true);

CREATE TABLE topups (
    id              uuid PRIMARY KEY,
    account_id      uuid NOT NULL REFERENCES accounts (id),
    provider        text NOT NULL,
    amount          bigint NOT NULL CHECK (amount > 0),
    -- Our reference at the provider (vnp_TxnRef): unique, so unique per day too.
    reference       text NOT NULL UNIQUE,
    status          text NOT NULL DEFAULT 'pending',
    payment_url     text NOT NULL,
    -- The provider's own transaction id, once it told us.
    provider_txn_id text,
    entry_id        uuid REFERENCES journal_entries (id),
    created_at      timestamptz NOT NULL DEFAULT now(),
    settled_at      timestamptz,

    CONSTRAINT topups_status_valid CHECK (status IN ('pending', 'succeeded', 'failed', 'expired')),
    CONSTRAINT topups_provider_txn_key UNIQUE (provider, provider_txn_id)
);

CREATE INDEX topups_pending_idx ON topups (created_at) WHERE status = 'pending';
CREATE INDEX topups_account_idx ON topups (account_id, created_at);

-- Every notification as it came, verified or not, and what it was answered.
CREATE TABLE provider_notifications (
    id          bigserial PRIMARY KEY,
    provider    text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    raw         text NOT NULL,
    reference   text,
    outcome     text NOT NULL
);

CREATE TABLE withdrawals (
    id              uuid PRIMARY KEY,
    account_id      uuid NOT NULL REFERENCES accounts (id),
    provider        text NOT NULL,
    amount          bigint NOT NULL CHECK (amount > 0),
    bank_code       text NOT NULL,
    account_number  text NOT NULL,
    account_holder  text NOT NULL,
    status          text NOT NULL DEFAULT 'pending',
    entry_id        uuid NOT NULL REFERENCES journal_entries (id),
    refund_entry_id uuid REFERENCES journal_entries (id),
    failure_reason  text,
    provider_ref    text,
    -- The payout worker's queue, as for callbacks: claimed by moving this to the lease's end.
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    lease_token     uuid,
    attempts        integer NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL DEFAULT now(),
    settled_at      timestamptz,

    CONSTRAINT withdrawals_status_valid CHECK (status IN ('pending', 'succeeded', 'failed'))
);

CREATE INDEX withdrawals_due_idx ON withdrawals (next_attempt_at) WHERE status = 'pending';

-- The sandbox bank (development only): what its customers decided, and what it paid out,
-- once per withdrawal id whatever the retries.
CREATE TABLE sandbox_bank_payments (
    reference      text PRIMARY KEY,
    transaction_id text NOT NULL,
    approved       boolean NOT NULL,
    amount         bigint NOT NULL,
    decided_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE sandbox_bank_payouts (
    withdrawal_id  uuid PRIMARY KEY,
    account_number text NOT NULL,
    amount         bigint NOT NULL,
    paid           boolean NOT NULL,
    requests       integer NOT NULL DEFAULT 1,
    at             timestamptz NOT NULL DEFAULT now()
);
