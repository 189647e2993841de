-- Review fixes (issue 12): the name the identity verifier confirmed, the reconciler's own
-- schedule per top-up, late successes accounted for, and a ledger lock that cannot deadlock
-- with the foreign key every posting takes.

-- Withdrawals are paid only to the person the verifier confirmed, whatever the account's
-- display name becomes later. Wallets verified before this column existed were checked against
-- the name the account then had; that is the best record of it there is.
ALTER TABLE wallets ADD COLUMN verified_name text;
UPDATE wallets w SET verified_name = a.full_name
FROM accounts a WHERE a.id = w.account_id AND w.verified_at IS NOT NULL;
ALTER TABLE wallets ADD CONSTRAINT wallets_verified_name_present
    CHECK ((verified_at IS NULL) = (verified_name IS NULL));

-- Each pending top-up is asked about on its own schedule, so rows whose provider keeps
-- erroring back off instead of filling every pass.
ALTER TABLE topups ADD COLUMN next_check_at timestamptz;
ALTER TABLE topups ADD COLUMN checks integer NOT NULL DEFAULT 0;
-- A success that arrived after the top-up had expired, credited all the same: counted in
-- /metrics so an operator can alert on it.
ALTER TABLE topups ADD COLUMN credited_after_expiry boolean NOT NULL DEFAULT false;
-- An empty or `0` transaction id (VNPay sends `0` for a cancelled payment) is no id at all, and
-- must not collide in the unique (provider, provider_txn_id) index.
UPDATE topups SET provider_txn_id = NULL WHERE provider_txn_id IN ('', '0');
ALTER TABLE topups ADD CONSTRAINT topups_provider_txn_id_real
    CHECK (provider_txn_id IS NULL OR provider_txn_id NOT IN ('', '0'));

-- As before, but a deferred account's debit locks its row FOR NO KEY UPDATE: that still queues
-- it behind the folder and behind other debits (so the available balance read next is exact),
-- and no longer conflicts with the FOR KEY SHARE every posting's foreign key takes, so refunds
-- and payments into one merchant cannot deadlock and a refund does not wait for every payment.
CREATE OR REPLACE FUNCTION ledger_post(
    p_entry_id uuid, p_kind text, p_reference text, p_note text, p_created_by uuid,
    p_accounts uuid[], p_amounts bigint[], p_counterparties text[]
) RETURNS TABLE (account_id uuid, balance_after bigint)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    n int := cardinality(p_accounts);
    i int;
    target record;
    new_balance bigint;
    available bigint;
    balances bigint[] := array_fill(NULL::bigint, ARRAY[cardinality(p_accounts)]);
BEGIN
    INSERT INTO journal_entries (id, kind, reference, note, created_by)
    VALUES (p_entry_id, p_kind, p_reference, p_note, p_created_by);

    FOR i IN SELECT u.ord FROM unnest(p_accounts) WITH ORDINALITY AS u(id, ord) ORDER BY u.id LOOP
        SELECT a.deferred, a.allow_negative INTO target FROM ledger_accounts a WHERE a.id = p_accounts[i];
        IF NOT FOUND THEN
            RAISE EXCEPTION 'no ledger account %', p_accounts[i];
        END IF;
        IF NOT target.deferred THEN
            UPDATE ledger_accounts a SET balance = a.balance + p_amounts[i]
            WHERE a.id = p_accounts[i] AND (a.allow_negative OR a.balance + p_amounts[i] >= 0)
            RETURNING a.balance INTO new_balance;
            IF NOT FOUND THEN
                RAISE EXCEPTION USING ERRCODE = 'CP001', MESSAGE = 'insufficient_funds', DETAIL = p_accounts[i]::text;
            END IF;
            balances[i] := new_balance;
        ELSIF p_amounts[i] < 0 AND NOT target.allow_negative THEN
            -- Lock first; the next statement's fresh snapshot then sees any folder that held
            -- the row as committed, so no posting is counted twice.
            PERFORM 1 FROM ledger_accounts a WHERE a.id = p_accounts[i] FOR NO KEY UPDATE;
            SELECT a.balance + COALESCE((SELECT sum(u.amount) FROM unfolded_postings u
                                         WHERE u.account_id = a.id), 0)
            INTO available FROM ledger_accounts a WHERE a.id = p_accounts[i];
            IF available + p_amounts[i] < 0 THEN
                RAISE EXCEPTION USING ERRCODE = 'CP001', MESSAGE = 'insufficient_funds', DETAIL = p_accounts[i]::text;
            END IF;
        END IF;
    END LOOP;

    -- Deferred accounts' postings (no balance after) also join the folder's queue.
    WITH inserted AS (
        INSERT INTO postings (entry_id, account_id, amount, balance_after, counterparty)
        SELECT p_entry_id, u.a, u.m, u.b, u.c
        FROM unnest(p_accounts, p_amounts, balances, p_counterparties) AS u(a, m, b, c)
        RETURNING id, account_id, amount, balance_after, created_at
    )
    INSERT INTO unfolded_postings (posting_id, account_id, amount, created_at)
    SELECT id, account_id, amount, created_at FROM inserted WHERE balance_after IS NULL;

    RETURN QUERY SELECT u.a, u.b FROM unnest(p_accounts, balances) AS u(a, b) WHERE u.b IS NOT NULL;
END $$;

CREATE INDEX topups_credited_after_expiry_idx ON topups (id) WHERE credited_after_expiry;
