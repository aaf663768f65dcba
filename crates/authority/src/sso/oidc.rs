//! OpenID Connect sign-in: the authorization code flow with PKCE, a state bound to the
//! browser, a nonce, and an ID token checked by `openidconnect` (issuer, audience, expiry,
//! signature against the provider's published keys).
//!
//! Trust boundary: every address the provider hands us (its token endpoint, its key set) is
//! fetched under the SSO address policy and over HTTPS only, with no redirects followed and a
//! bounded body, so a provider's discovery document cannot make certmint read an internal
//! service. The provider's metadata and keys are kept for [`METADATA_TTL`]; an ID token whose
//! signature does not verify against them makes certmint fetch the key set again once, so a
//! provider's key rotation is picked up at the first token signed with the new key.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreIdToken, CoreProviderMetadata};
use openidconnect::{
    AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret, CsrfToken, HttpRequest,
    HttpResponse, IssuerUrl, JsonWebKeySet, Nonce, OAuth2TokenResponse, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, Scope, TokenResponse,
};
use serde::{Deserialize, Serialize};
use store::NewSsoLogin;
use zeroize::Zeroizing;

use super::{ExternalIdentity, MAX_GROUPS, Provider, ProviderSettings, ProviderType};
use crate::outbound::{AddressPolicy, PolicyResolver};
use crate::sessions::LoginStep;
use crate::token::{constant_time_eq, digest_hex, new_token};
use crate::{Authority, Error, Origin, Result};

/// How long a login may take at the provider.
const LOGIN_TTL: time::Duration = time::Duration::minutes(10);
/// How long the provider's metadata and keys are kept.
const METADATA_TTL: Duration = Duration::from_secs(600);
/// Longest wait for one request to the provider.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest answer read from the provider.
const MAX_BODY_BYTES: usize = 256 * 1024;
/// Longest issuer URL, client id, claim name.
const MAX_URL_CHARS: usize = 2048;
const MAX_FIELD_CHARS: usize = 256;
/// Most scopes asked for.
const MAX_SCOPES: usize = 20;

fn default_scopes() -> Vec<String> {
    ["openid", "email", "profile"].map(str::to_owned).to_vec()
}
fn default_username_claim() -> String {
    "preferred_username".into()
}
fn default_groups_claim() -> String {
    "groups".into()
}

/// An OIDC provider's settings. The client secret is the provider's secret, sealed apart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    /// The issuer, whose `/.well-known/openid-configuration` describes the provider (HTTPS).
    pub issuer_url: String,
    /// certmint's client id at the provider.
    pub client_id: String,
    /// The scopes asked for; `openid` is always among them.
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
    /// The ID token claim that is the local login name.
    #[serde(default = "default_username_claim")]
    pub username_claim: String,
    /// The ID token claim (a list of strings, or one) the role mappings look at.
    #[serde(default = "default_groups_claim")]
    pub groups_claim: String,
}

fn check_field(field: &str, value: &str, max: usize) -> Result<()> {
    if value.trim().is_empty() || value.chars().count() > max || value.chars().any(char::is_control)
    {
        return Err(Error::Invalid(format!(
            "{field} must be 1 to {max} characters without control characters"
        )));
    }
    Ok(())
}

impl OidcConfig {
    /// Checks the settings.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming the bad field.
    pub fn check(&self) -> Result<()> {
        check_field("issuer_url", &self.issuer_url, MAX_URL_CHARS)?;
        let url = url::Url::parse(&self.issuer_url)
            .map_err(|e| Error::Invalid(format!("issuer_url is not a URL: {e}")))?;
        if url.scheme() != "https" || url.host().is_none() {
            return Err(Error::Invalid(
                "issuer_url must be an https:// URL with a host".into(),
            ));
        }
        if !url.username().is_empty() || url.password().is_some() || url.query().is_some() {
            return Err(Error::Invalid(
                "issuer_url carries no credentials and no query".into(),
            ));
        }
        check_field("client_id", &self.client_id, MAX_FIELD_CHARS)?;
        if self.scopes.len() > MAX_SCOPES {
            return Err(Error::Invalid(format!("at most {MAX_SCOPES} scopes")));
        }
        for scope in &self.scopes {
            check_field("a scope", scope, MAX_FIELD_CHARS)?;
            if scope.contains(' ') {
                return Err(Error::Invalid(format!("scope '{scope}' holds a space")));
            }
        }
        check_field("username_claim", &self.username_claim, MAX_FIELD_CHARS)?;
        check_field("groups_claim", &self.groups_claim, MAX_FIELD_CHARS)?;
        Ok(())
    }
}

