//! The HTTP plumbing of the client commands (`ca`, `cert`): where the server is, how it is
//! trusted, how the API key is sent, and how the REST envelope and error body are read.
//!
//! Trust boundary: everything that comes back from the server is parsed into typed shapes or
//! turned into an [`Error`]; nothing from the network is unwrapped. The API key travels only in
//! the `Authorization` header and never appears in `Debug` output or error messages.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use clap::Args;
use reqwest::{Method, StatusCode, Url};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use zeroize::Zeroizing;

/// How long to wait for a connection, and for a whole answer (RSA CA keys take a while).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// Where the server is and how to reach it; every client command takes these.
#[derive(Args, Clone, Debug)]
pub struct ClientArgs {
    /// The server's base URL.
    #[arg(long, env = "CERTMINT_URL", default_value = "https://127.0.0.1:8443")]
    pub url: String,
    /// An API key, sent as `Authorization: Bearer …`. Prefer the environment variable: other
    /// users of the machine can see command-line flags.
    #[arg(long, env = "CERTMINT_API_KEY", hide_env_values = true)]
    pub api_key: ApiKey,
    /// A PEM file of CA certificates to trust for the server's TLS certificate, instead of the
    /// system's: certmint's root CA, published at `/ca/{refid}.pem`.
    #[arg(long, env = "CERTMINT_CA_CERT", value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
}

/// An API key; its `Debug` form is redacted and its memory is wiped on drop.
#[derive(Clone)]
pub struct ApiKey(Zeroizing<String>);

impl FromStr for ApiKey {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let key = s.trim();
        if key.is_empty() {
            return Err("the API key is empty".into());
        }
        Ok(Self(Zeroizing::new(key.to_owned())))
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

/// Why a client command failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A flag, or a combination of flags, that cannot work.
    #[error("{0}")]
    Usage(String),
    /// Nothing usable answered at the URL (refused, timed out, TLS handshake failure).
    #[error("cannot reach the server at {url}: {detail}")]
    Unreachable {
        /// The URL asked for.
        url: String,
        /// What went wrong, from the innermost cause.
        detail: String,
    },
    /// The server's TLS certificate does not chain to a trusted root, or does not name the host.
    #[error(
        "the TLS certificate of {url} is not trusted ({detail}); pass --ca-cert FILE (or set \
         CERTMINT_CA_CERT) with the PEM of certmint's root CA, which the server publishes at \
         /ca/<refid>.pem"
    )]
    Untrusted {
        /// The URL asked for.
        url: String,
        /// rustls's account of the certificate problem.
        detail: String,
    },
    /// The server answered with an error status; `message` is the error body's text.
    #[error("the server refused ({status}): {message}")]
    Server {
        /// The HTTP status.
        status: StatusCode,
        /// The `message` of the server's error body.
        message: String,
    },
    /// The server answered something that is not what the API returns.
    #[error("unexpected answer from {url}: {detail}")]
    Protocol {
        /// The URL asked for.
        url: String,
        /// What did not fit.
        detail: String,
    },
    /// A certificate was issued, but a step after it (download, key, file) failed.
    #[error("certificate {id} was issued, but {source}")]
    IssuedBut {
        /// The new certificate's id.
        id: i64,
        /// What failed afterwards.
        source: Box<Error>,
    },
    /// A local file could not be read or written.
    #[error("{}: {source}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
}

/// The success envelope `{"data", "message", "meta"}`.
#[derive(Debug, Deserialize)]
pub struct Envelope<T> {
    /// The payload.
    pub data: T,
    /// A note for a person, when there is one.
    #[serde(default)]
    pub message: Option<String>,
    /// Pagination, on lists.
    #[serde(default)]
    pub meta: Option<Meta>,
}

/// Where a page sits in a list.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct Meta {
    /// 1-based page number.
    pub page: u32,
    /// Page size.
    pub per_page: u32,
    /// Items in the whole list.
    pub total: i64,
}

