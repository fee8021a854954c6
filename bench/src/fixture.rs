//! The users, sessions and tokens the load needs, made through the API, and the scenarios
//! built from them.

use std::sync::Arc;

use base64::Engine as _;
use http::{Method, StatusCode};

use crate::api::{self, Api, Client, Tokens, User};
use crate::http::{Prepared, Target};
use crate::load::{Group, Kind, Work};
use crate::server::Service;
use crate::{Args, Scenario};

/// The users and tokens the load needs, made through the API.
pub struct Fixture {
    target: Target,
    tag: String,
    pub me_tokens: Vec<String>,
    login_requests: Arc<[Prepared]>,
    refresh_tokens: Vec<String>,
    /// The OAuth client the client-credential grants authenticate as (issue 18), when the
    /// benchmark could create one (a service it started: it needs an administrator).
    pub client: Option<Client>,
    /// API keys (`ask_…`) the API-key scenario presents as bearers; empty until
    /// [`Fixture::api_keys`] can create them.
    pub api_keys: Vec<String>,
}

impl Fixture {
    pub async fn prepare(args: &Args, api: &Api, service: &Service) -> anyhow::Result<Self> {
        let tag = api::run_tag();
        // Separate users per role: a login beyond `auth.max_sessions_per_user` ends that user's
        // oldest session, so the login flood must never log in as a user whose token is used.
        let me_users = User::many(&tag, "me", args.users);
        let login_users = User::many(&tag, "login", args.login_users);
        let refresh_users = User::many(&tag, "refresh", args.refresh_concurrency);
        eprintln!(
            "setup: signing up {} users (tag {tag})",
            me_users.len() + login_users.len() + refresh_users.len()
        );
        for user in me_users.iter().chain(&login_users).chain(&refresh_users) {
            api.signup(user).await?;
        }
        let mut me_tokens = Vec::new();
        for user in &me_users {
            me_tokens.push(api.login(user).await?.access);
        }
        let mut refresh_tokens = Vec::new();
        for user in &refresh_users {
            let Tokens { refresh, .. } = api.login(user).await?;
            refresh_tokens.push(refresh);
        }
        let target = api.target().clone();
        let login_requests = login_users
            .iter()
            .map(|user| target.prepare(Method::POST, api::LOGIN, &[], user.login_body()))
            .collect::<anyhow::Result<_>>()?;
        let wants_client = args.runs(Scenario::ClientCredentials);
        let admin = match service.pid() {
            Some(_) if wants_client => Some(admin_token(api, service, &tag).await?),
            _ => None,
        };
        let client = match (&admin, args.runs(Scenario::ClientCredentials)) {
            (Some(admin), true) => Some(api.create_client(admin, &format!("bench-{tag}")).await?),
            _ => None,
        };
        let api_keys = if args.runs(Scenario::ApiKey) {
            Self::api_keys(api, &me_tokens).await?
        } else {
            Vec::new()
        };
        Ok(Self {
            target,
            tag,
            me_tokens,
            login_requests,
            refresh_tokens,
            client,
            api_keys,
        })
    }

    /// One API key per `me` user (issue 18), made with the user's session, with the scope
    /// `auth:read` that admits `GET /api/auth/me`: the API-key scenario drives `me` with them
    /// by the same loader and connections as `me` with JWTs, and the table judges "an API-key
    /// check costs no more than a bearer JWT check".
    async fn api_keys(api: &Api, me_tokens: &[String]) -> anyhow::Result<Vec<String>> {
        let mut keys = Vec::with_capacity(me_tokens.len());
        for (n, token) in me_tokens.iter().enumerate() {
            keys.push(api.create_api_key(token, &format!("bench-{n}")).await?);
        }
        Ok(keys)
    }

    /// The group of `kind` with its concurrency from `args`; `flood` names it as run beside
    /// the login flood.
    pub fn group(&self, kind: Kind, flood: bool, args: &Args) -> Group {
        let (lc, mc, rc) = (
            args.login_concurrency,
            args.me_concurrency,
            args.refresh_concurrency,
        );
        let (name, workers) = match (kind, flood) {
            (Kind::Signup, _) => (format!("signups (c={lc})"), self.signups(lc)),
            (Kind::Login, false) => (format!("logins (c={lc})"), self.logins(lc)),
            (Kind::Login, true) => (format!("logins during flood (c={lc})"), self.logins(lc)),
            (Kind::Me, false) => (format!("`GET /api/auth/me` (c={mc})"), self.mes(mc)),
            (Kind::Me, true) => (format!("`me` during login flood (c={mc})"), self.mes(mc)),
            (Kind::Refresh, _) => (format!("refreshes, rotating (c={rc})"), self.refreshes()),
            (Kind::Introspect, _) => (format!("introspections (c={mc})"), self.introspections(mc)),
            (Kind::Health, _) => (
                format!("`GET /health`, the floor (c={mc})"),
                self.health(mc),
            ),
            (Kind::ClientCredentials, _) => (
                format!("client-credential grants (c={rc})"),
                self.grants(rc),
            ),
            (Kind::ApiKey | Kind::ReplicaOne | Kind::ReplicaPair, _) => {
                (format!("{kind:?} (not a fixture group)"), Vec::new())
            }
        };
        Group {
            kind,
            name,
            workers,
        }
    }

