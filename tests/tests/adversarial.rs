#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Hostile peers and relays against the real `veil` binary.
//!
//! * A relay that lies: a QUIC server of this test's own (its own certificate, pinned by
//!   the CLI like any relay) that serves the ciphertext of real transfers, taken from a
//!   real relay's store, with one lie each: a length far beyond any chunk, a body that
//!   stops coming while the connection stays alive, a chunk of another transfer, an old
//!   chunk replayed at another index, the manifest of another transfer, and every chunk
//!   position truncated or missing. Every lie ends in exit code 1, a clear error, and no
//!   file in the output folder.
//! * A code guesser speaking raw frames to a real relay: it takes one side of a chosen
//!   code, gets what it needs to check one guess offline, and leaves; the CLI on the
//!   other side is told the code is burned, and the code stays refused.

mod common;

use bytes::Bytes;
use common::*;
use quinn::{RecvStream, SendStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use veil_format::code::{Code, PakeStart, Role};
use veil_relay::{Config, Server};
use veil_store::{MemoryStore, Store};
use veil_wire::{MailboxMsg, Request, Response, Side, TransferId, tid_hex};

// ---------------------------------------------------------------------------------------
// A real relay in this process, its store in memory (so the liar can read it)

struct RealRelay {
    server: Server,
    store: Arc<MemoryStore>,
    addr: String,
    _dir: tempfile::TempDir,
}

async fn real_relay() -> RealRelay {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(MemoryStore::new());
    let config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        http: None,
        data_dir: dir.path().to_path_buf(),
        ..Config::default()
    };
    let server = Server::spawn(config, store.clone()).await.unwrap();
    let addr = format!("{}#{}", server.quic_addr, server.fingerprint);
    RealRelay { server, store, addr, _dir: dir }
}

fn veil_to(home: &Path, addr: &str) -> std::process::Command {
    let mut c = std::process::Command::new(bin("veil"));
    c.env("VEIL_HOME", home)
        .env("VEIL_RELAY", addr)
        .env("VEIL_RETRY_SECS", "3")
        .env("VEIL_WAIT_SECS", "20")
        .env_remove("VEIL_PASSPHRASE")
        .env_remove("VEIL_CODE")
        .env_remove("VEIL_TICKET")
        .stdin(std::process::Stdio::null());
    c
}

async fn run_async(c: std::process::Command) -> std::process::Output {
    tokio::task::spawn_blocking(move || run(c)).await.unwrap()
}

/// Send `data` as `name` by link through `relay`; the ticket and transfer id.
async fn upload(relay: &RealRelay, dir: &Path, name: &str, data: &[u8]) -> (String, TransferId) {
    let f = dir.join(name);
    std::fs::write(&f, data).unwrap();
    let mut c = veil_to(&dir.join(format!("home-send-{name}")), &relay.addr);
    c.args(["send", "--link", "--json"]).arg(&f);
    let o = run_async(c).await;
    assert!(o.status.success(), "{}", text(&o));
    let first: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&o.stdout).lines().next().unwrap()).unwrap();
    let ticket = first["ticket"].as_str().unwrap().to_string();
    let tid = veil_format::ticket::Ticket::decode(&ticket).unwrap().transfer_id().0;
    (ticket, tid)
}

// ---------------------------------------------------------------------------------------
// The lying relay

#[derive(Clone, Copy, Debug)]
enum Lie {
    /// Serves everything as the real relay would (checks the harness itself).
    Honest,
    /// `Data { len: 1 GiB }` for every chunk, then junk.
    HugeLength,
    /// Half of chunk 0's body, then nothing, with the connection kept alive.
    Stall,
    /// Chunk 0 of the other transfer in place of chunk 0.
    ChunkOfAnotherTransfer,
    /// Chunk 0 again in place of chunk `n`.
    Replay(u64),
    /// The other transfer's manifest.
    ManifestOfAnotherTransfer,
    /// Chunk `n` without its last byte.
    Truncated(u64),
    /// Chunk `n` missing (`NotFound`), as if the store lost it.
    Missing(u64),
}

