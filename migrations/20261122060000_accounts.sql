-- Accounts and access: citizens and staff, one-time codes, refresh tokens, login failures.

CREATE TABLE accounts (
    id            uuid PRIMARY KEY,
    -- E.164, e.g. +84912345678. One account per phone, citizen or staff.
    phone         text NOT NULL,
    full_name     text NOT NULL,
    password_hash text NOT NULL,
    role          text NOT NULL,
    -- Officers and supervisors act inside this unit's subtree.
    unit_code     text REFERENCES units (code),
    language      text NOT NULL DEFAULT 'vi',
    disabled_at   timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),

    CONSTRAINT accounts_phone_key UNIQUE (phone),
    CONSTRAINT accounts_phone_format CHECK (phone ~ '^\+84[0-9]{9,10}$'),
    CONSTRAINT accounts_full_name_length CHECK (char_length(full_name) BETWEEN 1 AND 200),
    CONSTRAINT accounts_role_valid CHECK (role IN ('citizen', 'officer', 'supervisor', 'admin')),
    CONSTRAINT accounts_language_valid CHECK (language IN ('vi', 'en')),
    CONSTRAINT accounts_unit_by_role CHECK (
        (role IN ('officer', 'supervisor')) = (unit_code IS NOT NULL)
    )
);

-- One-time codes sent by SMS. Only a keyed hash of the code is kept.
CREATE TABLE otp_codes (
    id          uuid PRIMARY KEY,
    phone       text NOT NULL,
    purpose     text NOT NULL,
    code_hash   bytea NOT NULL,
    attempts    integer NOT NULL DEFAULT 0,
    client_addr text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    consumed_at timestamptz,

    CONSTRAINT otp_codes_purpose_valid CHECK (purpose IN ('register', 'reset_password')),
    CONSTRAINT otp_codes_attempts_range CHECK (attempts BETWEEN 0 AND 5)
);

CREATE INDEX otp_codes_phone_idx ON otp_codes (phone, created_at);
CREATE INDEX otp_codes_client_idx ON otp_codes (client_addr, created_at);
CREATE INDEX otp_codes_created_idx ON otp_codes (created_at);

-- Refresh tokens, stored as SHA-256 of the random token. A login starts a family; every
-- refresh uses one token up and adds its successor to the family. Presenting a used token
-- again means it was stolen (or the client misbehaves): the whole family is revoked.
CREATE TABLE refresh_tokens (
    id         uuid PRIMARY KEY,
    family_id  uuid NOT NULL,
    account_id uuid NOT NULL REFERENCES accounts (id),
    token_hash bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at    timestamptz,
    revoked_at timestamptz,

    CONSTRAINT refresh_tokens_token_hash_key UNIQUE (token_hash)
);

CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_account_idx ON refresh_tokens (account_id);

-- Failed logins, counted per phone and per client address over a sliding window. Kept in
-- PostgreSQL so every server process sees the same counts.
CREATE TABLE login_failures (
    id          bigserial PRIMARY KEY,
    phone       text NOT NULL,
    client_addr text NOT NULL,
    failed_at   timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX login_failures_phone_idx ON login_failures (phone, failed_at);
CREATE INDEX login_failures_client_idx ON login_failures (client_addr, failed_at);
