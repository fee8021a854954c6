//! Criterion micro-benchmarks of the service's own crypto, through its library: argon2id
//! hashing and verification with production parameters, access-token signing and verification
//! for ES256 (the default, on jsonwebtoken's aws-lc-rs backend), EdDSA and RS256, offline
//! verification with `auth-client` for each (issue 7), refresh-token generation and
//! hashing, second factors, and the server's side of a passkey assertion.
//!
//! `cargo bench -p auth-bench --bench crypto`; a name filter runs a part, e.g. `-- jwt`.
//! After criterion's own report it prints one line per benchmark in operations per second on
//! one core, from the same timed runs (warm-up included).

#![expect(clippy::print_stdout, reason = "the summary is printed on stdout")]
#![expect(
    clippy::unwrap_used,
    reason = "a benchmark that cannot set up should stop at once"
)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use auth_client::{Verifier, VerifierConfig};
use auth_service::config::{PasswordConfig, SigningAlgorithm, WebauthnConfig};
use auth_service::crypto::jwt::{AccessClaims, KeyRing, RingKey};
use auth_service::crypto::keys;
use auth_service::crypto::passkeys::{
    Passkey, PasskeyAuthentication, PublicKeyCredential, RegisterPublicKeyCredential, RelyingParty,
};
use auth_service::crypto::password::PasswordHasher;
use auth_service::crypto::sealing::Sealer;
use auth_service::crypto::tokens;
use auth_service::crypto::totp;
use chrono::Utc;
use criterion::{BenchmarkId, Criterion, Throughput};
use secrecy::SecretString;
use tokio::runtime::Runtime;
use uuid::Uuid;

const ISSUER: &str = "https://auth.bench";
const AUDIENCE: &str = "auth-service";
const PASSWORD: &str = "correct horse battery staple 42";
const ALGORITHMS: [(SigningAlgorithm, &str); 3] = [
    (SigningAlgorithm::ES256, "ES256"),
    (SigningAlgorithm::EdDSA, "EdDSA"),
    (SigningAlgorithm::RS256, "RS256"),
];

/// Iterations and time of every timed run, per benchmark, for the per-second summary.
#[derive(Default, Clone)]
struct Tally(Arc<Mutex<BTreeMap<String, (u64, Duration)>>>);

impl Tally {
    fn add(&self, name: &str, iterations: u64, took: Duration) {
        let mut tally = self.0.lock().unwrap();
        let entry = tally.entry(name.to_owned()).or_default();
        entry.0 += iterations;
        entry.1 += took;
    }

