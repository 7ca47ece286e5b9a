#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The web side (`--web`) in-process: the URL clients are told over QUIC, and the HTTPS
//! endpoints spoken to by a rustls client that pins the relay's certificate. The browser
//! itself is tested in `tests/tests/browser.rs`.

use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use veil_store::MemoryStore;
use veil_wire::{Request, Response, tid_hex};

mod common;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_url_is_told_only_when_the_page_is_served() {
    let plain = TestRelay::start().await;
    let c = plain.client().await;
    assert_eq!(c.request(Request::WebUrl, None).await.0, Response::Web { url: None });
    assert!(plain.server.web_addr.is_none());
    c.close().await;
    plain.stop().await;

    let web =
        TestRelay::start_with(Arc::new(MemoryStore::new()), |cfg| cfg.web = Some("127.0.0.1:0".parse().unwrap())).await;
    let addr = web.server.web_addr.unwrap();
    let c = web.client().await;
    let expect = format!("https://{addr}/");
    assert_eq!(c.request(Request::WebUrl, None).await.0, Response::Web { url: Some(expect.clone()) });
    assert_eq!(web.server.web_url.as_deref(), Some(expect.as_str()));
    c.close().await;
    web.stop().await;

    let named = TestRelay::start_with(Arc::new(MemoryStore::new()), |cfg| {
        cfg.web = Some("127.0.0.1:0".parse().unwrap());
        cfg.web_url = Some("https://veil.example.org".into());
    })
    .await;
    let c = named.client().await;
    let url = Some("https://veil.example.org/".to_string());
    assert_eq!(c.request(Request::WebUrl, None).await.0, Response::Web { url });
    c.close().await;
    named.stop().await;

    // Links are URL#TICKET: only an https URL without a fragment or query can carry them.
    for bad in ["http://veil.example.org/", "https://veil.example.org/#x", "https://veil.example.org/?a=b"] {
        let dir = tempfile::tempdir().unwrap();
        let config = veil_relay::Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            http: None,
            data_dir: dir.path().to_path_buf(),
            web: Some("127.0.0.1:0".parse().unwrap()),
            web_url: Some(bad.to_string()),
            ..veil_relay::Config::default()
        };
        let err = veil_relay::Server::spawn(config, Arc::new(MemoryStore::new())).await.unwrap_err();
        assert!(err.to_string().contains("https://"), "{bad}: {err}");
    }
}

/// One HTTPS request (HTTP/1.1, `Connection: close`) pinning `fingerprint`: status,
/// lowercase headers, body.
async fn https(addr: std::net::SocketAddr, fingerprint: &str, request: &str) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let pin = veil_quic::PinVerifier::new(Some(fingerprint.to_string()));
    let cfg = rustls::ClientConfig::builder_with_provider(veil_quic::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(pin)
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(cfg)).connect(name, tcp).await.unwrap();
    tls.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    let _ = tls.read_to_end(&mut raw).await;
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("an HTTP response");
    let head = String::from_utf8(raw[..split].to_vec()).unwrap();
    let mut lines = head.lines();
    let status = lines.next().unwrap().split_whitespace().nth(1).unwrap().parse().unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers, raw[split + 4..].to_vec())
}

