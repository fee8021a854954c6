//! The storage contract: one trait per area, implemented by both wings (`postgres/`,
//! `sqlite/`). Lookups return `Option`; writes take the effects (events, audit entries) to
//! commit in their transaction, or an [`EffectsOf`] callback that builds them from what the
//! transaction finds out.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::domain::api_key::{ApiKey, KeyOwner, StoredApiKey};
use crate::domain::audit::AuditRecord;
use crate::domain::authority::Grants;
use crate::domain::authorization::{AuthorizationCode, NewAuthorizationCode};
use crate::domain::client::{Client, ClientSettings, StoredClient};
use crate::domain::directory::{Role, Territory, TerritoryPatch};
use crate::domain::session::SessionState;
use crate::domain::token::{RefreshTokenState, RevokedToken};
use crate::domain::user::{Credentials, UserPatch};
use crate::domain::{EndReason, Login, ProfilePatch, Session, User};
use crate::store::effects::{Effects, EffectsOf, OutboxEvent};
use crate::store::error::StoreResult;
use crate::store::records::{
    AuditFilter, Ceremony, DeliveryFailure, MemberChange, NewMfaChallenge, NewOneTimeToken,
    NewPasskey, NewRefreshToken, NewSession, NewUser, PasskeyRemoval, PendingEvent, Rotation,
    StoredKey, StoredPasskey, TakenCeremony, TakenLogins, TokenPurpose, TotpFactor, UserQuery,
};

