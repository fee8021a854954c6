-- Identities for services (SPEC §11), slice 2: token exchange and private_key_jwt.

-- Audiences a client may exchange users' access tokens for (RFC 8693), space-separated;
-- empty: it may not exchange.
ALTER TABLE clients ADD COLUMN exchange_audiences TEXT NOT NULL DEFAULT '';
-- How it authenticates: client_secret_basic, client_secret_post or private_key_jwt; a
-- private_key_jwt client has an inline JWK Set (JSON text) or the address of one.
ALTER TABLE clients ADD COLUMN token_endpoint_auth_method TEXT NOT NULL DEFAULT 'client_secret_basic';
ALTER TABLE clients ADD COLUMN jwks TEXT;
ALTER TABLE clients ADD COLUMN jwks_uri TEXT;

-- RFC 7523 §3: the `jti` of every accepted client assertion, kept until the assertion expires,
-- so a replay is refused by every replica. The primary key says "used".
CREATE TABLE client_assertions (
    client_id   UUID NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    jti         TEXT NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (client_id, jti)
);
-- Expired rows are swept by expiry.
CREATE INDEX client_assertions_expires_idx ON client_assertions (expires_at);
