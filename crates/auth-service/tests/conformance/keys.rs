//! Signing keys through their whole life (SPEC §3): sealed at rest in every configuration,
//! rows left in clear sealed on start, retired keys verifying for one token lifetime and then
//! refused and wiped, and revocation that never leaves the service without a key.

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use auth_service::config::SigningAlgorithm;
use auth_service::services::keys::{self, Keys};
use auth_service::Config;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{json, Value};

use crate::backend_tests;
use crate::support::backend::TestDatabase;
use crate::support::forge::{claims_for, connect_raw, sign};
use crate::support::process::{command, free_port, wait_exit};
use crate::support::{code_of, Backend, TestApp};

/// A `signing_keys` row as the database holds it.
struct KeyRow {
    kid: String,
    algorithm: String,
    private_key: Vec<u8>,
}

async fn key_rows(app: &TestApp) -> Vec<KeyRow> {
    let rows: Vec<(String, String, Vec<u8>)> =
        sqlx::query_as("SELECT kid, algorithm, private_key FROM signing_keys ORDER BY created_at")
            .fetch_all(&mut connect_raw(app).await)
            .await
            .unwrap();
    rows.into_iter()
        .map(|(kid, algorithm, private_key)| KeyRow {
            kid,
            algorithm,
            private_key,
        })
        .collect()
}

async fn key_row(app: &TestApp, kid: &str) -> KeyRow {
    key_rows(app)
        .await
        .into_iter()
        .find(|row| row.kid == kid)
        .unwrap()
}

fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

/// The clear private key of `row`, opened with the key the configuration names.
async fn opened(config: &Config, row: &KeyRow) -> Vec<u8> {
    let store = auth_service::store::connect(&config.database)
        .await
        .unwrap();
    let sealer = keys::sealer(config, store.as_ref()).await.unwrap();
    store.close().await;
    sealer
        .open(&row.kid, &row.private_key)
        .expect("the row is sealed with the configured key")
}

/// An access token for `claims` signed with the clear private key `der` of `row`.
fn signed_with(row: &KeyRow, der: &[u8], claims: &Value) -> String {
    let (algorithm, key) = match row.algorithm.as_str() {
        "EdDSA" => (Algorithm::EdDSA, EncodingKey::from_ed_der(der)),
        "ES256" => (Algorithm::ES256, EncodingKey::from_ec_der(der)),
        _ => (Algorithm::RS256, EncodingKey::from_rsa_der(der)),
    };
    sign(algorithm, &row.kid, claims, &key)
}

/// Another start on the app's database, as the CLI or a second replica does it.
async fn start_again(app: &TestApp, config: Config) -> anyhow::Result<Keys> {
    let store = auth_service::store::connect(&config.database)
        .await
        .unwrap();
    Keys::load(store, app.clock.clone(), Arc::new(config)).await
}

async fn introspected(app: &TestApp, token: &str) -> Value {
    app.post_json("/api/auth/introspect", &json!({ "token": token }))
        .await
        .json()
        .await
        .unwrap()
}

async fn published_kids(app: &TestApp) -> Vec<String> {
    let jwks: Value = app
        .get("/.well-known/jwks.json")
        .await
        .json()
        .await
        .unwrap();
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|key| key["kid"].as_str().unwrap().to_owned())
        .collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

async fn private_keys_are_sealed_at_rest_in_the_default_configuration(backend: Backend) {
    let app = backend.app().await;
    let alice = app.signed_up("alice").await;
    let row = key_row(&app, &kid_of(&alice.access_token)).await;

    let clear = opened(&app.config, &row).await;

    assert!(
        !contains(&row.private_key, &clear),
        "the row holds the clear key"
    );
    let forged = signed_with(&row, &clear, &claims_for(&app, &alice, 0));
    assert_eq!(
        app.get_as("/api/auth/me", &forged).await.status(),
        200,
        "the opened key is the signing key"
    );
}

