-- Identities for services (SPEC §11): API keys / personal access tokens.

-- A key belongs to exactly one owner: a user or a client (deleting either deletes its keys).
-- Only the SHA-256 of the whole key is kept (the key holds ≥ 190 random bits, so a fast hash
-- suffices), with a display prefix (`ask_` and the first 8 random characters). A revoked key
-- is deleted. `last_used_at` is written in batches, never on the request path.
CREATE TABLE api_keys (
    id              UUID PRIMARY KEY,
    user_id         UUID REFERENCES users (id) ON DELETE CASCADE,
    client_id       UUID REFERENCES clients (id) ON DELETE CASCADE,
    name            TEXT NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
    prefix          TEXT NOT NULL,
    key_hash        BYTEA NOT NULL,
    scopes          TEXT NOT NULL DEFAULT '',
    created_at      TIMESTAMPTZ NOT NULL,
    expires_at      TIMESTAMPTZ,
    last_used_at    TIMESTAMPTZ,
    CHECK ((user_id IS NULL) <> (client_id IS NULL))
);
CREATE UNIQUE INDEX api_keys_hash_key ON api_keys (key_hash);
-- An owner's keys, listed and counted (the per-owner limit).
CREATE INDEX api_keys_user_idx ON api_keys (user_id, id) WHERE user_id IS NOT NULL;
CREATE INDEX api_keys_client_idx ON api_keys (client_id, id) WHERE client_id IS NOT NULL;