    fn print(&self) {
        println!("\nper second on one core (all timed runs of each benchmark, warm-up included):");
        for (name, (iterations, took)) in self.0.lock().unwrap().iter() {
            let rate = *iterations as f64 / took.as_secs_f64().max(1e-9);
            println!("  {name:<64} {rate:>12.0}/s");
        }
    }
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

fn secret(value: &str) -> SecretString {
    SecretString::from(value.to_owned())
}

/// argon2id with the production defaults, through the service's bounded hashing pool.
fn password(c: &mut Criterion, tally: &Tally) {
    let rt = runtime();
    let hasher = PasswordHasher::new(&PasswordConfig::default()).unwrap();
    let stored = rt.block_on(hasher.hash(secret(PASSWORD))).unwrap();
    let mut group = c.benchmark_group("password");
    group.sample_size(10).throughput(Throughput::Elements(1));
    group.bench_function("hash argon2id m=19456 t=2 p=1", |b| {
        b.to_async(&rt).iter_custom(|iterations| {
            let hasher = hasher.clone();
            let tally = tally.clone();
            async move {
                let started = Instant::now();
                for _ in 0..iterations {
                    hasher.hash(secret(PASSWORD)).await.unwrap();
                }
                let took = started.elapsed();
                tally.add("password hashes (argon2id, production)", iterations, took);
                took
            }
        });
    });
    group.bench_function("verify argon2id m=19456 t=2 p=1", |b| {
        b.to_async(&rt).iter_custom(|iterations| {
            let (hasher, stored, tally) = (hasher.clone(), stored.clone(), tally.clone());
            async move {
                let started = Instant::now();
                for _ in 0..iterations {
                    hasher
                        .verify(secret(PASSWORD), Some(stored.clone()))
                        .await
                        .unwrap();
                }
                let took = started.elapsed();
                tally.add(
                    "password verifications (argon2id, production)",
                    iterations,
                    took,
                );
                took
            }
        });
    });
    group.finish();
}

fn key_ring(algorithm: SigningAlgorithm) -> KeyRing {
    let material = keys::generate(algorithm).unwrap();
    KeyRing::new(
        vec![RingKey {
            kid: material.kid,
            algorithm,
            public_jwk: material.public_jwk,
            private_der: Some(material.private_der),
            verifies_until: None,
            revoked: false,
        }],
        ISSUER,
        AUDIENCE,
    )
    .unwrap()
}

/// Claims of the size the service issues: one role, no territory.
fn claims() -> AccessClaims {
    let now = Utc::now().timestamp();
    AccessClaims {
        iss: ISSUER.into(),
        aud: AUDIENCE.into(),
        sub: Uuid::now_v7(),
        sid: Uuid::now_v7(),
        jti: Uuid::now_v7(),
        iat: now,
        nbf: now,
        exp: now + 900,
        email: "bench-user@bench.example.com".into(),
        username: "bench-user".into(),
        roles: vec!["user".into()],
        territory: None,
        verified: true,
        amr: vec!["pwd".into()],
        scope: None,
        act: None,
    }
}

/// Distinct tokens the cold verification cycles through: more than the 4 096 a `KeyRing`
/// remembers as verified, so every one of them is a signature check.
const COLD_TOKENS: usize = 5_000;

/// Access tokens as the service signs and checks them (`KeyRing`), per algorithm. A ring
/// remembers tokens it has verified, so verification is timed twice: a token seen before
/// (what a client presenting its token again costs) and tokens never seen (the signature
/// check).
fn jwt(c: &mut Criterion, tally: &Tally) {
    let mut group = c.benchmark_group("jwt");
    group.throughput(Throughput::Elements(1));
    for (algorithm, name) in ALGORITHMS {
        let ring = key_ring(algorithm);
        let claims = claims();
        let token = ring.sign(&claims).unwrap();
        let cold: Vec<String> = (0..COLD_TOKENS)
            .map(|_| ring.sign(&self::claims()).unwrap())
            .collect();
        group.bench_function(BenchmarkId::new("sign", name), |b| {
            b.iter_custom(|iterations| {
                let started = Instant::now();
                for _ in 0..iterations {
                    std::hint::black_box(ring.sign(&claims).unwrap());
                }
                let took = started.elapsed();
                tally.add(
                    &format!("access tokens signed ({name}, KeyRing::sign)"),
                    iterations,
                    took,
                );
                took
            });
        });
        // Outside the closure: criterion calls it afresh for every sample, and restarting the
        // cycle there would present the same few tokens again.
        let mut next = 0;
        group.bench_function(BenchmarkId::new("verify new token", name), |b| {
            b.iter_custom(|iterations| {
                let started = Instant::now();
                for _ in 0..iterations {
                    let token = &cold[next % cold.len()];
                    next += 1;
                    std::hint::black_box(ring.verify(token, Utc::now()).unwrap());
                }
                let took = started.elapsed();
                tally.add(
                    &format!("access tokens verified, new ({name}, KeyRing::verify)"),
                    iterations,
                    took,
                );
                took
            });
        });
        group.bench_function(BenchmarkId::new("verify remembered token", name), |b| {
            b.iter_custom(|iterations| {
                let started = Instant::now();
                for _ in 0..iterations {
                    std::hint::black_box(ring.verify(&token, Utc::now()).unwrap());
                }
                let took = started.elapsed();
                tally.add(
                    &format!("access tokens verified, remembered ({name}, KeyRing::verify)"),
                    iterations,
                    took,
                );
                took
            });
        });
    }
    group.finish();
}

/// Serves `{"keys": …}` at any path, one connection at a time, for the life of the process.
fn serve_jwks(ring: &KeyRing) -> String {
    let body = serde_json::json!({ "keys": ring.jwks(Utc::now()) }).to_string();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request);
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    format!("http://{address}")
}

