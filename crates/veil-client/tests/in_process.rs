#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The client library against the real relay in this process (`veil_relay::Server` on a
//! memory store, a dev-dependency only: the relay stays blind by its dependency graph).
//! Send by ticket, receive, and check what arrived; a ticket holder cannot use the
//! library's own requests to replace what it received.

use std::sync::{Arc, Mutex};
use std::time::Duration;
use veil_client::{Event, Home, ReceiveFrom, ReceiveOptions, Relay, RelayAddr, SendInput, SendMode, SendOptions};
use veil_format::identity::Identity;
use veil_relay::{Config, Server};

async fn relay() -> (Server, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        http: None,
        data_dir: dir.path().join("relay"),
        ..Config::default()
    };
    let server = Server::spawn(config, Arc::new(veil_store::MemoryStore::new())).await.unwrap();
    (server, dir)
}

async fn connect(server: &Server, home: &Home) -> Arc<Relay> {
    let addr = RelayAddr::parse(&format!("{}#{}", server.quic_addr, server.fingerprint)).unwrap();
    Relay::connect(addr, home.clone()).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_by_ticket_and_receive_in_process() {
    let (server, dir) = relay().await;
    let src = dir.path().join("report.txt");
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&src, &data).unwrap();

    let sender_home = Home::at(dir.path().join("sender"));
    let tickets = Arc::new(Mutex::new(Vec::new()));
    let seen = tickets.clone();
    let events: veil_client::EventSink = Arc::new(move |e| {
        if let Event::Ticket { ticket, .. } = e {
            seen.lock().unwrap().push(ticket.expose().to_string());
        }
    });
    let relay_s = connect(&server, &sender_home).await;
    let opts = SendOptions {
        home: sender_home,
        input: SendInput::Paths(vec![src]),
        mode: SendMode::Link { password: None },
        expire: Duration::from_secs(3600),
        max_downloads: Some(1),
        signer: Identity::ephemeral(),
        sender_name: None,
        chunk_size: 1 << 20,
        parallel: 4,
    };
    let sent = veil_client::send(relay_s.clone(), opts, events).await.unwrap();
    assert_eq!(sent.bytes, data.len() as u64);
    let ticket = tickets.lock().unwrap().pop().expect("a ticket event");

    let receiver_home = Home::at(dir.path().join("receiver"));
    let out = dir.path().join("out");
    let relay_r = connect(&server, &receiver_home).await;
    let receive = |out: std::path::PathBuf| ReceiveOptions {
        home: receiver_home.clone(),
        from: ReceiveFrom::Ticket(ticket.clone(), None),
        out_dir: out,
        overwrite: false,
        parallel: 4,
        wait: Duration::from_secs(10),
        consent: Arc::new(|offer| offer.manifest.entries.len() == 1),
        stream_out: Arc::new(Mutex::new(std::io::sink())),
    };
    let got = veil_client::receive(relay_r.clone(), receive(out.clone()), veil_client::no_events()).await.unwrap();
    assert_eq!(got.written.len(), 1);
    assert!(std::fs::read(out.join("report.txt")).unwrap() == data);
    // The download limit counted that receipt.
    let again = veil_client::receive(relay_r.clone(), receive(dir.path().join("out2")), veil_client::no_events()).await;
    let err = again.expect_err("a second download past the limit");
    assert!(err.to_string().contains("download limit"), "{err}");
    assert!(!err.is_resumable());
    relay_s.close().await;
    relay_r.close().await;
    server.shutdown().await;
}
