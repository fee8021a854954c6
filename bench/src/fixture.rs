//! The users, sessions and tokens the load needs, made through the API, and the scenarios
//! built from them.

use std::sync::Arc;

use http::{Method, StatusCode};

use crate::api::{self, Api, Tokens, User};
use crate::http::{Prepared, Target};
use crate::load::{Group, Kind, Work};
use crate::Args;

/// The users and tokens the load needs, made through the API.
pub struct Fixture {
    target: Target,
    tag: String,
    pub me_tokens: Vec<String>,
    login_requests: Arc<[Prepared]>,
    refresh_tokens: Vec<String>,
}

impl Fixture {
    pub async fn prepare(args: &Args, api: &Api) -> anyhow::Result<Self> {
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
        Ok(Self {
            target,
            tag,
            me_tokens,
            login_requests,
            refresh_tokens,
        })
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
