-- One journal entry written in one round trip. The rules are those of the ledger module's
-- documentation (src/ledger/mod.rs): rows locked in account-id order; an immediate account's
-- balance updated in the statement that checks it; a deferred account's posting queued in
-- unfolded_postings, after a locked check of its true balance when it is a debit that may not
-- go negative. A refused debit raises SQLSTATE CP001 with the account id as its detail.
CREATE FUNCTION ledger_post(
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
            PERFORM 1 FROM ledger_accounts a WHERE a.id = p_accounts[i] FOR UPDATE;
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
