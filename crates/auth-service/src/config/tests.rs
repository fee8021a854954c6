//! Unit tests of loading, validation and redaction.

use std::time::Duration;

use super::*;
use figment::providers::Serialized;

fn with(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let mut figment = Figment::new();
    for (key, value) in pairs {
        figment = figment.merge(Serialized::default(key, value));
    }
    Config::from_figment(&figment)
}

#[test]
fn defaults_match_the_spec() {
    let config = with(&[]).unwrap();

    assert_eq!(config.server.port, 8080);
    assert_eq!(config.server.grpc_port, 50051);
    assert_eq!(config.database.url.expose(), "sqlite://./data/auth.db");
    assert_eq!(config.auth.access_token_ttl, Duration::from_secs(900));
    assert_eq!(
        config.auth.session_lifetime,
        Duration::from_secs(168 * 3600)
    );
    assert_eq!(config.password.argon2_memory_kib, 19 * 1024);
    assert_eq!(config.server.body_limit_bytes, 65536);
    assert_eq!(config.auth.signing_algorithm, SigningAlgorithm::ES256);
}

#[test]
fn durations_are_humane() {
    let config = with(&[
        ("auth.refresh_token_ttl", "7d"),
        ("auth.access_token_ttl", "15m"),
    ])
    .unwrap();

    assert_eq!(
        config.auth.refresh_token_ttl,
        Duration::from_secs(7 * 86400)
    );
    assert_eq!(config.auth.access_token_ttl, Duration::from_secs(900));
}

#[test]
fn a_bad_value_names_its_key() {
    let error = with(&[("auth.access_token_ttl", "soon")])
        .unwrap_err()
        .to_string();

    assert!(error.contains("auth.access_token_ttl"), "{error}");
    assert!(!error.contains('\n'), "{error}");
}

#[test]
fn limits_mail_and_policy_values_are_checked() {
    let cases = [
        ("limits.login_per_ip.max", "0", "limits.login_per_ip"),
        ("limits.lockout", "0s", "limits.lockout"),
        ("server.max_connections", "0", "server.max_connections"),
        (
            "server.header_read_timeout",
            "0s",
            "server.header_read_timeout",
        ),
        ("mail.reset_token_ttl", "1000000y", "mail.reset_token_ttl"),
        ("password.min_score", "5", "password.min_score"),
        (
            "server.cors_origins",
            "https://app.example.com/path",
            "server.cors_origins[0]",
        ),
    ];

    for (key, value, named) in cases {
        let error = with(&[(key, value)]).unwrap_err().to_string();
        assert!(error.contains(named), "{key}={value}: {error}");
    }
}

#[test]
fn lists_may_be_comma_separated() {
    let config = with(&[(
        "server.cors_origins",
        "https://a.example, https://b.example:8443",
    )])
    .unwrap();

    assert_eq!(
        config.server.cors_origins,
        ["https://a.example", "https://b.example:8443"]
    );
}

#[test]
fn roles_requiring_a_second_factor_are_role_names() {
    let config = with(&[("auth.require_mfa_for_roles", "admin, ops-team")]).unwrap();
    let error = with(&[("auth.require_mfa_for_roles", "admin,Root User")])
        .unwrap_err()
        .to_string();

    assert!(with(&[]).unwrap().auth.require_mfa_for_roles.is_empty());
    assert_eq!(config.auth.require_mfa_for_roles, ["admin", "ops-team"]);
    assert!(error.contains("auth.require_mfa_for_roles"), "{error}");
    assert!(error.contains("Root User"), "{error}");
}

#[test]
fn an_unknown_key_is_named() {
    let error = with(&[("server.prot", "1")]).unwrap_err().to_string();

    assert!(error.contains("server.prot: unknown key"), "{error}");
}

