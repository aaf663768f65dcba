//! Settings: defaults, then a TOML file, then `CERTMINT_*` environment variables (the command
//! line applies its flags last).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::client_address::TrustedProxies;

/// Environment variables that carry secrets or client settings rather than server settings,
/// with what each holds (the configuration reference lists them).
pub(crate) const NOT_SETTINGS: &[(&str, &str)] = &[
    (
        "MASTER_KEY",
        "the master key (32 bytes, base64 or hex), instead of `master.key` in the data directory",
    ),
    (
        "ADMIN_PASSWORD",
        "the first admin's password at the first start, instead of a generated one",
    ),
    (
        "BACKUP_PASSPHRASE",
        "the passphrase of `certmint backup create` and `certmint backup restore`",
    ),
    ("CONFIG", "the settings file, as `--config` gives it"),
    (
        "HSM_<NAME>",
        "an HSM provider's user PIN, read when the provider's `pin_env` names the variable",
    ),
    (
        "URL",
        "the server the client commands (`certmint ca`, `certmint cert`) call, as `--url`",
    ),
    ("API_KEY", "the client commands' API key, as `--api-key`"),
    (
        "CA_CERT",
        "the PEM file of CA certificates the client commands trust for the server, as `--ca-cert`",
    ),
    (
        "KEY_PASSPHRASE",
        "the passphrase `certmint cert issue` encrypts the key it writes with, as `--key-passphrase`",
    ),
    (
        "EXPORT_PASSWORD",
        "the PKCS#12 password of `certmint cert export`, as `--password`",
    ),
];

/// Everything an operator can set. Every key can be given in the TOML file, or as
/// `CERTMINT_<KEY>` in the environment (lists comma-separated; `__` between the names of a
/// nested key, as in `CERTMINT_ACME__VALIDATION__HTTP_PORT`).
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Where the database, master key and TLS material live.
    pub data_dir: PathBuf,
    /// `sqlite://…` or `postgres://…`; empty means SQLite in `data_dir`.
    pub database_url: String,
    /// Most database connections to open.
    pub database_max_connections: u32,
    /// HTTPS listener.
    pub listen: SocketAddr,
    /// Plain-HTTP listener for relying parties (health, OCSP, CRLs, CA certificates; the API
    /// too only when `api_https_only` is off); empty disables it.
    pub http_listen: String,
    /// The base URL certificates point to for OCSP, CRLs and issuer certificates (AIA, CDP);
    /// empty means `http://` and the plain-HTTP listener's address (HTTPS's without one).
    pub public_url: String,
    /// The base URL clients reach this server at, such as a reverse proxy's
    /// `https://pki.example.com`: every URL handed to clients (ACME directories and resources,
    /// the EST, SCEP and ACME addresses the API and console show) is built from it. Scheme, host
    /// and port only: certmint is served at the root of its host. Empty builds ACME's URLs from
    /// the request's `Host` header and shows paths elsewhere.
    pub external_url: String,
    /// Proxies (addresses or networks, such as `127.0.0.1` or `10.0.0.0/8`) whose
    /// `X-Forwarded-For` and `Forwarded` headers name the client; from anyone else the headers
    /// are ignored. Empty trusts none.
    pub trusted_proxies: Vec<String>,
    /// Serve only these parts: `api` (the REST API, its OpenAPI document and `/api/docs`, and
    /// metrics), `acme`, `est`, `scep`, `ocsp`, `crl` (CRLs and CA certificates). Empty serves
    /// everything; health and the web console are always served.
    pub serve_only: Vec<String>,
    /// How long caches may keep the latest CRL (`Cache-Control: max-age`), at most until its
    /// nextUpdate. CRLs fetched by number never change and are cached until their nextUpdate.
    pub crl_max_age_seconds: u64,
    /// Serve `/api/v2` over HTTPS only (the default): the plain-HTTP listener refuses it with
    /// 403, so passwords, session cookies and API keys never cross the network in clear.
    pub api_https_only: bool,
    /// Names (DNS or IP) in the HTTPS listener's certificate when it is first made.
    pub tls_names: Vec<String>,
    /// `text` or `json`.
    pub log_format: String,
    /// A tracing filter such as `info` or `certmint_server=debug,info`.
    pub log_level: String,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Shortest password accepted.
    pub password_min_length: usize,
    /// Consecutive failed logins that lock an account.
    pub lockout_threshold: u32,
    /// How long a lockout lasts.
    pub lockout_minutes: u32,
    /// A session ends after this long without a request.
    pub session_idle_minutes: u32,
    /// A session ends this long after login.
    pub session_absolute_minutes: u32,
    /// Roles whose holders must log in with a second factor (an authenticator code after a
    /// password, or a passkey). Those without one set it up at their next login. Empty by
    /// default, so that a new install's first admin is not locked behind a set-up it has not
    /// heard of; turn it on for `admin` once the administrators have authenticators.
    pub second_factor_roles: Vec<String>,
    /// The relying party id passkeys are bound to: the host of the origin browsers use
    /// (`external_url`, else `public_url`) or a parent domain of it, such as `example.com` for
    /// `https://pki.example.com`. Empty means that host. Passkeys need a domain name: with an IP
    /// address there, they are not offered. Changing it makes the passkeys registered so far
    /// unusable.
    pub webauthn_rp_id: String,
    /// Audit cleanup refuses to remove records younger than this many days.
    pub audit_min_retention_days: u32,
    /// Requests per minute per client address (IPv6: per /64) to the endpoints that check a
    /// password; 0 turns the limit off.
    pub auth_rate_limit_per_minute: u32,
    /// How long shutdown waits for requests in flight.
    pub shutdown_grace_seconds: u64,
    /// How long a client has to send a request's headers, and the longest a kept-alive
    /// connection may sit idle between requests.
    pub header_read_timeout_seconds: u64,
    /// Connections each listener keeps open at once; more are closed as soon as accepted.
    pub max_connections: usize,
    /// OCSP responses signed at once on the request path (nonces, several CertIDs, serials
    /// never issued, refreshes), each on a blocking thread; 0 means one per core.
    pub ocsp_signing_threads: usize,
    /// OCSP requests that may wait for a signing thread; more get `tryLater` at once, while
    /// pre-signed answers are served without waiting.
    pub ocsp_signing_queue: usize,
    /// Certificates whose OCSP responses each node keeps in memory (the oldest go first).
    pub ocsp_cached_responses: usize,
    /// Serials never issued whose `unknown` OCSP responses each node keeps in memory.
    pub ocsp_cached_unknown: usize,
    /// Long CPU work (key derivations over uploaded keys and files, RSA key generation) run at
    /// once; 0 means one per core.
    pub cpu_workers: usize,
    /// Long CPU work that may wait for a worker; more is refused with 503 and `Retry-After`.
    pub cpu_queue: usize,
    /// The operating system's CA bundle, read by `POST /api/v2/truststore/sync`.
    pub system_trust_bundle: PathBuf,
    /// The ACME server (`[acme]` in TOML).
    pub acme: AcmeSettings,
    /// The API's tools (`[tools]` in TOML).
    pub tools: ToolsSettings,
    /// Outbound mail (`[email]` in TOML); the SMTP server itself is set through the API.
    pub email: EmailSettings,
    /// Webhook deliveries (`[webhooks]` in TOML).
    pub webhooks: WebhookSettings,
    /// Audit forwarding to syslog (`[syslog]` in TOML); the server itself is set through the API.
    pub syslog: SyslogSettings,
    /// Single sign-on (`[sso]` in TOML); the providers themselves are set through the API.
    pub sso: SsoSettings,
    /// HSM providers (`[hsm]` in TOML); the providers themselves are set through the API.
    pub hsm: HsmSettings,
    /// Backups (`[backup]` in TOML); the schedule is set through the API.
    pub backup: BackupSettings,
    /// The settings file these were read from, if any (backups carry a copy).
    #[serde(skip)]
    pub file: Option<PathBuf>,
}

