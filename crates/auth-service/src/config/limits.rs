//! `[limits]`: request rates and the login lockout.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::error::ConfigError;

/// At most `max` requests per `per`, e.g. `{ max = 30, per = "1m" }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Rate {
    pub max: u32,
    #[serde(with = "humantime_serde")]
    pub per: Duration,
}

impl Rate {
    pub const fn new(max: u32, per: Duration) -> Self {
        Self { max, per }
    }
}

/// Rate limits and the login lockout (SPEC §4). Counts live in process, or in Redis when
/// `redis.url` is set so that replicas share them. Each half of a rate defaults on its own:
/// `APP__LIMITS__LOGIN_PER_IP__MAX=3` keeps the default `per`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(from = "LimitsInput")]
pub struct LimitsConfig {
    /// Off only for load tests; every limit below is skipped.
    pub enabled: bool,
    pub login_per_ip: Rate,
    pub signup_per_ip: Rate,
    pub forgot_password_per_ip: Rate,
    /// Admin user lookups (`GET /api/users…`).
    pub lookup_per_ip: Rate,
    /// Reset and verification mails to one account.
    pub mail_per_account: Rate,
    /// Token requests of one OAuth client (`POST /oauth/token`, SPEC §11), and its
    /// revocations (`POST /oauth/revoke` with client authentication).
    pub token_per_client: Rate,
    /// Introspection requests of one OAuth client (`POST /oauth/introspect`).
    pub introspect_per_client: Rate,
    /// Revocations without client authentication, per client IP (`POST /oauth/revoke`).
    pub revoke_per_ip: Rate,
    /// Consecutive failed logins of one identifier before it is locked.
    pub login_failures: u32,
    /// How long a locked identifier stays locked.
    #[serde(with = "humantime_serde")]
    pub lockout: Duration,
}

impl LimitsConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        for (key, rate) in [
            ("limits.login_per_ip", self.login_per_ip),
            ("limits.signup_per_ip", self.signup_per_ip),
            ("limits.forgot_password_per_ip", self.forgot_password_per_ip),
            ("limits.lookup_per_ip", self.lookup_per_ip),
            ("limits.mail_per_account", self.mail_per_account),
            ("limits.token_per_client", self.token_per_client),
            ("limits.introspect_per_client", self.introspect_per_client),
            ("limits.revoke_per_ip", self.revoke_per_ip),
        ] {
            if rate.max == 0 || rate.per.is_zero() {
                return Err(ConfigError::at(key, "max and per must be above zero"));
            }
        }
        if self.login_failures > 0 && self.lockout.is_zero() {
            return Err(ConfigError::at(
                "limits.lockout",
                "must be longer than zero",
            ));
        }
        Ok(())
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        const MINUTE: Duration = Duration::from_secs(60);
        Self {
            enabled: true,
            // Generous per address, since many people can share one (NAT, offices, mobile
            // carriers): the per-identifier lockout is what stops guessing one account; these
            // cap what one address can do to all of them.
            login_per_ip: Rate::new(300, MINUTE),
            signup_per_ip: Rate::new(300, 60 * MINUTE),
            forgot_password_per_ip: Rate::new(60, 15 * MINUTE),
            lookup_per_ip: Rate::new(600, MINUTE),
            mail_per_account: Rate::new(10, 60 * MINUTE),
            // A service asks for a token when its last one nears expiry; this only stops a
            // runaway loop or a stolen secret from minting without bound.
            token_per_client: Rate::new(600, MINUTE),
            // A resource server may introspect on every request it serves.
            introspect_per_client: Rate::new(6000, MINUTE),
            // Logouts of public clients; many people can share one address.
            revoke_per_ip: Rate::new(300, MINUTE),
            login_failures: 5,
            lockout: 15 * MINUTE,
        }
    }
}

/// A rate as written: either half may be left out.
#[derive(Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RateInput {
    max: Option<u32>,
    #[serde(with = "humantime_serde")]
    per: Option<Duration>,
}

impl RateInput {
    fn or(self, default: Rate) -> Rate {
        Rate::new(
            self.max.unwrap_or(default.max),
            self.per.unwrap_or(default.per),
        )
    }
}

/// `[limits]` as written; every value left out takes its default from [`LimitsConfig::default`].
#[derive(Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct LimitsInput {
    enabled: Option<bool>,
    login_per_ip: RateInput,
    signup_per_ip: RateInput,
    forgot_password_per_ip: RateInput,
    lookup_per_ip: RateInput,
    mail_per_account: RateInput,
    token_per_client: RateInput,
    introspect_per_client: RateInput,
    revoke_per_ip: RateInput,
    login_failures: Option<u32>,
    #[serde(with = "humantime_serde")]
    lockout: Option<Duration>,
}

impl From<LimitsInput> for LimitsConfig {
    fn from(input: LimitsInput) -> Self {
        let default = Self::default();
        Self {
            enabled: input.enabled.unwrap_or(default.enabled),
            login_per_ip: input.login_per_ip.or(default.login_per_ip),
            signup_per_ip: input.signup_per_ip.or(default.signup_per_ip),
            forgot_password_per_ip: input
                .forgot_password_per_ip
                .or(default.forgot_password_per_ip),
            lookup_per_ip: input.lookup_per_ip.or(default.lookup_per_ip),
            mail_per_account: input.mail_per_account.or(default.mail_per_account),
            token_per_client: input.token_per_client.or(default.token_per_client),
            introspect_per_client: input
                .introspect_per_client
                .or(default.introspect_per_client),
            revoke_per_ip: input.revoke_per_ip.or(default.revoke_per_ip),
            login_failures: input.login_failures.unwrap_or(default.login_failures),
            lockout: input.lockout.unwrap_or(default.lockout),
        }
    }
}
