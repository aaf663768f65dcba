//! First start and every start: the data directory, the master key, the database and its
//! migrations, the first admin, and the HTTPS listener's certificate.

use std::path::Path;
use std::sync::Arc;

use authority::{
    Authority, Clock, LISTENER_KEY_CONTEXT, ListenerIdentity, MasterKey, SystemClock, Vault,
};
use zeroize::Zeroizing;

use crate::client_auth::DangerousAnyClientCertificate;
use crate::settings::Settings;
use crate::tls::ListenerCert;

/// Secrets that come from the environment, never from the settings file.
#[derive(Default)]
pub struct Secrets {
    /// `CERTMINT_MASTER_KEY`: the master key as base64 or hex, instead of the key file.
    pub master_key: Option<String>,
    /// `CERTMINT_ADMIN_PASSWORD`: the first admin's password, instead of a generated one.
    pub admin_password: Option<String>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secrets(<redacted>)")
    }
}

/// Why certmint could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BootError {
    /// A setting is unusable.
    #[error("{0}")]
    Settings(String),
    /// A file or directory could not be used.
    #[error("{0}")]
    Io(String),
    /// The database, the vault or an account step failed.
    #[error(transparent)]
    Authority(#[from] authority::Error),
    /// The TLS certificate could not be made or loaded.
    #[error("TLS: {0}")]
    Tls(String),
}

/// A started instance's parts: its sockets are bound, but nothing is served yet.
#[derive(Debug)]
pub struct Instance {
    /// The HTTPS listener's socket.
    pub https: tokio::net::TcpListener,
    /// The plain-HTTP listener's socket, if enabled.
    pub http: Option<tokio::net::TcpListener>,
    /// The settings in force.
    pub settings: Settings,
    /// The registration authority.
    pub authority: Arc<Authority>,
    /// The HTTPS listener's configuration.
    pub tls: Arc<rustls::ServerConfig>,
    /// The certificate the HTTPS listener presents, replaceable while serving.
    pub listener: Arc<ListenerCert>,
    /// The first admin's password when this start generated it, to print once.
    pub generated_admin_password: Option<Zeroizing<String>>,
}

/// Opens the data directory, master key and database (creating and migrating what is missing).
///
/// # Errors
/// [`BootError`] saying which step failed.
pub async fn open_authority(
    settings: &Settings,
    master_key: Option<&str>,
    clock: Arc<dyn Clock>,
) -> Result<Authority, BootError> {
    create_private_dir(&settings.data_dir)?;
    let vault = match master_key {
        Some(text) => Vault::new(
            &MasterKey::parse(text)
                .map_err(|e| BootError::Settings(format!("CERTMINT_MASTER_KEY: {e}")))?,
        )?,
        None => {
            let path = settings.data_dir.join("master.key");
            if !path.exists() && settings.data_dir.join(SEALED_TLS_KEY).exists() {
                // A new key could never open what the old one sealed.
                return Err(BootError::Settings(format!(
                    "{} is missing but {} holds keys sealed under a master key: restore the \
                     file or set CERTMINT_MASTER_KEY",
                    path.display(),
                    settings.data_dir.display()
                )));
            }
            let (vault, created) = Vault::from_key_file(&path)?;
            if created {
                tracing::info!(path = %path.display(), "created the master key file; back it up");
            }
            if let Some(mode) = authority::vault::exposed_mode(&path) {
                tracing::warn!(
                    path = %path.display(),
                    mode = format!("{mode:o}"),
                    "the master key file is readable by others than its owner: chmod 600 it"
                );
            }
            vault
        }
    };
    let publishing = authority::Publishing::new(
        &settings
            .public_url()
            .map_err(|e| BootError::Settings(e.to_string()))?,
    );
    settings
        .check_serve_only()
        .and_then(|()| settings.check_second_factor_roles())
        .and_then(|()| settings.external_url())
        .and_then(|_| settings.trusted_proxies())
        .map_err(|e| BootError::Settings(e.to_string()))?;
    let authority = Authority::open(
        &settings.database_url(),
        settings.database_max_connections,
        vault,
        clock,
        settings.policy(),
        publishing,
    )
    .await?
    .with_cpu_pool(settings.cpu_pool());
    authority.register_sealed_file(authority::master_key::SealedFile {
        kind: "https_listener_key",
        path: settings.data_dir.join(SEALED_TLS_KEY),
        context: LISTENER_KEY_CONTEXT,
    });
    authority.configure_backups(backup_place(settings))?;
    Ok(authority)
}