/// `[backup]`: where this node keeps backups.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct BackupSettings {
    /// The backup directory; empty means `backups` in the data directory. With several
    /// nodes, a directory they share, so that every node lists the same backups.
    pub dir: PathBuf,
    /// The largest backup accepted for a restore through the API, in bytes.
    pub max_upload_bytes: u64,
}

impl Default for BackupSettings {
    fn default() -> Self {
        Self {
            dir: PathBuf::new(),
            max_upload_bytes: 4 * 1024 * 1024 * 1024,
        }
    }
}

/// `[email]`: where the mail server set through the API may be.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct EmailSettings {
    /// Let mail go to an SMTP server on a loopback, private, link-local or other non-public
    /// address. Off by default: on, an administrator's settings can make the server connect
    /// into the internal network. For a relay on the local network, tests and labs.
    pub allow_private_targets: bool,
}

impl EmailSettings {
    /// Where mail may be sent.
    pub fn address_policy(&self) -> authority::outbound::AddressPolicy {
        address_policy(self.allow_private_targets)
    }
}

/// Public addresses only, or every address when `allow_private` is set.
fn address_policy(allow_private: bool) -> authority::outbound::AddressPolicy {
    if allow_private {
        authority::outbound::AddressPolicy::dangerous_allow_private()
    } else {
        authority::outbound::AddressPolicy::public_only()
    }
}

/// `[webhooks]`: where webhook deliveries may go.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookSettings {
    /// Let webhooks be sent to loopback, private, link-local and other non-public addresses.
    /// Off by default: on, an administrator's webhook can reach the internal network. For
    /// tests, labs and receivers on the private network only.
    pub allow_private_targets: bool,
}

impl WebhookSettings {
    /// Where webhooks may be sent.
    pub fn address_policy(&self) -> authority::outbound::AddressPolicy {
        address_policy(self.allow_private_targets)
    }
}

