-- Public tracking cannot be enumerated (issue 13): dossier codes are sequential per unit and
-- day, so `GET /v1/public/dossiers/{code}` also needs the dossier's tracking key, 6 random
-- characters printed on the reception slip and shown to the owner and staff.

-- A tracking key: 6 characters of an alphabet without look-alikes (no 0/O, no 1/I/L), drawn
-- from the strong random bytes of gen_random_uuid() (pg_strong_random; core PostgreSQL, no
-- extension), two bytes per character so the modulo's bias is negligible (65,536 = 2,114 × 31
-- + 2). The offsets skip the version and variant bits of the UUID (bytes 6 and 8). Filing
-- draws keys in Rust (`dossiers::submission`); this gives existing rows theirs, and serves bulk
-- loads (the benchmark's).
CREATE FUNCTION dossier_tracking_key() RETURNS text
LANGUAGE sql VOLATILE PARALLEL SAFE AS $$
    SELECT string_agg(
               substr('ABCDEFGHJKMNPQRSTUVWXYZ23456789',
                      1 + (get_byte(r.b, o) * 256 + get_byte(r.b, o + 1)) % 31, 1),
               '' ORDER BY o)
    FROM (SELECT uuid_send(gen_random_uuid()) AS b) r, unnest(ARRAY[0, 2, 4, 9, 11, 13]) AS o
$$;

-- A volatile default is computed row by row in the one rewrite ADD COLUMN makes, so every
-- existing dossier gets a key of its own; the default is dropped at once, so a filing that
-- forgot its key fails instead of getting one silently. Keys need not be unique: a lookup
-- names the code, and the key only has to match that dossier's.
ALTER TABLE dossiers
    ADD COLUMN tracking_key text NOT NULL DEFAULT dossier_tracking_key()
        CONSTRAINT dossiers_tracking_key_format CHECK (tracking_key ~ '^[A-HJKMNP-Z2-9]{6}$');
ALTER TABLE dossiers ALTER COLUMN tracking_key DROP DEFAULT;

-- Failures of every kind share the one table (and the one purge) the login limits use: failed
-- logins, counted per phone and per address, and failed public-tracking lookups (an unknown code,
-- a wrong or missing key), counted per address. Each kind is counted on its own. For a tracking
-- failure `phone` holds the code that was asked for (the column keeps its name, which the login
-- code uses). Rows without a kind are logins, as every row so far is.
ALTER TABLE login_failures
    ADD COLUMN kind text NOT NULL DEFAULT 'login'
        CONSTRAINT login_failures_kind_valid CHECK (kind IN ('login', 'tracking'));
