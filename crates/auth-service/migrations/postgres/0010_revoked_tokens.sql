-- Revocation of clients' access tokens (SPEC §11, RFC 7009). A client's token has no session
-- to end, so its `jti` is remembered here until the token could no longer verify anyway
-- (`expires_at` = its `exp` plus the verification leeway); every replica reads the same rows.
-- Rows past `expires_at` are deleted by the next revocation. `client_id` says whose token it
-- was; no foreign key, so a revocation racing the client's deletion still succeeds.
CREATE TABLE revoked_tokens (
    jti         UUID PRIMARY KEY,
    client_id   UUID NOT NULL,
    revoked_at  TIMESTAMPTZ NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL
);
-- The cleanup deletes by age.
CREATE INDEX revoked_tokens_expires_idx ON revoked_tokens (expires_at);
