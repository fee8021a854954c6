-- Passkeys (SPEC §10): WebAuthn credentials, and the state of a ceremony between its options
-- and its finishing step.

-- A registered passkey: the library's credential (public key, counter, backup state) as JSON.
-- The credential id is unique across users: the same authenticator key cannot be registered
-- twice. sign_count mirrors the stored counter for a compare-and-set after each assertion.
CREATE TABLE passkeys (
    id              TEXT PRIMARY KEY,
    user_id         TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    credential_id   BLOB NOT NULL UNIQUE,
    name            TEXT NOT NULL,
    credential      TEXT NOT NULL,
    sign_count      INTEGER NOT NULL,
    created_at      TEXT NOT NULL,
    last_used_at    TEXT
);
CREATE INDEX passkeys_user_idx ON passkeys (user_id);

-- Ceremony state (challenge, allowed credentials), single use and short-lived; a
-- second-factor ceremony belongs to an mfa_token (its hash).
CREATE TABLE passkey_ceremonies (
    id              TEXT PRIMARY KEY,
    purpose         TEXT NOT NULL,
    user_id         TEXT REFERENCES users (id) ON DELETE CASCADE,
    mfa_token_hash  BLOB,
    state           TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    expires_at      TEXT NOT NULL
);
CREATE INDEX passkey_ceremonies_expiry_idx ON passkey_ceremonies (expires_at);
CREATE INDEX passkey_ceremonies_mfa_idx ON passkey_ceremonies (mfa_token_hash);