/// A parsed answer and the JSON it came from (printed as is by `--json`).
#[derive(Debug)]
pub struct Reply<T> {
    /// The server's JSON.
    pub raw: Value,
    /// The same, typed.
    pub envelope: Envelope<T>,
}

/// The error body `{"error": true, "code", "message"}`.
#[derive(Deserialize)]
struct ErrorBody {
    message: String,
}

/// A client for one server, authenticated with one API key.
pub struct Client {
    http: reqwest::Client,
    base: Url,
    api_key: ApiKey,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base.as_str())
            .field("api_key", &self.api_key)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client for `args.url` that trusts `args.ca_cert` (only) when given, the system's roots
    /// otherwise.
    ///
    /// # Errors
    /// [`Error::Usage`] for a URL that is not `http(s)://…`, or a CA file without certificates;
    /// [`Error::File`] when the CA file cannot be read.
    pub fn new(args: &ClientArgs) -> Result<Self, Error> {
        let base = Url::parse(args.url.trim())
            .map_err(|e| Error::Usage(format!("--url '{}' is not a URL: {e}", args.url)))?;
        if !matches!(base.scheme(), "https" | "http") || base.host_str().is_none() {
            return Err(Error::Usage(format!(
                "--url '{}' must be an http:// or https:// URL with a host",
                args.url
            )));
        }
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("certmint-cli/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT);
        if let Some(path) = &args.ca_cert {
            let pem = std::fs::read(path).map_err(|source| Error::File {
                path: path.clone(),
                source,
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .ok()
                .filter(|c| !c.is_empty())
                .ok_or_else(|| {
                    Error::Usage(format!(
                        "--ca-cert {}: no PEM certificate in it",
                        path.display()
                    ))
                })?;
            builder = builder.tls_certs_only(certs);
        }
        let http = builder
            .build()
            .map_err(|e| Error::Usage(format!("cannot set up the HTTP client: {}", inner(&e))))?;
        Ok(Self {
            http,
            base,
            api_key: args.api_key.clone(),
        })
    }

    /// The URL of an API path such as `/api/v2/cas`, with `query` pairs.
    fn url(&self, path: &str, query: &[(&str, String)]) -> Url {
        let mut url = self.base.clone();
        let prefix = self.base.path().trim_end_matches('/');
        url.set_path(&format!("{prefix}{path}"));
        if !query.is_empty() {
            url.query_pairs_mut()
                .extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
        }
        url
    }

    /// Sends a request and returns the body of a 2xx answer.
    ///
    /// # Errors
    /// [`Error::Server`] with the error body's message on any other status; the connection
    /// errors of [`Error`].
    async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Zeroizing<Vec<u8>>, Error> {
        let url = self.url(path, query);
        // The URL without the query: an export password may be in it.
        let shown = {
            let mut u = url.clone();
            u.set_query(None);
            u.to_string()
        };
        let mut request = self
            .http
            .request(method, url)
            .bearer_auth(self.api_key.0.as_str());
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| transport(&shown, &e))?;
        let status = response.status();
        let bytes = Zeroizing::new(
            response
                .bytes()
                .await
                .map_err(|e| transport(&shown, &e))?
                .to_vec(),
        );
        if status.is_success() {
            return Ok(bytes);
        }
        let message = match serde_json::from_slice::<ErrorBody>(&bytes) {
            Ok(body) => body.message,
            Err(_) => {
                let text = String::from_utf8_lossy(&bytes);
                let text: String = text.trim().chars().take(200).collect();
                if text.is_empty() {
                    status.canonical_reason().unwrap_or("no message").to_owned()
                } else {
                    text
                }
            }
        };
        Err(Error::Server { status, message })
    }

    /// A JSON call whose answer is an envelope of `T`.
    ///
    /// # Errors
    /// As [`Client::send`], and [`Error::Protocol`] when the answer is not an envelope of `T`.
    pub async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Reply<T>, Error> {
        let bytes = self.send(method, path, query, body).await?;
        let protocol = |e: serde_json::Error| Error::Protocol {
            url: self.url(path, &[]).to_string(),
            detail: e.to_string(),
        };
        let raw: Value = serde_json::from_slice(&bytes).map_err(protocol)?;
        let envelope = Envelope::<T>::deserialize(&raw).map_err(protocol)?;
        Ok(Reply { raw, envelope })
    }

    /// `GET path?query`, returning the body as bytes (downloads).
    ///
    /// # Errors
    /// As [`Client::send`].
    pub async fn download(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<Zeroizing<Vec<u8>>, Error> {
        self.send(Method::GET, path, query, None).await
    }
}

/// Maps a reqwest failure before any HTTP status: an untrusted certificate, or nothing
/// answering.
fn transport(url: &str, e: &reqwest::Error) -> Error {
    if let Some(tls) = rustls_error(e) {
        return match tls {
            rustls::Error::InvalidCertificate(_) => Error::Untrusted {
                url: url.to_owned(),
                detail: tls.to_string(),
            },
            other => Error::Unreachable {
                url: url.to_owned(),
                detail: format!("TLS handshake failed: {other}"),
            },
        };
    }
    let detail = if e.is_timeout() {
        "timed out".to_owned()
    } else {
        inner(e)
    };
    Error::Unreachable {
        url: url.to_owned(),
        detail,
    }
}

/// The rustls error somewhere in `e`'s chain of causes. An `io::Error`'s `source` skips the
/// error it wraps, so each one is opened by hand.
fn rustls_error(e: &reqwest::Error) -> Option<&rustls::Error> {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = next {
        if let Some(tls) = err.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && let Some(wrapped) = io.get_ref()
        {
            if let Some(tls) = wrapped.downcast_ref::<rustls::Error>() {
                return Some(tls);
            }
            next = Some(wrapped);
            continue;
        }
        next = err.source();
    }
    None
}

/// The innermost cause's text ("Connection refused (os error 111)"), not reqwest's wrapper.
fn inner(e: &(dyn std::error::Error + 'static)) -> String {
    let mut last = e;
    while let Some(next) = last.source() {
        last = next;
    }
    last.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(url: &str) -> ClientArgs {
        ClientArgs {
            url: url.into(),
            api_key: ApiKey(Zeroizing::new("cm_secret".into())),
            ca_cert: None,
        }
    }

    #[test]
    fn urls_keep_a_base_path_and_encode_the_query() -> Result<(), Error> {
        let client = Client::new(&args("https://ca.example.test:8443/prefix/"))?;
        let url = client.url(
            "/api/v2/certificates",
            &[("search", "a b&c".into()), ("page", "2".into())],
        );
        assert_eq!(
            url.as_str(),
            "https://ca.example.test:8443/prefix/api/v2/certificates?search=a+b%26c&page=2"
        );
        let client = Client::new(&args("http://127.0.0.1:8080"))?;
        assert_eq!(
            client.url("/api/v2/cas", &[]).as_str(),
            "http://127.0.0.1:8080/api/v2/cas"
        );
        Ok(())
    }

    #[test]
    fn refuses_urls_that_cannot_work() {
        for url in ["", "127.0.0.1:8443", "ftp://host/", "not a url"] {
            assert!(
                matches!(Client::new(&args(url)), Err(Error::Usage(_))),
                "{url:?}"
            );
        }
    }

    #[test]
    fn the_key_is_redacted() -> Result<(), Error> {
        let client = Client::new(&args("https://localhost"))?;
        let shown = format!("{client:?} {:?}", args("https://localhost"));
        assert!(!shown.contains("cm_secret"), "{shown}");
        assert!("  ".parse::<ApiKey>().is_err());
        Ok(())
    }

    #[test]
    fn a_ca_file_without_certificates_is_refused() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("empty.pem");
        std::fs::write(&path, "not a certificate\n")?;
        let mut a = args("https://localhost");
        a.ca_cert = Some(path);
        assert!(matches!(Client::new(&a), Err(Error::Usage(m)) if m.contains("no PEM")));
        a.ca_cert = Some(dir.path().join("absent.pem"));
        assert!(matches!(Client::new(&a), Err(Error::File { .. })));
        Ok(())
    }
}