fn header<'a>(h: &'a [(String, String)], name: &str) -> Option<&'a str> {
    h.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunks_over_https_need_the_download_capability_and_honour_ranges() {
    let relay =
        TestRelay::start_with(Arc::new(MemoryStore::new()), |cfg| cfg.web = Some("127.0.0.1:0".parse().unwrap())).await;
    let (addr, fp) = (relay.server.web_addr.unwrap(), relay.server.fingerprint.clone());
    let client = relay.client().await;
    let t = Transfer::new(0x42);
    client.ok(t.create(3600, Some(1)), None).await;
    let c = bytes(5000, 7);
    client.ok(t.put_chunk(0, &c), Some(&c)).await;
    let m = bytes(300, 9);
    client.ok(t.put_manifest(&m), Some(&m)).await;
    client.ok(t.complete(1), None).await;
    let tid = tid_hex(&t.tid);
    let get =
        |path: String, extra: String| format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{extra}\r\n");
    let dl = format!("Veil-Download: {}\r\n", hex::encode(t.download));

    // The page, with its policy.
    let (status, h, body) = https(addr, &fp, &get("/".into(), String::new())).await;
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&body).contains("<script src=\"/app.js\" defer>"));
    let csp = header(&h, "content-security-policy").unwrap();
    assert!(csp.contains("script-src 'self' 'wasm-unsafe-eval';") && !csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(header(&h, "referrer-policy"), Some("no-referrer"));

    // No capability, or the wrong one: refused.
    let chunk = format!("/v1/transfers/{tid}/chunks/0");
    assert_eq!(https(addr, &fp, &get(chunk.clone(), String::new())).await.0, 403);
    let wrong = format!("Veil-Download: {}\r\n", hex::encode(t.receipt));
    assert_eq!(https(addr, &fp, &get(chunk.clone(), wrong)).await.0, 403);

    // The chunk, whole and in part; the manifest.
    let (status, _, body) = https(addr, &fp, &get(chunk.clone(), dl.clone())).await;
    assert_eq!((status, body.as_slice()), (200, c.as_slice()));
    let (status, h, body) = https(addr, &fp, &get(chunk.clone(), format!("{dl}Range: bytes=100-199\r\n"))).await;
    assert_eq!((status, body.as_slice()), (206, &c[100..200]));
    assert_eq!(header(&h, "content-range"), Some("bytes 100-199/5000"));
    let (status, _, body) = https(addr, &fp, &get(format!("/v1/transfers/{tid}/manifest"), dl.clone())).await;
    assert_eq!((status, body.as_slice()), (200, m.as_slice()));
    let (status, _, body) = https(addr, &fp, &get(format!("/v1/transfers/{tid}"), dl.clone())).await;
    assert_eq!(status, 200);
    let status_json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(status_json["max_downloads"], 1);
    assert_eq!(status_json["downloads"], 0);

    // A receipt counts the one download allowed; then chunks are gone.
    let receipt = format!(
        "POST /v1/transfers/{tid}/receipt HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 0\r\nVeil-Receipt: {}\r\n\r\n",
        hex::encode(t.receipt)
    );
    let (status, _, body) = https(addr, &fp, &receipt).await;
    assert_eq!((status, String::from_utf8_lossy(&body).as_ref()), (200, r#"{"remaining":0}"#));
    let (status, _, body) = https(addr, &fp, &get(chunk, dl)).await;
    assert_eq!(status, 410);
    assert!(String::from_utf8_lossy(&body).contains("\"code\":\"DownloadLimit\""));
    client.close().await;
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_web_connection_is_closed_after_the_idle_timeout() {
    let relay = TestRelay::start_with(Arc::new(MemoryStore::new()), |cfg| {
        cfg.web = Some("127.0.0.1:0".parse().unwrap());
        cfg.idle_timeout = std::time::Duration::from_secs(1);
    })
    .await;
    let tcp = tokio::net::TcpStream::connect(relay.server.web_addr.unwrap()).await.unwrap();
    // Handshake done, then silence: the relay hangs up within the idle timeout (plus slack).
    let pin = veil_quic::PinVerifier::new(Some(relay.server.fingerprint.clone()));
    let cfg = rustls::ClientConfig::builder_with_provider(veil_quic::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(pin)
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(cfg)).connect(name, tcp).await.unwrap();
    let t = std::time::Instant::now();
    let mut buf = [0u8; 16];
    let r = tokio::time::timeout(std::time::Duration::from_secs(10), tls.read(&mut buf)).await;
    assert!(r.is_ok(), "the relay kept a silent connection open for 10 s");
    assert!(t.elapsed() >= std::time::Duration::from_millis(900), "closed too early: {:?}", t.elapsed());
    relay.stop().await;
}