    fn signups(&self, concurrency: u32) -> Vec<Work> {
        (0..concurrency)
            .map(|worker| Work::Signup {
                target: self.target.clone(),
                prefix: format!("bench-{}-w{worker}", self.tag),
                n: 0,
            })
            .collect()
    }

    fn logins(&self, concurrency: u32) -> Vec<Work> {
        (0..concurrency as usize)
            .map(|worker| Work::Login {
                requests: self.login_requests.clone(),
                next: worker,
            })
            .collect()
    }

    fn mes(&self, concurrency: u32) -> Vec<Work> {
        self.fixed(concurrency, |target, token| {
            let bearer = format!("Bearer {token}");
            target.prepare(
                Method::GET,
                api::ME,
                &[(http::header::AUTHORIZATION, &bearer)],
                "",
            )
        })
        .into_iter()
        .map(|request| Work::Fixed {
            request,
            expect: StatusCode::OK,
            active: false,
        })
        .collect()
    }

    fn introspections(&self, concurrency: u32) -> Vec<Work> {
        self.fixed(concurrency, |target, token| {
            let body = format!(r#"{{"token":"{token}"}}"#);
            target.prepare(Method::POST, api::INTROSPECT, &[], body)
        })
        .into_iter()
        .map(|request| Work::Fixed {
            request,
            expect: StatusCode::OK,
            active: true,
        })
        .collect()
    }

    fn health(&self, concurrency: u32) -> Vec<Work> {
        (0..concurrency)
            .filter_map(|_| self.target.prepare(Method::GET, api::HEALTH, &[], "").ok())
            .map(|request| Work::Fixed {
                request,
                expect: StatusCode::OK,
                active: false,
            })
            .collect()
    }

    /// `POST /oauth/token` with `grant_type=client_credentials`, the client authenticated by
    /// HTTP Basic (`client_secret_basic`): a new token every time.
    fn grants(&self, concurrency: u32) -> Vec<Work> {
        let Some(client) = &self.client else {
            return Vec::new();
        };
        let basic = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD
                .encode(format!("{}:{}", client.id, client.secret))
        );
        (0..concurrency)
            .filter_map(|_| {
                self.target
                    .prepare_as(
                        Method::POST,
                        api::TOKEN,
                        &[(http::header::AUTHORIZATION, &basic)],
                        "grant_type=client_credentials",
                        "application/x-www-form-urlencoded",
                    )
                    .ok()
            })
            .map(|request| Work::Fixed {
                request,
                expect: StatusCode::OK,
                active: false,
            })
            .collect()
    }

    /// `me` alternating between `targets` (replicas), each worker presenting the `me` users'
    /// tokens in turn like [`Fixture::group`]'s `me`.
    pub fn alternating(&self, targets: &[Target], concurrency: u32) -> Vec<Work> {
        let targets: Arc<[Target]> = targets.into();
        (0..concurrency as usize)
            .filter_map(|worker| self.me_tokens.get(worker % self.me_tokens.len().max(1)))
            .filter_map(|token| {
                let bearer = format!("Bearer {token}");
                let requests: anyhow::Result<Vec<Prepared>> = targets
                    .iter()
                    .map(|target| {
                        target.prepare(
                            Method::GET,
                            api::ME,
                            &[(http::header::AUTHORIZATION, &bearer)],
                            "",
                        )
                    })
                    .collect();
                Some(Work::Alternate {
                    targets: targets.clone(),
                    requests: requests.ok()?.into(),
                    next: 0,
                })
            })
            .collect()
    }

    /// One request per worker, built from the `me` users' access tokens in turn.
    fn fixed(
        &self,
        concurrency: u32,
        build: impl Fn(&Target, &str) -> anyhow::Result<Prepared>,
    ) -> Vec<Prepared> {
        (0..concurrency as usize)
            .filter_map(|worker| self.me_tokens.get(worker % self.me_tokens.len().max(1)))
            .filter_map(|token| build(&self.target, token).ok())
            .collect()
    }

    /// One chain per worker, each on a session of its own user.
    fn refreshes(&self) -> Vec<Work> {
        self.refresh_tokens
            .iter()
            .map(|token| Work::Refresh {
                target: self.target.clone(),
                token: token.clone(),
            })
            .collect()
    }
}

/// An administrator's access token: one created with the service's CLI, logged in through the
/// API (`/api/clients` wants a user's token with the `admin` role).
async fn admin_token(api: &Api, service: &Service, tag: &str) -> anyhow::Result<String> {
    let admin = User {
        username: format!("bench-{tag}-admin"),
    };
    service
        .create_admin(&admin.username, api::password())
        .await?;
    Ok(api.login(&admin).await?.access)
}