/// `[sso]`: where the single sign-on providers set through the API may be.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct SsoSettings {
    /// Let certmint reach OIDC providers and LDAP servers on loopback, private, link-local and
    /// other non-public addresses. Off by default: on, an administrator's provider (or an OIDC
    /// provider's discovery document) can make the server connect into the internal network.
    /// Most directories are on the private network, so most sites with LDAP turn this on.
    pub allow_private_targets: bool,
}

impl SsoSettings {
    /// Where SSO connections may go.
    pub fn address_policy(&self) -> authority::outbound::AddressPolicy {
        address_policy(self.allow_private_targets)
    }
}

/// `[hsm]`: the PKCS#11 modules HSM providers set through the API may load, and how long a
/// signature waits for a busy token.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct HsmSettings {
    /// Modules providers may name besides the usual paths of SoftHSM, OpenSC and the YubiHSM 2
    /// module. A provider loads its module into the server, so list only modules you trust.
    pub modules: Vec<PathBuf>,
    /// Seconds a signature waits for a free session of a busy token before the request is
    /// answered 503; 0 answers 503 at once, shedding load rather than queueing it.
    pub session_wait_seconds: u64,
}

impl Default for HsmSettings {
    fn default() -> Self {
        Self {
            modules: Vec::new(),
            session_wait_seconds: 10,
        }
    }
}

impl HsmSettings {
    /// How the authority runs HSM providers.
    pub fn config(&self) -> authority::hsm::HsmConfig {
        authority::hsm::HsmConfig {
            modules: self.modules.clone(),
            session_wait: std::time::Duration::from_secs(self.session_wait_seconds),
        }
    }
}

/// `[syslog]`: where the syslog server set through the API may be.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct SyslogSettings {
    /// Let audit records go to a syslog server on a loopback, private, link-local or other
    /// non-public address. Off by default: on, an administrator's settings can make the server
    /// connect into the internal network. For a collector on the local network, tests and labs.
    pub allow_private_targets: bool,
}

impl SyslogSettings {
    /// Where audit records may be forwarded.
    pub fn address_policy(&self) -> authority::outbound::AddressPolicy {
        address_policy(self.allow_private_targets)
    }
}

/// `[tools]`: the API's tools that reach out to other servers (`POST /api/v2/tools/check-ssl`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ToolsSettings {
    /// Let the SSL check connect to loopback, private, link-local and other non-public
    /// addresses. Off by default: on, any user who may read certificates can make the server
    /// connect into the internal network. For tests and labs only.
    pub allow_private_addresses: bool,
}

impl ToolsSettings {
    /// Where the SSL check may connect.
    pub fn address_policy(&self) -> authority::outbound::AddressPolicy {
        address_policy(self.allow_private_addresses)
    }
}

/// `[acme]`: how the ACME server reaches clients to validate their challenges.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct AcmeSettings {
    /// `[acme.validation]`.
    pub validation: ValidationSettings,
}

/// `[acme.validation]`: where challenges are checked. For tests and private networks.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ValidationSettings {
    /// Port of http-01 validations.
    pub http_port: u16,
    /// Port of tls-alpn-01 validations.
    pub tls_port: u16,
    /// `system` (the resolvers of /etc/resolv.conf) or a resolver's `address:port`.
    pub dns_resolver: String,
    /// Static name → address map, consulted before DNS.
    pub hosts: std::collections::BTreeMap<String, String>,
    /// Let http-01 and tls-alpn-01 connect to loopback, private, link-local and other
    /// non-public addresses. Off by default: on, any ACME client can make the server fetch
    /// from the internal network. For tests and labs only.
    pub allow_private_addresses: bool,
    /// Validations running at once, all accounts together; more wait their turn.
    pub max_in_flight: usize,
    /// Validations running at once for one ACME account; more wait their turn.
    pub max_in_flight_per_account: usize,
}

impl Default for ValidationSettings {
    fn default() -> Self {
        let defaults = authority::acme::validation::ValidationConfig::default();
        Self {
            http_port: 80,
            tls_port: 443,
            dns_resolver: "system".into(),
            hosts: std::collections::BTreeMap::new(),
            allow_private_addresses: false,
            max_in_flight: defaults.max_in_flight,
            max_in_flight_per_account: defaults.max_in_flight_per_account,
        }
    }
}

