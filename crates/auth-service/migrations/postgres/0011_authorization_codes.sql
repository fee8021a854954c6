-- The authorization code grant with PKCE (SPEC §11, RFC 6749 §4.1, RFC 7636).

-- A client's registered redirect URIs, space-separated (an absolute URI holds no space);
-- empty: it cannot use the authorization endpoint. Matched exactly as written.
ALTER TABLE clients ADD COLUMN redirect_uris TEXT NOT NULL DEFAULT '';

-- The scopes a session was granted by an authorization code, space-separated; NULL for a
-- session started by a login, which grants none. Every access token of the session says it.
ALTER TABLE sessions ADD COLUMN scope TEXT;

-- Authorization codes: 256 random bits, kept as their SHA-256. A code lives 60 s and is
-- spent once (`amr`: how the user signed in, which the session it starts inherits): `spent_at` is set by the exchange (right or wrong), `session_id` names the
-- session the right exchange started, so a second use ends it (RFC 6749 §4.1.2). Rows are
-- swept some time after they expire (by the next code issued), so a late replay still ends
-- the session.
CREATE TABLE authorization_codes (
    code_hash       BYTEA PRIMARY KEY,
    client_id       UUID NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    user_id         UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    redirect_uri    TEXT NOT NULL,
    code_challenge  TEXT NOT NULL,
    scope           TEXT,
    amr             TEXT NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    expires_at      TIMESTAMPTZ NOT NULL,
    spent_at        TIMESTAMPTZ,
    session_id      UUID
);
-- The sweep deletes by age.
CREATE INDEX authorization_codes_expires_idx ON authorization_codes (expires_at);
