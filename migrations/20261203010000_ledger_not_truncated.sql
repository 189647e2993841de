-- Review of issue 16: row triggers do not fire on TRUNCATE, and since the ledger's internal
-- foreign keys went (20261202130000) nothing stopped `TRUNCATE postings` or
-- `TRUNCATE unfolded_postings`, which would leave balances without their postings or lose the
-- amounts queued for the hot accounts. The ledger's tables are never emptied.
CREATE TRIGGER journal_entries_not_truncated BEFORE TRUNCATE ON journal_entries
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER postings_not_truncated BEFORE TRUNCATE ON postings
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER unfolded_postings_not_truncated BEFORE TRUNCATE ON unfolded_postings
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER ledger_accounts_not_truncated BEFORE TRUNCATE ON ledger_accounts
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();
