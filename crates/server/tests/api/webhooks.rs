//! Webhooks over REST: endpoints registered with their secret shown once, events from the
//! outbox posted to a receiver on loopback and verified as a receiver would (signature,
//! idempotency key, payload), retries with backoff until dead, a requeue, the filters, the
//! address policy and who may do it.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use aws_lc_rs::hmac;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode as AxumStatus};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{ADMIN_PASSWORD, Auth, Session, TestResult, TestServer};
use crate::jobs::run_job;

/// What a receiver got, and what it answers next (200 once the script is done).
#[derive(Default)]
struct Inbox {
    received: Vec<(HeaderMap, Bytes)>,
    answers: VecDeque<u16>,
}

/// A webhook receiver on 127.0.0.1.
pub(crate) struct Receiver {
    pub(crate) url: String,
    inbox: Arc<Mutex<Inbox>>,
}

impl Receiver {
    pub(crate) async fn start() -> Self {
        let inbox = Arc::new(Mutex::new(Inbox::default()));
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            .with_state(inbox.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("receiver listener");
        let port = listener.local_addr().expect("receiver address").port();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            url: format!("http://127.0.0.1:{port}/hook"),
            inbox,
        }
    }

    fn answer(&self, codes: &[u16]) {
        self.inbox.lock().expect("inbox").answers.extend(codes);
    }

    pub(crate) fn received(&self) -> Vec<(HeaderMap, Bytes)> {
        self.inbox.lock().expect("inbox").received.clone()
    }
}

async fn receive(
    State(inbox): State<Arc<Mutex<Inbox>>>,
    headers: HeaderMap,
    body: Bytes,
) -> (AxumStatus, &'static str) {
    let mut inbox = inbox.lock().expect("inbox");
    inbox.received.push((headers, body));
    let code = inbox.answers.pop_front().unwrap_or(200);
    (
        AxumStatus::from_u16(code).expect("status"),
        "receiver says hello",
    )
}

/// Checks the request as a receiver does: the signature over `<t>.<body>` under `secret`,
/// the idempotency key and event type against the payload. Returns the payload.
pub(crate) fn verified(headers: &HeaderMap, body: &[u8], secret: &str) -> TestResult<Value> {
    let header = |name: &str| -> TestResult<String> {
        Ok(headers
            .get(name)
            .ok_or(format!("no {name}"))?
            .to_str()?
            .to_owned())
    };
    let signature = header("x-certmint-signature")?;
    let (t, v1) = signature
        .split_once(',')
        .and_then(|(t, v)| Some((t.strip_prefix("t=")?, v.strip_prefix("v1=")?)))
        .ok_or(format!("signature header '{signature}'"))?;
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let mut signed = format!("{t}.").into_bytes();
    signed.extend_from_slice(body);
    hmac::verify(&key, &signed, &hex::decode(v1)?).map_err(|_| "bad signature")?;
    let payload: Value = serde_json::from_slice(body)?;
    assert_eq!(payload["version"], 1, "{payload}");
    assert_eq!(
        header("idempotency-key")?,
        payload["id"].as_str().ok_or("id")?
    );
    assert_eq!(
        header("x-certmint-event")?,
        payload["type"].as_str().ok_or("type")?
    );
    assert_eq!(header("content-type")?, "application/json");
    assert!(payload["created_at"].is_string(), "{payload}");
    Ok(payload)
}

async fn create(server: &TestServer, admin: &Session, body: Value) -> (StatusCode, Value) {
    server
        .call(
            Method::POST,
            "/api/v2/webhooks",
            &Auth::Session(admin),
            Some(body),
        )
        .await
}

