-- Identities for services (SPEC §11), slice 1: OAuth 2 clients for the client-credentials grant.

-- A client: its secret is 256 bits of randomness, so its SHA-256 is stored (no slow hash needed).
-- A rotation keeps the previous secret's hash until `previous_secret_expires_at` (the overlap).
-- Scopes and roles are space-separated lists (scope tokens and role names hold no spaces).
-- A client of a territory holds its roles in that territory and is administered there too.
CREATE TABLE clients (
    id                          TEXT PRIMARY KEY,
    name                        TEXT NOT NULL,
    secret_hash                 BLOB NOT NULL,
    previous_secret_hash        BLOB,
    previous_secret_expires_at  TEXT,
    scopes                      TEXT NOT NULL DEFAULT '',
    roles                       TEXT NOT NULL DEFAULT '',
    territory_code              TEXT REFERENCES territories (code) ON DELETE CASCADE,
    access_token_ttl_seconds    INTEGER,
    is_active                   INTEGER NOT NULL DEFAULT 1,
    created_at                  TEXT NOT NULL,
    updated_at                  TEXT NOT NULL
);
-- A territory admin lists its territory's clients.
CREATE INDEX clients_territory_idx ON clients (territory_code, id);