/// SQLite without a configured key: one key file beside the database, private to its owner,
/// generated on the first start and reused on the next.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_keeps_a_generated_key_file_beside_the_database() {
    let app = Backend::Sqlite.app().await;
    let database = app.db.url.trim_start_matches("sqlite://").to_owned();
    let key_file = std::path::Path::new(&database).with_file_name("auth.key");
    let first = std::fs::read(&key_file).expect("a key file beside the database");

    start_again(&app, app.config.clone()).await.unwrap();

    assert_eq!(
        std::fs::read(&key_file).unwrap(),
        first,
        "reused, not replaced"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    }
}

async fn a_named_key_file_seals_the_keys(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("signing.key");
    std::fs::write(&key_file, "c2VhbGluZy1rZXktZm9yLWEtbmFtZWQta2V5LWZpbGU=\n").unwrap();
    let app = backend
        .app_with(|config| {
            config.auth.key_encryption_key = None;
            config.auth.key_file = Some(key_file.clone());
        })
        .await;
    let alice = app.signed_up("alice").await;
    let row = key_row(&app, &kid_of(&alice.access_token)).await;

    let clear = opened(&app.config, &row).await;

    assert!(
        !contains(&row.private_key, &clear),
        "the row holds the clear key"
    );
}

async fn a_row_left_in_clear_by_an_older_version_is_sealed_on_start(backend: Backend) {
    let app = backend.app().await;
    let old = key_rows(&app).await.remove(0);
    let algorithm = keys_algorithm(&old.algorithm);
    let clear = auth_service::crypto::keys::generate(algorithm).unwrap();
    let mut db = connect_raw(&app).await;
    sqlx::query(
        "INSERT INTO signing_keys (kid, algorithm, public_key, private_key, sealed, created_at) \
         SELECT $1, algorithm, $2, $3, FALSE, created_at FROM signing_keys WHERE kid = $4",
    )
    .bind(&clear.kid)
    .bind(clear.public_jwk.to_string())
    .bind(&clear.private_der)
    .bind(&old.kid)
    .execute(&mut db)
    .await
    .unwrap();
    sqlx::query("UPDATE signing_keys SET retired_at = created_at WHERE kid = $1")
        .bind(&old.kid)
        .execute(&mut db)
        .await
        .unwrap();

    start_again(&app, app.config.clone()).await.unwrap();
    app.keys.reload().await.unwrap();

    let row = key_row(&app, &clear.kid).await;
    assert!(
        !contains(&row.private_key, &clear.private_der),
        "still in clear after a start"
    );
    assert_eq!(opened(&app.config, &row).await, clear.private_der);
    let alice = app.signed_up("alice").await;
    assert_eq!(kid_of(&alice.access_token), clear.kid);
    assert_eq!(
        app.get_as("/api/auth/me", &alice.access_token)
            .await
            .status(),
        200
    );
}

fn keys_algorithm(name: &str) -> auth_service::config::SigningAlgorithm {
    auth_service::crypto::keys::parse_algorithm(name).unwrap()
}

async fn keys_sealed_with_another_key_stop_the_start_with_a_clear_line(backend: Backend) {
    let app = backend.app().await;
    let mut other = app.config.clone();
    other.auth.key_file = None;
    other.auth.key_encryption_key = Some(auth_service::config::Secret(
        "b3RoZXIta2V5LXRoYXQtZGlkLW5vdC1zZWFsLXRoZW0="
            .to_owned()
            .into(),
    ));

    let error = start_again(&app, other).await.err().expect("start refused");

    let line = format!("{error:#}");
    assert!(line.contains("sealed with another key"), "{line}");
    assert!(line.contains("auth.key_encryption_key"), "{line}");
    assert!(!line.contains('\n'), "{line}");
}

