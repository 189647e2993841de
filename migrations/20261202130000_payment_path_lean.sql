-- Issue 16: less work per payment in the database.
--
-- 1. The ledger's internal foreign keys go. Each checked every posting (three per payment) and
--    queued posting against its parent with a query that also takes FOR KEY SHARE on the
--    parent row: every payment locked the fee account's row, and a busy merchant's, so
--    concurrent payments kept creating multixacts on the same rows. What the keys guaranteed
--    still holds, by other means: postings and their queue rows are written only by
--    `ledger_post`, which inserts the entry and checks every account in the same call; entries
--    and postings can be neither updated nor deleted (their immutability triggers), and from
--    now on neither can an account be deleted or renumbered (below); `ledger verify` checks
--    that every posting has its entry and its account.
ALTER TABLE postings DROP CONSTRAINT postings_entry_id_fkey;
ALTER TABLE postings DROP CONSTRAINT postings_account_id_fkey;
ALTER TABLE unfolded_postings DROP CONSTRAINT unfolded_postings_posting_id_fkey;

CREATE FUNCTION ledger_accounts_kept() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger accounts are never deleted or renumbered';
END $$;

CREATE TRIGGER ledger_accounts_kept BEFORE DELETE OR UPDATE OF id ON ledger_accounts
    FOR EACH ROW EXECUTE FUNCTION ledger_accounts_kept();

-- 2. Merchant events (most events) have no citizen: the citizen index need not hold them.
DROP INDEX outbox_events_account_idx;
CREATE INDEX outbox_events_account_idx ON outbox_events (account_id, seq) WHERE account_id IS NOT NULL;
