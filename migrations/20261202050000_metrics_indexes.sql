-- Issue 13, item 3: a /metrics scrape reads no table in full. Every queue gauge counts rows
-- through a partial index that holds only those rows; the others exist already
-- (callback_deliveries_due_idx, topups_pending_idx, topups_credited_after_expiry_idx,
-- withdrawals_due_idx). Given-up callbacks had none, so counting them read every delivery
-- ever made. Keyed by merchant, it also serves "this merchant's failed callbacks".
CREATE INDEX callback_deliveries_failed_idx ON callback_deliveries (merchant_id)
    WHERE state = 'failed';

-- Issue 13, item 5: the global hourly cap on one-time codes counts only codes actually texted.
-- A code asked for a phone that is never texted (a password reset of a phone without an
-- account) is still stored, so the per-phone and per-address limits answer it like any other,
-- but with sent = false it no longer uses up the cap honest users share.
ALTER TABLE otp_codes ADD COLUMN sent boolean NOT NULL DEFAULT true;