/// Offline verification in another service: `auth_client::Verifier::verify` with the JWKS
/// cached (fetched once before timing). Issue 7's "verifications per second per core".
fn offline(c: &mut Criterion, tally: &Tally) {
    let rt = runtime();
    let mut group = c.benchmark_group("offline verification (auth-client)");
    group.throughput(Throughput::Elements(1));
    for (algorithm, name) in ALGORITHMS {
        let ring = key_ring(algorithm);
        let token = ring.sign(&claims()).unwrap();
        let verifier =
            Verifier::new(VerifierConfig::new(serve_jwks(&ring), ISSUER, AUDIENCE)).unwrap();
        rt.block_on(verifier.refresh()).unwrap();
        rt.block_on(verifier.verify(&token)).unwrap();
        group.bench_function(BenchmarkId::new("verify", name), |b| {
            b.to_async(&rt).iter_custom(|iterations| {
                let (verifier, token, tally) = (verifier.clone(), token.clone(), tally.clone());
                async move {
                    let started = Instant::now();
                    for _ in 0..iterations {
                        std::hint::black_box(verifier.verify(&token).await.unwrap());
                    }
                    let took = started.elapsed();
                    tally.add(
                        &format!("offline verifications ({name}, auth-client)"),
                        iterations,
                        took,
                    );
                    took
                }
            });
        });
    }
    group.finish();
}

/// A named piece of work to time.
type Case<'a> = (&'static str, Box<dyn Fn() + 'a>);

/// Refresh tokens: a new one (256 random bits + SHA-256), the hash of a presented one, and
/// the HMAC successor of a rotation.
fn refresh_tokens(c: &mut Criterion, tally: &Tally) {
    let mut group = c.benchmark_group("refresh token");
    group.throughput(Throughput::Elements(1));
    let presented = tokens::random_token().unwrap().plaintext;
    let cases: [Case<'_>; 3] = [
        (
            "generate + SHA-256",
            Box::new(|| {
                std::hint::black_box(tokens::random_token().unwrap());
            }),
        ),
        (
            "SHA-256 of a presented token",
            Box::new(|| {
                std::hint::black_box(tokens::hash_token(secrecy::ExposeSecret::expose_secret(
                    &presented,
                )));
            }),
        ),
        (
            "successor (HMAC-SHA-256 + SHA-256)",
            Box::new(|| {
                std::hint::black_box(tokens::successor_token(&presented, Uuid::nil()));
            }),
        ),
    ];
    for (name, work) in &cases {
        group.bench_function(*name, |b| {
            b.iter_custom(|iterations| {
                let started = Instant::now();
                for _ in 0..iterations {
                    work();
                }
                let took = started.elapsed();
                tally.add(&format!("refresh tokens: {name}"), iterations, took);
                took
            });
        });
    }
    group.finish();
}

/// Second factors (SPEC §10): checking a TOTP code (up to three HMAC-SHA-1 over the ±1 step
/// window; a code of the previous step is the worst accepted case), opening the sealed secret,
/// and hashing a presented recovery code.
fn second_factor(c: &mut Criterion, tally: &Tally) {
    let mut group = c.benchmark_group("second factor");
    group.throughput(Throughput::Elements(1));
    let secret = totp::new_secret().unwrap();
    let generator = totp::totp(&secret, "https://auth.example.com", "bench@example.com").unwrap();
    let now = 1_800_000_000;
    let previous = generator.generate(now - totp::STEP_SECONDS).to_string();
    let sealer =
        Sealer::from_base64("dGVzdC1rZXktZW5jcnlwdGlvbi1rZXktMzItYnl0ZXM=", "bench").unwrap();
    let sealed = sealer.seal("totp:bench", &secret).unwrap();
    let cases: [Case<'_>; 3] = [
        (
            "TOTP check (previous step)",
            Box::new(|| {
                std::hint::black_box(totp::matching_step(&generator, &previous, now));
            }),
        ),
        (
            "open the sealed secret + TOTP check",
            Box::new(|| {
                let opened = sealer.open("totp:bench", &sealed).unwrap();
                let again = totp::totp(&opened, "https://auth.example.com", "b@example.com");
                std::hint::black_box(totp::matching_step(&again.unwrap(), &previous, now));
            }),
        ),
        (
            "recovery code SHA-256",
            Box::new(|| {
                std::hint::black_box(totp::recovery_code_hash("abcd-efgh-ijkl-mnop"));
            }),
        ),
    ];
    for (name, work) in &cases {
        group.bench_function(*name, |b| {
            b.iter_custom(|iterations| {
                let started = Instant::now();
                for _ in 0..iterations {
                    work();
                }
                let took = started.elapsed();
                tally.add(&format!("second factor: {name}"), iterations, took);
                took
            });
        });
    }
    group.finish();
}