/// Where a browser goes to log in at the provider, and the state to keep in its cookie.
#[derive(Debug, Clone)]
pub struct OidcRedirect {
    /// The provider's authorization URL with certmint's request.
    pub url: String,
    /// The state: the callback must bring it back in both its query and the cookie.
    pub state: String,
}

/// What the provider's callback brings.
#[derive(Debug, Clone, Default)]
pub struct OidcCallback {
    /// The code, on success.
    pub code: Option<String>,
    /// The state the provider echoes.
    pub state: Option<String>,
    /// The issuer the provider says it is (RFC 9207), which must be this provider's.
    pub iss: Option<String>,
    /// The provider's error code, on failure.
    pub error: Option<String>,
    /// Its description.
    pub error_description: Option<String>,
}

/// A provider's metadata and keys as fetched, for one configuration of it.
#[derive(Debug, Clone)]
pub(crate) struct CachedMetadata {
    /// When the provider's row was last changed: a changed provider is fetched again.
    updated_at: time::OffsetDateTime,
    fetched: Instant,
    metadata: CoreProviderMetadata,
}

/// The cache of providers' metadata, by provider id.
pub(crate) type MetadataCache = std::sync::Mutex<HashMap<i64, CachedMetadata>>;

/// Why a request to the provider did not get an answer.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct HttpError(String);

