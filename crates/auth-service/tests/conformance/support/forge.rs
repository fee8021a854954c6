//! Forged access tokens for the attacks of SPEC §3, made with the stored signing key or
//! without it, and key revocation as `auth-service keys revoke` does it.

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use sqlx::{AnyConnection, Connection};

use super::{Account, TestApp};

/// The active signing key as stored: `kid`, its algorithm, public JWK text, private DER.
pub struct StoredKey {
    pub kid: String,
    pub algorithm: Algorithm,
    pub public_jwk: String,
    pub private_der: Vec<u8>,
}

pub async fn connect_raw(app: &TestApp) -> AnyConnection {
    sqlx::any::install_default_drivers();
    AnyConnection::connect(&app.db.url).await.unwrap()
}

pub async fn active_key(app: &TestApp) -> StoredKey {
    let mut conn = connect_raw(app).await;
    let (kid, algorithm, public_jwk, sealed): (String, String, String, Vec<u8>) = sqlx::query_as(
        "SELECT kid, algorithm, public_key, private_key FROM signing_keys \
         WHERE retired_at IS NULL AND revoked_at IS NULL",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    // SPEC §3: the private half is sealed; the test holds the key that sealed it.
    let store = auth_service::store::connect(&app.config.database)
        .await
        .unwrap();
    let sealer = auth_service::services::keys::sealer(&app.config, store.as_ref())
        .await
        .unwrap();
    store.close().await;
    StoredKey {
        private_der: sealer.open(&kid, &sealed).unwrap(),
        algorithm: algorithm.parse().unwrap(),
        kid,
        public_jwk,
    }
}

/// Revokes `kid` through the same code as `auth-service keys revoke KID`.
pub async fn revoke_key(app: &TestApp, kid: &str) {
    let store = auth_service::store::connect(&app.config.database)
        .await
        .unwrap();
    let keys = auth_service::services::keys::Keys::load(
        store.clone(),
        app.clock.clone(),
        Arc::new(app.config.clone()),
    )
    .await
    .unwrap();

    assert!(keys.revoke(kid).await.unwrap(), "{kid} was revoked");
    store.close().await;
}

/// The claims the service would issue to `account`, with times relative to server time.
pub fn claims_for(app: &TestApp, account: &Account, offset_seconds: i64) -> Value {
    let now = app.clock.now().timestamp() + offset_seconds;
    json!({
        "iss": app.config.issuer(),
        "aud": app.config.auth.audience,
        "sub": account.user_id,
        "sid": account.session_id,
        "jti": uuid::Uuid::new_v4(),
        "iat": now,
        "nbf": now,
        "exp": now + 900,
        "email": account.email,
        "username": account.username,
        "roles": ["user"],
        "verified": false,
    })
}

pub fn sign(alg: Algorithm, kid: &str, claims: &Value, key: &EncodingKey) -> String {
    let header = Header {
        alg,
        kid: Some(kid.to_owned()),
        ..Header::default()
    };
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

/// `claims` signed with `key` in its own algorithm, as the service would sign them.
pub fn sign_with_key(key: &StoredKey, claims: &Value) -> String {
    let der = &key.private_der;
    let encoding = match key.algorithm {
        Algorithm::EdDSA => EncodingKey::from_ed_der(der),
        Algorithm::ES256 => EncodingKey::from_ec_der(der),
        _ => EncodingKey::from_rsa_der(der),
    };
    sign(key.algorithm, &key.kid, claims, &encoding)
}

pub fn segment(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

/// `alg: none` naming the real key, with no signature.
pub fn unsigned(key: &StoredKey, claims: &Value) -> String {
    let header = json!({ "alg": "none", "typ": "JWT", "kid": key.kid });
    format!("{}.{}.", segment(&header), segment(claims))
}

/// HS256 "signed" with the public key: its raw 32 bytes (Ed25519's key, P-256's x), and its
/// JWK text.
pub fn hs256_with_public_key(key: &StoredKey, claims: &Value) -> [String; 2] {
    let jwk: Value = serde_json::from_str(&key.public_jwk).unwrap();
    let raw_public = URL_SAFE_NO_PAD.decode(jwk["x"].as_str().unwrap()).unwrap();
    assert_eq!(raw_public.len(), 32);
    [
        EncodingKey::from_secret(&raw_public).unwrap(),
        EncodingKey::from_secret(key.public_jwk.as_bytes()).unwrap(),
    ]
    .map(|secret| sign(Algorithm::HS256, &key.kid, claims, &secret))
}

/// `token` with its roles changed to admin and its signature kept.
pub fn tampered(token: &str) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    let mut payload: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    payload["roles"] = json!(["admin"]);
    format!("{}.{}.{}", parts[0], segment(&payload), parts[2])
}

/// Signed by a fresh Ed25519 key under a kid the service does not know.
pub fn signed_by_a_stranger(claims: &Value) -> String {
    let der =
        ring::signature::Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).unwrap();
    let stranger = StoredKey {
        kid: "not-a-known-kid".to_owned(),
        algorithm: Algorithm::EdDSA,
        public_jwk: String::new(),
        private_der: der.as_ref().to_vec(),
    };
    sign_with_key(&stranger, claims)
}