#[async_trait]
pub trait UserStore {
    /// A new user with the default role; with a first session and refresh token when given.
    async fn record_signup(
        &self,
        user: &NewUser,
        login: Option<(&NewSession, &NewRefreshToken)>,
        effects: &Effects,
    ) -> StoreResult<()>;
    /// The user a login names (not deleted), with the stored hash.
    async fn credentials(
        &self,
        login: &Login,
        territory: Option<&str>,
    ) -> StoreResult<Option<Credentials>>;
    /// A user who is not deleted.
    async fn user(&self, id: Uuid, territory: Option<&str>) -> StoreResult<Option<User>>;
    /// Applies a profile change; false when the user does not exist.
    async fn update_profile(
        &self,
        id: Uuid,
        patch: &ProfilePatch,
        now: DateTime<Utc>,
        effects: &Effects,
    ) -> StoreResult<bool>;
    /// Replaces a hash after a login verified an outdated one.
    async fn replace_password_hash(
        &self,
        id: Uuid,
        hash: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<()>;
}

#[async_trait]
pub trait SessionStore {
    /// A login: the session, its first refresh token, and the eviction of the oldest active
    /// sessions beyond `max_sessions`; returns the evicted session ids.
    async fn record_login(
        &self,
        session: &NewSession,
        token: &NewRefreshToken,
        max_sessions: u32,
        effects: &Effects,
        evicted: EffectsOf<'_, [Uuid]>,
    ) -> StoreResult<Vec<Uuid>>;
    /// The hot-path view of a session, and whether `kid` has been revoked.
    /// The session's state, the key's revocation and the session's user (not deleted) with
    /// global roles plus those held in `territory`; `None` for an unknown session or user.
    async fn session_state(
        &self,
        id: Uuid,
        kid: &str,
        territory: Option<&str>,
    ) -> StoreResult<Option<SessionState>>;
    async fn session(&self, id: Uuid) -> StoreResult<Option<Session>>;
    /// Sessions of a user that have not ended or lapsed at `now`, newest first.
    async fn active_sessions(&self, user_id: Uuid, now: DateTime<Utc>)
        -> StoreResult<Vec<Session>>;
    /// Spends the live token with `hash` and stores `successor` in its session (the
    /// successor's `session_id` is taken from the spent token), pushes the session's idle
    /// deadline and writes `events(session id, user id)`, atomically: of many concurrent
    /// calls with one token exactly one sees `Rotated`, which carries the session's user
    /// with the roles held globally or in `territory`.
    async fn rotate_refresh_token(
        &self,
        hash: &[u8],
        successor: &NewRefreshToken,
        now: DateTime<Utc>,
        idle_deadline: DateTime<Utc>,
        territory: Option<&str>,
        events: EffectsOf<'_, (Uuid, Uuid), Vec<OutboxEvent>>,
    ) -> StoreResult<Rotation>;
    /// The session a refresh token belongs to: (session id, user id).
    async fn refresh_token_session(&self, hash: &[u8]) -> StoreResult<Option<(Uuid, Uuid)>>;
    /// Ends one session if it is still active; false when it was not.
    async fn end_session(
        &self,
        id: Uuid,
        reason: EndReason,
        now: DateTime<Utc>,
        effects: &Effects,
    ) -> StoreResult<bool>;
    /// Ends every active session of a user except `except`; returns how many ended.
    async fn end_sessions_except(
        &self,
        user_id: Uuid,
        except: Option<Uuid>,
        reason: EndReason,
        now: DateTime<Utc>,
        effects: EffectsOf<'_, [Uuid]>,
    ) -> StoreResult<u64>;
    /// Records activity: pushes the idle deadline of an active session forward.
    async fn record_activity(
        &self,
        id: Uuid,
        now: DateTime<Utc>,
        idle_deadline: DateTime<Utc>,
        effects: &Effects,
    ) -> StoreResult<bool>;
    /// Stores an authorization code (SPEC §11) with `effects`; codes that expired before
    /// `forget_before` are swept in the same transaction.
    async fn create_authorization_code(
        &self,
        code: &NewAuthorizationCode,
        forget_before: DateTime<Utc>,
        effects: &Effects,
    ) -> StoreResult<()>;
    /// The code whose SHA-256 is `hash`, spent or not.
    async fn authorization_code(&self, hash: &[u8]) -> StoreResult<Option<AuthorizationCode>>;
    /// Spends a code without starting a session (a failed exchange); false when it was
    /// spent already.
    async fn spend_authorization_code(&self, hash: &[u8], now: DateTime<Utc>) -> StoreResult<bool>;
    /// A login by authorization code: spends the code (if it is not spent yet) and, in the
    /// same transaction, does what [`SessionStore::record_login`] does, naming the session
    /// on the code. `None` (nothing written) when the code was spent meanwhile.
    async fn record_code_login(
        &self,
        hash: &[u8],
        session: &NewSession,
        token: &NewRefreshToken,
        max_sessions: u32,
        effects: &Effects,
        evicted: EffectsOf<'_, [Uuid]>,
    ) -> StoreResult<Option<Vec<Uuid>>>;
}

/// Passwords and email addresses: single-use tokens and what spending them changes.
#[async_trait]
pub trait AccountStore {
    /// A user who is not deleted, with the stored hash.
    async fn credentials_of(
        &self,
        id: Uuid,
        territory: Option<&str>,
    ) -> StoreResult<Option<Credentials>>;
    /// Stores a single-use token; the user's earlier unused tokens of its purpose stop working.
    async fn issue_one_time_token(
        &self,
        token: &NewOneTimeToken,
        effects: &Effects,
    ) -> StoreResult<()>;
    /// The user a live token (unused, unexpired, user not deleted) belongs to.
    async fn one_time_token_user(
        &self,
        hash: &[u8],
        purpose: TokenPurpose,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<User>>;
    /// Spends a live reset token, stores the new hash and ends every session of the user, in
    /// one transaction; `None` when the token was not live (unknown, used, expired).
    async fn reset_password(
        &self,
        hash: &[u8],
        password_hash: &str,
        now: DateTime<Utc>,
        effects: EffectsOf<'_, (Uuid, Vec<Uuid>)>,
    ) -> StoreResult<Option<Uuid>>;
    /// Stores a new hash and ends every session of the user but `keep`; returns how many ended.
    async fn change_password(
        &self,
        user_id: Uuid,
        password_hash: &str,
        keep: Uuid,
        now: DateTime<Utc>,
        effects: EffectsOf<'_, (Uuid, Vec<Uuid>)>,
    ) -> StoreResult<u64>;
    /// Spends a live verification token and marks its user verified.
    async fn verify_email(
        &self,
        hash: &[u8],
        now: DateTime<Utc>,
        effects: EffectsOf<'_, (Uuid, Vec<Uuid>)>,
    ) -> StoreResult<Option<Uuid>>;
}

/// Administration of users (SPEC §2, `/api/users`).
#[async_trait]
pub trait AdminStore {
    /// A new user holding `roles` globally, a member of `member_of` when given; `Conflict`
    /// when the email or username is taken, `UnknownRole` when a role does not exist.
    async fn create_user(
        &self,
        user: &NewUser,
        roles: &[String],
        member_of: Option<&str>,
        effects: &Effects,
    ) -> StoreResult<()>;
    /// Users not deleted, oldest first, after the keyset `after`; `q` matches email,
    /// username or display name, case-insensitively.
    async fn list_users(&self, query: &UserQuery<'_>) -> StoreResult<Vec<User>>;
    /// Applies an administrator's change in one transaction: refuses to leave no active
    /// global administrator (`LastAdmin`), ends the user's sessions when it deactivates them or
    /// sets a password, and voids their outstanding reset and verification links when it
    /// changes the email or password or deactivates them. `None` when the user does not exist.
    async fn update_user(
        &self,
        id: Uuid,
        patch: &UserPatch,
        now: DateTime<Utc>,
        territory: Option<&str>,
        effects: EffectsOf<'_, (User, Option<User>, Vec<Uuid>)>,
    ) -> StoreResult<Option<User>>;
    /// Soft-deletes a user (email and username become free), ends their sessions and voids
    /// their links; `LastAdmin` for the last active global administrator; false when there is
    /// no such user.
    async fn delete_user(
        &self,
        id: Uuid,
        now: DateTime<Utc>,
        territory: Option<&str>,
        effects: EffectsOf<'_, (User, Option<User>, Vec<Uuid>)>,
    ) -> StoreResult<bool>;
}

/// Roles, territories and memberships (SPEC §2, `/api/roles`, `/api/territories`).
#[async_trait]
pub trait DirectoryStore {
    /// Every role, by name.
    async fn roles(&self) -> StoreResult<Vec<Role>>;
    /// Every role a user holds, globally or in a territory (none for an unknown user).
    async fn grants(&self, user_id: Uuid) -> StoreResult<Grants>;
    /// A new role; `Conflict` when the name is taken.
    async fn create_role(&self, role: &Role, effects: &Effects) -> StoreResult<()>;
    /// Deletes a role and every grant of it; `effects` gets the users who held it. False when
    /// there is no such role (nothing is written).
    async fn delete_role(&self, name: &str, effects: EffectsOf<'_, [Uuid]>) -> StoreResult<bool>;
    /// Every territory, by code.
    async fn territories(&self) -> StoreResult<Vec<Territory>>;
    /// A new territory; `Conflict` when the code is taken.
    async fn create_territory(&self, territory: &Territory, effects: &Effects) -> StoreResult<()>;
    /// Applies `patch`; the territory after it, or `None` when there is no such territory.
    async fn update_territory(
        &self,
        code: &str,
        patch: &TerritoryPatch,
        now: DateTime<Utc>,
        effects: EffectsOf<'_, (Territory, Territory)>,
    ) -> StoreResult<Option<Territory>>;
    /// Makes a user (not deleted) a member of a territory; effects only when it was not one.
    async fn add_member(
        &self,
        user_id: Uuid,
        code: &str,
        now: DateTime<Utc>,
        effects: &Effects,
    ) -> StoreResult<MemberChange>;
    /// Ends a membership and the roles held in that territory; `effects` gets those roles and
    /// is written only when the user was a member.
    async fn remove_member(
        &self,
        user_id: Uuid,
        code: &str,
        effects: EffectsOf<'_, [String]>,
    ) -> StoreResult<MemberChange>;
    /// Replaces the roles a user holds in a territory, joining it first if needed.
    /// `UnknownRole` when one of `roles` does not exist (nothing is written).
    async fn set_territory_roles(
        &self,
        user_id: Uuid,
        code: &str,
        roles: &[String],
        now: DateTime<Utc>,
        effects: EffectsOf<'_, (bool, Vec<String>)>,
    ) -> StoreResult<MemberChange>;
}

/// The audit log as administrators read it, and bulk imports of users.
#[async_trait]
pub trait AuditStore {
    /// Entries matching `filter`, highest id first, at most `filter.limit`.
    async fn audit_entries(&self, filter: &AuditFilter) -> StoreResult<Vec<AuditRecord>>;
    /// Which of `emails` (lowercase) and `usernames` (any case) users not deleted hold.
    async fn taken_logins(
        &self,
        emails: &[String],
        usernames: &[String],
    ) -> StoreResult<TakenLogins>;
    /// Inserts every user, each holding `role` globally, in one transaction with `effects`;
    /// `Conflict` (and nothing written) when any email or username is taken. Returns the count.
    async fn import_users(
        &self,
        users: &[NewUser],
        role: &str,
        effects: &Effects,
    ) -> StoreResult<u64>;
}

/// Second factors (SPEC §10): the TOTP factor, recovery codes and login challenges.
#[async_trait]
pub trait MfaStore {
    /// The user's TOTP factor, pending or confirmed.
    async fn totp_factor(&self, user_id: Uuid) -> StoreResult<Option<TotpFactor>>;
    /// Stores a pending TOTP enrollment, replacing an earlier pending one; false (nothing
    /// written) when the user has a confirmed factor.
    async fn stage_totp(
        &self,
        user_id: Uuid,
        sealed_secret: &[u8],
        now: DateTime<Utc>,
    ) -> StoreResult<bool>;
    /// Confirms the pending factor with the step of its first code and replaces the user's
    /// recovery codes with `codes` (hashes); false (nothing written) when none was pending.
    async fn confirm_totp(
        &self,
        user_id: Uuid,
        step: i64,
        codes: &[Vec<u8>],
        now: DateTime<Utc>,
        effects: &Effects,
    ) -> StoreResult<bool>;
    /// Accepts a code's step once: true when the confirmed factor's last used step was below
    /// `step` (now raised to it), false for a replay or an older step.
    async fn spend_totp_step(&self, user_id: Uuid, step: i64) -> StoreResult<bool>;
    /// Spends an unused recovery code of the user; false when there is none with that hash.
    async fn spend_recovery_code(
        &self,
        user_id: Uuid,
        hash: &[u8],
        now: DateTime<Utc>,
    ) -> StoreResult<bool>;
    /// Replaces the recovery codes of a user with a confirmed TOTP factor or a passkey; false
    /// (nothing written) when the user has neither.
    async fn replace_recovery_codes(
        &self,
        user_id: Uuid,
        codes: &[Vec<u8>],
        now: DateTime<Utc>,
        effects: &Effects,
    ) -> StoreResult<bool>;
    /// Removes the user's TOTP factor, passkeys, recovery codes and open challenges; false
    /// (nothing written) when there was no factor. `effects` gets the ids of the passkeys
    /// removed, so each can be announced.
    async fn remove_second_factors(
        &self,
        user_id: Uuid,
        effects: EffectsOf<'_, [Uuid]>,
    ) -> StoreResult<bool>;
    /// Removes the confirmed TOTP factor alone, when passkeys stay as second factors (the
    /// recovery codes stay with them); false when there was none.
    async fn remove_totp_factor(&self, user_id: Uuid, effects: &Effects) -> StoreResult<bool>;
    /// Stores the challenge of a password step.
    async fn issue_mfa_challenge(&self, challenge: &NewMfaChallenge) -> StoreResult<()>;
    /// The user of a live challenge (unused, unexpired).
    async fn mfa_challenge_user(
        &self,
        hash: &[u8],
        now: DateTime<Utc>,
    ) -> StoreResult<Option<Uuid>>;
    /// Spends a live challenge; false when it was not live (used, expired, unknown).
    async fn spend_mfa_challenge(&self, hash: &[u8], now: DateTime<Utc>) -> StoreResult<bool>;
}

/// Passkeys (SPEC §10): registered WebAuthn credentials and the state of ceremonies between
/// their options and their finishing step.
#[async_trait]
pub trait PasskeyStore {
    /// The user's passkeys, oldest first.
    async fn passkeys(&self, user_id: Uuid) -> StoreResult<Vec<StoredPasskey>>;
    /// The passkey with this credential id, whoever's it is.
    async fn passkey_by_credential(
        &self,
        credential_id: &[u8],
    ) -> StoreResult<Option<StoredPasskey>>;
    /// Registers a passkey; with `recovery_codes` (hashes) not empty, they replace the user's
    /// recovery codes in the same transaction (the first second factor). A credential id
    /// registered before is `Conflict(Unique::Other)`.
    async fn add_passkey(
        &self,
        passkey: &NewPasskey,
        recovery_codes: &[Vec<u8>],
        effects: &Effects,
    ) -> StoreResult<()>;
    /// Renames one of the user's passkeys; false when the user has no such passkey.
    async fn rename_passkey(
        &self,
        user_id: Uuid,
        id: Uuid,
        name: &str,
        effects: &Effects,
    ) -> StoreResult<bool>;
    /// Removes one of the user's passkeys; with `last_factor`, also the recovery codes and
    /// open login challenges (nothing is left to ask for). Without `last_factor`, removes
    /// nothing if no second factor would be left (two removals raced).
    async fn remove_passkey(
        &self,
        user_id: Uuid,
        id: Uuid,
        last_factor: bool,
        effects: &Effects,
    ) -> StoreResult<PasskeyRemoval>;
    /// Stores a passkey's credential after an assertion (its counter and backup state, as the
    /// library updated them). Compare-and-set on the counter: false when another assertion
    /// stored this counter or a higher one first (a replay that raced it), unless the
    /// authenticator keeps no counter (0).
    async fn record_passkey_use(
        &self,
        id: Uuid,
        credential: &str,
        counter: u32,
        now: DateTime<Utc>,
    ) -> StoreResult<bool>;
    /// Stores a ceremony's state; sweeps lapsed ones, and for a second-factor ceremony the
    /// earlier ones of the same `mfa_token`.
    async fn issue_ceremony(&self, ceremony: &Ceremony) -> StoreResult<()>;
    /// Takes (deletes and answers) a live ceremony of `purpose`: single use.
    async fn take_ceremony(
        &self,
        id: Uuid,
        purpose: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<TakenCeremony>>;
    /// Takes the live second-factor ceremony of an `mfa_token` (by its hash).
    async fn take_mfa_ceremony(
        &self,
        mfa_token_hash: &[u8],
        now: DateTime<Utc>,
    ) -> StoreResult<Option<TakenCeremony>>;
}

#[async_trait]
pub trait KeyStore {
    async fn signing_keys(&self) -> StoreResult<Vec<StoredKey>>;
    /// Stores `key` as the active key and retires the previous active one.
    async fn activate_signing_key(&self, key: &StoredKey) -> StoreResult<()>;
    /// Revokes a key at once and wipes its private half; false when there is no such
    /// unrevoked key.
    async fn revoke_signing_key(&self, kid: &str, now: DateTime<Utc>) -> StoreResult<bool>;
    /// Replaces a private half left in clear by an older version with its sealed form.
    async fn seal_signing_key(&self, kid: &str, sealed: &[u8]) -> StoreResult<()>;
    /// Wipes the private half of a key that will never sign again.
    async fn wipe_signing_key(&self, kid: &str) -> StoreResult<()>;
    /// Where a generated sealing key is kept when none is configured (SPEC §3): beside an
    /// embedded database file; `None` where there is no such place (PostgreSQL, whose
    /// replicas share no disk; an in-memory database).
    fn generated_key_file(&self) -> Option<std::path::PathBuf>;
}

/// The relay's side of the outbox (SPEC §6), and the counts behind the gauges it refreshes.
#[async_trait]
pub trait OutboxStore {
    /// Claims up to `limit` events that are due at `now`, in `seq` order, and leases them
    /// until `lease_until` (a crashed relay's claim lapses then and the events go out again).
    /// An event waits while an earlier unpublished event of its user is held (leased, or
    /// waiting for a retry); earlier due events are claimed with it, ahead of it. Published
    /// so that each of a user's events goes only after the one before it was acknowledged
    /// (the relay's waves), stopping at the first failure, events of one user go out in order
    /// even when several replicas relay at once.
    async fn claim_events(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<PendingEvent>>;
    /// Marks claimed events published.
    async fn mark_published(&self, seqs: &[i64], now: DateTime<Utc>) -> StoreResult<()>;
    /// Counts a failed attempt of one event and schedules its retry.
    async fn record_publish_failure(
        &self,
        seq: i64,
        error: &str,
        retry_at: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// Deletes events published before `before`; returns how many.
    async fn prune_published(&self, before: DateTime<Utc>) -> StoreResult<u64>;
    /// Events not yet published, across all replicas.
    async fn pending_event_count(&self) -> StoreResult<u64>;
    /// Takes up to `limit` events, in `seq` order, that were not yet handed to the webhook
    /// endpoints: writes a delivery for each endpoint `route` names for the event's type,
    /// and marks the event fanned out (with no endpoint, it is only marked). Returns how
    /// many events it took.
    async fn fan_out_events(
        &self,
        limit: u32,
        route: &(dyn for<'e> Fn(&'e str) -> Vec<String> + Send + Sync),
    ) -> StoreResult<usize>;
    /// [`OutboxStore::claim_events`] for the deliveries of one webhook endpoint: each endpoint
    /// has its own leases, retries and per-user order. `attempts` counts this endpoint's.
    async fn claim_deliveries(
        &self,
        endpoint: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<PendingEvent>>;
    /// Marks claimed deliveries of an endpoint delivered.
    async fn mark_delivered(
        &self,
        endpoint: &str,
        seqs: &[i64],
        now: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// Counts a failed delivery attempt and schedules its retry, or gives the delivery up when
    /// its event is older than the failure allows; true when it was given up.
    async fn record_delivery_failure(
        &self,
        endpoint: &str,
        seq: i64,
        failure: DeliveryFailure<'_>,
    ) -> StoreResult<bool>;
    /// Deliveries neither delivered nor given up, per endpoint that has any.
    async fn pending_delivery_counts(&self) -> StoreResult<Vec<(String, u64)>>;
    /// Sessions neither ended nor lapsed at `now`, across all replicas.
    async fn active_session_count(&self, now: DateTime<Utc>) -> StoreResult<u64>;
}

/// OAuth 2 clients (SPEC §11). `reach` is the territory an administrator is confined to
/// (`None` for a global one): a change to a client outside it finds no client.
#[async_trait]
pub trait ClientStore {
    /// A new client with the SHA-256 of its secret.
    async fn create_client(
        &self,
        id: Uuid,
        settings: &ClientSettings,
        secret_hash: &[u8],
        now: DateTime<Utc>,
        effects: &Effects,
    ) -> StoreResult<()>;
    /// A client with its secret hashes.
    async fn client(&self, id: Uuid) -> StoreResult<Option<StoredClient>>;
    /// Up to `limit` clients after `after`, in id order (UUIDv7: creation order).
    async fn list_clients(
        &self,
        reach: Option<&str>,
        after: Option<Uuid>,
        limit: u32,
    ) -> StoreResult<Vec<Client>>;
    /// Replaces a client's settings; false when no such client is within reach.
    async fn update_client(
        &self,
        id: Uuid,
        reach: Option<&str>,
        settings: &ClientSettings,
        now: DateTime<Utc>,
        effects: &Effects,
    ) -> StoreResult<bool>;
    /// Remembers the `jti` of a client's accepted assertion until `expires_at` (RFC 7523 §3),
    /// and forgets those expired at `now`; false when the jti is remembered already (a
    /// replay).
    async fn record_client_assertion(
        &self,
        client_id: Uuid,
        jti: &str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<bool>;
    /// Deletes a client; false when no such client is within reach.
    async fn delete_client(
        &self,
        id: Uuid,
        reach: Option<&str>,
        effects: &Effects,
    ) -> StoreResult<bool>;
    /// A new secret; the one it replaces stays valid until `previous_until`.
    async fn rotate_client_secret(
        &self,
        id: Uuid,
        reach: Option<&str>,
        secret_hash: &[u8],
        previous_until: DateTime<Utc>,
        now: DateTime<Utc>,
        effects: &Effects,
    ) -> StoreResult<bool>;
}

/// What `/oauth/introspect` and `/oauth/revoke` read and write of tokens (SPEC §11, RFC 7662,
/// RFC 7009): refresh tokens by their hash, and the `jti`s of revoked client tokens, shared by
/// every replica.
#[async_trait]
pub trait RevocationStore {
    /// The refresh token with SHA-256 `hash` (spent or not), with its session and user as
    /// stored now; `None` for an unknown token.
    async fn refresh_token_state(&self, hash: &[u8]) -> StoreResult<Option<RefreshTokenState>>;
    /// Remembers a client token's revocation and deletes the rows that expired before `now`,
    /// in one transaction with `effects`; false (nothing written) when the `jti` was revoked
    /// already.
    async fn record_token_revocation(
        &self,
        token: &RevokedToken,
        now: DateTime<Utc>,
        effects: &Effects,
    ) -> StoreResult<bool>;
    /// Whether the client token `jti` has been revoked.
    async fn token_revoked(&self, jti: Uuid) -> StoreResult<bool>;
}

/// API keys (SPEC §11): only the SHA-256 of a key is kept; revoking deletes it.
#[async_trait]
pub trait ApiKeyStore {
    /// A new key with the SHA-256 of the whole key, unless its owner holds `limit` keys
    /// already: then false and nothing written.
    async fn create_api_key(
        &self,
        key: &ApiKey,
        hash: &[u8],
        limit: u64,
        effects: &Effects,
    ) -> StoreResult<bool>;
    /// The key whose SHA-256 is `hash`.
    async fn api_key_by_hash(&self, hash: &[u8]) -> StoreResult<Option<StoredApiKey>>;
    /// An owner's keys, oldest first.
    async fn api_keys_of(&self, owner: KeyOwner) -> StoreResult<Vec<ApiKey>>;
    /// Deletes one of `owner`'s keys, with the effects built from it; `None` when the owner
    /// holds no such key (nothing written).
    async fn revoke_api_key(
        &self,
        owner: KeyOwner,
        id: Uuid,
        effects: EffectsOf<'_, ApiKey>,
    ) -> StoreResult<Option<ApiKey>>;
    /// When keys were last used, in one statement; a time earlier than the stored one is
    /// ignored, a key deleted meanwhile too.
    async fn record_api_key_uses(&self, uses: &[(Uuid, DateTime<Utc>)]) -> StoreResult<()>;
}

/// Everything the service keeps.
#[async_trait]
pub trait Store:
    UserStore
    + SessionStore
    + AccountStore
    + AdminStore
    + DirectoryStore
    + AuditStore
    + KeyStore
    + MfaStore
    + ClientStore
    + ApiKeyStore
    + PasskeyStore
    + RevocationStore
    + OutboxStore
    + Send
    + Sync
    + 'static
{
    /// `"sqlite"` or `"postgres"`, for logs and `/ready`.
    fn backend(&self) -> &'static str;
    /// Answers when the database does.
    async fn ping(&self) -> StoreResult<()>;
    /// Applies pending migrations; returns how many were applied.
    async fn migrate(&self) -> StoreResult<usize>;
    /// Closes the pool; in-flight queries finish first.
    async fn close(&self);
    /// Records events and audit entries that accompany no other change (a failed login).
    async fn record_effects(&self, effects: &Effects) -> StoreResult<()>;
    /// The write fence (`store/fence.rs`): raised after every committed change through this
    /// store that may change what a bearer check reads. The session cache trusts an entry
    /// only while this still reads what it read before loading the entry.
    fn write_epoch(&self) -> u64;
}
