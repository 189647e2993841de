-- A counter dossier reaches its applicant and nobody else (issue 13). It was attached to
-- whichever account had the phone the officer typed, and registering a phone claimed every
-- dossier ever filed for it. Now a counter dossier is attached only to the account whose
-- verified identity (the wallet's keyed national-ID hash) is the national ID the officer
-- recorded, at filing or when that wallet is verified; or to the account of the phone it was
-- filed for, once that account confirms the code texted at the counter together with the
-- national ID. Either way only while it is open or closed within the last 90 days.

-- The recorded national ID keyed as wallets key it (HMAC-SHA256 under the PIN pepper), so a
-- filing and a verification compare hashes. The pepper never reaches SQL, so rows filed before
-- this column are not backfilled: a verification matches them by the plain number the row
-- already holds (`applicant_national_id`), which the verification request carries too.
ALTER TABLE dossiers ADD COLUMN applicant_national_id_hash bytea;

-- What a verification claims: the unattached dossiers of one national ID, by hash, and (older
-- rows, a set that only shrinks) by the plain number.
CREATE INDEX dossiers_unclaimed_national_id_hash_idx ON dossiers (applicant_national_id_hash)
    WHERE applicant_id IS NULL;
CREATE INDEX dossiers_unclaimed_legacy_national_id_idx ON dossiers (applicant_national_id)
    WHERE applicant_id IS NULL AND applicant_national_id_hash IS NULL;
-- Nothing is claimed by phone any more.
DROP INDEX dossiers_unclaimed_phone_idx;

-- Whether a dossier may still be claimed: open (anything but refused, withdrawn, returned), or
-- closed within the last 90 days. A closed dossier moves no more, so `updated_at` is when it
-- closed (a claim does not touch it); `returned_at` is read first all the same.
CREATE FUNCTION dossier_claimable(status text, returned_at timestamptz, updated_at timestamptz)
RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT status NOT IN ('refused', 'withdrawn', 'returned')
        OR COALESCE(returned_at, updated_at) > now() - interval '90 days'
$$;

-- The code texted to the applicant's phone when a counter dossier could not be attached at
-- once: only its HMAC (keyed like one-time codes, bound to the dossier). It lives as long as
-- the dossier is claimable, is used once, and dies after 5 wrong tries.
CREATE TABLE dossier_claim_codes (
    dossier_id uuid PRIMARY KEY REFERENCES dossiers (id),
    code_hash  bytea NOT NULL,
    attempts   integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    used_at    timestamptz,

    CONSTRAINT dossier_claim_codes_attempts_valid CHECK (attempts >= 0)
);
