//! The connection to the syslog server: TCP (RFC 6587) or TLS (RFC 5425), opened under the
//! outbound address policy, every step bounded in time.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::time::{Instant, timeout};

use super::{SyslogProtocol, SyslogSettings};
use crate::outbound::{self, AddressPolicy, HostError};
use crate::{Error, Result};

/// The longest connecting (resolution and TLS handshake included) may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest one write of a batch may take before the server counts as gone.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest CA bundle accepted for TLS.
pub const MAX_CA_PEM: usize = 64 * 1024;

/// An open connection to the syslog server.
pub struct Connection {
    stream: Box<dyn AsyncWrite + Unpin + Send>,
    target: String,
}

/// The trust anchors for the syslog server's certificate: the certificates of `ca_pem` when
/// given, otherwise the system's roots.
///
/// # Errors
/// [`Error::Invalid`] for a bundle over [`MAX_CA_PEM`], without a certificate, with another
/// kind of block, or with a certificate that cannot be a trust anchor.
pub fn roots(ca_pem: Option<&str>) -> Result<rustls::RootCertStore> {
    let mut roots = rustls::RootCertStore::empty();
    let Some(pem) = ca_pem else {
        roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        return Ok(roots);
    };
    if pem.len() > MAX_CA_PEM {
        return Err(Error::Invalid(format!(
            "ca_pem holds at most {MAX_CA_PEM} bytes"
        )));
    }
    let blocks = pki::pem::find_blocks(pem.as_bytes())
        .map_err(|e| Error::Invalid(format!("ca_pem: {e}")))?;
    if blocks.is_empty() {
        return Err(Error::Invalid(
            "ca_pem holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into(),
        ));
    }
    for block in blocks {
        if block.label != "CERTIFICATE" {
            return Err(Error::Invalid(format!(
                "ca_pem holds certificates only, not a {} block",
                block.label
            )));
        }
        roots
            .add(rustls::pki_types::CertificateDer::from(block.der))
            .map_err(|e| Error::Invalid(format!("ca_pem: a certificate is unusable: {e}")))?;
    }
    Ok(roots)
}

impl Connection {
    /// Connects to the server `settings` name under `policy`; for TLS, verifies its
    /// certificate for the host name against [`roots`].
    ///
    /// # Errors
    /// [`Error::Invalid`] for a server at an address the policy refuses; [`Error::Upstream`]
    /// for one that does not resolve, answer or complete the handshake in time.
    pub async fn open(settings: &SyslogSettings, policy: &AddressPolicy) -> Result<Self> {
        let target = format!("{}:{}", settings.host, settings.port);
        let deadline = Instant::now() + CONNECT_TIMEOUT;
        let tcp = outbound::connect_host(policy, &settings.host, settings.port, deadline)
            .await
            .map_err(|e| match e {
                HostError::Refused { range, .. } => Error::Invalid(format!(
                    "the syslog server {target} is at a {range} address, which outbound \
                     connections do not reach (allow it with [syslog] allow_private_targets)"
                )),
                HostError::Failed(e) => {
                    Error::Upstream(format!("could not connect to the syslog server: {e}"))
                }
                other => Error::Upstream(format!("the syslog server: {other}")),
            })?;
        let stream: Box<dyn AsyncWrite + Unpin + Send> = match settings.protocol {
            SyslogProtocol::Tcp => Box::new(tcp),
            SyslogProtocol::Tls => {
                let config = rustls::ClientConfig::builder_with_provider(Arc::new(
                    rustls::crypto::aws_lc_rs::default_provider(),
                ))
                .with_safe_default_protocol_versions()
                .map_err(|e| Error::Internal(format!("TLS for syslog: {e}")))?
                .with_root_certificates(roots(settings.ca_pem.as_deref())?)
                .with_no_client_auth();
                let name = rustls::pki_types::ServerName::try_from(settings.host.clone()).map_err(
                    |_| {
                        Error::Invalid(format!(
                            "'{}' is neither a host name nor an address",
                            settings.host
                        ))
                    },
                )?;
                let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
                let tls = tokio::time::timeout_at(deadline, connector.connect(name, tcp))
                    .await
                    .map_err(|_| {
                        Error::Upstream(format!(
                            "the TLS handshake with the syslog server {target} took too long"
                        ))
                    })?
                    .map_err(|e| {
                        Error::Upstream(format!(
                            "the TLS handshake with the syslog server {target} failed: {e}"
                        ))
                    })?;
                Box::new(tls)
            }
        };
        Ok(Self { stream, target })
    }

    /// Writes `frames` (whole framed messages) and flushes them.
    ///
    /// # Errors
    /// [`Error::Upstream`] when the server does not take them within [`WRITE_TIMEOUT`].
    pub async fn send(&mut self, frames: &[u8]) -> Result<()> {
        let write = async {
            self.stream.write_all(frames).await?;
            self.stream.flush().await
        };
        match timeout(WRITE_TIMEOUT, write).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(Error::Upstream(format!(
                "writing to the syslog server {} failed: {e}",
                self.target
            ))),
            Err(_) => Err(Error::Upstream(format!(
                "the syslog server {} took nothing for {WRITE_TIMEOUT:?}",
                self.target
            ))),
        }
    }

    /// Closes the connection (with TLS's close_notify); what was sent is sent either way.
    pub async fn close(mut self) {
        let _ = timeout(WRITE_TIMEOUT, self.stream.shutdown()).await;
    }
}
