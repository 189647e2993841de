-- Ending every session of an account (password reset, admin reset, disabling) also ends its
-- access tokens: the access check refuses a token issued before this instant.
ALTER TABLE accounts ADD COLUMN sessions_valid_after timestamptz;