async fn issue(server: &TestServer, admin: &Session, body: Value) -> TestResult<i64> {
    let (status, body) = server
        .call(
            Method::POST,
            "/api/v2/certificates",
            &Auth::Session(admin),
            Some(body),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    Ok(body["data"]["id"].as_i64().ok_or("certificate id")?)
}

async fn deliveries(server: &TestServer, admin: &Session, hook: i64) -> Value {
    let (status, body) = server
        .call(
            Method::GET,
            &format!("/api/v2/webhooks/{hook}/deliveries"),
            &Auth::Session(admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["data"].clone()
}

pub(crate) async fn lab() -> TestServer {
    TestServer::start_with(|s| s.webhooks.allow_private_targets = true).await
}

#[tokio::test]
async fn an_issued_certificate_reaches_the_receiver_signed() -> TestResult {
    let server = lab().await;
    let admin = server.admin().await;
    let auth = Auth::Session(&admin);
    let receiver = Receiver::start().await;
    let (status, made) = create(
        &server,
        &admin,
        json!({"name": "ops", "url": receiver.url, "events": ["certificate_issued"],
               "custom_headers": {"X-Team": "pki"}}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let hook = made["data"]["id"].as_i64().ok_or("id")?;
    let secret = made["data"]["secret"].as_str().ok_or("secret")?.to_owned();
    assert!(secret.len() >= 16, "{made}");

    // The secret is never shown again, on either path.
    for path in ["/api/v2/webhooks", "/api/v2/settings/webhooks"] {
        let response = server.request(Method::GET, path, &auth, None).await;
        assert_eq!(response.headers()["cache-control"], "no-store", "{path}");
        let text = response.text().await?;
        assert!(!text.contains(&secret), "{text}");
        let list: Value = serde_json::from_str(&text)?;
        assert_eq!(list["data"][0]["id"], hook, "{list}");
        assert!(list["data"][0].get("secret").is_none(), "{list}");
    }
    let (_, one) = server
        .call(
            Method::GET,
            &format!("/api/v2/webhooks/{hook}"),
            &auth,
            None,
        )
        .await;
    assert_eq!(one["data"]["custom_headers"]["X-Team"], "pki", "{one}");
    assert!(one["data"].get("secret").is_none(), "{one}");

    let id = issue(&server, &admin, json!({"common_name": "hook.example.test"})).await?;
    let ran = run_job(&server, &admin, "webhook_delivery").await?;
    assert_eq!(ran["last_run"]["outcome"], "succeeded", "{ran}");
    let received = receiver.received();
    assert_eq!(received.len(), 1, "one event, once");
    let (headers, body) = &received[0];
    let payload = verified(headers, body, &secret)?;
    assert_eq!(headers["x-team"], "pki");
    assert_eq!(payload["type"], "certificate_issued", "{payload}");
    assert_eq!(payload["data"]["resource_type"], "certificate", "{payload}");
    assert_eq!(payload["data"]["resource_id"], id.to_string(), "{payload}");
    assert!(payload["data"]["serial"].is_string(), "{payload}");
    assert!(payload["data"]["ca_id"].is_i64(), "{payload}");

    let log = deliveries(&server, &admin, hook).await;
    assert_eq!(log[0]["status"], "delivered", "{log}");
    assert_eq!(log[0]["attempts"], 1, "{log}");
    assert_eq!(log[0]["last_status_code"], 200, "{log}");
    assert_eq!(log[0]["response_excerpt"], "receiver says hello", "{log}");
    assert_eq!(
        log[0]["event_id"].to_string(),
        payload["id"].as_str().ok_or("id")?
    );

    // Run again: nothing new is sent.
    run_job(&server, &admin, "webhook_delivery").await?;
    assert_eq!(receiver.received().len(), 1);

    // A test event now, and a new secret that signs what follows.
    let (status, tested) = server
        .call(
            Method::POST,
            &format!("/api/v2/webhooks/{hook}/test"),
            &auth,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{tested}");
    assert_eq!(tested["data"]["delivered"], true, "{tested}");
    assert_eq!(tested["data"]["status_code"], 200, "{tested}");
    let (status, fresh) = server
        .call(
            Method::POST,
            &format!("/api/v2/settings/webhooks/{hook}/regenerate-secret"),
            &auth,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{fresh}");
    let new_secret = fresh["data"]["secret"].as_str().ok_or("secret")?;
    assert_ne!(new_secret, secret);
    server
        .call(
            Method::POST,
            &format!("/api/v2/webhooks/{hook}/test"),
            &auth,
            None,
        )
        .await;
    let received = receiver.received();
    assert_eq!(received.len(), 3);
    let test_payload = verified(&received[1].0, &received[1].1, &secret)?;
    assert_eq!(test_payload["type"], "test");
    verified(&received[2].0, &received[2].1, new_secret)?;
    assert!(verified(&received[2].0, &received[2].1, &secret).is_err());

    // Switched off, it gets nothing; the alias toggles as well.
    let (status, off) = server
        .call(
            Method::POST,
            &format!("/api/v2/settings/webhooks/{hook}/toggle"),
            &auth,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{off}");
    assert_eq!(off["data"]["enabled"], false, "{off}");
    issue(&server, &admin, json!({"common_name": "off.example.test"})).await?;
    run_job(&server, &admin, "webhook_delivery").await?;
    assert_eq!(receiver.received().len(), 3);

    let (status, _) = server
        .call(
            Method::DELETE,
            &format!("/api/v2/webhooks/{hook}"),
            &auth,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = server
        .call(
            Method::GET,
            &format!("/api/v2/webhooks/{hook}"),
            &auth,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(server.audit_total(&auth, "action=webhook_created").await, 1);
    Ok(())
}

#[tokio::test]
async fn a_backlog_drains_in_one_run_to_each_endpoint_in_order() -> TestResult {
    let server = lab().await;
    let admin = server.admin().await;
    // Only the run asked for below may send: the whole backlog goes in that one run.
    let (status, body) = server
        .call(
            Method::PATCH,
            "/api/v2/system/jobs/webhook_delivery",
            &Auth::Session(&admin),
            Some(json!({"enabled": false})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let receivers = [Receiver::start().await, Receiver::start().await];
    for receiver in &receivers {
        let (status, made) = create(
            &server,
            &admin,
            json!({"name": "backlog", "url": receiver.url, "events": ["certificate_issued"]}),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{made}");
    }
    // More than a page of deliveries (100), and more than a run once sent an endpoint (50).
    const BACKLOG: usize = 130;
    for i in 0..BACKLOG {
        issue(
            &server,
            &admin,
            json!({"common_name": format!("backlog-{i}.example.test")}),
        )
        .await?;
    }
    let ran = run_job(&server, &admin, "webhook_delivery").await?;
    assert_eq!(
        ran["last_run"]["summary"],
        format!(
            "{} events queued, {} deliveries made, 0 failed, 0 old events removed",
            2 * BACKLOG,
            2 * BACKLOG
        ),
        "{ran}"
    );
    for receiver in &receivers {
        let ids = receiver
            .received()
            .iter()
            .map(|(_, body)| -> TestResult<i64> {
                let payload: Value = serde_json::from_slice(body)?;
                Ok(payload["id"].as_str().ok_or("id")?.parse()?)
            })
            .collect::<TestResult<Vec<i64>>>()?;
        assert_eq!(ids.len(), BACKLOG, "every event, once");
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "in order: {ids:?}");
    }

    // A week later the events fanned out leave the outbox; an event raised after that still
    // reaches each endpoint, with an id after every one it had.
    let store = server.raw_store().await;
    let outbox = || async {
        let stats = store.database_stats().await?;
        let rows = stats
            .tables
            .iter()
            .find(|t| t.name == "outbox")
            .map(|t| t.rows);
        Ok::<_, store::Error>(rows.unwrap_or_default())
    };
    let removed = |ran: &Value| -> TestResult<i64> {
        let summary = ran["last_run"]["summary"].as_str().ok_or("summary")?;
        let said = summary
            .strip_suffix(" old events removed")
            .and_then(|s| s.rsplit(", ").next())
            .ok_or_else(|| format!("no removal count in {summary}"))?;
        Ok(said.parse()?)
    };
    let kept = outbox().await?;
    assert!(kept > i64::try_from(BACKLOG)?);
    let ran = run_job(&server, &admin, "webhook_delivery").await?;
    assert_eq!(
        removed(&ran)?,
        0,
        "nothing is removed before its time: {ran}"
    );
    server.clock.advance(time::Duration::days(8));
    let admin = server.admin().await;
    let ran = run_job(&server, &admin, "webhook_delivery").await?;
    let gone = removed(&ran)?;
    assert!(gone >= i64::try_from(BACKLOG)?, "{ran}");
    assert!(outbox().await? <= kept - gone + 2, "{ran}");
    let last_ids: Vec<i64> = receivers
        .iter()
        .map(|r| -> TestResult<i64> {
            let (_, body) = r.received().last().cloned().ok_or("a delivery")?;
            let payload: Value = serde_json::from_slice(&body)?;
            Ok(payload["id"].as_str().ok_or("id")?.parse()?)
        })
        .collect::<TestResult<Vec<i64>>>()?;
    issue(
        &server,
        &admin,
        json!({"common_name": "after-pruning.example.test"}),
    )
    .await?;
    run_job(&server, &admin, "webhook_delivery").await?;
    for (receiver, last) in receivers.iter().zip(last_ids) {
        let received = receiver.received();
        assert_eq!(received.len(), BACKLOG + 1);
        let (_, body) = received.last().cloned().ok_or("the new delivery")?;
        let payload: Value = serde_json::from_slice(&body)?;
        let id: i64 = payload["id"].as_str().ok_or("id")?.parse()?;
        assert!(id > last, "a new id, {id}, after {last}");
    }
    Ok(())
}

#[tokio::test]
async fn failures_are_retried_in_order_until_dead_and_requeued() -> TestResult {
    let server = lab().await;
    let admin = server.admin().await;
    let receiver = Receiver::start().await;
    let (status, made) = create(
        &server,
        &admin,
        json!({"name": "flaky", "url": receiver.url, "events": ["certificate_issued"]}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let hook = made["data"]["id"].as_i64().ok_or("id")?;

    // 500, then 200.
    receiver.answer(&[500]);
    issue(
        &server,
        &admin,
        json!({"common_name": "first.example.test"}),
    )
    .await?;
    run_job(&server, &admin, "webhook_delivery").await?;
    let log = deliveries(&server, &admin, hook).await;
    assert_eq!(log[0]["status"], "failed", "{log}");
    assert_eq!(log[0]["attempts"], 1, "{log}");
    assert_eq!(log[0]["last_status_code"], 500, "{log}");
    // Not due yet: nothing is sent, and the next event waits behind it.
    issue(
        &server,
        &admin,
        json!({"common_name": "second.example.test"}),
    )
    .await?;
    run_job(&server, &admin, "webhook_delivery").await?;
    assert_eq!(receiver.received().len(), 1);
    // Past the backoff (30 s and up to a quarter more) the first goes, then the second.
    server.clock.advance(time::Duration::seconds(40));
    run_job(&server, &admin, "webhook_delivery").await?;
    let received = receiver.received();
    assert_eq!(received.len(), 3, "the retry, then the next event");
    let body = |i: usize| -> TestResult<Value> { Ok(serde_json::from_slice(&received[i].1)?) };
    assert_eq!(body(0)?["id"], body(1)?["id"], "the same event retried");
    assert!(
        body(2)?["id"].as_str().ok_or("id")?.parse::<i64>()?
            > body(1)?["id"].as_str().ok_or("id")?.parse::<i64>()?
    );
    let log = deliveries(&server, &admin, hook).await;
    assert!(
        log.as_array()
            .ok_or("list")?
            .iter()
            .all(|d| d["status"] == "delivered"),
        "{log}"
    );

    // Five failures: dead.
    receiver.answer(&[503; 5]);
    issue(
        &server,
        &admin,
        json!({"common_name": "third.example.test"}),
    )
    .await?;
    for _ in 0..5 {
        run_job(&server, &admin, "webhook_delivery").await?;
        server.clock.advance(time::Duration::minutes(6));
    }
    let admin = server.admin().await;
    let auth = Auth::Session(&admin);
    let log = deliveries(&server, &admin, hook).await;
    let dead = &log[0];
    assert_eq!(dead["status"], "dead", "{log}");
    assert_eq!(dead["attempts"], 5, "{log}");
    assert_eq!(dead["last_status_code"], 503, "{log}");
    let before = receiver.received().len();
    run_job(&server, &admin, "webhook_delivery").await?;
    assert_eq!(
        receiver.received().len(),
        before,
        "a dead delivery is not sent"
    );

    // Requeued, it is delivered; a delivery that is not dead is not requeued.
    let delivery = dead["id"].as_i64().ok_or("delivery id")?;
    let path = format!("/api/v2/webhooks/{hook}/deliveries/{delivery}/requeue");
    let (status, queued) = server.call(Method::POST, &path, &auth, None).await;
    assert_eq!(status, StatusCode::OK, "{queued}");
    assert_eq!(queued["data"]["status"], "pending", "{queued}");
    run_job(&server, &admin, "webhook_delivery").await?;
    let log = deliveries(&server, &admin, hook).await;
    assert_eq!(log[0]["status"], "delivered", "{log}");
    assert_eq!(log[0]["attempts"], 1, "{log}");
    let (status, again) = server.call(Method::POST, &path, &auth, None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{again}");
    Ok(())
}

#[tokio::test]
async fn events_and_ca_filters_choose_what_is_sent() -> TestResult {
    let server = lab().await;
    let admin = server.admin().await;
    let auth = Auth::Session(&admin);
    let (_, cas) = server.call(Method::GET, "/api/v2/cas", &auth, None).await;
    let ca_id = |name: &str| {
        cas["data"]
            .as_array()
            .and_then(|l| l.iter().find(|c| c["name"] == name))
            .and_then(|c| c["id"].as_i64())
    };
    let root = ca_id("certmint Root CA").ok_or("root")?;
    let issuing = ca_id("certmint Issuing CA").ok_or("issuing")?;

    let (only_cas, other_ca, this_ca) = (
        Receiver::start().await,
        Receiver::start().await,
        Receiver::start().await,
    );
    for (receiver, body) in [
        (&only_cas, json!({"events": ["ca_created"]})),
        (
            &other_ca,
            json!({"ca_filter": [root], "events": ["certificate_issued"]}),
        ),
        (
            &this_ca,
            json!({"ca_filter": [issuing], "events": ["certificate_issued"]}),
        ),
    ] {
        let mut body = body;
        body["name"] = json!("filtered");
        body["url"] = json!(receiver.url);
        let (status, made) = create(&server, &admin, body).await;
        assert_eq!(status, StatusCode::CREATED, "{made}");
    }
    issue(
        &server,
        &admin,
        json!({"common_name": "f.example.test", "ca_id": issuing}),
    )
    .await?;
    run_job(&server, &admin, "webhook_delivery").await?;
    assert_eq!(only_cas.received().len(), 0);
    assert_eq!(other_ca.received().len(), 0);
    let received = this_ca.received();
    assert_eq!(received.len(), 1);
    let payload: Value = serde_json::from_slice(&received[0].1)?;
    assert_eq!(payload["type"], "certificate_issued");
    assert_eq!(payload["data"]["ca_id"], issuing);

    let (status, events) = server
        .call(Method::GET, "/api/v2/webhooks/events", &auth, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{events}");
    let names: Vec<&str> = events["data"]
        .as_array()
        .ok_or("list")?
        .iter()
        .filter_map(|e| e["name"].as_str())
        .collect();
    for name in [
        "certificate_issued",
        "certificate_expiring",
        "crl_published",
        "user_login_failed_lockout",
    ] {
        assert!(names.contains(&name), "{name} in {names:?}");
    }
    Ok(())
}

#[tokio::test]
async fn private_targets_bad_input_and_non_admins_are_refused() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let auth = Auth::Session(&admin);
    let receiver = Receiver::start().await;

    let (status, refused) =
        create(&server, &admin, json!({"name": "lo", "url": receiver.url})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    let message = refused.to_string();
    assert!(
        message.contains("loopback") && message.contains("allow_private_targets"),
        "{message}"
    );

    // A name is judged by where it resolves, when the delivery is made.
    let port = receiver.url.split(':').nth(2).ok_or("port")?;
    let by_name = receiver.url.replace("127.0.0.1", "localhost");
    assert!(by_name.contains(port));
    let (status, made) = create(
        &server,
        &admin,
        json!({"name": "named", "url": by_name, "events": ["certificate_issued"]}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let hook = made["data"]["id"].as_i64().ok_or("id")?;
    let (status, tested) = server
        .call(
            Method::POST,
            &format!("/api/v2/webhooks/{hook}/test"),
            &auth,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{tested}");
    assert_eq!(tested["data"]["delivered"], false, "{tested}");
    assert!(
        tested["data"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("do not reach")),
        "{tested}"
    );
    issue(&server, &admin, json!({"common_name": "p.example.test"})).await?;
    run_job(&server, &admin, "webhook_delivery").await?;
    assert!(receiver.received().is_empty());
    let log = deliveries(&server, &admin, hook).await;
    assert_eq!(log[0]["status"], "failed", "{log}");
    assert_eq!(log[0]["last_status_code"], Value::Null, "{log}");

    let many: serde_json::Map<String, Value> =
        (0..11).map(|i| (format!("X-H{i}"), json!("v"))).collect();
    for body in [
        json!({"name": "x", "url": "ftp://hooks.example.com/"}),
        json!({"name": "x", "url": "not a url"}),
        json!({"name": "x"}),
        json!({"url": "https://hooks.example.com/"}),
        json!({"name": "x", "url": "https://hooks.example.com/", "events": ["certificate.issued"]}),
        json!({"name": "x", "url": "https://hooks.example.com/", "custom_headers": many}),
        json!({"name": "x", "url": "https://hooks.example.com/",
               "custom_headers": {"X-Certmint-Signature": "forged"}}),
        json!({"name": "x", "url": "https://hooks.example.com/", "custom_headers": {"Host": "a"}}),
        json!({"name": "x", "url": "https://hooks.example.com/",
               "custom_headers": {"Content-Length": "1"}}),
        json!({"name": "x", "url": "https://hooks.example.com/", "secret": "short"}),
    ] {
        let (status, answer) = create(&server, &admin, body.clone()).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body} → {answer}"
        );
    }
    let (status, _) = create(&server, &admin, json!({"name": "x", "unknown": 1})).await;
    assert!(status.is_client_error(), "{status}");
    let (status, _) = server
        .call(Method::GET, "/api/v2/webhooks/abc", &auth, None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    server.user(&admin, "olga", "operator").await;
    let operator = server.login("olga", ADMIN_PASSWORD).await;
    let op = Auth::Session(&operator);
    for (method, path, body) in [
        (Method::GET, "/api/v2/webhooks".to_owned(), None),
        (Method::GET, "/api/v2/settings/webhooks".to_owned(), None),
        (Method::GET, "/api/v2/webhooks/events".to_owned(), None),
        (
            Method::POST,
            "/api/v2/webhooks".to_owned(),
            Some(json!({"name": "x", "url": "https://hooks.example.com/"})),
        ),
        (Method::POST, format!("/api/v2/webhooks/{hook}/test"), None),
        (
            Method::GET,
            format!("/api/v2/webhooks/{hook}/deliveries"),
            None,
        ),
    ] {
        let (status, answer) = server.call(method, &path, &op, body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {answer}");
    }
    Ok(())
}
