//! The certificate the HTTPS listener presents, replaced while serving. Each handshake takes
//! the certificate current when it starts, so connections made before a replacement keep
//! theirs and new ones get the new one; nothing restarts. A replacement made through this
//! node's API is served at once; one made on another node reaches this one through the
//! database within [`FOLLOW_EVERY`].

use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use authority::{Authority, ListenerIdentity};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::sync::watch;

/// How often a node looks for a certificate another node set.
pub const FOLLOW_EVERY: Duration = Duration::from_secs(2);

/// What the listener serves now.
pub struct Served {
    /// The chain and key, as the authority describes them.
    pub identity: ListenerIdentity,
    /// SHA-256 of the listener's own certificate, hex.
    pub fingerprint_sha256: String,
    key: Arc<CertifiedKey>,
}

/// The listener's certificate, for rustls to present and for the API to replace.
pub struct ListenerCert {
    current: RwLock<Arc<Served>>,
}

impl std::fmt::Debug for ListenerCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ListenerCert")
            .field("fingerprint_sha256", &self.current().fingerprint_sha256)
            .finish_non_exhaustive()
    }
}

fn served(identity: ListenerIdentity) -> Result<Arc<Served>, authority::Error> {
    Ok(Arc::new(Served {
        key: Arc::new(identity.certified_key()?),
        fingerprint_sha256: identity.fingerprint_sha256(),
        identity,
    }))
}

impl ListenerCert {
    /// Serves `identity`.
    ///
    /// # Errors
    /// [`authority::Error::Invalid`] for a key rustls cannot use or that is not the
    /// certificate's.
    pub fn new(identity: ListenerIdentity) -> Result<Self, authority::Error> {
        Ok(Self {
            current: RwLock::new(served(identity)?),
        })
    }

    /// What is served now.
    pub fn current(&self) -> Arc<Served> {
        // A writer only swaps one Arc for another, so a poisoned lock still holds a whole one.
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Serves `identity` from the next handshake on.
    ///
    /// # Errors
    /// As [`ListenerCert::new`]; what was served stays.
    pub fn replace(&self, identity: ListenerIdentity) -> Result<(), authority::Error> {
        let next = served(identity)?;
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = next;
        Ok(())
    }
}

impl ResolvesServerCert for ListenerCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current().key.clone())
    }
}

/// Takes up the certificate an administrator set on any node, until `stop` turns true.
pub async fn follow(
    authority: Arc<Authority>,
    listener: Arc<ListenerCert>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            () = tokio::time::sleep(FOLLOW_EVERY) => {}
        }
        let serving = listener.current().fingerprint_sha256.clone();
        let taken = match authority.shared_listener_identity(Some(&serving)).await {
            Ok(Some(identity)) => listener.replace(identity).map(|()| true),
            Ok(None) => Ok(false),
            Err(e) => Err(e),
        };
        match taken {
            Ok(true) => tracing::info!(
                fingerprint_sha256 = %listener.current().fingerprint_sha256,
                "the HTTPS listener serves the certificate set for every node"
            ),
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(error = %e, "could not take up the HTTPS certificate set for every node");
            }
        }
    }
}