/// Where backups go, and the files of this node that go into them by the names a restore
/// puts them back under.
pub fn backup_place(settings: &Settings) -> authority::backup::BackupPlace {
    let mut files = vec![
        (TLS_CERT.to_owned(), settings.data_dir.join(TLS_CERT)),
        (
            SEALED_TLS_KEY.to_owned(),
            settings.data_dir.join(SEALED_TLS_KEY),
        ),
    ];
    if let Some(file) = &settings.file {
        files.push((SETTINGS_PART.to_owned(), file.clone()));
    }
    authority::backup::BackupPlace {
        shelf: authority::backup::Shelf::new(settings.backup_dir()),
        files,
    }
}

/// The settings file's name inside a backup.
pub const SETTINGS_PART: &str = "certmint.toml";

/// The data-directory files a backup carries, by their path under the data directory.
pub fn data_dir_parts() -> [&'static str; 2] {
    [TLS_CERT, SEALED_TLS_KEY]
}

/// Everything [`open_authority`] does, then the first admin and the TLS certificate.
///
/// # Errors
/// [`BootError`] saying which step failed.
pub async fn open(settings: Settings, secrets: Secrets) -> Result<Instance, BootError> {
    open_with_clock(settings, secrets, Arc::new(SystemClock)).await
}

/// [`open`] with an injected clock, so tests can move time.
///
/// # Errors
/// [`BootError`] saying which step failed.
pub async fn open_with_clock(
    settings: Settings,
    secrets: Secrets,
    clock: Arc<dyn Clock>,
) -> Result<Instance, BootError> {
    let http_listen = settings
        .http_listen()
        .map_err(|e| BootError::Settings(e.to_string()))?;
    let authority = open_authority(&settings, secrets.master_key.as_deref(), clock).await?;
    // Bound before any certificate is made: with port 0 configured, the URLs certificates
    // carry (AIA, CDP) can name the real port only once it is known.
    let https = bind(settings.listen).await?;
    let http = match http_listen {
        Some(addr) => Some(bind(addr).await?),
        None => None,
    };
    if settings.public_url.is_empty() {
        let base = match &http {
            Some(http) => format!("http://{}", local_addr(http)?),
            None => format!("https://{}", local_addr(&https)?),
        };
        authority.publish_at(authority::Publishing::new(&base));
    }
    let generated_admin_password = if authority.has_users().await? {
        None
    } else {
        let (_, generated) = authority
            .create_first_admin(secrets.admin_password.clone())
            .await
            .map_err(|e| match e {
                authority::Error::Invalid(m) => {
                    BootError::Settings(format!("CERTMINT_ADMIN_PASSWORD: {m}"))
                }
                other => other.into(),
            })?;
        generated
    };
    if authority.ensure_default_hierarchy().await? {
        tracing::info!(
            "created the default CA hierarchy: certmint Root CA and certmint Issuing CA"
        );
    }
    authority.ensure_builtin_templates().await?;
    if authority.ensure_default_acme_profile().await? {
        tracing::info!("created the default ACME profile, at /acme/directory");
    }
    authority
        .configure_acme_validation(
            settings
                .acme
                .validation
                .config()
                .map_err(|e| BootError::Settings(e.to_string()))?,
        )
        .map_err(|e| BootError::Settings(e.to_string()))?;
    authority
        .configure_ssl_check(settings.tools.address_policy())
        .map_err(|e| BootError::Settings(e.to_string()))?;
    authority
        .configure_email(settings.email.address_policy())
        .map_err(|e| BootError::Settings(e.to_string()))?;
    authority
        .configure_webhooks(settings.webhooks.address_policy())
        .map_err(|e| BootError::Settings(e.to_string()))?;
    authority
        .configure_syslog(settings.syslog.address_policy())
        .map_err(|e| BootError::Settings(e.to_string()))?;
    authority
        .configure_sso(settings.sso.address_policy())
        .map_err(|e| BootError::Settings(e.to_string()))?;
    authority
        .configure_hsm(settings.hsm.config())
        .map_err(|e| BootError::Settings(e.to_string()))?;
    authority
        .configure_ocsp(settings.ocsp_limits())
        .map_err(|e| BootError::Settings(e.to_string()))?;
    let listener = Arc::new(
        ListenerCert::new(listener_identity(&settings, &authority).await?)
            .map_err(|e| BootError::Tls(e.to_string()))?,
    );
    let tls = tls_config(listener.clone())?;
    Ok(Instance {
        https,
        http,
        settings,
        authority: Arc::new(authority),
        tls,
        listener,
        generated_admin_password,
    })
}