impl ValidationSettings {
    /// The validator's configuration.
    ///
    /// # Errors
    /// [`SettingsError`] for a resolver that is neither `system` nor an address, or a host
    /// mapped to something that is not an IP address.
    pub fn config(&self) -> Result<authority::acme::validation::ValidationConfig, SettingsError> {
        let dns_resolver = match self.dns_resolver.as_str() {
            "" | "system" => None,
            addr => Some(addr.parse().map_err(|_| {
                SettingsError(format!(
                    "acme.validation.dns_resolver: '{addr}' is neither system nor address:port"
                ))
            })?),
        };
        let hosts = self
            .hosts
            .iter()
            .map(|(name, ip)| {
                ip.parse()
                    .map(|ip| (name.trim_end_matches('.').to_ascii_lowercase(), ip))
                    .map_err(|_| {
                        SettingsError(format!(
                            "acme.validation.hosts: '{name}' maps to '{ip}', which is not an IP address"
                        ))
                    })
            })
            .collect::<Result<_, _>>()?;
        let address_policy = address_policy(self.allow_private_addresses);
        Ok(authority::acme::validation::ValidationConfig {
            http_port: self.http_port,
            tls_port: self.tls_port,
            dns_resolver,
            hosts,
            address_policy,
            max_in_flight: self.max_in_flight,
            max_in_flight_per_account: self.max_in_flight_per_account,
            ..authority::acme::validation::ValidationConfig::default()
        })
    }
}

impl Default for Settings {
    fn default() -> Self {
        let policy = authority::Policy::default();
        let ocsp = authority::OcspLimits::default();
        Self {
            data_dir: PathBuf::from("./data"),
            database_url: String::new(),
            database_max_connections: 16,
            listen: SocketAddr::from(([127, 0, 0, 1], 8443)),
            http_listen: "127.0.0.1:8080".into(),
            public_url: String::new(),
            external_url: String::new(),
            trusted_proxies: Vec::new(),
            serve_only: Vec::new(),
            crl_max_age_seconds: 300,
            api_https_only: true,
            tls_names: vec!["localhost".into(), "127.0.0.1".into(), "::1".into()],
            log_format: "text".into(),
            log_level: "info".into(),
            max_body_bytes: 1024 * 1024,
            password_min_length: policy.password_min_length,
            lockout_threshold: policy.lockout_threshold,
            lockout_minutes: policy.lockout_minutes,
            session_idle_minutes: policy.session_idle_minutes,
            session_absolute_minutes: policy.session_absolute_minutes,
            second_factor_roles: policy.second_factor_roles,
            webauthn_rp_id: String::new(),
            audit_min_retention_days: policy.audit_min_retention_days,
            auth_rate_limit_per_minute: policy.auth_rate_limit_per_minute,
            shutdown_grace_seconds: 30,
            header_read_timeout_seconds: 10,
            max_connections: 4096,
            ocsp_signing_threads: 0,
            ocsp_signing_queue: ocsp.signing_queue,
            ocsp_cached_responses: ocsp.cached_responses,
            ocsp_cached_unknown: ocsp.cached_unknown,
            cpu_workers: 0,
            cpu_queue: 8,
            system_trust_bundle: PathBuf::from("/etc/ssl/certs/ca-certificates.crt"),
            acme: AcmeSettings::default(),
            tools: ToolsSettings::default(),
            email: EmailSettings::default(),
            webhooks: WebhookSettings::default(),
            syslog: SyslogSettings::default(),
            sso: SsoSettings::default(),
            hsm: HsmSettings::default(),
            backup: BackupSettings::default(),
            file: None,
        }
    }
}

/// A setting that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SettingsError(String);

impl SettingsError {
    pub(crate) fn new(message: String) -> Self {
        Self(message)
    }
}