struct Liar {
    addr: String,
    endpoint: quinn::Endpoint,
}

async fn start_liar(store: Arc<MemoryStore>, other: TransferId, lie: Lie) -> Liar {
    let ck = rcgen::generate_simple_self_signed(vec!["veil-relay".to_string()]).unwrap();
    let cert = rustls::pki_types::CertificateDer::from(ck.cert.der().to_vec());
    let fp = veil_quic::fingerprint(cert.as_ref());
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(ck.signing_key.serialize_der().into());
    let mut tls = rustls::ServerConfig::builder_with_provider(veil_quic::provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
    tls.alpn_protocols = vec![veil_wire::ALPN.to_vec()];
    let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls).unwrap();
    let mut cfg = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    cfg.transport_config(Arc::new(veil_quic::server_transport(Duration::from_secs(60))));
    let endpoint = quinn::Endpoint::server(cfg, "127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = format!("{}#{fp}", endpoint.local_addr().unwrap());
    let ep = endpoint.clone();
    tokio::spawn(async move {
        while let Some(incoming) = ep.accept().await {
            let store = store.clone();
            tokio::spawn(async move {
                let Ok(conn) = incoming.await else { return };
                while let Ok((send, recv)) = conn.accept_bi().await {
                    tokio::spawn(serve(store.clone(), other, lie, send, recv));
                }
            });
        }
    });
    Liar { addr, endpoint }
}

fn object(tid: &TransferId, rest: &str) -> String {
    format!("t/{}/{rest}", tid_hex(tid))
}

fn chunk_object(tid: &TransferId, index: u64) -> String {
    object(tid, &format!("c/{index:016x}"))
}

async fn serve(store: Arc<MemoryStore>, other: TransferId, lie: Lie, mut send: SendStream, mut recv: RecvStream) {
    let Ok(Some(req)) = veil_quic::read_frame::<Request>(&mut recv).await else { return };
    let get = |k: String| {
        let store = store.clone();
        async move { store.get(&k).await.unwrap() }
    };
    let body: Option<Bytes> = match (req, lie) {
        (Request::GetManifest { .. }, Lie::ManifestOfAnotherTransfer) => get(object(&other, "manifest")).await,
        (Request::GetManifest { tid, .. }, _) => get(object(&tid, "manifest")).await,
        (Request::GetChunk { .. }, Lie::HugeLength) => {
            let _ = veil_quic::write_frame(&mut send, &Response::Data { len: 1 << 30 }).await;
            let junk = vec![0x5a; 1 << 20];
            for _ in 0..64 {
                if send.write_all(&junk).await.is_err() {
                    return;
                }
            }
            return;
        }
        (Request::GetChunk { tid, index: 0, .. }, Lie::Stall) => {
            let b = get(chunk_object(&tid, 0)).await.unwrap();
            let _ = veil_quic::write_frame(&mut send, &Response::Data { len: b.len() as u32 }).await;
            let _ = send.write_all(&b[..b.len() / 2]).await;
            // Keep the stream (and the connection) open, sending nothing more.
            tokio::time::sleep(Duration::from_secs(120)).await;
            return;
        }
        (Request::GetChunk { index: 0, .. }, Lie::ChunkOfAnotherTransfer) => get(chunk_object(&other, 0)).await,
        (Request::GetChunk { tid, index, .. }, Lie::Replay(n)) if index == n => get(chunk_object(&tid, 0)).await,
        (Request::GetChunk { tid, index, .. }, Lie::Truncated(n)) if index == n => {
            get(chunk_object(&tid, index)).await.map(|b| b.slice(..b.len() - 1))
        }
        (Request::GetChunk { index, .. }, Lie::Missing(n)) if index == n => None,
        (Request::GetChunk { tid, index, .. }, _) => get(chunk_object(&tid, index)).await,
        (Request::Receipt { .. }, _) => {
            let _ = veil_quic::write_frame(&mut send, &Response::Counted { remaining: None }).await;
            let _ = send.finish();
            return;
        }
        (Request::Ping, _) => {
            let _ = veil_quic::write_frame(&mut send, &Response::Ok).await;
            let _ = send.finish();
            return;
        }
        (other_req, _) => {
            let e = veil_wire::WireError::new(veil_wire::ErrorCode::BadRequest, format!("liar: {other_req:?}"));
            let _ = veil_quic::write_frame(&mut send, &Response::Error(e)).await;
            let _ = send.finish();
            return;
        }
    };
    match body {
        Some(b) => {
            let _ = veil_quic::write_frame(&mut send, &Response::Data { len: b.len() as u32 }).await;
            let _ = send.write_all(&b).await;
        }
        None => {
            let e = veil_wire::WireError::new(veil_wire::ErrorCode::NotFound, "missing from the store");
            let _ = veil_quic::write_frame(&mut send, &Response::Error(e)).await;
        }
    }
    let _ = send.finish();
}

/// Files in `out`, ignoring nothing: a lie must leave no final file (a resumable error may
/// leave our private `.veil-*.part` folder).
fn final_files(out: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(out) else { return Vec::new() };
    rd.flatten()
        .map(|e| e.path())
        .filter(|p| !p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with(".veil-")))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lying_relay_never_gets_a_file_accepted() {
    let t = tempfile::tempdir().unwrap();
    let relay = real_relay().await;
    // Three chunks of 1 MiB (the last shorter), and another transfer of the same shape.
    let data = random_bytes(2_500_000);
    let (ticket, _tid) = upload(&relay, t.path(), "victim.bin", &data).await;
    let (_, other) = upload(&relay, t.path(), "other.bin", &random_bytes(2_500_000)).await;

    let mut lies = vec![
        (Lie::Honest, ""),
        (Lie::HugeLength, "refused"),
        (Lie::ChunkOfAnotherTransfer, ""),
        (Lie::Replay(1), ""),
        (Lie::Replay(2), ""),
        (Lie::ManifestOfAnotherTransfer, ""),
    ];
    for i in 0..3 {
        lies.push((Lie::Truncated(i), ""));
        lies.push((Lie::Missing(i), "missing"));
    }
    lies.push((Lie::Stall, "stopped sending"));
    for (n, (lie, expect)) in lies.into_iter().enumerate() {
        let liar = start_liar(relay.store.clone(), other, lie).await;
        let out = t.path().join(format!("out-{n}"));
        let mut c = veil_to(&t.path().join(format!("home-recv-{n}")), &liar.addr);
        c.args(["receive", &ticket, "--yes", "--out"]).arg(&out);
        let o = run_async(c).await;
        liar.endpoint.close(0u32.into(), b"done");
        if let Lie::Honest = lie {
            assert!(o.status.success(), "{lie:?}: {}", text(&o));
            assert!(std::fs::read(out.join("victim.bin")).unwrap() == data);
            continue;
        }
        assert_eq!(o.status.code(), Some(1), "{lie:?}: {}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("veil: error:") && err.contains(expect), "{lie:?}: {err}");
        assert!(!err.contains("panicked"), "{lie:?}: {err}");
        assert_eq!(final_files(&out), Vec::<PathBuf>::new(), "{lie:?} left a file: {err}");
    }
    relay.server.shutdown().await;
}

// ---------------------------------------------------------------------------------------
// The code guesser

/// A raw QUIC client of the real relay (no client library).
async fn raw_client(server: &Server) -> (quinn::Endpoint, quinn::Connection) {
    let pin = veil_quic::PinVerifier::new(Some(server.fingerprint.clone()));
    let mut ep = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    ep.set_default_client_config(veil_quic::client_config(pin, veil_quic::client_transport()).unwrap());
    let conn = ep.connect(server.quic_addr, veil_quic::SERVER_NAME).unwrap().await.unwrap();
    (ep, conn)
}

async fn claim(conn: &quinn::Connection, nameplate: u32, side: Side) -> (SendStream, RecvStream) {
    let (mut send, mut recv) = conn.open_bi().await.unwrap();
    veil_quic::write_frame(&mut send, &Request::Mailbox { nameplate: Some(nameplate), side }).await.unwrap();
    let r: Response = veil_quic::read_frame(&mut recv).await.unwrap().unwrap();
    assert_eq!(r, Response::MailboxOpened { nameplate });
    (send, recv)
}

/// The next mailbox message payload (skipping `PeerJoined`).
async fn next_message(recv: &mut RecvStream) -> Vec<u8> {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(20), veil_quic::read_frame::<MailboxMsg>(recv))
            .await
            .expect("no mailbox message in time")
            .unwrap();
        match m {
            Some(MailboxMsg::Message(b)) => return b,
            Some(MailboxMsg::PeerJoined) => continue,
            other => panic!("expected a message, got {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guess_checked_offline_burns_the_code_for_either_side_first() {
    let t = tempfile::tempdir().unwrap();
    let relay = real_relay().await;
    let f = t.path().join("secret.txt");
    std::fs::write(&f, b"for the right person only").unwrap();

    // Receiver first; the attacker claims the sender side, takes the receiver's SPAKE2
    // message and key confirmation (enough to test one guess offline) and disconnects.
    let out = t.path().join("out-r");
    let mut r = veil_to(&t.path().join("home-r"), &relay.addr);
    r.args(["receive", "31-guitar-orbit", "--yes", "--out"]).arg(&out);
    let receiver = tokio::task::spawn_blocking(move || run(r));
    let (ep, conn) = raw_client(&relay.server).await;
    let (mut send, mut recv) = claim(&conn, 31, Side::Sender).await;
    let (_, guess) = PakeStart::new(Role::Sender, &Code::parse("31-wrong-guess").unwrap());
    veil_quic::write_frame(&mut send, &MailboxMsg::Message(guess)).await.unwrap();
    let spake_b = next_message(&mut recv).await;
    let confirmation = next_message(&mut recv).await;
    // Its confirmation carries the post-quantum offer (ML-KEM-768 key under the PAKE key).
    assert_eq!((spake_b.len(), confirmation.len()), (33, 32 + veil_format::code::PQ_OFFER_LEN));
    conn.close(0u32.into(), b"got what I came for");
    ep.wait_idle().await;
    let o = receiver.await.unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("the code is burned, use a new one"), "{err}");
    assert!(final_files(&out).is_empty());

    // The code stays refused: the real sender cannot use it any more.
    let mut s = veil_to(&t.path().join("home-s"), &relay.addr);
    s.args(["send", "--code", "31-guitar-orbit"]).arg(&f);
    let o = run_async(s).await;
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("burned"), "{}", text(&o));

    // Sender first; the attacker claims the receiver side with a wrong guess and leaves
    // before confirming (it cannot learn anything, but it must not get a second try).
    let mut s = veil_to(&t.path().join("home-s2"), &relay.addr);
    s.args(["send", "--code", "32-guitar-orbit"]).arg(&f);
    let sender = tokio::task::spawn_blocking(move || run(s));
    let (ep, conn) = raw_client(&relay.server).await;
    let (mut send, mut recv) = claim(&conn, 32, Side::Receiver).await;
    let spake_a = next_message(&mut recv).await;
    assert_eq!(spake_a.len(), 33);
    let (_, guess) = PakeStart::new(Role::Receiver, &Code::parse("32-wrong-guess").unwrap());
    veil_quic::write_frame(&mut send, &MailboxMsg::Message(guess)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    conn.close(0u32.into(), b"bye");
    ep.wait_idle().await;
    let o = sender.await.unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("the code is burned"), "{}", text(&o));
    let mut r = veil_to(&t.path().join("home-r2"), &relay.addr);
    r.args(["receive", "32-guitar-orbit", "--yes", "--out"]).arg(t.path().join("out-r2"));
    let o = run_async(r).await;
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("burned"), "{}", text(&o));
    relay.server.shutdown().await;
}

