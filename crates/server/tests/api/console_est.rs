//! The console's EST page: the switch and the default endpoint's credentials, labels made,
//! changed and deleted from their forms (passwords set, never shown, and kept by a change to
//! another label) with curl then enrolling at a label with the credentials typed there,
//! refusals that change nothing, and what a viewer and a forged form get.
//!
//! Every role holds `read:est` and the console takes only sessions, so the page's own refusal
//! of a visitor without it cannot be reached here; the gate that refuses it is the one that
//! refuses the viewer's forms below.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{ADMIN_PASSWORD, Auth, TestResult, TestServer};
use crate::console::{assert_strict_page, browser, get, location, post_form, rest};
use crate::est::Est;

const DEVICE_PASSWORD: &str = "typed in the console for devices";
const LAB_PASSWORD: &str = "typed in the console for the lab";
const OTHER_PASSWORD: &str = "typed in the console for others";

/// The label `name` in the REST settings.
fn label<'a>(config: &'a Value, name: &str) -> Option<&'a Value> {
    config["labels"]
        .as_array()
        .and_then(|all| all.iter().find(|l| l["label"] == name))
}

/// The fields of label `name` that the forms set: CA, template, user name, whether a
/// password is set.
fn fields(config: &Value, name: &str) -> (Value, Value, Value, Value) {
    let l = label(config, name).cloned().unwrap_or_default();
    (
        l["ca_id"].clone(),
        l["template_id"].clone(),
        l["username"].clone(),
        l["password_set"].clone(),
    )
}