impl Settings {
    /// Layers the defaults, the TOML file at `file` (if any) and the `CERTMINT_*` variables in
    /// `env`.
    ///
    /// # Errors
    /// [`SettingsError`] naming the file or variable and what is wrong with it.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, SettingsError> {
        let defaults = toml::Table::try_from(Self::default())
            .map_err(|e| SettingsError(format!("default settings: {e}")))?;
        let mut table = match file {
            Some(path) => std::fs::read_to_string(path)
                .map_err(|e| SettingsError(format!("cannot read {}: {e}", path.display())))?
                .parse::<toml::Table>()
                .map_err(|e| SettingsError(format!("{}: {e}", path.display())))?,
            None => toml::Table::new(),
        };
        for (name, value) in env {
            let Some(key) = name.strip_prefix("CERTMINT_") else {
                continue;
            };
            // CERTMINT_HSM_<NAME> holds a PIN; CERTMINT_HSM__<KEY> is a setting of [hsm].
            let hsm_pin = key.starts_with("HSM_") && !key.starts_with("HSM__");
            if NOT_SETTINGS.iter().any(|(name, _)| *name == key)
                || key.starts_with("TEST_")
                || hsm_pin
            {
                continue;
            }
            let path: Vec<String> = key.split("__").map(str::to_ascii_lowercase).collect();
            let unknown = || SettingsError(format!("{name} is not a setting certmint knows"));
            let default = setting_at(&defaults, &path).ok_or_else(unknown)?;
            let parsed = env_value(default, &value).ok_or_else(|| {
                SettingsError(format!(
                    "{name}: '{value}' is not a valid {}",
                    default.type_str()
                ))
            })?;
            insert_at(&mut table, &path, parsed).ok_or_else(|| {
                SettingsError(format!(
                    "{name}: the settings file does not have a table there"
                ))
            })?;
        }
        let mut merged = defaults;
        merged.extend(table);
        let mut settings: Self = merged
            .try_into()
            .map_err(|e: toml::de::Error| SettingsError(format!("settings: {}", e.message())))?;
        settings.file = file.map(Path::to_path_buf);
        Ok(settings)
    }

    /// The database URL in force: the configured one, or SQLite in the data directory.
    pub fn database_url(&self) -> String {
        if self.database_url.is_empty() {
            format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("certmint.db").display()
            )
        } else {
            self.database_url.clone()
        }
    }

    /// The backup directory in force.
    pub fn backup_dir(&self) -> PathBuf {
        if self.backup.dir.as_os_str().is_empty() {
            self.data_dir.join("backups")
        } else {
            self.backup.dir.clone()
        }
    }

    /// The plain-HTTP listener address, if enabled.
    ///
    /// # Errors
    /// [`SettingsError`] when `http_listen` is neither empty nor an address.
    pub fn http_listen(&self) -> Result<Option<SocketAddr>, SettingsError> {
        if self.http_listen.is_empty() {
            return Ok(None);
        }
        self.http_listen.parse().map(Some).map_err(|_| {
            SettingsError(format!(
                "http_listen: '{}' is not an address",
                self.http_listen
            ))
        })
    }

    /// The public base URL in force: `public_url`, or the plain-HTTP listener's address (the
    /// HTTPS listener's when plain HTTP is off).
    ///
    /// # Errors
    /// [`SettingsError`] for a `public_url` that is not an absolute http(s) URL, or a bad
    /// `http_listen`.
    pub fn public_url(&self) -> Result<String, SettingsError> {
        if !self.public_url.is_empty() {
            return base_url("public_url", &self.public_url).map(|(url, _)| url);
        }
        Ok(match self.http_listen()? {
            Some(addr) => format!("http://{addr}"),
            None => format!("https://{}", self.listen),
        })
    }

    /// `external_url` without its trailing slash, or `None` when empty.
    ///
    /// # Errors
    /// [`SettingsError`] for a value that is not an absolute http(s) URL, or one with a path,
    /// query or credentials.
    pub fn external_url(&self) -> Result<Option<String>, SettingsError> {
        if self.external_url.is_empty() {
            return Ok(None);
        }
        let (url, authority) = base_url("external_url", &self.external_url)?;
        if authority.contains(['/', '?', '#']) {
            return Err(SettingsError(format!(
                "external_url: '{}' has a path; certmint is served at the root of its host, so \
                 give only scheme, host and port (a proxy must not add a path prefix)",
                self.external_url
            )));
        }
        if authority.contains('@') {
            return Err(SettingsError(format!(
                "external_url: '{}' carries credentials",
                self.external_url
            )));
        }
        Ok(Some(url))
    }

    /// The proxies whose forwarding headers are believed.
    ///
    /// # Errors
    /// [`SettingsError`] naming an entry that is neither an address nor a network.
    pub fn trusted_proxies(&self) -> Result<TrustedProxies, SettingsError> {
        TrustedProxies::parse(&self.trusted_proxies)
            .map_err(|e| SettingsError(format!("trusted_proxies: {e}")))
    }

    /// Whether this node serves `part` (one of those `serve_only` names).
    pub fn serves(&self, part: &str) -> bool {
        self.serve_only.is_empty() || self.serve_only.iter().any(|p| p == part)
    }

    /// Checks `serve_only` names only parts certmint has.
    ///
    /// # Errors
    /// [`SettingsError`] naming the unknown part.
    pub fn check_serve_only(&self) -> Result<(), SettingsError> {
        match self
            .serve_only
            .iter()
            .find(|p| !["api", "acme", "est", "scep", "ocsp", "crl"].contains(&p.as_str()))
        {
            Some(p) => Err(SettingsError(format!(
                "serve_only: unknown part '{p}'; expected api, acme, est, scep, ocsp or crl"
            ))),
            None => Ok(()),
        }
    }

    /// Checks that `second_factor_roles` names roles, so that a misspelt role in the file stops
    /// the start rather than silently requiring nothing of anyone.
    ///
    /// # Errors
    /// [`SettingsError`] naming the unknown role.
    pub fn check_second_factor_roles(&self) -> Result<(), SettingsError> {
        for role in &self.second_factor_roles {
            authority::Role::parse(role)
                .map_err(|e| SettingsError(format!("second_factor_roles: {e}")))?;
        }
        Ok(())
    }

    /// What the OCSP responder may spend.
    pub fn ocsp_limits(&self) -> authority::OcspLimits {
        authority::OcspLimits {
            signing_threads: match self.ocsp_signing_threads {
                0 => authority::blocking::cores(),
                n => n,
            },
            signing_queue: self.ocsp_signing_queue,
            cached_responses: self.ocsp_cached_responses,
            cached_unknown: self.ocsp_cached_unknown,
        }
    }

    /// The account policy these settings describe.
    pub fn policy(&self) -> authority::Policy {
        authority::Policy {
            password_min_length: self.password_min_length,
            lockout_threshold: self.lockout_threshold,
            lockout_minutes: self.lockout_minutes,
            session_idle_minutes: self.session_idle_minutes,
            session_absolute_minutes: self.session_absolute_minutes,
            second_factor_roles: self.second_factor_roles.clone(),
            audit_min_retention_days: self.audit_min_retention_days,
            auth_rate_limit_per_minute: self.auth_rate_limit_per_minute,
            auth_rate_limit_enabled: true,
        }
    }

    /// The pool for long CPU work these settings describe.
    pub fn cpu_pool(&self) -> authority::blocking::Pool {
        let workers = match self.cpu_workers {
            0 => authority::blocking::cores(),
            n => n,
        };
        authority::blocking::Pool::new(workers, self.cpu_queue, authority::KEY_WORK)
    }
}

