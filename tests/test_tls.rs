//! HTTPS end to end with a test CA: the broker serves TLS from configured
//! files (and reloads them on SIGHUP), the client trusts only what it should,
//! and git clones through the gateway over HTTPS.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::tls::TestCa;
use crate::common::{ChildGuard, POLICY, TestBroker, cli_env};

/// Writes a server certificate and key; returns their paths.
fn write_pair(dir: &Path, (cert, key): (String, String)) -> (PathBuf, PathBuf) {
    let (c, k) = (dir.join("server.pem"), dir.join("server.key"));
    std::fs::write(&c, cert).unwrap();
    std::fs::write(&k, key).unwrap();
    (c, k)
}

fn tls_policy(cert: &Path, key: &Path) -> String {
    POLICY
        .replace("[server]\n", &format!("[server]\ntls_cert = \"{}\"\ntls_key = \"{}\"\n", cert.display(), key.display()))
        .replace("[[repo]]\nname = \"demo\"\nurl = \"http://127.0.0.1:9/git/demo.git\"\n", "[gateway]\nrepos_dir = \"{data_dir}/repos\"\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_end_to_end_with_a_test_ca() {
    let ca = TestCa::new("jit test CA");
    let files = tempfile::tempdir().unwrap();
    let (cert, key) = write_pair(files.path(), ca.issue());
    let ca_file = ca.write(files.path(), "ca.pem");
    let stranger = TestCa::new("someone else").write(files.path(), "other-ca.pem");
    let b = TestBroker::start_with_repos(&tls_policy(&cert, &key), &[]).await;
    assert!(b.url.starts_with("https://127.0.0.1:"), "{}", b.url);

    let alice = cli_env(&b);
    alice.secret(b.token("alice"));
    // Not trusted without the CA, nor with another one.
    let run = alice.run_with(&["login", "--server", &b.url], &[], Some(b.token("alice")));
    run.code(1).stderr_has("cannot reach the broker").stderr_has("certificate");
    let run = alice.run_with(&["login", "--server", &b.url, "--ca-file", stranger.to_str().unwrap()], &[], Some(b.token("alice")));
    run.code(1).stderr_has("certificate");
    // Trusted with it, and remembered with the login.
    alice.run_with(&["login", "--server", &b.url, "--ca-file", ca_file.to_str().unwrap()], &[], Some(b.token("alice"))).success();
    alice.run(&["whoami"]).success();
    alice.run(&["setup"]).success();
    alice.run(&["request", "demo", "--level", "read", "--for", "1h"]).success();
    // git over HTTPS through the gateway, the helper answering over HTTPS too.
    let clone = alice.git_with(&alice.work_dir(), &["clone", &b.demo_url(), "demo"], &[("GIT_SSL_CAINFO", ca_file.to_str().unwrap())]);
    clone.success();
    assert!(alice.work_dir().join("demo/README.md").exists());
}

/// The certificate a TLS handshake with `addr` presents (DER), trusting `ca`.
async fn presented(addr: &str, ca: &Path) -> (Vec<u8>, tokio_rustls::client::TlsStream<tokio::net::TcpStream>) {
    let mut roots = rustls::RootCertStore::empty();
    use rustls_pki_types::pem::PemObject;
    for c in rustls_pki_types::CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let stream = connector.connect(name, tcp).await.unwrap();
    let der = stream.get_ref().1.peer_certificates().unwrap()[0].to_vec();
    (der, stream)
}

async fn healthz_on(stream: &mut tokio_rustls::client::TlsStream<tokio::net::TcpStream>) -> String {
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !String::from_utf8_lossy(&got).contains("\"version\"") {
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await.unwrap().unwrap();
        assert!(n > 0, "connection closed: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&got).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_certificate_without_dropping_connections() {
    let ca = TestCa::new("jit test CA");
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = write_pair(dir.path(), ca.issue());
    let ca_file = ca.write(dir.path(), "ca.pem");
    let config = dir.path().join("jit.toml");
    std::fs::write(&config, tls_policy(&cert, &key).replace("{data_dir}", &dir.path().display().to_string())).unwrap();
    std::fs::create_dir_all(dir.path().join("repos")).unwrap();
    // Port 0, read back from the log: a port picked beforehand could be taken by another test first.
    let child = Command::new(env!("CARGO_BIN_EXE_jit"))
        .args(["server", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.path())
        .env("JIT_LOG", "debug")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let broker = ChildGuard::logged(child);
    let url = broker.log().listening_url();
    let addr = url.trim_start_matches("https://").trim_end_matches('/').to_string();
    let (first, mut open) = presented(&addr, &ca_file).await;
    assert!(healthz_on(&mut open).await.starts_with("HTTP/1.1 200"));

    // New files in place, then SIGHUP.
    write_pair(dir.path(), ca.issue());
    let _ = Command::new("sh").args(["-c", &format!("kill -HUP {}", broker.id())]).status();
    let mut second = first.clone();
    let asked = Instant::now();
    while second == first {
        assert!(asked.elapsed() < Duration::from_secs(10), "the new certificate was never presented");
        tokio::time::sleep(Duration::from_millis(100)).await;
        second = presented(&addr, &ca_file).await.0;
    }
    // The connection opened before the reload still works.
    assert!(healthz_on(&mut open).await.starts_with("HTTP/1.1 200"));
    // A broken pair on disk is refused and the working one kept.
    std::fs::write(&cert, "not a certificate").unwrap();
    let _ = Command::new("sh").args(["-c", &format!("kill -HUP {}", broker.id())]).status();
    broker.log().until("TLS reload failed; still serving the previous certificate");
    assert_eq!(presented(&addr, &ca_file).await.0, second);
}

#[test]
fn a_token_is_not_sent_over_plain_http_to_another_host() {
    let env = crate::common::TestEnvironment::new();
    let run = env.run_with(&["whoami"], &[("JIT_SERVER", "http://jit.example.com"), ("JIT_TOKEN", "jit_x")], None);
    run.code(2).stderr_has("refusing to send your token over plain HTTP to http://jit.example.com");
}
