//! The test harness: a real server on ephemeral ports with a temporary data directory, on
//! SQLite, or on a fresh PostgreSQL database when `CERTMINT_TEST_DATABASE_URL` names a server.

use std::sync::Arc;

use authority::ManualClock;
use certmint_server::{Running, Secrets, Settings};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

pub const ADMIN_PASSWORD: &str = "correct horse battery staple";

pub type TestResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

pub struct TestServer {
    pub running: Option<Running>,
    pub https: String,
    pub http: String,
    pub client: reqwest::Client,
    pub clock: Arc<ManualClock>,
    pub database_url: String,
    pub _data_dir: tempfile::TempDir,
}

/// The database URL for a new test server: a fresh PostgreSQL database, or empty for SQLite.
pub async fn database_url() -> String {
    match std::env::var("CERTMINT_TEST_DATABASE_URL") {
        Ok(admin) if !admin.is_empty() => store::testing::fresh_postgres_database(&admin)
            .await
            .unwrap_or_else(|e| panic!("CERTMINT_TEST_DATABASE_URL is set but unusable: {e}")),
        _ => String::new(),
    }
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(configure: impl FnOnce(&mut Settings)) -> Self {
        let data_dir = tempfile::tempdir().expect("temporary directory");
        let mut settings = Settings {
            data_dir: data_dir.path().to_path_buf(),
            database_url: database_url().await,
            listen: "127.0.0.1:0".parse().expect("address"),
            http_listen: "127.0.0.1:0".into(),
            auth_rate_limit_per_minute: 0,
            shutdown_grace_seconds: 5,
            ..Settings::default()
        };
        configure(&mut settings);
        let served_dir = settings.data_dir.clone();
        let database_url = settings.database_url();
        let clock = Arc::new(ManualClock::default());
        let secrets = Secrets {
            master_key: None,
            admin_password: Some(ADMIN_PASSWORD.into()),
        };
        let instance =
            certmint_server::bootstrap::open_with_clock(settings, secrets, clock.clone())
                .await
                .expect("bootstrap");
        let running = certmint_server::start(instance).await.expect("start");
        let cert = std::fs::read(served_dir.join("tls/server.crt")).expect("TLS certificate");
        let client = reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(&cert).expect("PEM")])
            .build()
            .expect("client");
        Self {
            https: format!("https://{}", running.https_addr),
            http: running
                .http_addr
                .map(|a| format!("http://{a}"))
                .unwrap_or_default(),
            running: Some(running),
            client,
            clock,
            database_url,
            _data_dir: data_dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.https)
    }

    /// A raw handle on the database, for tests that damage rows on purpose.
    pub async fn raw_store(&self) -> store::Store {
        store::Store::connect(&self.database_url, 1)
            .await
            .expect("raw store")
    }

    /// Logs in and returns a cookie-and-CSRF session.
    pub async fn login(&self, username: &str, password: &str) -> Session {
        let response = self
            .client
            .post(self.url("/api/v2/auth/login/password"))
            .json(&json!({"username": username, "password": password}))
            .send()
            .await
            .expect("login request");
        assert_eq!(response.status(), StatusCode::OK, "login as {username}");
        let cookie = response
            .headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .expect("session cookie")
            .to_owned();
        let body: Value = response.json().await.expect("login body");
        Session {
            cookie,
            csrf: body["data"]["csrf_token"]
                .as_str()
                .expect("csrf token")
                .to_owned(),
        }
    }

    pub async fn admin(&self) -> Session {
        self.login("admin", ADMIN_PASSWORD).await
    }

    /// Creates an API key for `session`'s user with `permissions`, returning its id and secret.
    pub async fn api_key(&self, session: &Session, permissions: &[&str]) -> (i64, String) {
        let (status, body) = self
            .call(
                Method::POST,
                "/api/v2/account/apikeys",
                &Auth::Session(session),
                Some(json!({"name": "test", "permissions": permissions})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        (
            body["data"]["id"].as_i64().expect("key id"),
            body["data"]["key"].as_str().expect("key").to_owned(),
        )
    }

    /// Creates a user with `role` and returns its id.
    pub async fn user(&self, admin: &Session, username: &str, role: &str) -> i64 {
        let (status, body) = self
            .call(
                Method::POST,
                "/api/v2/users",
                &Auth::Session(admin),
                Some(json!({"username": username, "password": ADMIN_PASSWORD, "role": role})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["data"]["id"].as_i64().expect("user id")
    }

    /// How many audit records match `query` (e.g. `action=login_failed&username=lena`).
    pub async fn audit_total(&self, auth: &Auth<'_>, query: &str) -> i64 {
        let (status, body) = self
            .call(
                Method::GET,
                &format!("/api/v2/audit/logs?{query}"),
                auth,
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["meta"]["total"].as_i64().expect("total")
    }

    /// Sends a request and returns the status and the JSON body (Null when there is none).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        auth: &Auth<'_>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let response = self.request(method, path, auth, body).await;
        let status = response.status();
        let text = response.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub async fn request(
        &self,
        method: Method,
        path: &str,
        auth: &Auth<'_>,
        body: Option<Value>,
    ) -> reqwest::Response {
        let mut request = auth.apply(self.client.request(method, self.url(path)));
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.expect("request")
    }

    /// Sends `file` as the multipart part `file`, with `fields` as text parts.
    pub async fn upload(
        &self,
        path: &str,
        auth: &Auth<'_>,
        file: Vec<u8>,
        fields: &[(&str, &str)],
    ) -> (StatusCode, Value) {
        let mut form = reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(file).file_name("upload"),
        );
        for (name, value) in fields {
            form = form.text((*name).to_owned(), (*value).to_owned());
        }
        let request = auth.apply(self.client.post(self.url(path)).multipart(form));
        let response = request.send().await.expect("request");
        let status = response.status();
        let text = response.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub async fn stop(mut self) {
        if let Some(running) = self.running.take() {
            running.shutdown().await;
        }
    }
}

#[derive(Debug, Clone)]
pub struct Session {
    pub cookie: String,
    pub csrf: String,
}

pub enum Auth<'a> {
    None,
    Session(&'a Session),
    CookieOnly(&'a Session),
    Bearer(&'a str),
    ApiKeyHeader(&'a str),
}

impl Auth<'_> {
    fn apply(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self {
            Auth::None => request,
            Auth::Session(s) => request
                .header("cookie", &s.cookie)
                .header("x-csrf-token", &s.csrf),
            Auth::CookieOnly(s) => request.header("cookie", &s.cookie),
            Auth::Bearer(k) => request.bearer_auth(k),
            Auth::ApiKeyHeader(k) => request.header("x-api-key", *k),
        }
    }
}

/// Runs openssl in `dir` and returns its stdout. A missing openssl fails the test (it is
/// installed by scripts/test); it never skips.
pub fn openssl(dir: &std::path::Path, args: &[&str]) -> Result<String, String> {
    let out = std::process::Command::new("openssl")
        .args(args.iter().map(std::ffi::OsStr::new))
        .current_dir(dir)
        .output()
        .map_err(|e| format!("the openssl command is required for this test: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "openssl {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// POSTs `body` as `session`; the status and the JSON answer.
pub async fn post(
    server: &TestServer,
    session: &Session,
    path: &str,
    body: Value,
) -> (StatusCode, Value) {
    server
        .call(Method::POST, path, &Auth::Session(session), Some(body))
        .await
}

/// GETs a file as `session`, which must answer 200.
pub async fn fetch(server: &TestServer, session: &Session, path: &str) -> TestResult<Vec<u8>> {
    let response = server
        .request(Method::GET, path, &Auth::Session(session), None)
        .await;
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    Ok(response.bytes().await?.to_vec())
}
