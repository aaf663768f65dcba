//! Who an EST client is: HTTP Basic credentials checked against the endpoint's, or a TLS
//! client certificate issued by the endpoint's CA, in its validity period and not revoked in
//! certmint's inventory.

use aws_lc_rs::digest;
use zeroize::Zeroizing;

use super::Endpoint;
use crate::audit::Event;
use crate::client_certificate::ClientCertificate;
use crate::{Authority, Error, Origin, Principal, Result, password};

/// What an EST request brought to prove who sent it. Its `Debug` output leaves the password
/// out.
#[derive(Clone, Default)]
pub struct EstCaller {
    /// The HTTP Basic user name and password, when sent.
    pub basic: Option<(String, Zeroizing<String>)>,
    /// The TLS client certificate (the end of the chain the client presented), DER.
    pub client_certificate: Option<Vec<u8>>,
    /// Where the request came from.
    pub origin: Origin,
}

impl std::fmt::Debug for EstCaller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EstCaller")
            .field("user", &self.basic.as_ref().map(|(user, _)| user))
            .field("client_certificate", &self.client_certificate.is_some())
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

/// What authenticated the client.
#[derive(Debug)]
pub(super) enum Client {
    Password { username: String },
    Certificate(Box<ClientCertificate>),
}

impl Client {
    /// Who the client is, for the certificate's description.
    pub fn who(&self) -> String {
        match self {
            Self::Password { username } => format!("user '{username}'"),
            Self::Certificate(c) => format!("client certificate '{}'", c.info.subject),
        }
    }
}

impl Authority {
    /// Checks HTTP Basic credentials against the endpoint's. A password that verified is
    /// remembered (see the module documentation); a wrong one is audited.
    ///
    /// # Errors
    /// [`Error::Unauthorized`] for credentials that do not match or an endpoint without a
    /// password; [`Error::Busy`] when the verification pool is full; store errors.
    pub(super) async fn est_password(
        &self,
        endpoint: &Endpoint,
        username: &str,
        password: &Zeroizing<String>,
        origin: &Origin,
    ) -> Result<()> {
        let wrong = || Error::Unauthorized("wrong EST user name or password".into());
        let settings = &endpoint.settings;
        let Some(hash) = settings
            .password_hash
            .clone()
            .filter(|_| !settings.username.is_empty())
        else {
            return Err(Error::Unauthorized(format!(
                "the EST endpoint '{}' takes no password: present a client certificate",
                endpoint.name
            )));
        };
        if password.len() > password::MAX_LENGTH || username.len() > password::MAX_LENGTH {
            return Err(wrong());
        }
        let digest = {
            let mut ctx = digest::Context::new(&digest::SHA256);
            for part in [&endpoint.name, username, password.as_str(), &hash] {
                ctx.update(&(part.len() as u64).to_be_bytes());
                ctx.update(part.as_bytes());
            }
            hex::encode(ctx.finish())
        };
        let generation = self.store.credentials_generation();
        if self.est.verified.get(&digest, generation).is_some() {
            return Ok(());
        }
        // A fleet that starts at once sends the same credentials many times over before the
        // first check is done: those requests wait for that one check instead of each taking
        // a place in the pool's queue (and being refused once it is full).
        let check = self.est.check_of(&digest);
        let good = check
            .get_or_try_init(|| async {
                let admission = self.est.checks.admit()?;
                let verified = self.est.verified.clone();
                let user_matches = username == settings.username;
                let password = password.clone();
                let key = digest.clone();
                // Requests that queued behind the first check of the same credentials find
                // its answer here instead of verifying again.
                admission
                    .run(move || {
                        if verified.get(&key, generation).is_some() {
                            return Ok(true);
                        }
                        let matches = password::verify_now(&password, &hash)?;
                        Ok::<_, Error>(matches && user_matches)
                    })
                    .await?
            })
            .await
            .copied();
        self.est.check_done(&digest, &check);
        let good = good?;
        if good {
            self.est.verified.put(digest, generation, ());
            return Ok(());
        }
        let principal = Principal::enrollment("est", &endpoint.name, origin.clone());
        let mut tx = self.store.begin_write().await?;
        tx.audit(
            &self.entry_by(
                &principal,
                Event::new(
                    super::REFUSED,
                    "est",
                    &endpoint.name,
                    format!("wrong password for EST user '{username}'"),
                )
                .failed(),
            ),
        )
        .await?;
        tx.commit().await?;
        Err(wrong())
    }
}