async fn a_retired_key_verifies_for_one_token_lifetime_then_is_refused_and_wiped(backend: Backend) {
    let app = backend.app().await;
    let alice = app.signed_up("alice").await;
    let old = key_row(&app, &kid_of(&alice.access_token)).await;
    let clear = opened(&app.config, &old).await;
    let lifetime = app.config.auth.access_token_ttl + Duration::from_secs(30);

    let new_kid = app.keys.rotate().await.unwrap();

    assert_eq!(
        introspected(&app, &alice.access_token).await["active"],
        true
    );
    let fresh = signed_with(&old, &clear, &claims_for(&app, &alice, 0));
    assert_eq!(app.get_as("/api/auth/me", &fresh).await.status(), 200);
    assert!(published_kids(&app).await.contains(&old.kid));
    assert_eq!(kid_of(&app.logged_in(&alice).await.access_token), new_kid);

    app.clock.advance(lifetime);
    let forged = signed_with(&old, &clear, &claims_for(&app, &alice, 0));

    assert_eq!(app.get_as("/api/auth/me", &forged).await.status(), 401);
    assert_eq!(app.get_as("/api/auth/me", &fresh).await.status(), 401);
    assert_eq!(
        introspected(&app, &forged).await,
        json!({ "active": false })
    );
    assert!(!published_kids(&app).await.contains(&old.kid));
    app.keys.reload().await.unwrap();
    assert!(
        key_row(&app, &old.kid).await.private_key.is_empty(),
        "the private half of an expired key is wiped"
    );
    assert_eq!(app.get_as("/api/auth/me", &forged).await.status(), 401);
}

async fn revoking_the_active_key_first_makes_a_new_key_active(backend: Backend) {
    let app = backend.app().await;
    let alice = app.signed_up("alice").await;
    let old = kid_of(&alice.access_token);

    assert!(app.keys.revoke(&old).await.unwrap());

    let again = app.logged_in(&alice).await;
    assert_ne!(kid_of(&again.access_token), old);
    assert_eq!(
        app.get_as("/api/auth/me", &again.access_token)
            .await
            .status(),
        200
    );
    assert_eq!(app.refresh(&alice.refresh_token).await.status(), 200);
    assert_eq!(
        app.get_as("/api/auth/me", &alice.access_token)
            .await
            .status(),
        401,
        "tokens of the revoked key fail at once"
    );
    assert!(key_row(&app, &old).await.private_key.is_empty());
    let listed = app.keys.list().await.unwrap();
    let active: Vec<_> = listed
        .iter()
        .filter(|key| key.retired_at.is_none() && key.revoked_at.is_none())
        .collect();
    assert_eq!(active.len(), 1, "{listed:?}");
}

async fn without_a_signing_key_refresh_answers_503_and_keeps_the_refresh_token(backend: Backend) {
    let app = backend.app().await;
    let alice = app.signed_up("alice").await;
    sqlx::query("UPDATE signing_keys SET revoked_at = created_at")
        .execute(&mut connect_raw(&app).await)
        .await
        .unwrap();
    app.keys.reload().await.unwrap();

    let refused = app.refresh(&alice.refresh_token).await;
    let login = app
        .post_json(
            "/api/auth/login",
            &json!({ "username": alice.username, "password": alice.password }),
        )
        .await;

    let signup = app
        .post_json(
            "/api/auth/signup",
            &json!({ "email": "bob@example.com", "username": "bob", "password": alice.password }),
        )
        .await;
    let (users, sessions): (i64, i64) =
        sqlx::query_as("SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM sessions)")
            .fetch_one(&mut connect_raw(&app).await)
            .await
            .unwrap();

    assert_eq!(refused.status(), 503);
    assert_eq!(code_of(refused).await, "service_unavailable");
    assert_eq!(login.status(), 503);
    assert_eq!(signup.status(), 503);
    assert_eq!(
        (users, sessions),
        (1, 1),
        "no account or session is written for a token that cannot be signed"
    );
    app.keys.rotate().await.unwrap();
    assert_eq!(
        app.refresh(&alice.refresh_token).await.status(),
        200,
        "the refresh token was not spent by the failed request"
    );
}

