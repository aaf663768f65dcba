//! Authenticating ACME requests (RFC 8555 §6.2–§6.5): the flattened JWS, its `url`, its nonce,
//! and its key — a `jwk` for new accounts and revocation by certificate key, a `kid` naming an
//! account for everything else. The nonce is spent only once the signature verifies, so that
//! unsigned junk writes nothing.

use authority::acme::{AcmeAccountRow, Problem, ProblemType};
use axum::http::{HeaderMap, StatusCode, header};
use pki::jose::{Algorithm, JoseError, Jwk, Jws};

use super::context::Ctx;
use super::problem::Failure;

/// Which key a request must be signed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRule {
    /// A `jwk` in the header (newAccount).
    Jwk,
    /// A `kid` naming an account of this profile.
    Kid,
    /// Either (revokeCert).
    Either,
}

/// Who signed a verified request.
pub enum Signer {
    /// A key given in the header.
    Key(Jwk),
    /// An account.
    Account(AcmeAccountRow),
}

/// A verified request.
pub struct Verified {
    pub jws: Jws,
    pub signer: Signer,
}

impl Verified {
    /// The signing account, for requests made under [`KeyRule::Kid`].
    pub fn account(&self) -> Result<&AcmeAccountRow, Failure> {
        match &self.signer {
            Signer::Account(a) => Ok(a),
            Signer::Key(_) => Err(malformed(
                "this request must be signed with an account's kid",
            )),
        }
    }

    /// Whether the payload is empty: a POST-as-GET (RFC 8555 §6.3).
    pub fn is_get(&self) -> bool {
        self.jws.payload.is_empty()
    }

    /// Refuses a request with a payload, for resources that are only read.
    pub fn require_get(&self) -> Result<(), Failure> {
        if self.is_get() {
            Ok(())
        } else {
            Err(malformed(
                "this resource is read with POST-as-GET (an empty payload)",
            ))
        }
    }

    /// The payload as JSON of type `T`.
    pub fn payload<T: serde::de::DeserializeOwned>(&self) -> Result<T, Failure> {
        serde_json::from_slice(&self.jws.payload).map_err(|e| {
            malformed(&format!(
                "the request payload is not what this resource takes: {e}"
            ))
        })
    }
}

pub fn malformed(detail: &str) -> Failure {
    Failure::new(ProblemType::Malformed, detail)
}

/// The problem for a JOSE error.
pub fn jose_problem(e: JoseError) -> Failure {
    match e {
        JoseError::Malformed(m) => malformed(&m),
        JoseError::BadPublicKey(m) => Failure::new(ProblemType::BadPublicKey, m),
        JoseError::BadSignatureAlgorithm(m) => Problem {
            algorithms: ALGORITHMS.iter().map(|a| a.name().to_owned()).collect(),
            ..Problem::new(ProblemType::BadSignatureAlgorithm, m)
        }
        .into(),
        JoseError::BadSignature => malformed("the JWS signature does not verify"),
    }
}

/// Checks a request body: media type, JWS form, `url`, key and signature, then spends the
/// nonce.
pub async fn verify(
    ctx: &Ctx,
    headers: &HeaderMap,
    body: &[u8],
    rule: KeyRule,
) -> Result<Verified, Failure> {
    let media = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
    if media.as_deref() != Some("application/jose+json") {
        return Err(malformed("ACME requests are application/jose+json")
            .with_status(StatusCode::UNSUPPORTED_MEDIA_TYPE));
    }
    let jws = Jws::parse(body).map_err(jose_problem)?;
    jws.algorithm().map_err(jose_problem)?;
    if jws.header.url.as_deref() != Some(ctx.url.as_str()) {
        return Err(Failure::new(
            ProblemType::Unauthorized,
            format!("the JWS url must be this request's URL, {}", ctx.url),
        ));
    }
    let nonce = jws
        .header
        .nonce
        .clone()
        .ok_or_else(|| Failure::new(ProblemType::BadNonce, "the JWS has no nonce"))?;
    let (signer, key) = match (&jws.header.jwk, &jws.header.kid, rule) {
        (Some(_), Some(_), _) => {
            return Err(malformed("the JWS may carry a jwk or a kid, not both"));
        }
        (None, None, _) => return Err(malformed("the JWS carries neither a jwk nor a kid")),
        (Some(_), None, KeyRule::Kid) => {
            return Err(malformed(
                "this request must be signed by an account (kid), not a jwk",
            ));
        }
        (None, Some(_), KeyRule::Jwk) => {
            return Err(malformed(
                "this request must carry its key (jwk), not a kid",
            ));
        }
        (Some(jwk), None, _) => (Signer::Key(jwk.clone()), jwk.clone()),
        (None, Some(kid), _) => {
            let (account, key) = account_of(ctx, kid).await?;
            (Signer::Account(account), key)
        }
    };
    jws.verify(&key).map_err(jose_problem)?;
    ctx.app.authority.acme_use_nonce(&nonce).await?;
    Ok(Verified { jws, signer })
}

/// The account a `kid` names, with its key: it must be an account URL of this profile.
async fn account_of(ctx: &Ctx, kid: &str) -> Result<(AcmeAccountRow, Jwk), Failure> {
    let prefix = ctx.account_url("");
    let refid = kid
        .strip_prefix(&prefix)
        .filter(|r| !r.is_empty() && !r.contains('/'))
        .ok_or_else(|| {
            Failure::new(
                ProblemType::AccountDoesNotExist,
                format!("the kid '{kid}' is not an account URL of this directory"),
            )
        })?;
    Ok(ctx.app.authority.acme_account(&ctx.profile, refid).await?)
}

/// The algorithms a JWS may use.
const ALGORITHMS: [Algorithm; 4] = [
    Algorithm::Rs256,
    Algorithm::Es256,
    Algorithm::Es384,
    Algorithm::EdDsa,
];
