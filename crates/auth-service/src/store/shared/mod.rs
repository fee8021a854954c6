//! What both wings say alike, written once: the row structs they decode into, and one
//! `macro_rules!` per area that expands the method bodies whose text is the same on both
//! databases into each wing.
//!
//! How to read it: `postgres/<area>.rs` and `sqlite/<area>.rs` each call
//! `shared::<area>::<area>_store! { impl <Area>Store for <Wing> { … } }`. The methods written
//! inside that block are the wing's own (a real dialect difference, said where it stands);
//! every other method of the trait is in `shared/<area>.rs`. Where only one step differs, the
//! shared body calls a hook that the wing's `<area>.rs` defines (`lock_territory`,
//! `take_admin_turn`, `take_claim_turn`, `rotate`) or names its SQL constant
//! (`END_USER_SESSIONS`, `BEYOND_MAX_SESSIONS`).
//!
//! The shared bodies name, unqualified, what each wing's area file imports: the crate's types
//! from their defining modules; from the wing's `dialect.rs`, the names whose meaning differs
//! per database (`Db`, `DbArgs`, `Tx`, `Conn`, `DbUuid`, `DbList`, `DbJson`, the bind helpers
//! `id`, `ts`, `json`, and `db_error`); from the wing's `rows.rs`, the helpers `row_helpers!`
//! expands there (`Run::run`, `commit`, `commit_found`, `credentials_by_id`, …); and the wing
//! store's `begin_write()`, which PostgreSQL answers with a plain transaction and SQLite with
//! its writer's turn. A name missing from a wing's imports is a compile error in that wing.
//!
//! Why macros and not generics: the contract's issue (15) keeps the twins concrete — no code
//! generic over `sqlx::Database`/`Executor`, whose bounds (`for<'c> &'c mut Conn: Executor`,
//! `Encode`/`Type`/`Decode` per bound value) would bury a short query under its where-clause,
//! and each wing stays free to diverge where its database does. A macro expands the same
//! text into each wing, which then type-checks against its own driver.

pub(crate) mod accounts;
pub(crate) mod admin;
pub(crate) mod api_keys;
pub(crate) mod audit;
pub(crate) mod clients;
pub(crate) mod directory;
pub(crate) mod keys;
pub(crate) mod mfa;
pub(crate) mod outbox;
pub(crate) mod passkeys;
pub(crate) mod revocations;
pub(crate) mod rows;
pub(crate) mod sessions;
pub(crate) mod store;
pub(crate) mod users;
