-- The whole schema of SPEC §5 for SQLite: UUIDs and timestamps as RFC 3339 TEXT, bytes as BLOB.

CREATE TABLE users (
    id              TEXT PRIMARY KEY,
    email           TEXT NOT NULL,
    username        TEXT NOT NULL,
    password_hash   TEXT NOT NULL,
    display_name    TEXT,
    avatar_url      TEXT,
    bio             TEXT,
    is_verified     INTEGER NOT NULL DEFAULT 0,
    is_active       INTEGER NOT NULL DEFAULT 1,
    created_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000Z', 'now')),
    updated_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000Z', 'now')),
    deleted_at      TEXT
);
-- Emails are stored lowercased (by the service: SQLite's lower() knows only ASCII);
-- usernames are ASCII and compare case-insensitively. Deleted users free both.
CREATE UNIQUE INDEX users_email_key ON users (email) WHERE deleted_at IS NULL;
CREATE UNIQUE INDEX users_username_key ON users (lower(username)) WHERE deleted_at IS NULL;
-- Keyset pagination of the admin user list.
CREATE INDEX users_created_at_id_idx ON users (created_at, id) WHERE deleted_at IS NULL;

CREATE TABLE territories (
    code            TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    description     TEXT,
    is_active       INTEGER NOT NULL DEFAULT 1,
    created_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000Z', 'now')),
    updated_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000Z', 'now'))
);

CREATE TABLE user_territories (
    user_id         TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    territory_code  TEXT NOT NULL REFERENCES territories (code) ON DELETE CASCADE,
    joined_at       TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000Z', 'now')),
    PRIMARY KEY (user_id, territory_code)
);

CREATE TABLE roles (
    name            TEXT PRIMARY KEY,
    description     TEXT,
    permissions     TEXT NOT NULL DEFAULT '[]',
    created_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000Z', 'now'))
);

-- A role held globally (territory_code NULL) or in one territory.
CREATE TABLE user_roles (
    user_id         TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role_name       TEXT NOT NULL REFERENCES roles (name) ON DELETE CASCADE,
    territory_code  TEXT REFERENCES territories (code) ON DELETE CASCADE,
    granted_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000Z', 'now'))
);
CREATE UNIQUE INDEX user_roles_key ON user_roles (user_id, role_name, COALESCE(territory_code, ''));
CREATE INDEX user_roles_role_idx ON user_roles (role_name);

CREATE TABLE sessions (
    id                  TEXT PRIMARY KEY,
    user_id             TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    ip_address          TEXT,
    user_agent          TEXT,
    browser             TEXT,
    os                  TEXT,
    device_type         TEXT,
    created_at          TEXT NOT NULL,
    last_activity_at    TEXT NOT NULL,
    expires_at          TEXT NOT NULL,
    idle_expires_at     TEXT NOT NULL,
    ended_at            TEXT,
    end_reason          TEXT CHECK (end_reason IN
        ('logout', 'terminated', 'expired', 'idle', 'reuse', 'password_reset', 'admin', 'evicted')),
    CHECK ((ended_at IS NULL) = (end_reason IS NULL))
);
-- Active sessions of a user, oldest first for eviction.
CREATE INDEX sessions_user_active_idx ON sessions (user_id, created_at) WHERE ended_at IS NULL;

CREATE TABLE refresh_tokens (
    id              TEXT PRIMARY KEY,
    session_id      TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    token_hash      BLOB NOT NULL UNIQUE,
    created_at      TEXT NOT NULL,
    expires_at      TEXT NOT NULL,
    spent_at        TEXT,
    successor_id    TEXT REFERENCES refresh_tokens (id)
);
CREATE INDEX refresh_tokens_session_idx ON refresh_tokens (session_id);

CREATE TABLE signing_keys (
    kid             TEXT PRIMARY KEY,
    algorithm       TEXT NOT NULL CHECK (algorithm IN ('EdDSA', 'RS256', 'ES256')),
    public_key      TEXT NOT NULL,
    private_key     BLOB NOT NULL,
    sealed          INTEGER NOT NULL DEFAULT 0,
    created_at      TEXT NOT NULL,
    retired_at      TEXT,
    revoked_at      TEXT
);

CREATE TABLE one_time_tokens (
    id              TEXT PRIMARY KEY,
    user_id         TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose         TEXT NOT NULL CHECK (purpose IN ('password_reset', 'email_verification')),
    token_hash      BLOB NOT NULL UNIQUE,
    created_at      TEXT NOT NULL,
    expires_at      TEXT NOT NULL,
    used_at         TEXT
);
CREATE INDEX one_time_tokens_user_idx ON one_time_tokens (user_id, purpose);

-- Audit entries outlive the users they mention, so no foreign keys.
CREATE TABLE audit_log (
    id              TEXT PRIMARY KEY,
    occurred_at     TEXT NOT NULL,
    actor_id        TEXT,
    user_id         TEXT,
    action          TEXT NOT NULL,
    target_type     TEXT,
    target_id       TEXT,
    details         TEXT NOT NULL DEFAULT '{}',
    ip_address      TEXT,
    request_id      TEXT
);
CREATE INDEX audit_log_user_idx ON audit_log (user_id, id);
CREATE INDEX audit_log_action_idx ON audit_log (action, id);

CREATE TABLE outbox (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    id              TEXT NOT NULL UNIQUE,
    event_type      TEXT NOT NULL,
    user_id         TEXT,
    payload         TEXT NOT NULL,
    occurred_at     TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT,
    next_attempt_at TEXT NOT NULL,
    published_at    TEXT
);
CREATE INDEX outbox_pending_idx ON outbox (seq) WHERE published_at IS NULL;
CREATE INDEX outbox_published_idx ON outbox (published_at) WHERE published_at IS NOT NULL;

INSERT INTO roles (name, description) VALUES
    ('admin', 'Full administrative access'),
    ('moderator', 'Moderates users and content'),
    ('user', 'A registered user');
