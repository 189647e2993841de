-- A wallet's (or any immediate account's) movements as the citizen reads them: each posting with its entry, and the kind
-- the app shows (a transfer is `transfer_in` or `transfer_out` by its sign).
CREATE VIEW wallet_movements AS
SELECT p.id AS posting_id,
       p.account_id,
       e.id AS entry_id,
       CASE e.kind
           WHEN 'transfer' THEN CASE WHEN p.amount < 0 THEN 'transfer_out' ELSE 'transfer_in' END
           WHEN 'fee' THEN 'payment'
           ELSE e.kind
       END AS kind,
       p.amount,
       p.balance_after,
       p.counterparty,
       e.reference,
       e.note,
       p.created_at
FROM postings p
JOIN journal_entries e ON e.id = p.entry_id
-- Immediate accounts only (wallets, counter drawers): their postings carry the balance after.
WHERE p.balance_after IS NOT NULL;