/// The software authenticator of the conformance tests, shared rather than copied.
#[path = "../../crates/auth-service/tests/conformance/support/passkey.rs"]
mod soft_passkey;

/// Passkeys (SPEC §10): the server's side of an assertion — the library's
/// `finish_passkey_authentication` on a prepared state (clientDataJSON parsed, challenge,
/// origin and RP id hash compared, user verification and counter checked, one ES256
/// signature verified); and the whole of it as a request does it, with the ceremony state and
/// the stored credential read back from their JSON and the updated credential written again.
fn passkey(c: &mut Criterion, tally: &Tally) {
    let mut group = c.benchmark_group("passkey");
    group.throughput(Throughput::Elements(1));
    let rp = RelyingParty::new(
        &WebauthnConfig::default()
            .relying_party("http://localhost:8080")
            .unwrap(),
    )
    .unwrap();
    let (options, registration) = rp
        .start_registration(Uuid::now_v7(), "bench", "Bench", Vec::new())
        .unwrap();
    let (mut key, credential) =
        soft_passkey::SoftPasskey::register(&serde_json::to_value(&options).unwrap());
    let credential: RegisterPublicKeyCredential = serde_json::from_value(credential).unwrap();
    let passkey = rp
        .webauthn()
        .finish_passkey_registration(&credential, &registration)
        .unwrap();
    let (options, state) = rp.start_for(std::slice::from_ref(&passkey)).unwrap();
    let assertion: PublicKeyCredential =
        serde_json::from_value(key.assert(&serde_json::to_value(&options).unwrap())).unwrap();
    let stored_state = serde_json::to_string(&state).unwrap();
    let stored_passkey = serde_json::to_string(&passkey).unwrap();
    let cases: [Case<'_>; 2] = [
        (
            "assertion verify (finish_passkey_authentication)",
            Box::new(|| {
                let result = rp
                    .webauthn()
                    .finish_passkey_authentication(&assertion, &state);
                std::hint::black_box(result.unwrap());
            }),
        ),
        (
            "assertion with state and credential from JSON",
            Box::new(|| {
                let state: PasskeyAuthentication = serde_json::from_str(&stored_state).unwrap();
                let mut passkey: Passkey = serde_json::from_str(&stored_passkey).unwrap();
                let result = rp
                    .webauthn()
                    .finish_passkey_authentication(&assertion, &state)
                    .unwrap();
                passkey.update_credential(&result);
                std::hint::black_box(serde_json::to_string(&passkey).unwrap());
            }),
        ),
    ];
    for (name, work) in cases {
        group.bench_function(name, |b| {
            b.iter_custom(|iterations| {
                let started = Instant::now();
                for _ in 0..iterations {
                    work();
                }
                let took = started.elapsed();
                tally.add(&format!("passkey: {name}"), iterations, took);
                took
            });
        });
    }
    group.finish();
}

fn main() {
    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    let tally = Tally::default();
    password(&mut criterion, &tally);
    jwt(&mut criterion, &tally);
    offline(&mut criterion, &tally);
    refresh_tokens(&mut criterion, &tally);
    second_factor(&mut criterion, &tally);
    passkey(&mut criterion, &tally);
    criterion.final_summary();
    tally.print();
}