/// A peer that knows the code but leaves out the post-quantum step (an older veil, or a
/// relay or attacker in the middle stripping it) is refused on either side: the real
/// receiver does not accept a classical-only delivery, the real sender never delivers K
/// without the receiver's ML-KEM key; both burn the code, and nothing is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_stripping_the_post_quantum_step_is_refused() {
    let t = tempfile::tempdir().unwrap();
    let relay = real_relay().await;
    let f = t.path().join("secret.txt");
    std::fs::write(&f, b"for the right person only").unwrap();

    // Real receiver; a classical-only sender with the right code. It verifies the
    // receiver's confirmation, then answers as veil did before the hybrid step:
    // confirmation || key delivery (90 bytes), no ML-KEM ciphertext.
    let out = t.path().join("out-r");
    let mut r = veil_to(&t.path().join("home-r"), &relay.addr);
    r.args(["receive", "41-guitar-orbit", "--yes", "--out"]).arg(&out);
    let receiver = tokio::task::spawn_blocking(move || run(r));
    let (ep, conn) = raw_client(&relay.server).await;
    let (mut send, mut recv) = claim(&conn, 41, Side::Sender).await;
    let code = Code::parse("41-guitar-orbit").unwrap();
    let (start, msg_a) = PakeStart::new(Role::Sender, &code);
    veil_quic::write_frame(&mut send, &MailboxMsg::Message(msg_a)).await.unwrap();
    let spake_b = next_message(&mut recv).await;
    let key = start.finish(&spake_b).unwrap();
    let reply = next_message(&mut recv).await;
    key.verify_peer(&reply[..32]).expect("the right code");
    let mut old_style = key.confirmation().to_vec();
    old_style.extend_from_slice(&[0u8; 90]);
    veil_quic::write_frame(&mut send, &MailboxMsg::Message(old_style)).await.unwrap();
    let o = receiver.await.unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("skipped the post-quantum key exchange"), "{err}");
    assert!(final_files(&out).is_empty());
    conn.close(0u32.into(), b"done");
    ep.wait_idle().await;

    // Real sender; a classical-only receiver with the right code: it confirms with the
    // bare 32 bytes. The sender refuses to deliver K under the classical key alone.
    let mut s = veil_to(&t.path().join("home-s"), &relay.addr);
    s.args(["send", "--code", "42-guitar-orbit"]).arg(&f);
    let sender = tokio::task::spawn_blocking(move || run(s));
    let (ep, conn) = raw_client(&relay.server).await;
    let (mut send, mut recv) = claim(&conn, 42, Side::Receiver).await;
    let code = Code::parse("42-guitar-orbit").unwrap();
    let (start, msg_b) = PakeStart::new(Role::Receiver, &code);
    veil_quic::write_frame(&mut send, &MailboxMsg::Message(msg_b)).await.unwrap();
    let spake_a = next_message(&mut recv).await;
    let key = start.finish(&spake_a).unwrap();
    veil_quic::write_frame(&mut send, &MailboxMsg::Message(key.confirmation().to_vec())).await.unwrap();
    // What comes back is the burn, never the sender's confirmation or a delivery.
    let m = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match veil_quic::read_frame::<MailboxMsg>(&mut recv).await.unwrap() {
                Some(MailboxMsg::PeerJoined) => continue,
                other => return other,
            }
        }
    })
    .await
    .expect("an answer in time");
    assert!(matches!(m, Some(MailboxMsg::Burned) | None), "the stripped receiver got {m:?}");
    let o = sender.await.unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("skipped the post-quantum key exchange"), "{}", text(&o));
    conn.close(0u32.into(), b"done");
    ep.wait_idle().await;
    relay.server.shutdown().await;
}
