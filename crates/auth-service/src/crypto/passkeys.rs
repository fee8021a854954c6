//! The WebAuthn relying party (SPEC §10), built once from `[webauthn]` with the Kanidm
//! library: passkey registration (discoverable, user verification required, attestation
//! `none`), usernameless assertions, and the assertions of a known user's passkeys.

use webauthn_rs::prelude::{Url, Webauthn, WebauthnBuilder};
use webauthn_rs_proto::{AuthenticatorSelectionCriteria, ResidentKeyRequirement};

use crate::config::RelyingPartyConfig;

pub use webauthn_rs::prelude::{
    AuthenticationResult, CreationChallengeResponse, CredentialID, DiscoverableAuthentication,
    Passkey, PasskeyAuthentication, PasskeyRegistration, PublicKeyCredential,
    RegisterPublicKeyCredential, RequestChallengeResponse, WebauthnError,
};

/// The relying party: one per service, shared by every request.
pub struct RelyingParty {
    webauthn: Webauthn,
}

impl RelyingParty {
    pub fn new(config: &RelyingPartyConfig) -> anyhow::Result<Self> {
        let first = config
            .origins
            .first()
            .ok_or_else(|| anyhow::anyhow!("webauthn: no origin"))?;
        let mut builder = WebauthnBuilder::new(&config.id, first)
            .map_err(|e| anyhow::anyhow!("webauthn.rp_id {}: {e}", config.id))?
            .rp_name(&config.name);
        for origin in config.origins.iter().skip(1) {
            builder = builder.append_allowed_origin(origin);
        }
        let webauthn = builder
            .build()
            .map_err(|e| anyhow::anyhow!("webauthn: {e}"))?;
        Ok(Self { webauthn })
    }

    /// The library itself, for the ceremonies' finishing steps.
    pub fn webauthn(&self) -> &Webauthn {
        &self.webauthn
    }

    /// Options of a passkey registration. SPEC §10 wants discoverable credentials
    /// (usernameless login), so the options ask for a resident key where the library's
    /// passkey default leaves it to the authenticator; the finishing step checks nothing
    /// that depends on it.
    pub fn start_registration(
        &self,
        user_id: uuid::Uuid,
        name: &str,
        display_name: &str,
        existing: Vec<CredentialID>,
    ) -> Result<(CreationChallengeResponse, PasskeyRegistration), WebauthnError> {
        let exclude = (!existing.is_empty()).then_some(existing);
        let (mut options, state) =
            self.webauthn
                .start_passkey_registration(user_id, name, display_name, exclude)?;
        let selection = options
            .public_key
            .authenticator_selection
            .get_or_insert_with(AuthenticatorSelectionCriteria::default);
        selection.resident_key = Some(ResidentKeyRequirement::Required);
        selection.require_resident_key = true;
        Ok((options, state))
    }

    /// Options of a usernameless login: no credentials are named, the authenticator offers
    /// its discoverable ones. The library marks them for conditional mediation (autofill);
    /// the mark is dropped so a plain `navigator.credentials.get` works too — a page that
    /// wants autofill asks for it itself.
    pub fn start_discoverable(
        &self,
    ) -> Result<(RequestChallengeResponse, DiscoverableAuthentication), WebauthnError> {
        let (mut options, state) = self.webauthn.start_discoverable_authentication()?;
        options.mediation = None;
        Ok((options, state))
    }

    /// Options of an assertion by one of a known user's passkeys (the second factor).
    pub fn start_for(
        &self,
        passkeys: &[Passkey],
    ) -> Result<(RequestChallengeResponse, PasskeyAuthentication), WebauthnError> {
        self.webauthn.start_passkey_authentication(passkeys)
    }

    /// The origins ceremonies are accepted from.
    pub fn origins(&self) -> &[Url] {
        self.webauthn.get_allowed_origins()
    }
}
