use reqwest::{Method, StatusCode};

use crate::common::{Auth, TestResult, TestServer};

#[tokio::test]
async fn login_and_list_users() -> TestResult {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let (status, body) = server
        .call(Method::GET, "/api/v2/users", &Auth::Session(&admin), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"][0]["username"], "admin");
    assert_eq!(body["meta"]["total"], 1);
    let (status, _) = server
        .call(Method::GET, "/api/v2/users", &Auth::None, None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    server.stop().await;
    Ok(())
}
