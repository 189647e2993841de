-- Merchant API keys can be revoked at once (issue 12): a revoked key stops working whatever its
-- expires_at says. Only the merchant's newest working key may rotate or revoke the others; an
-- admin can revoke every key of a merchant and issue a new one.
ALTER TABLE merchant_api_keys ADD COLUMN revoked_at timestamptz;

-- Finding a merchant's keys (rotation, revocation, "is this the newest key?") by its own index.
CREATE INDEX merchant_api_keys_merchant_idx ON merchant_api_keys (merchant_id, created_at);

-- The old rotation could leave two never-expiring keys (two rotations at once): the older of
-- them expires now, as a rotation would have made it, before the index below can hold.
UPDATE merchant_api_keys k SET expires_at = now()
WHERE k.expires_at IS NULL
  AND EXISTS (SELECT 1 FROM merchant_api_keys newer
              WHERE newer.merchant_id = k.merchant_id AND newer.expires_at IS NULL
                AND (newer.created_at, newer.id) > (k.created_at, k.id));

-- At most one working key of a merchant has no expiry: the newest one. Rotation gives every
-- older key an expiry before it issues the new key, so a bug or a race that would leave two
-- "newest" keys fails here instead.
CREATE UNIQUE INDEX merchant_api_keys_one_unexpiring_key ON merchant_api_keys (merchant_id)
    WHERE expires_at IS NULL AND revoked_at IS NULL;