/// Sends `request` under `policy`: HTTPS only, the address checked, no redirects, the body
/// bounded.
async fn send(
    client: reqwest::Client,
    policy: AddressPolicy,
    request: HttpRequest,
) -> std::result::Result<HttpResponse, HttpError> {
    let (parts, body) = request.into_parts();
    let url = url::Url::parse(&parts.uri.to_string())
        .map_err(|e| HttpError(format!("the provider named a bad URL: {e}")))?;
    if url.scheme() != "https" {
        return Err(HttpError(format!(
            "the provider named {}, which is not https://",
            url.origin().ascii_serialization()
        )));
    }
    let refused = match url.host() {
        Some(url::Host::Ipv4(ip)) => policy.check(ip.into()).err(),
        Some(url::Host::Ipv6(ip)) => policy.check(ip.into()).err(),
        Some(url::Host::Domain(_)) => None,
        None => return Err(HttpError("the provider named a URL without a host".into())),
    };
    if let Some(range) = refused {
        return Err(HttpError(format!(
            "the provider named a {range} address, which outbound connections do not reach \
             (unless [sso] allow_private_targets is set)"
        )));
    }
    let mut response = client
        .request(parts.method, url)
        .headers(parts.headers)
        .body(body)
        .send()
        .await
        .map_err(|e| HttpError(crate::outbound::describe(e, REQUEST_TIMEOUT)))?;
    let mut out = openidconnect::http::Response::builder().status(response.status());
    if let Some(headers) = out.headers_mut() {
        headers.extend(response.headers().clone());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| HttpError(crate::outbound::describe(e, REQUEST_TIMEOUT)))?
    {
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(HttpError(format!(
                "the provider's answer is larger than {MAX_BODY_BYTES} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    out.body(body)
        .map_err(|e| HttpError(format!("the provider's answer: {e}")))
}

/// The claims of a verified ID token as JSON, to read the claims the settings name.
fn payload(token: &CoreIdToken) -> Result<serde_json::Value> {
    let text = token.to_string();
    let middle = text
        .split('.')
        .nth(1)
        .ok_or_else(|| Error::Unauthorized("the ID token is not a JWT".into()))?;
    let bytes = URL_SAFE_NO_PAD
        .decode(middle)
        .map_err(|_| Error::Unauthorized("the ID token's claims are not base64url".into()))?;
    serde_json::from_slice(&bytes)
        .map_err(|_| Error::Unauthorized("the ID token's claims are not JSON".into()))
}

/// A claim as text, if it is a string.
fn text_claim(claims: &serde_json::Value, name: &str) -> Option<String> {
    claims.get(name)?.as_str().map(str::to_owned)
}

/// The values of the groups claim: a list of strings, or one string.
fn groups_claim(claims: &serde_json::Value, name: &str) -> Vec<String> {
    match claims.get(name) {
        Some(serde_json::Value::String(one)) => vec![one.clone()],
        Some(serde_json::Value::Array(list)) => list
            .iter()
            .take(MAX_GROUPS)
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

impl Authority {
    /// The HTTP client OIDC requests go through, its resolver held to the SSO policy and its
    /// roots the system's and certmint's own CAs (an internal provider's certificate is often
    /// one certmint issued).
    async fn idp_client(&self) -> Result<(reqwest::Client, AddressPolicy)> {
        let policy = self.sso_address_policy();
        let mut roots = Vec::new();
        for ca in self.store.cas().await? {
            roots.push(
                reqwest::Certificate::from_der(&ca.cert.der)
                    .map_err(|e| Error::Internal(format!("CA {} as a TLS root: {e}", ca.id)))?,
            );
        }
        let client = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(REQUEST_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(PolicyResolver::new(policy.clone())))
            .tls_certs_merge(roots)
            .user_agent(concat!("certmint-sso/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Internal(format!("the SSO client: {e}")))?;
        Ok((client, policy))
    }

    /// The provider's metadata and keys: kept ones while fresh, else fetched; `refresh`
    /// fetches them whatever is kept.
    async fn oidc_metadata(
        &self,
        provider: &Provider,
        config: &OidcConfig,
        refresh: bool,
    ) -> Result<CoreProviderMetadata> {
        let kept = self
            .sso_metadata
            .lock()
            .map_err(|_| Error::Internal("the OIDC metadata cache is poisoned".into()))?
            .get(&provider.id)
            .filter(|c| {
                !refresh
                    && c.updated_at == provider.updated_at
                    && c.fetched.elapsed() < METADATA_TTL
            })
            .map(|c| c.metadata.clone());
        if let Some(metadata) = kept {
            return Ok(metadata);
        }
        let (client, policy) = self.idp_client().await?;
        let http = |request| send(client.clone(), policy.clone(), request);
        let issuer = IssuerUrl::new(config.issuer_url.clone())
            .map_err(|e| Error::Invalid(format!("issuer_url: {e}")))?;
        let metadata = CoreProviderMetadata::discover_async(issuer, &http)
            .await
            .map_err(|e| {
                Error::Upstream(format!(
                    "the OIDC provider {} did not describe itself: {}",
                    config.issuer_url,
                    chain(&e)
                ))
            })?;
        self.sso_metadata
            .lock()
            .map_err(|_| Error::Internal("the OIDC metadata cache is poisoned".into()))?
            .insert(
                provider.id,
                CachedMetadata {
                    updated_at: provider.updated_at,
                    fetched: Instant::now(),
                    metadata: metadata.clone(),
                },
            );
        Ok(metadata)
    }

    /// The discovery and keys of an OIDC provider, for its test.
    pub(crate) async fn test_oidc(&self, config: &OidcConfig) -> Result<String> {
        let (client, policy) = self.idp_client().await?;
        let http = |request| send(client.clone(), policy.clone(), request);
        let issuer = IssuerUrl::new(config.issuer_url.clone())
            .map_err(|e| Error::Invalid(format!("issuer_url: {e}")))?;
        let metadata = CoreProviderMetadata::discover_async(issuer, &http)
            .await
            .map_err(|e| Error::Upstream(chain(&e)))?;
        Ok(format!(
            "{} answered: authorization at {}, {} signing key(s)",
            config.issuer_url,
            metadata.authorization_endpoint().as_str(),
            metadata.jwks().keys().len()
        ))
    }

    /// Begins a login at OIDC provider `id`: a state, nonce and PKCE verifier are kept, and
    /// the browser is sent to the provider. `redirect_uri` is certmint's callback for this
    /// provider, as registered there; `return_to` is where the browser goes once logged in.
    ///
    /// # Errors
    /// [`Error::NotFound`] for a missing or disabled provider; [`Error::Upstream`] when the
    /// provider cannot be reached.
    pub async fn oidc_begin(
        &self,
        id: i64,
        redirect_uri: &str,
        return_to: Option<&str>,
        origin: &Origin,
    ) -> Result<OidcRedirect> {
        let (provider, secret) = self
            .sso_login_provider(id, ProviderType::Oidc, origin)
            .await?;
        let ProviderSettings::Oidc(config) = &provider.settings else {
            return Err(Error::Internal(format!("provider {id} is not OIDC")));
        };
        let metadata = self.oidc_metadata(&provider, config, false).await?;
        let client = oidc_client(metadata, config, secret, redirect_uri)?;
        let state = new_token("")?;
        let nonce = new_token("")?;
        let verifier = new_token("")?;
        let challenge =
            PkceCodeChallenge::from_code_verifier_sha256(&PkceCodeVerifier::new(verifier.clone()));
        let (state_for_url, nonce_for_url) = (state.clone(), nonce.clone());
        let mut request = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                move || CsrfToken::new(state_for_url.clone()),
                move || Nonce::new(nonce_for_url.clone()),
            )
            .set_pkce_challenge(challenge);
        for scope in config.scopes.iter().filter(|s| s.as_str() != "openid") {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        let (url, _, _) = request.url();
        let now = self.now();
        let mut tx = self.store.begin_write().await?;
        tx.insert_sso_login(
            &NewSsoLogin {
                state_hash: digest_hex(&state),
                provider_id: id,
                nonce,
                pkce_verifier: verifier,
                return_to: return_to.map(str::to_owned),
                expires_at: now + LOGIN_TTL,
            },
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(OidcRedirect {
            url: url.to_string(),
            state,
        })
    }

    /// Finishes a login at OIDC provider `id` from its callback: the state must be the one
    /// this browser holds (`cookie_state`) and a login in flight, the code is exchanged with
    /// the PKCE verifier, and the ID token is checked (issuer, audience, expiry, nonce,
    /// signature). The person it names is signed in as [`Authority::sso_sign_in`] says.
    /// Returns the step and where the browser goes next. Every refusal is audited.
    ///
    /// # Errors
    /// [`Error::Unauthorized`] for anything the callback or the token gets wrong;
    /// [`Error::Upstream`] when the provider cannot be reached.
    pub async fn oidc_finish(
        &self,
        id: i64,
        redirect_uri: &str,
        callback: OidcCallback,
        cookie_state: Option<&str>,
        origin: &Origin,
    ) -> Result<(LoginStep, Option<String>)> {
        let attempted = format!("oidc provider {id}");
        match self
            .oidc_identity(id, redirect_uri, callback, cookie_state, origin)
            .await
        {
            Ok((provider, who, return_to)) => {
                let step = self.sso_sign_in(&provider, who, origin).await?;
                Ok((step, return_to))
            }
            Err(Error::Unauthorized(reason)) => {
                self.record_failure(None, &attempted, origin, &reason)
                    .await?;
                Err(Error::Unauthorized(reason))
            }
            Err(e) => Err(e),
        }
    }

    /// Who the callback's ID token names, once everything about it is checked.
    async fn oidc_identity(
        &self,
        id: i64,
        redirect_uri: &str,
        callback: OidcCallback,
        cookie_state: Option<&str>,
        origin: &Origin,
    ) -> Result<(Provider, ExternalIdentity, Option<String>)> {
        let state = callback
            .state
            .ok_or_else(|| Error::Unauthorized("the callback has no state".into()))?;
        if !cookie_state.is_some_and(|c| constant_time_eq(c, &state)) {
            return Err(Error::Unauthorized(
                "the callback's state is not the one this browser was sent with".into(),
            ));
        }
        let mut tx = self.store.begin_write().await?;
        let login = tx.take_sso_login(&digest_hex(&state)).await?;
        tx.commit().await?;
        let login = login
            .filter(|l| l.provider_id == id)
            .ok_or_else(|| Error::Unauthorized("the callback's state is unknown or used".into()))?;
        if login.expires_at <= self.now() {
            return Err(Error::Unauthorized(
                "the login took too long at the provider; start again".into(),
            ));
        }
        if let Some(error) = callback.error {
            let detail = callback
                .error_description
                .map(|d| format!(": {}", d.chars().take(200).collect::<String>()))
                .unwrap_or_default();
            return Err(Error::Unauthorized(format!(
                "the provider refused the login ({}){detail}",
                error.chars().take(64).collect::<String>()
            )));
        }
        let code = callback
            .code
            .ok_or_else(|| Error::Unauthorized("the callback has no code".into()))?;
        let (provider, secret) = self
            .sso_login_provider(id, ProviderType::Oidc, origin)
            .await?;
        let ProviderSettings::Oidc(config) = provider.settings.clone() else {
            return Err(Error::Internal(format!("provider {id} is not OIDC")));
        };
        // A callback naming another issuer is an answer from another provider (a mix-up).
        if callback
            .iss
            .as_deref()
            .is_some_and(|iss| iss.trim_end_matches('/') != config.issuer_url.trim_end_matches('/'))
        {
            return Err(Error::Unauthorized(
                "the callback names another issuer than this provider".into(),
            ));
        }
        let metadata = self.oidc_metadata(&provider, &config, false).await?;
        let client = oidc_client(metadata.clone(), &config, secret.clone(), redirect_uri)?;
        let (http_client, policy) = self.idp_client().await?;
        let http = |request| send(http_client.clone(), policy.clone(), request);
        let tokens = client
            .exchange_code(AuthorizationCode::new(code))
            .map_err(|e| Error::Upstream(format!("the provider has no token endpoint: {e}")))?
            .set_pkce_verifier(PkceCodeVerifier::new(login.pkce_verifier))
            .request_async(&http)
            .await
            .map_err(|e| {
                Error::Unauthorized(format!("the provider did not give tokens: {}", chain(&e)))
            })?;
        let id_token = tokens
            .id_token()
            .ok_or_else(|| Error::Unauthorized("the provider gave no ID token".into()))?;
        let nonce = Nonce::new(login.nonce);
        let access_token = tokens.access_token();
        let check = |client: &CoreClient<_, _, _, _, _, _>| -> std::result::Result<(), ClaimsVerificationError> {
            let verifier = client.id_token_verifier();
            let claims = id_token.claims(&verifier, &nonce)?;
            if let Some(expected) = claims.access_token_hash() {
                let alg = id_token.signing_alg().map_err(|e| {
                    ClaimsVerificationError::Other(format!("signing algorithm: {e}"))
                })?;
                let key = id_token.signing_key(&verifier).map_err(|e| {
                    ClaimsVerificationError::Other(format!("signing key: {e}"))
                })?;
                let actual = openidconnect::AccessTokenHash::from_token(access_token, alg, key)
                    .map_err(|e| ClaimsVerificationError::Other(format!("at_hash: {e}")))?;
                if actual != *expected {
                    return Err(ClaimsVerificationError::Other(
                        "the access token's hash is not the ID token's at_hash".into(),
                    ));
                }
            }
            Ok(())
        };
        let verified = match check(&client) {
            Err(ClaimsVerificationError::SignatureVerification(_)) => {
                let fresh = self.oidc_refresh_keys(&provider, metadata, &http).await?;
                let client = oidc_client(fresh, &config, secret, redirect_uri)?;
                check(&client)
            }
            other => other,
        };
        verified.map_err(|e| Error::Unauthorized(format!("the ID token is refused: {e}")))?;
        let claims = payload(id_token)?;
        let subject = text_claim(&claims, "sub").unwrap_or_default();
        let username = text_claim(&claims, &config.username_claim).ok_or_else(|| {
            Error::Unauthorized(format!(
                "the ID token has no '{}' claim to name the user",
                config.username_claim
            ))
        })?;
        let email = text_claim(&claims, "email")
            .filter(|_| claims.get("email_verified") != Some(&serde_json::Value::Bool(false)));
        Ok((
            provider,
            ExternalIdentity {
                subject,
                username,
                email,
                full_name: text_claim(&claims, "name"),
                groups: groups_claim(&claims, &config.groups_claim),
            },
            login.return_to,
        ))
    }

    /// Fetches the provider's key set again (after a token its kept keys did not verify) and
    /// keeps it.
    async fn oidc_refresh_keys<C>(
        &self,
        provider: &Provider,
        mut metadata: CoreProviderMetadata,
        http: &C,
    ) -> Result<CoreProviderMetadata>
    where
        C: for<'c> openidconnect::AsyncHttpClient<'c>,
    {
        let keys = JsonWebKeySet::fetch_async(metadata.jwks_uri(), http)
            .await
            .map_err(|e| {
                Error::Upstream(format!(
                    "the provider's keys could not be fetched: {}",
                    chain(&e)
                ))
            })?;
        metadata = metadata.set_jwks(keys);
        self.sso_metadata
            .lock()
            .map_err(|_| Error::Internal("the OIDC metadata cache is poisoned".into()))?
            .insert(
                provider.id,
                CachedMetadata {
                    updated_at: provider.updated_at,
                    fetched: Instant::now(),
                    metadata: metadata.clone(),
                },
            );
        Ok(metadata)
    }
}

/// The client for one provider and callback.
fn oidc_client(
    metadata: CoreProviderMetadata,
    config: &OidcConfig,
    secret: Option<Zeroizing<String>>,
    redirect_uri: &str,
) -> Result<
    CoreClient<
        openidconnect::EndpointSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointMaybeSet,
        openidconnect::EndpointMaybeSet,
    >,
> {
    let redirect = RedirectUrl::new(redirect_uri.to_owned())
        .map_err(|e| Error::Internal(format!("the SSO callback URL: {e}")))?;
    Ok(CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(config.client_id.clone()),
        secret.map(|s| ClientSecret::new(s.to_string())),
    )
    .set_redirect_uri(redirect))
}

/// An error with its sources, for people.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(issuer: &str) -> OidcConfig {
        OidcConfig {
            issuer_url: issuer.into(),
            client_id: "certmint".into(),
            scopes: default_scopes(),
            username_claim: default_username_claim(),
            groups_claim: default_groups_claim(),
        }
    }

    #[test]
    fn the_issuer_is_https_without_credentials() {
        assert!(config("https://idp.example.com/realms/pki").check().is_ok());
        for bad in [
            "http://idp.example.com",
            "https://user:pw@idp.example.com",
            "https://idp.example.com/?x=1",
            "idp.example.com",
            "file:///etc/passwd",
        ] {
            assert!(
                matches!(config(bad).check(), Err(Error::Invalid(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_groups_claim_is_a_list_or_one_value() {
        let claims = serde_json::json!({
            "groups": ["pki-admins", 7, "staff"],
            "role": "operators",
        });
        assert_eq!(groups_claim(&claims, "groups"), ["pki-admins", "staff"]);
        assert_eq!(groups_claim(&claims, "role"), ["operators"]);
        assert!(groups_claim(&claims, "missing").is_empty());
    }
}
