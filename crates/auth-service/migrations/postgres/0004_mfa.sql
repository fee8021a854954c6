-- Second factors (SPEC §10), slice 1: TOTP, recovery codes and the login challenge.

-- The RFC 8176 methods a session was authenticated with, space-separated; refresh keeps them.
ALTER TABLE sessions ADD COLUMN amr TEXT NOT NULL DEFAULT 'pwd';

-- One TOTP factor per user: pending until a first code confirms it. The secret is sealed
-- with the key-encryption key like the signing keys; the last step a code was accepted for
-- refuses replays (a code at or below it).
CREATE TABLE totp_factors (
    user_id         UUID PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    secret          BYTEA NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    confirmed_at    TIMESTAMPTZ,
    last_used_step  BIGINT
);

-- Recovery codes: SHA-256 of a high-entropy code, single use.
CREATE TABLE recovery_codes (
    id              UUID PRIMARY KEY,
    user_id         UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash       BYTEA NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    used_at         TIMESTAMPTZ,
    UNIQUE (user_id, code_hash)
);

-- The password step of a login with a second factor: its token (hashed), single use, short-lived.
CREATE TABLE mfa_challenges (
    id              UUID PRIMARY KEY,
    user_id         UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash      BYTEA NOT NULL UNIQUE,
    created_at      TIMESTAMPTZ NOT NULL,
    expires_at      TIMESTAMPTZ NOT NULL,
    used_at         TIMESTAMPTZ
);
CREATE INDEX mfa_challenges_user_idx ON mfa_challenges (user_id);
