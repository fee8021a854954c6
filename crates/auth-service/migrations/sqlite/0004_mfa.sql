-- Second factors (SPEC §10), slice 1: TOTP, recovery codes and the login challenge.

-- The RFC 8176 methods a session was authenticated with, space-separated; refresh keeps them.
ALTER TABLE sessions ADD COLUMN amr TEXT NOT NULL DEFAULT 'pwd';

-- One TOTP factor per user: pending until a first code confirms it. The secret is sealed
-- with the key-encryption key like the signing keys; the last step a code was accepted for
-- refuses replays (a code at or below it).
CREATE TABLE totp_factors (
    user_id         TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    secret          BLOB NOT NULL,
    created_at      TEXT NOT NULL,
    confirmed_at    TEXT,
    last_used_step  INTEGER
);

-- Recovery codes: SHA-256 of a high-entropy code, single use.
CREATE TABLE recovery_codes (
    id              TEXT PRIMARY KEY,
    user_id         TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash       BLOB NOT NULL,
    created_at      TEXT NOT NULL,
    used_at         TEXT,
    UNIQUE (user_id, code_hash)
);

-- The password step of a login with a second factor: its token (hashed), single use, short-lived.
CREATE TABLE mfa_challenges (
    id              TEXT PRIMARY KEY,
    user_id         TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash      BLOB NOT NULL UNIQUE,
    created_at      TEXT NOT NULL,
    expires_at      TEXT NOT NULL,
    used_at         TEXT
);
CREATE INDEX mfa_challenges_user_idx ON mfa_challenges (user_id);
