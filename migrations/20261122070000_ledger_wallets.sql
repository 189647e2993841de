-- The money core: double-entry ledger, transactional outbox, idempotency keys, wallets.

-- An account of the ledger. `balance` holds every posting of an immediate account; a deferred
-- account's postings (a hot receiver: merchant, biller, system account) are queued in
-- `unfolded_postings`, and a folder adds them to `balance` shortly after. Its true balance is
-- `balance` plus its queued postings.
CREATE TABLE ledger_accounts (
    id             uuid PRIMARY KEY,
    kind           text NOT NULL,
    -- The citizen account of a wallet, the merchant of a merchant account, ...
    owner_id       uuid,
    -- System accounts are found by code: 'system_fee', 'suspense', 'provider_clearing:sandbox'.
    code           text,
    balance        bigint NOT NULL DEFAULT 0,
    allow_negative boolean NOT NULL,
    deferred       boolean NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),

    CONSTRAINT ledger_accounts_kind_valid CHECK (kind IN (
        'wallet', 'merchant', 'biller', 'counter_drawer', 'provider_clearing', 'system_fee',
        'suspense', 'treasury_clearing')),
    CONSTRAINT ledger_accounts_not_negative CHECK (allow_negative OR balance >= 0),
    CONSTRAINT ledger_accounts_owner_key UNIQUE (kind, owner_id),
    CONSTRAINT ledger_accounts_code_key UNIQUE (code)
);

-- An immutable journal entry; its postings sum to zero.
CREATE TABLE journal_entries (
    id         uuid PRIMARY KEY,
    kind       text NOT NULL,
    -- The business object the entry belongs to (a transfer id, an order id, ...).
    reference  text NOT NULL,
    note       text,
    created_by uuid REFERENCES accounts (id),
    created_at timestamptz NOT NULL DEFAULT now(),

    CONSTRAINT journal_entries_kind_valid CHECK (kind IN (
        'transfer', 'funding', 'topup', 'withdrawal', 'payment', 'refund', 'fee', 'adjustment'))
);

CREATE TABLE postings (
    id            bigserial PRIMARY KEY,
    entry_id      uuid NOT NULL REFERENCES journal_entries (id),
    account_id    uuid NOT NULL REFERENCES ledger_accounts (id),
    amount        bigint NOT NULL,
    -- The account's balance right after this posting; NULL for a deferred account's posting.
    balance_after bigint,
    counterparty  text,
    created_at    timestamptz NOT NULL DEFAULT now(),

    CONSTRAINT postings_amount_not_zero CHECK (amount <> 0)
);

-- A wallet's history, newest first. Only immediate accounts' postings (those with a balance
-- after) are indexed by account: a hot deferred account would otherwise funnel every payment
-- into one index leaf (measured: hot payments at 0.8x of spread ones with it, see the note of
-- the ledger issue). Deferred accounts are read through their business rows (orders, bills).
CREATE INDEX postings_account_idx ON postings (account_id, id) WHERE balance_after IS NOT NULL;
CREATE INDEX postings_entry_idx ON postings (entry_id);
-- Deferred postings not yet added to their account's balance: a small queue (about one
-- folding interval of payments) that the folder empties, so postings themselves never change.
CREATE TABLE unfolded_postings (
    posting_id bigint PRIMARY KEY REFERENCES postings (id),
    account_id uuid NOT NULL,
    amount     bigint NOT NULL,
    created_at timestamptz NOT NULL
);

-- Entries and postings are never changed or removed; corrections are new entries.
CREATE FUNCTION ledger_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger rows are immutable (% on %)', TG_OP, TG_TABLE_NAME;
END $$;

CREATE TRIGGER journal_entries_immutable BEFORE UPDATE OR DELETE ON journal_entries
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER postings_immutable BEFORE UPDATE OR DELETE ON postings
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();

INSERT INTO ledger_accounts (id, kind, code, allow_negative, deferred) VALUES
    (gen_random_uuid(), 'system_fee', 'system_fee', false, true),
    (gen_random_uuid(), 'suspense', 'suspense', true, true),
    (gen_random_uuid(), 'treasury_clearing', 'treasury_clearing', true, true);

-- Events announced by the change that wrote them, in the same transaction.
CREATE TABLE outbox_events (
    id          uuid PRIMARY KEY,
    seq         bigserial NOT NULL UNIQUE,
    type        text NOT NULL,
    data        jsonb NOT NULL,
    -- Whom the event is about: a citizen account (never sent to merchants), a merchant, ...
    account_id  uuid,
    merchant_id uuid,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX outbox_events_account_idx ON outbox_events (account_id, seq);

-- Idempotency keys, written in the transaction of the effect they guard.
CREATE TABLE idempotency_keys (
    caller_id     uuid NOT NULL,
    key           text NOT NULL,
    fingerprint   bytea NOT NULL,
    response_status integer,
    response_body bytea,
    response_content_type text,
    created_at    timestamptz NOT NULL DEFAULT now(),

    PRIMARY KEY (caller_id, key)
);

CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);

-- A citizen's wallet: verification, payment PIN, and its ledger account.
CREATE TABLE wallets (
    account_id        uuid PRIMARY KEY REFERENCES accounts (id),
    ledger_account_id uuid NOT NULL UNIQUE REFERENCES ledger_accounts (id),
    -- HMAC of the national ID under the pepper: unique, yet no ID numbers in the database.
    national_id_hash  bytea,
    national_id_last4 text,
    verified_at       timestamptz,
    pin_hash          bytea,
    pin_failures      integer NOT NULL DEFAULT 0,
    pin_locked_until  timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),

    CONSTRAINT wallets_national_id_key UNIQUE (national_id_hash)
);

-- Monthly limits by group of payment categories (Circular 40/2024/TT-NHNN as amended).
CREATE TABLE limit_policies (
    category      text PRIMARY KEY,
    limit_group   text NOT NULL,
    monthly_limit bigint NOT NULL CHECK (monthly_limit >= 0)
);

INSERT INTO limit_policies (category, limit_group, monthly_limit) VALUES
    ('general', 'general', 100000000),
    ('public_service', 'essential', 300000000),
    ('utility', 'essential', 300000000),
    ('education', 'essential', 300000000),
    ('health', 'essential', 300000000);

-- What a wallet has spent per limit group in a month (Vietnam time).
CREATE TABLE wallet_limit_usage (
    wallet_account_id uuid NOT NULL REFERENCES wallets (account_id),
    limit_group       text NOT NULL,
    month             date NOT NULL,
    used              bigint NOT NULL CHECK (used >= 0),
    PRIMARY KEY (wallet_account_id, limit_group, month)
);

CREATE TABLE transfers (
    id                uuid PRIMARY KEY,
    from_account_id   uuid NOT NULL REFERENCES accounts (id),
    to_account_id     uuid NOT NULL REFERENCES accounts (id),
    amount            bigint NOT NULL CHECK (amount > 0),
    note              text,
    entry_id          uuid NOT NULL REFERENCES journal_entries (id),
    created_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT transfers_not_to_self CHECK (from_account_id <> to_account_id)
);