/// `value`, setting `name`, without its trailing slashes, and what follows its scheme.
///
/// # Errors
/// [`SettingsError`] when it is not an absolute http:// or https:// URL.
fn base_url<'a>(name: &str, value: &'a str) -> Result<(String, &'a str), SettingsError> {
    let url = value.trim_end_matches('/');
    url.strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .filter(|rest| {
            !rest.is_empty() && !rest.starts_with('/') && rest.is_ascii() && !rest.contains(' ')
        })
        .map(|rest| (url.to_owned(), rest))
        .ok_or_else(|| {
            SettingsError(format!(
                "{name}: '{value}' is not an http:// or https:// URL"
            ))
        })
}

/// The value at `path` (nested keys) in `table`.
pub(crate) fn setting_at<'a>(table: &'a toml::Table, path: &[String]) -> Option<&'a toml::Value> {
    let (last, tables) = path.split_last()?;
    tables
        .iter()
        .try_fold(table, |table, part| table.get(part)?.as_table())?
        .get(last)
}

/// Sets the value at `path` in `table`, making the tables on the way; `None` when something
/// other than a table is on the way.
fn insert_at(table: &mut toml::Table, path: &[String], value: toml::Value) -> Option<()> {
    let (last, tables) = path.split_last()?;
    let mut table = table;
    for part in tables {
        table = table
            .entry(part.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            .as_table_mut()?;
    }
    table.insert(last.clone(), value);
    Some(())
}

/// Reads an environment variable's text as the type of the setting's default: lists are
/// comma-separated, tables `key=value` pairs, comma-separated.
fn env_value(default: &toml::Value, raw: &str) -> Option<toml::Value> {
    Some(match default {
        toml::Value::Integer(_) => toml::Value::Integer(raw.trim().parse().ok()?),
        toml::Value::Boolean(_) => toml::Value::Boolean(match raw.trim() {
            "true" | "1" | "yes" | "on" => true,
            "false" | "0" | "no" | "off" => false,
            _ => return None,
        }),
        toml::Value::Array(_) => toml::Value::Array(
            raw.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| toml::Value::String(s.to_owned()))
                .collect(),
        ),
        toml::Value::Table(_) => toml::Value::Table(
            raw.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|pair| {
                    let (key, value) = pair.split_once('=')?;
                    Some((
                        key.trim().to_owned(),
                        toml::Value::String(value.trim().to_owned()),
                    ))
                })
                .collect::<Option<_>>()?,
        ),
        _ => toml::Value::String(raw.to_owned()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect()
    }

    #[test]
    fn layers_file_then_environment() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let file = dir.path().join("certmint.toml");
        std::fs::write(&file, "password_min_length = 16\nlog_format = \"json\"\n")?;
        let s = Settings::load(
            Some(&file),
            env(&[
                ("CERTMINT_LOG_FORMAT", "text"),
                ("CERTMINT_API_HTTPS_ONLY", "false"),
                ("CERTMINT_TLS_NAMES", "a.example, 10.0.0.1"),
                ("CERTMINT_MASTER_KEY", "ignored"),
                // The client commands' variables, exported in the same shell.
                ("CERTMINT_CA_CERT", "root.pem"),
                ("CERTMINT_EXPORT_PASSWORD", "ignored"),
                ("CERTMINT_KEY_PASSPHRASE", "ignored"),
                ("PATH", "/bin"),
            ]),
        )?;
        assert_eq!(s.password_min_length, 16);
        assert_eq!(s.log_format, "text");
        assert!(!s.api_https_only, "on by default, off by the environment");
        assert!(Settings::default().api_https_only);
        assert_eq!(s.tls_names, vec!["a.example", "10.0.0.1"]);
        Ok(())
    }

    #[test]
    fn nested_settings_come_from_the_environment_too() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let file = dir.path().join("certmint.toml");
        std::fs::write(
            &file,
            "[acme.validation]\nhttp_port = 8080\ntls_port = 8443\n",
        )?;
        let s = Settings::load(
            Some(&file),
            env(&[
                ("CERTMINT_ACME__VALIDATION__ALLOW_PRIVATE_ADDRESSES", "true"),
                ("CERTMINT_ACME__VALIDATION__HTTP_PORT", "5002"),
                (
                    "CERTMINT_ACME__VALIDATION__HOSTS",
                    "a.test=127.0.0.1, b.test = 10.0.0.2",
                ),
            ]),
        )?;
        let v = &s.acme.validation;
        assert!(v.allow_private_addresses);
        assert!(!Settings::default().acme.validation.allow_private_addresses);
        assert_eq!(v.http_port, 5002, "the environment wins over the file");
        assert_eq!(v.tls_port, 8443, "the file's other keys stay");
        assert_eq!(v.hosts.get("b.test").map(String::as_str), Some("10.0.0.2"));
        for bad in [
            ("CERTMINT_ACME__VALIDATION__NOPE", "1"),
            ("CERTMINT_ACME__VALIDATION__HTTP_PORT", "eighty"),
            ("CERTMINT_ACME__VALIDATION__HOSTS", "no-equals-sign"),
            ("CERTMINT_LOG_LEVEL__X", "1"),
        ] {
            assert!(Settings::load(None, env(&[bad])).is_err(), "{bad:?}");
        }
        Ok(())
    }

    #[test]
    fn every_acme_validation_key_and_the_proxy_settings_come_from_the_environment()
    -> Result<(), Box<dyn std::error::Error>> {
        let s = Settings::load(
            None,
            env(&[
                ("CERTMINT_ACME__VALIDATION__HTTP_PORT", "5002"),
                ("CERTMINT_ACME__VALIDATION__TLS_PORT", "5003"),
                ("CERTMINT_ACME__VALIDATION__DNS_RESOLVER", "127.0.0.1:5353"),
                (
                    "CERTMINT_ACME__VALIDATION__HOSTS",
                    "www.example.test=127.0.0.1,v6.example.test=::1",
                ),
                ("CERTMINT_ACME__VALIDATION__ALLOW_PRIVATE_ADDRESSES", "yes"),
                ("CERTMINT_ACME__VALIDATION__MAX_IN_FLIGHT", "7"),
                ("CERTMINT_ACME__VALIDATION__MAX_IN_FLIGHT_PER_ACCOUNT", "3"),
                ("CERTMINT_EXTERNAL_URL", "https://pki.example.com/"),
                ("CERTMINT_TRUSTED_PROXIES", "127.0.0.1, 10.0.0.0/8,::1"),
            ]),
        )?;
        let config = s.acme.validation.config()?;
        assert_eq!((config.http_port, config.tls_port), (5002, 5003));
        assert_eq!(config.dns_resolver, Some("127.0.0.1:5353".parse()?));
        assert_eq!(config.hosts.len(), 2);
        assert_eq!(
            config.hosts.get("www.example.test"),
            Some(&"127.0.0.1".parse()?)
        );
        assert_eq!(config.hosts.get("v6.example.test"), Some(&"::1".parse()?));
        assert!(config.address_policy.allows_private());
        assert_eq!(
            (config.max_in_flight, config.max_in_flight_per_account),
            (7, 3)
        );
        assert_eq!(
            s.external_url()?.as_deref(),
            Some("https://pki.example.com")
        );
        assert_eq!(s.trusted_proxies, ["127.0.0.1", "10.0.0.0/8", "::1"]);
        let proxies = s.trusted_proxies()?;
        let headers = axum::http::HeaderMap::from_iter([(
            axum::http::HeaderName::from_static("x-forwarded-for"),
            axum::http::HeaderValue::from_static("198.51.100.2"),
        )]);
        assert_eq!(
            proxies.client("10.1.2.3".parse()?, &headers),
            "198.51.100.2".parse::<std::net::IpAddr>()?
        );
        let bad = env(&[("CERTMINT_TRUSTED_PROXIES", "127.0.0.1,proxy.example.com")]);
        assert!(Settings::load(None, bad)?.trusted_proxies().is_err());
        Ok(())
    }

    #[test]
    fn external_url_is_a_bare_origin() -> Result<(), SettingsError> {
        let mut s = Settings::default();
        assert_eq!(s.external_url()?, None, "empty: from the Host header");
        for (given, expected) in [
            ("https://pki.example.com", "https://pki.example.com"),
            (
                "https://pki.example.com:8443/",
                "https://pki.example.com:8443",
            ),
            ("http://[2001:db8::1]:8080", "http://[2001:db8::1]:8080"),
        ] {
            s.external_url = given.into();
            assert_eq!(s.external_url()?.as_deref(), Some(expected), "{given}");
        }
        for bad in [
            "pki.example.com",
            "ftp://pki.example.com",
            "https://",
            "https:///certmint",
            "https://pki.example.com/certmint",
            "https://pki.example.com/certmint/",
            "https://pki.example.com?x=1",
            "https://user:pw@pki.example.com",
        ] {
            s.external_url = bad.into();
            assert!(s.external_url().is_err(), "{bad}");
        }
        s.external_url = "https://pki.example.com/certmint".into();
        let message = s
            .external_url()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(message.contains("path"), "{message}");
        Ok(())
    }

    #[test]
    fn refuses_unknown_keys_and_bad_values() -> Result<(), Box<dyn std::error::Error>> {
        assert!(Settings::load(None, env(&[("CERTMINT_NOPE", "1")])).is_err());
        assert!(Settings::load(None, env(&[("CERTMINT_LOCKOUT_THRESHOLD", "many")])).is_err());
        assert!(Settings::load(None, env(&[("CERTMINT_LISTEN", "not-an-address")])).is_err());
        let dir = tempfile::tempdir()?;
        let file = dir.path().join("bad.toml");
        std::fs::write(&file, "no_such_key = 1\n")?;
        assert!(Settings::load(Some(&file), env(&[])).is_err());
        Ok(())
    }

    #[test]
    fn reads_the_acme_validation_table() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let file = dir.path().join("certmint.toml");
        std::fs::write(
            &file,
            "[acme.validation]\nhttp_port = 5002\ndns_resolver = \"127.0.0.1:5353\"\n\n\
             [acme.validation.hosts]\n\"WWW.Example.test.\" = \"127.0.0.1\"\n",
        )?;
        let s = Settings::load(Some(&file), env(&[]))?;
        let config = s.acme.validation.config()?;
        assert_eq!((config.http_port, config.tls_port), (5002, 443));
        assert!(!config.address_policy.allows_private());
        assert_eq!(
            (config.max_in_flight, config.max_in_flight_per_account),
            (64, 8)
        );
        assert_eq!(config.dns_resolver, Some("127.0.0.1:5353".parse()?));
        assert_eq!(
            config.hosts.get("www.example.test"),
            Some(&"127.0.0.1".parse()?)
        );
        let mut bad = s.acme.validation.clone();
        bad.dns_resolver = "somewhere".into();
        assert!(bad.config().is_err());
        bad.dns_resolver = "system".into();
        bad.hosts.insert("x.test".into(), "not an address".into());
        assert!(bad.config().is_err());
        assert_eq!(
            Settings::default().acme.validation.config()?.dns_resolver,
            None
        );
        Ok(())
    }

    #[test]
    fn private_addresses_and_the_validation_caps_are_settings()
    -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let file = dir.path().join("certmint.toml");
        std::fs::write(
            &file,
            "[acme.validation]\nallow_private_addresses = true\nmax_in_flight = 16\n\
             max_in_flight_per_account = 2\n",
        )?;
        let config = Settings::load(Some(&file), env(&[]))?
            .acme
            .validation
            .config()?;
        assert!(config.address_policy.allows_private());
        assert_eq!(
            (config.max_in_flight, config.max_in_flight_per_account),
            (16, 2)
        );
        Ok(())
    }

    #[test]
    fn default_database_is_sqlite_in_the_data_dir() {
        let s = Settings::default();
        assert_eq!(s.database_url(), "sqlite://./data/certmint.db?mode=rwc");
        assert!(s.http_listen().ok().flatten().is_some());
    }

    #[test]
    fn public_url_defaults_to_the_http_listener() -> Result<(), SettingsError> {
        let mut s = Settings::default();
        assert_eq!(s.public_url()?, "http://127.0.0.1:8080");
        s.http_listen = String::new();
        assert_eq!(s.public_url()?, "https://127.0.0.1:8443");
        s.public_url = "http://pki.example.com/".into();
        assert_eq!(s.public_url()?, "http://pki.example.com");
        for bad in ["pki.example.com", "ftp://x", "http://", "http://a b"] {
            s.public_url = bad.into();
            assert!(s.public_url().is_err(), "{bad}");
        }
        Ok(())
    }

    #[test]
    fn serve_only_names_known_parts() {
        let mut s = Settings::default();
        assert!(s.serves("api") && s.serves("ocsp"));
        s.serve_only = vec!["ocsp".into(), "crl".into()];
        assert!(s.check_serve_only().is_ok());
        assert!(!s.serves("api") && s.serves("crl"));
        s.serve_only.push("ui".into());
        assert!(s.check_serve_only().is_err());
    }

    #[test]
    fn second_factor_roles_name_roles() {
        let mut s = Settings::default();
        assert!(s.check_second_factor_roles().is_ok());
        s.second_factor_roles = vec!["admin".into(), "operator".into()];
        assert!(s.check_second_factor_roles().is_ok());
        s.second_factor_roles.push("admins".into());
        let e = s.check_second_factor_roles().err().map(|e| e.to_string());
        assert!(e.is_some_and(|e| e.contains("second_factor_roles")));
    }
}
