//! `certmint serve` as systemd runs it (`Type=notify`): it says READY=1 once it serves,
//! RELOADING=1 then READY=1 around a SIGHUP, which applies the settings file as it now reads
//! (a file that does not read leaves the node serving under the old settings), and STOPPING=1
//! at SIGTERM.

// Test code: an unwrap that fails is a test that fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::net::UnixDatagram;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{EPHEMERAL, Http, Server, TestResult, serve};

/// The next notice on `socket`, or `None` within `wait`.
fn notice(socket: &UnixDatagram, wait: Duration) -> Option<String> {
    socket.set_read_timeout(Some(wait)).ok()?;
    let mut buffer = [0_u8; 4096];
    let n = socket.recv(&mut buffer).ok()?;
    Some(String::from_utf8_lossy(&buffer[..n]).into_owned())
}

/// The status of a login whose body is `bytes` long.
fn login_status(http: &Http, server: &Server, bytes: usize) -> u16 {
    let body = format!(
        "{{\"username\": \"nobody\", \"password\": \"{}\"}}",
        "x".repeat(bytes)
    );
    http.rt.block_on(async {
        Http::client(server)
            .unwrap()
            .post(server.https_url("/api/v2/auth/login/password"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    })
}

#[test]
fn serve_tells_systemd_it_is_ready_reloads_on_sighup_and_says_it_stops() -> TestResult {
    let http = Http::new();
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let config = dir.path().join("certmint.toml");
    std::fs::write(&config, "max_body_bytes = 1048576\n")?;
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path)?;
    let server = Server::start(
        serve(&data, EPHEMERAL)
            .arg("--config")
            .arg(&config)
            .env("NOTIFY_SOCKET", &socket_path),
        &data,
    )?;
    let ready = notice(&socket, Duration::from_secs(5)).ok_or("no notice at start")?;
    assert!(ready.contains("READY=1"), "{ready}");
    assert_ne!(login_status(&http, &server, 5000), 413);

    std::fs::write(&config, "max_body_bytes = 1000\n")?;
    let pid = server.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-HUP", &pid])
            .status()?
            .success()
    );
    let reloading = notice(&socket, Duration::from_secs(10)).ok_or("no notice at SIGHUP")?;
    assert!(reloading.contains("RELOADING=1"), "{reloading}");
    let ready = notice(&socket, Duration::from_secs(30)).ok_or("not ready again")?;
    assert!(ready.contains("READY=1"), "{ready}");
    // The same process, on the same address, under the new settings.
    let since = Instant::now();
    while login_status(&http, &server, 5000) != 413 {
        assert!(since.elapsed() < Duration::from_secs(10), "the new limit");
        std::thread::sleep(Duration::from_millis(100));
    }

    // A settings file that does not read: the node serves on as it was.
    std::fs::write(&config, "max_body_bytes = \"lots\"\n")?;
    assert!(
        Command::new("kill")
            .args(["-HUP", &pid])
            .status()?
            .success()
    );
    assert_eq!(notice(&socket, Duration::from_secs(2)), None, "no reload");
    assert_eq!(login_status(&http, &server, 5000), 413);

    let pid = server.child.id();
    let (status, _) = server.terminate("TERM")?;
    assert!(status.success(), "{status}");
    let stopping = notice(&socket, Duration::from_secs(1)).ok_or("no notice at SIGTERM")?;
    assert!(stopping.contains("STOPPING=1"), "{stopping} ({pid})");
    Ok(())
}
