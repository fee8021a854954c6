//! The ecosystem's verifiers accept our tokens (SPEC §3, issue 16): a default-configured
//! binary's access token verifies with PyJWT, python-jose and joserfc, each with its default
//! settings, the JWKS fetched from the running server (`verifiers.py` does the Python side).
//! Under `CI` a missing `python3` package fails the test; `.ci/run` installs them.

use std::process::Command;

use serde_json::{json, Value};

use crate::backend_tests;
use crate::support::backend::TestDatabase;
use crate::support::process::Spawned;
use crate::support::{Backend, PASSWORD};

const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/conformance/verifiers.py"
);

/// Exit code of `verifiers.py` when a package is missing.
const MISSING_PACKAGE: i32 = 3;

async fn a_default_servers_token_verifies_with_pyjwt_python_jose_and_joserfc(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let dir = tempfile::tempdir().unwrap();
    // Nothing but where the data lives: algorithm, issuer and audience are the defaults.
    let service = Spawned::start(dir.path(), &[("APP__DATABASE__URL", db.url.clone())]).await;
    let http = reqwest::Client::new();
    let signup: Value = http
        .post(service.url("/api/auth/signup"))
        .json(&json!({ "email": "python@example.com", "username": "python", "password": PASSWORD }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let discovery: Value = http
        .get(service.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = signup["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no token from the signup: {signup}"));
    let issuer = discovery["issuer"].as_str().unwrap();
    let audience = auth_service::Config::default().auth.audience;

    let run = Command::new("python3")
        .arg(SCRIPT)
        .arg(service.url("/.well-known/jwks.json"))
        .args([issuer, &audience, token])
        .output();

    let output = match run {
        Ok(output) => output,
        Err(error) => return missing(&format!("python3 cannot be run ({error})")),
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if output.status.code() == Some(MISSING_PACKAGE) {
        return missing(stdout.trim());
    }
    assert!(
        output.status.success(),
        "a verifier refused a default token:\n{stdout}\n{stderr}"
    );
    for library in ["PyJWT", "python-jose", "joserfc"] {
        assert!(
            stdout.contains(&format!("{library}: accepted")),
            "{library}:\n{stdout}"
        );
    }
    assert_eq!(stdout.matches("refused it for").count(), 6, "{stdout}");
    assert_eq!(
        jsonwebtoken::decode_header(token).unwrap().alg,
        jsonwebtoken::Algorithm::ES256
    );
}

/// A missing part fails under `CI` and skips with what to install elsewhere.
fn missing(what: &str) {
    let install = "python3 -m pip install -r .ci/verifiers-requirements.txt (.ci/run does)";
    assert!(
        std::env::var_os("CI").is_none(),
        "CI is set but the Python verifiers cannot run: {what}; {install}"
    );
    eprintln!("SKIPPED verifiers: {what}; {install}");
}

backend_tests! {
    a_default_servers_token_verifies_with_pyjwt_python_jose_and_joserfc,
}
