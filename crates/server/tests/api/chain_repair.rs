//! `/system/chain-repair`: a certificate whose issuer link was cleared, one linked to the wrong
//! CA and an intermediate CA whose parent link was cleared are reported, then relinked to the CA that signed them, each change audited.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{Auth, TestResult, TestServer};
use crate::system_db::{call, issue, root_and_sub};

fn finding(report: &Value, id: i64) -> Option<&Value> {
    report["findings"]
        .as_array()?
        .iter()
        .find(|f| f["resource"] == "certificate" && f["id"] == id)
}

#[tokio::test]
async fn chain_repair_relinks_a_cleared_and_a_wrong_issuer_link() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let (root, sub) = root_and_sub(&server, &admin).await?;
    let orphan = issue(&server, &admin, "orphan.chain.test").await?;
    let mislinked = issue(&server, &admin, "mislinked.chain.test").await?;
    issue(&server, &admin, "fine.chain.test").await?;

    let (status, body) = call(&server, &admin, Method::GET, "/api/v2/system/chain-repair").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["findings"], json!([]), "{body}");
    // The three, and the HTTPS listener's certificate made at first start.
    assert_eq!(body["data"]["stats"]["total_certs"], 4);
    assert_eq!(body["data"]["stats"]["total_cas"], 2);

    let raw = server.raw_store().await;
    raw.execute_raw(&format!(
        "UPDATE certificates SET ca_id = NULL WHERE id = {orphan}"
    ))
    .await?;
    raw.execute_raw(&format!(
        "UPDATE certificates SET ca_id = {root} WHERE id = {mislinked}"
    ))
    .await?;
    raw.execute_raw(&format!("UPDATE cas SET parent_id = NULL WHERE id = {sub}"))
        .await?;
    raw.close().await;

    // The report changes nothing.
    for _ in 0..2 {
        let (status, body) =
            call(&server, &admin, Method::GET, "/api/v2/system/chain-repair").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let report = &body["data"];
        assert_eq!(report["stats"]["orphan_certs"], 1, "{report}");
        assert_eq!(report["stats"]["mislinked_certs"], 1, "{report}");
        assert_eq!(report["stats"]["rechained_certs"], 0, "{report}");
        assert_eq!(report["stats"]["orphan_cas"], 1, "{report}");
        let ca = &report["findings"][0];
        assert_eq!(ca["resource"], "ca", "{report}");
        assert_eq!(ca["id"], sub);
        assert_eq!(ca["issuer_ca_id"], root);
        assert_eq!(
            finding(report, orphan).cloned(),
            Some(json!({"resource": "certificate", "id": orphan,
                        "subject": "CN=orphan.chain.test", "problem": "missing_link",
                        "linked_ca_id": null, "issuer_ca_id": sub, "relinked": false}))
        );
        let wrong = finding(report, mislinked).ok_or("mislinked finding")?;
        assert_eq!(wrong["problem"], "wrong_link");
        assert_eq!(wrong["linked_ca_id"], root);
        assert_eq!(wrong["issuer_ca_id"], sub);
    }

    let (status, body) = call(
        &server,
        &admin,
        Method::POST,
        "/api/v2/system/chain-repair/run",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let report = &body["data"];
    assert_eq!(report["stats"]["rechained_certs"], 2, "{report}");
    assert_eq!(report["stats"]["rechained_cas"], 1, "{report}");
    assert_eq!(report["stats"]["unresolved"], 0, "{report}");
    for id in [orphan, mislinked] {
        assert_eq!(
            finding(report, id).ok_or("finding")?["relinked"],
            true,
            "{report}"
        );
        let (_, cert) = call(
            &server,
            &admin,
            Method::GET,
            &format!("/api/v2/certificates/{id}"),
        )
        .await;
        assert_eq!(cert["data"]["ca_id"], sub, "{cert}");
    }

    let (_, ca) = call(&server, &admin, Method::GET, &format!("/api/v2/cas/{sub}")).await;
    assert_eq!(ca["data"]["parent_id"], root, "{ca}");
    let (_, body) = call(&server, &admin, Method::GET, "/api/v2/system/chain-repair").await;
    assert_eq!(body["data"]["findings"], json!([]), "{body}");
    let auth = Auth::Session(&admin);
    assert_eq!(
        server
            .audit_total(&auth, "action=certificate_relinked")
            .await,
        2
    );
    assert_eq!(server.audit_total(&auth, "action=ca_relinked").await, 1);
    assert_eq!(
        server.audit_total(&auth, "action=chain_repair_run").await,
        1
    );
    server.stop().await;
    Ok(())
}
