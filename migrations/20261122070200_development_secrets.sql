-- Keys that development generates when none is configured, kept so that tokens, PINs and
-- national-ID hashes survive a restart. Production never reads this table: it refuses to start
-- without its secrets configured.
CREATE TABLE development_secrets (
    name       text PRIMARY KEY,
    value      text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