#[test]
fn redacted_output_hides_secrets() {
    let config = with(&[
        ("database.url", "postgres://app:hunter22@db:5432/auth"),
        ("auth.key_encryption_key", "c2VjcmV0LWtleS1tYXRlcmlhbA"),
    ])
    .unwrap();

    let printed = config.redacted();

    assert!(!printed.contains("hunter22"), "{printed}");
    assert!(!printed.contains("c2VjcmV0LWtleS1tYXRlcmlhbA"), "{printed}");
    assert!(
        printed.contains("postgres://app:REDACTED@db:5432/auth"),
        "{printed}"
    );
    assert!(
        printed.contains("key_encryption_key = \"[REDACTED]\""),
        "{printed}"
    );
}

#[test]
fn each_half_of_a_limit_defaults_on_its_own() {
    let defaults = LimitsConfig::default();

    // As the environment gives it (`APP__LIMITS__LOGIN_PER_IP__MAX=3` parses as a number).
    let max_only = Config::from_figment(
        &Figment::new().merge(Serialized::default("limits.login_per_ip.max", 3)),
    )
    .unwrap();
    let per_only = with(&[("limits.mail_per_account.per", "5m")]).unwrap();

    assert_eq!(max_only.limits.login_per_ip.max, 3);
    assert_eq!(max_only.limits.login_per_ip.per, defaults.login_per_ip.per);
    assert_eq!(max_only.limits.signup_per_ip, defaults.signup_per_ip);
    assert_eq!(
        per_only.limits.mail_per_account.max,
        defaults.mail_per_account.max
    );
    assert_eq!(
        per_only.limits.mail_per_account.per,
        Duration::from_secs(300)
    );
}

#[test]
fn a_half_limit_with_an_unknown_key_is_still_refused() {
    let error = with(&[("limits.login_per_ip.maxx", "3")])
        .unwrap_err()
        .to_string();

    assert!(error.contains("limits.login_per_ip.maxx"), "{error}");
}

#[test]
fn the_refresh_cookie_is_strict_by_default_and_its_same_site_is_configurable() {
    let defaults = with(&[]).unwrap();
    let lax = with(&[("server.cookie_same_site", "Lax")]).unwrap();
    let none = with(&[("server.cookie_same_site", "None")]).unwrap();

    assert_eq!(defaults.server.cookie_same_site, CookieSameSite::Strict);
    assert!(defaults.auth.refresh_token_in_body);
    assert_eq!(lax.server.cookie_same_site, CookieSameSite::Lax);
    assert_eq!(none.server.cookie_same_site, CookieSameSite::None);
}

#[test]
fn same_site_none_without_secure_is_refused_in_one_line() {
    let error = Config::from_figment(
        &Figment::new()
            .merge(Serialized::default("server.cookie_same_site", "None"))
            .merge(Serialized::default("server.cookie_secure", false)),
    )
    .unwrap_err()
    .to_string();
    let unknown = with(&[("server.cookie_same_site", "Loose")])
        .unwrap_err()
        .to_string();

    assert!(error.contains("server.cookie_same_site"), "{error}");
    assert!(error.contains("cookie_secure"), "{error}");
    assert!(!error.contains('\n'), "{error}");
    assert!(unknown.contains("server.cookie_same_site"), "{unknown}");
}

#[test]
fn the_login_page_is_an_absolute_secure_url_checked_at_start() {
    assert_eq!(with(&[]).unwrap().oauth.login_url, None);
    for good in [
        "https://login.example/sign-in",
        "https://login.example/sign-in?tenant=a",
        "http://localhost:3000/login",
    ] {
        let config = with(&[("oauth.login_url", good)]).unwrap();
        assert_eq!(config.oauth.login_url.as_deref(), Some(good));
    }
    for bad in [
        "/sign-in",
        "http://login.example/sign-in",
        "https://login.example/sign-in#x",
        "javascript:alert(1)",
    ] {
        let error = with(&[("oauth.login_url", bad)]).unwrap_err().to_string();
        assert!(error.contains("oauth.login_url"), "{bad}: {error}");
    }
}
