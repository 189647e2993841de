-- Issue 15: `ledger_post` itself refuses an entry whose postings do not sum to zero (or that
-- has fewer than two postings, a zero or missing amount, or arrays of different lengths).
-- Otherwise the function is exactly the one of 20261202010000_review_money_fixes.sql.

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
    -- The Rust side checks this too; the database is the last word on money, so an entry
    -- that would create or destroy money is refused here whoever calls (SQLSTATE CP002: an
    -- internal error, never a client's).
    IF NOT COALESCE(
        n >= 2 AND cardinality(p_amounts) = n AND cardinality(p_counterparties) = n
        AND (SELECT sum(m) FROM unnest(p_amounts) AS m) = 0
        AND NOT EXISTS (SELECT 1 FROM unnest(p_amounts) AS m WHERE m IS NULL OR m = 0),
        false) THEN
        RAISE EXCEPTION USING ERRCODE = 'CP002', MESSAGE = 'unbalanced_entry',
            DETAIL = format('entry %s: amounts %s', p_entry_id, p_amounts);
    END IF;

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