async fn bind(addr: std::net::SocketAddr) -> Result<tokio::net::TcpListener, BootError> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| BootError::Io(format!("cannot listen on {addr}: {e}")))
}

/// The address a listener is bound to.
///
/// # Errors
/// [`BootError::Io`] when the socket cannot say.
pub fn local_addr(listener: &tokio::net::TcpListener) -> Result<std::net::SocketAddr, BootError> {
    listener
        .local_addr()
        .map_err(|e| BootError::Io(e.to_string()))
}

/// Makes `dir` (and its parents) private to the service's user.
///
/// # Errors
/// [`BootError::Io`] when it cannot be made.
pub fn create_private_dir(dir: &Path) -> Result<(), BootError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder
        .create(dir)
        .map_err(|e| BootError::Io(format!("cannot create {}: {e}", dir.display())))
}

/// Where the HTTPS listener's sealed private key lives, under the data directory.
const SEALED_TLS_KEY: &str = "tls/server.key.sealed";
/// Where the HTTPS listener's certificate lives, under the data directory.
const TLS_CERT: &str = "tls/server.crt";

/// The certificate the listener serves: the one set for every node when an administrator set
/// one, else this node's own, kept in its data directory (its key sealed) and made at first
/// start: issued by the default CA, or self-signed when no CA can issue (say, the default CA
/// was deactivated).
async fn listener_identity(
    settings: &Settings,
    authority: &Authority,
) -> Result<ListenerIdentity, BootError> {
    if let Some(shared) = authority.shared_listener_identity(None).await? {
        return Ok(shared);
    }
    let dir = settings.data_dir.join("tls");
    create_private_dir(&dir)?;
    let cert_path = settings.data_dir.join(TLS_CERT);
    let key_path = settings.data_dir.join(SEALED_TLS_KEY);
    if !cert_path.exists() || !key_path.exists() {
        let identity = authority.listener_identity(&settings.tls_names).await?;
        let sealed = authority
            .vault()
            .seal(&identity.key_pkcs8_der, LISTENER_KEY_CONTEXT)?;
        let _ = std::fs::remove_file(&key_path);
        let _ = std::fs::remove_file(&cert_path);
        authority::vault::write_private(&key_path, &sealed)?;
        std::fs::write(&cert_path, identity.cert_pem.as_bytes())
            .map_err(|e| BootError::Io(format!("cannot write {}: {e}", cert_path.display())))?;
        tracing::info!(path = %cert_path.display(), "created the HTTPS listener certificate");
    }
    let pem = std::fs::read(&cert_path)
        .map_err(|e| BootError::Io(format!("cannot read {}: {e}", cert_path.display())))?;
    let sealed = std::fs::read(&key_path)
        .map_err(|e| BootError::Io(format!("cannot read {}: {e}", key_path.display())))?;
    ListenerIdentity::from_files(&pem, &sealed, authority.vault())
        .map_err(|e| BootError::Tls(format!("{}: {e}", cert_path.display())))
}

/// The HTTPS listener's configuration, presenting whatever `listener` holds at each handshake.
fn tls_config(listener: Arc<ListenerCert>) -> Result<Arc<rustls::ServerConfig>, BootError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    // Clients may present a certificate (EST enrollment); the doors that rely on one check it.
    let client_auth = Arc::new(DangerousAnyClientCertificate::new(&provider));
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| BootError::Tls(e.to_string()))?
        .with_client_cert_verifier(client_auth)
        .with_cert_resolver(listener);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
