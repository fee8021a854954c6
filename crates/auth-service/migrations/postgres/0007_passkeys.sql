-- Passkeys (SPEC §10): WebAuthn credentials, and the state of a ceremony between its options
-- and its finishing step.

-- A registered passkey: the library's credential (public key, counter, backup state) as JSON.
-- The credential id is unique across users: the same authenticator key cannot be registered
-- twice. sign_count mirrors the stored counter for a compare-and-set after each assertion.
CREATE TABLE passkeys (
    id              UUID PRIMARY KEY,
    user_id         UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    credential_id   BYTEA NOT NULL UNIQUE,
    name            TEXT NOT NULL,
    credential      TEXT NOT NULL,
    sign_count      BIGINT NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    last_used_at    TIMESTAMPTZ
);
CREATE INDEX passkeys_user_idx ON passkeys (user_id);

-- Ceremony state (challenge, allowed credentials), single use and short-lived; a
-- second-factor ceremony belongs to an mfa_token (its hash).
CREATE TABLE passkey_ceremonies (
    id              UUID PRIMARY KEY,
    purpose         TEXT NOT NULL,
    user_id         UUID REFERENCES users (id) ON DELETE CASCADE,
    mfa_token_hash  BYTEA,
    state           TEXT NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    expires_at      TIMESTAMPTZ NOT NULL
);
CREATE INDEX passkey_ceremonies_expiry_idx ON passkey_ceremonies (expires_at);
CREATE INDEX passkey_ceremonies_mfa_idx ON passkey_ceremonies (mfa_token_hash);