/// No password typed in a form ever comes back on a page.
fn assert_no_password(html: &str) {
    for password in [DEVICE_PASSWORD, LAB_PASSWORD, OTHER_PASSWORD, "short"] {
        assert!(!html.contains(password), "{password} on the page: {html}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_runs_est_from_the_console() -> TestResult {
    let t = Est::around(TestServer::start().await).await?;
    let (server, admin) = (&t.server, &t.admin);
    let client = browser(server);
    let cookie = Some(admin.cookie.as_str());
    let csrf = admin.csrf.as_str();
    let config_of = || rest(server, admin, "/api/v2/est/config");

    let response = get(&client, server.url("/enroll/est"), cookie).await;
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    let html = response.text().await?;
    assert_strict_page(&headers, &html);
    assert!(
        html.contains(r#"<a href="/enroll/est" aria-current="page">EST</a>"#),
        "{html}"
    );
    assert!(html.contains(r#"<td class="mono">/.well-known/est/</td>"#));
    assert!(html.contains(r#"action="/enroll/est/settings""#), "{html}");
    assert!(
        html.contains(
            r#"type="password" id="password-default" name="password" autocomplete="new-password""#
        ),
        "{html}"
    );

    // The switch and the default endpoint's credentials.
    let response = post_form(
        &client,
        server.url("/enroll/est/settings"),
        cookie,
        &[
            ("csrf_token", csrf),
            ("enabled", "1"),
            ("ca_id", ""),
            ("template_id", ""),
            ("username", " device "),
            ("password", DEVICE_PASSWORD),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/enroll/est#settings");
    let config = config_of().await;
    assert_eq!(
        (
            &config["enabled"],
            &config["ca_id"],
            &config["username"],
            &config["password_set"]
        ),
        (&json!(true), &Value::Null, &json!("device"), &json!(true)),
        "{config}"
    );

    // Two labels: `lab` from the root CA, `other` from the default one.
    let root = t.root_ca.to_string();
    for (name, ca, password) in [
        ("lab", root.as_str(), LAB_PASSWORD),
        ("other", "", OTHER_PASSWORD),
    ] {
        let form = [
            ("csrf_token", csrf),
            ("label", name),
            ("ca_id", ca),
            ("template_id", ""),
            ("username", name),
            ("password", password),
        ];
        let response = post_form(&client, server.url("/enroll/est/labels"), cookie, &form).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{name}");
        assert_eq!(location(&response), format!("/enroll/est#label-{name}"));
    }
    let config = config_of().await;
    assert_eq!(
        fields(&config, "lab"),
        (json!(t.root_ca), Value::Null, json!("lab"), json!(true)),
        "{config}"
    );
    assert_eq!(
        fields(&config, "other"),
        (Value::Null, Value::Null, json!("other"), json!(true)),
        "{config}"
    );
    let response = get(&client, server.url("/enroll/est"), cookie).await;
    let headers = response.headers().clone();
    let html = response.text().await?;
    assert_strict_page(&headers, &html);
    assert_no_password(&html);
    for needle in [
        r#"<td class="mono">/.well-known/est/lab/</td>"#.to_owned(),
        r#"id="label-lab""#.to_owned(),
        r#"action="/enroll/est/labels/other/delete""#.to_owned(),
        format!(r#"<option value="{root}" selected>certmint Root CA</option>"#),
        r#"id="remove_password-label-lab""#.to_owned(),
    ] {
        assert!(html.contains(&needle), "{needle}: {html}");
    }

    // A change to `other` (its template; the password left blank) keeps every password.
    let template = t.tls_client.to_string();
    let response = post_form(
        &client,
        server.url("/enroll/est/labels/other"),
        cookie,
        &[
            ("csrf_token", csrf),
            ("ca_id", ""),
            ("template_id", &template),
            ("username", "other"),
            ("password", ""),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/enroll/est#label-other");
    let config = config_of().await;
    assert_eq!(
        fields(&config, "other"),
        (
            Value::Null,
            json!(t.tls_client),
            json!("other"),
            json!(true)
        ),
        "{config}"
    );
    assert_eq!(
        fields(&config, "lab"),
        (json!(t.root_ca), Value::Null, json!("lab"), json!(true)),
        "{config}"
    );
    assert_eq!(config["password_set"], true, "{config}");

    // curl enrolls at the label with the credentials typed in the console, from its CA.
    let credentials = format!("lab:{LAB_PASSWORD}");
    t.enroll(
        "lab/simpleenroll",
        "lab1",
        "lab1.example.test",
        &["--user", &credentials],
    )?;
    t.ca_file("lab/", "labca")?;
    let verified = t.openssl(&["verify", "-CAfile", "labca.crt", "lab1.crt"])?;
    assert!(verified.contains("lab1.crt: OK"), "{verified}");
    let row = t.stored("lab1.example.test").await?;
    assert_eq!(
        (&row["ca_id"], &row["source"]),
        (&json!(t.root_ca), &json!("est")),
        "{row}"
    );
    let csr = t.csr("wrong", "wrong.example.test", &["wrong.example.test"])?;
    let answer = t.post(
        "lab/simpleenroll",
        &csr,
        &["--user", &format!("lab:{OTHER_PASSWORD}")],
    )?;
    assert_eq!(answer.status, 401, "another label's password");

    // The statistics, per endpoint and in all.
    let html = get(&client, server.url("/enroll/est"), cookie)
        .await
        .text()
        .await?;
    for row in [
        r#"<tr><th scope="row">default</th><td>0</td><td>0</td><td>0</td><td>0</td></tr>"#,
        r#"<tr><th scope="row">lab</th><td>1</td><td>1</td><td>1</td><td>1</td></tr>"#,
        r#"<tr><th scope="row">All endpoints</th><td>1</td><td>1</td><td>1</td><td>1</td></tr>"#,
        "1 certificate came through EST, 1 in the last 24 hours",
    ] {
        assert!(html.contains(row), "{row}: {html}");
    }

    // The box removes `other`'s password; its user name stays.
    let response = post_form(
        &client,
        server.url("/enroll/est/labels/other"),
        cookie,
        &[("csrf_token", csrf), ("remove_password", "1")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let config = config_of().await;
    assert_eq!(
        fields(&config, "other"),
        (
            Value::Null,
            json!(t.tls_client),
            json!("other"),
            json!(false)
        ),
        "{config}"
    );

    // Refusals: the status, the reason on the page, the values never echoed, nothing changed.
    let unknown_ca = "999999";
    for (path, form, status, reason) in [
        (
            "/enroll/est/labels",
            vec![("label", "bad name")],
            StatusCode::UNPROCESSABLE_ENTITY,
            "letters, digits",
        ),
        (
            "/enroll/est/labels",
            vec![("label", "default")],
            StatusCode::UNPROCESSABLE_ENTITY,
            "cannot be an EST label",
        ),
        (
            "/enroll/est/labels",
            vec![("label", " lab "), ("password", LAB_PASSWORD)],
            StatusCode::CONFLICT,
            "there is already an EST label &#39;lab&#39;",
        ),
        (
            "/enroll/est/settings",
            vec![("enabled", "1"), ("ca_id", unknown_ca)],
            StatusCode::UNPROCESSABLE_ENTITY,
            "CA 999999 does not exist",
        ),
        (
            "/enroll/est/labels/lab",
            vec![("ca_id", unknown_ca)],
            StatusCode::UNPROCESSABLE_ENTITY,
            "CA 999999 does not exist",
        ),
        (
            "/enroll/est/labels/lab",
            vec![("ca_id", "seven")],
            StatusCode::UNPROCESSABLE_ENTITY,
            "ca_id must be a whole number",
        ),
        (
            "/enroll/est/settings",
            vec![
                ("enabled", "1"),
                ("password", DEVICE_PASSWORD),
                ("remove_password", "1"),
            ],
            StatusCode::UNPROCESSABLE_ENTITY,
            "not both",
        ),
        (
            "/enroll/est/labels/lab",
            vec![("password", OTHER_PASSWORD), ("remove_password", "1")],
            StatusCode::UNPROCESSABLE_ENTITY,
            "not both",
        ),
        (
            "/enroll/est/labels/lab",
            vec![("password", "short")],
            StatusCode::UNPROCESSABLE_ENTITY,
            "at least 12 characters",
        ),
        (
            "/enroll/est/labels/other",
            vec![("username", ""), ("password", OTHER_PASSWORD)],
            StatusCode::UNPROCESSABLE_ENTITY,
            "a password needs a user name",
        ),
        (
            "/enroll/est/labels/nowhere",
            vec![("username", "x")],
            StatusCode::NOT_FOUND,
            "there is no EST label &#39;nowhere&#39;",
        ),
        (
            "/enroll/est/labels/nowhere/delete",
            vec![],
            StatusCode::NOT_FOUND,
            "there is no EST label &#39;nowhere&#39;",
        ),
    ] {
        let before = config_of().await;
        let mut fields = vec![("csrf_token", csrf)];
        fields.extend(form);
        let response = post_form(&client, server.url(path), cookie, &fields).await;
        assert_eq!(response.status(), status, "{path} {fields:?}");
        let headers = response.headers().clone();
        let html = response.text().await?;
        assert_strict_page(&headers, &html);
        assert!(
            html.contains(r#"<p class="error" role="alert" id="est-error">"#),
            "{html}"
        );
        assert!(html.contains(reason), "{path} {fields:?}: {reason}: {html}");
        assert!(
            html.contains(r#"id="label-lab""#),
            "the page around it: {html}"
        );
        assert_no_password(&html);
        assert_eq!(
            config_of().await,
            before,
            "{path} {fields:?} changed nothing"
        );
    }

    // Deleting `other`; `lab` keeps its password. Gone, it cannot be deleted again.
    let token = [("csrf_token", csrf)];
    let delete = || {
        post_form(
            &client,
            server.url("/enroll/est/labels/other/delete"),
            cookie,
            &token,
        )
    };
    let response = delete().await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/enroll/est#endpoints");
    let config = config_of().await;
    assert!(label(&config, "other").is_none(), "{config}");
    assert_eq!(
        fields(&config, "lab"),
        (json!(t.root_ca), Value::Null, json!("lab"), json!(true)),
        "{config}"
    );
    assert_eq!(delete().await.status(), StatusCode::NOT_FOUND);
    let auth = Auth::Session(admin);
    assert_eq!(
        server
            .audit_total(&auth, "action=est_settings_updated&username=admin")
            .await,
        6,
        "each change audited, no refusal"
    );
    t.server.stop().await;
    Ok(())
}

#[tokio::test]
async fn a_viewer_reads_est_but_changes_nothing() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let (status, body) = server
        .call(
            reqwest::Method::PATCH,
            "/api/v2/est/config",
            &Auth::Session(&admin),
            Some(
                json!({"enabled": true, "username": "device", "password": DEVICE_PASSWORD,
                        "labels": [{"label": "lab", "username": "lab", "password": LAB_PASSWORD}]}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    server.user(&admin, "vera", "viewer").await;
    let vera = server.login("vera", ADMIN_PASSWORD).await;
    let client = browser(&server);
    let cookie = Some(vera.cookie.as_str());

    let response = get(&client, server.url("/enroll/est"), cookie).await;
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    let html = response.text().await?;
    assert_strict_page(&headers, &html);
    assert!(
        html.contains(r#"<a href="/enroll/est" aria-current="page">EST</a>"#),
        "{html}"
    );
    for shown in [
        "<dt>Serving</dt><dd>yes</dd>",
        r#"<td class="mono">/.well-known/est/lab/</td>"#,
        "<td>device</td>",
        "<td>set</td>",
    ] {
        assert!(html.contains(shown), "a viewer sees {shown}: {html}");
    }
    for hidden in [
        r#"action="/enroll/est"#,
        r#"type="password""#,
        r##"href="#label-lab""##,
    ] {
        assert!(!html.contains(hidden), "a viewer sees {hidden}: {html}");
    }
    assert_no_password(&html);

    let config = rest(&server, &admin, "/api/v2/est/config").await;
    for (path, fields) in [
        ("/enroll/est/settings", vec![("enabled", "1")]),
        ("/enroll/est/labels", vec![("label", "mine")]),
        ("/enroll/est/labels/lab", vec![("remove_password", "1")]),
        ("/enroll/est/labels/lab/delete", vec![]),
    ] {
        let mut form = vec![("csrf_token", vera.csrf.as_str())];
        form.extend(fields);
        let response = post_form(&client, server.url(path), cookie, &form).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path}");
        assert!(response.text().await?.contains("write:est"), "{path}");
    }

    // An admin's form without the token, or with a forged one, changes nothing either.
    for token in [None, Some("forged"), Some(vera.csrf.as_str())] {
        let mut form = vec![("label", "sneaky")];
        form.extend(token.map(|t| ("csrf_token", t)));
        let response = post_form(
            &client,
            server.url("/enroll/est/labels"),
            Some(&admin.cookie),
            &form,
        )
        .await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{token:?}");
        assert!(
            response.text().await?.contains("reload the page"),
            "{token:?}"
        );
    }
    assert_eq!(rest(&server, &admin, "/api/v2/est/config").await, config);
    Ok(())
}