/// PostgreSQL only: replicas share no disk a key could be generated on, so a start without
/// a key-encryption key or key file is refused with one line naming both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_without_a_key_encryption_key_or_key_file_refuses_to_start() {
    if !Backend::Postgres.available("without_a_key_encryption_key_or_key_file_refuses_to_start") {
        return;
    }
    let db = TestDatabase::create(Backend::Postgres).await;
    let dir = tempfile::tempdir().unwrap();
    let mut start = command(dir.path());
    start
        .env_remove("APP__AUTH__KEY_ENCRYPTION_KEY")
        .env("APP__DATABASE__URL", &db.url)
        .env("APP__SERVER__PORT", free_port().to_string())
        .env("APP__SERVER__GRPC_PORT", free_port().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = start.spawn().unwrap();

    let exited = wait_exit(&mut child, Duration::from_secs(30));
    if exited.is_none() {
        let _ = child.kill();
    }
    let output = child.wait_with_output().unwrap();

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(exited.and_then(|status| status.code()), Some(2), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("APP__AUTH__KEY_ENCRYPTION_KEY"), "{stderr}");
    assert!(stderr.contains("APP__AUTH__KEY_FILE"), "{stderr}");
}

fn alg_of(token: &str) -> String {
    let header = jsonwebtoken::decode_header(token).unwrap();
    format!("{:?}", header.alg)
}

/// SPEC §3: ES256 is the default for new keys only. A database whose active key an earlier
/// release made as EdDSA (its default then) keeps signing EdDSA after the upgrade, and tokens
/// already out stay valid; the next rotation makes a key of the new default.
async fn an_upgrade_keeps_the_active_keys_algorithm_and_new_keys_take_the_default(
    backend: Backend,
) {
    let earlier = backend
        .app_with(|config| config.auth.signing_algorithm = SigningAlgorithm::EdDSA)
        .await;
    let alice = earlier.signed_up("alice").await;
    let default = Config::default().auth.signing_algorithm;

    let upgraded = earlier
        .beside(|config| config.auth.signing_algorithm = default)
        .await;
    let bob = upgraded.signed_up("bob").await;
    let rotated = upgraded.keys.rotate().await.unwrap();
    let carol = upgraded.signed_up("carol").await;
    let fresh = backend.app().await;
    let dave = fresh.signed_up("dave").await;

    assert_eq!(default, SigningAlgorithm::ES256);
    assert_eq!(alg_of(&alice.access_token), "EdDSA");
    assert_eq!(
        alg_of(&bob.access_token),
        "EdDSA",
        "the active key kept its algorithm"
    );
    assert_eq!(kid_of(&bob.access_token), kid_of(&alice.access_token));
    assert_eq!(
        upgraded
            .get_as("/api/auth/me", &alice.access_token)
            .await
            .status(),
        200,
        "a token of the earlier release is still good"
    );
    assert_eq!(kid_of(&carol.access_token), rotated);
    assert_eq!(
        alg_of(&carol.access_token),
        "ES256",
        "a rotation takes the default"
    );
    assert_eq!(
        upgraded
            .get_as("/api/auth/me", &bob.access_token)
            .await
            .status(),
        200,
        "the retired EdDSA key still verifies its tokens"
    );
    assert_eq!(
        alg_of(&dave.access_token),
        "ES256",
        "a fresh database signs ES256"
    );
    assert_eq!(key_rows(&fresh).await[0].algorithm, "ES256");
}

backend_tests! {
    an_upgrade_keeps_the_active_keys_algorithm_and_new_keys_take_the_default,
    private_keys_are_sealed_at_rest_in_the_default_configuration,
    a_named_key_file_seals_the_keys,
    a_row_left_in_clear_by_an_older_version_is_sealed_on_start,
    keys_sealed_with_another_key_stop_the_start_with_a_clear_line,
    a_retired_key_verifies_for_one_token_lifetime_then_is_refused_and_wiped,
    revoking_the_active_key_first_makes_a_new_key_active,
    without_a_signing_key_refresh_answers_503_and_keeps_the_refresh_token,
}
