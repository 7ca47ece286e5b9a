//! The relay test harness shared by the relay's test files: the relay in-process
//! (`Server::spawn` on port 0, a memory store, a temporary data folder) and a raw QUIC
//! client that pins its certificate the way `veil-client` does and speaks exactly the
//! frames `PROTOCOL.md` describes. Nothing here uses the client library.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use quinn::{RecvStream, SendStream};
use std::sync::Arc;
use std::time::Duration;
use veil_relay::{Config, Server};
use veil_store::MemoryStore;
use veil_wire::{
    Capability, MailboxMsg, Request, Response, Side, TransferId, WireError, cap_hash, decode_body, encode_frame,
    frame_len,
};

/// Longest any single step may take before the test fails instead of hanging.
pub const STEP: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------
// Harness

pub struct TestRelay {
    pub server: Server,
    pub store: Arc<MemoryStore>,
    pub _dir: tempfile::TempDir,
}

impl TestRelay {
    pub async fn start() -> TestRelay {
        Self::start_on(Arc::new(MemoryStore::new())).await
    }

    /// A relay on `store` (several relays may share one).
    pub async fn start_on(store: Arc<MemoryStore>) -> TestRelay {
        Self::start_with(store, |_| {}).await
    }

    /// A relay on `store` with some settings changed.
    pub async fn start_with(store: Arc<MemoryStore>, change: impl FnOnce(&mut Config)) -> TestRelay {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            http: Some("127.0.0.1:0".parse().unwrap()),
            data_dir: dir.path().to_path_buf(),
            // The tests call the sweeper themselves.
            sweep_interval: Duration::from_secs(3600),
            ..Config::default()
        };
        change(&mut config);
        let server = Server::spawn(config, store.clone()).await.unwrap();
        TestRelay { server, store, _dir: dir }
    }

    pub async fn client(&self) -> Client {
        Client::connect(&self.server).await
    }

    pub async fn stop(self) {
        self.server.shutdown().await;
    }
}

/// A client configuration pinning `fingerprint`, as `veil-client` makes it.
pub fn client_config(fingerprint: &str) -> quinn::ClientConfig {
    veil_quic::client_config(veil_quic::PinVerifier::new(Some(fingerprint.to_string())), veil_quic::client_transport())
        .unwrap()
}

pub struct Client {
    pub endpoint: quinn::Endpoint,
    pub conn: quinn::Connection,
}

impl Client {
    pub async fn connect(server: &Server) -> Client {
        let mut endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
        endpoint.set_default_client_config(client_config(&server.fingerprint));
        let conn = tokio::time::timeout(STEP, endpoint.connect(server.quic_addr, "veil-relay").unwrap())
            .await
            .expect("handshake timed out")
            .expect("handshake failed");
        Client { endpoint, conn }
    }

    pub async fn close(self) {
        self.conn.close(0u32.into(), b"bye");
        let _ = tokio::time::timeout(Duration::from_millis(500), self.endpoint.wait_idle()).await;
    }

    /// Write `bytes` on a new stream (finishing it if asked) and read the response frame.
    pub async fn raw(&self, bytes: &[u8], finish: bool) -> (Response, RecvStream) {
        let (mut send, mut recv) = self.conn.open_bi().await.unwrap();
        send.write_all(bytes).await.unwrap();
        if finish {
            send.finish().unwrap();
        }
        let resp = tokio::time::timeout(STEP, read_frame::<Response>(&mut recv))
            .await
            .expect("no response in time")
            .expect("stream ended without a response");
        (resp, recv)
    }

    /// Open a long-lived stream (mailbox, live stream): the answer and both halves.
    pub async fn open(&self, req: &Request) -> (Response, SendStream, RecvStream) {
        let (mut send, mut recv) = self.conn.open_bi().await.unwrap();
        send.write_all(&encode_frame(req).unwrap()).await.unwrap();
        let resp = tokio::time::timeout(STEP, read_frame::<Response>(&mut recv))
            .await
            .expect("no response in time")
            .expect("stream ended without a response");
        (resp, send, recv)
    }

    /// One request (and its body) on its own stream; the response and its body.
    pub async fn request(&self, req: Request, body: Option<&[u8]>) -> (Response, Option<Vec<u8>>) {
        let mut bytes = encode_frame(&req).unwrap();
        if let Some(b) = body {
            bytes.extend_from_slice(b);
        }
        let (resp, mut recv) = self.raw(&bytes, true).await;
        if let Response::Data { len } = resp {
            let mut data = vec![0u8; len as usize];
            tokio::time::timeout(STEP, recv.read_exact(&mut data)).await.unwrap().unwrap();
            return (resp, Some(data));
        }
        (resp, None)
    }

    pub async fn ok(&self, req: Request, body: Option<&[u8]>) {
        let what = format!("{req:?}");
        let (resp, _) = self.request(req, body).await;
        assert_eq!(resp, Response::Ok, "{what}");
    }

    pub async fn error(&self, req: Request, body: Option<&[u8]>) -> WireError {
        let what = format!("{req:?}");
        match self.request(req, body).await {
            (Response::Error(e), _) => e,
            other => panic!("expected an error for {what}, got {:?}", other.0),
        }
    }

    pub async fn data(&self, req: Request) -> Vec<u8> {
        let what = format!("{req:?}");
        match self.request(req, None).await {
            (Response::Data { len }, Some(d)) => {
                assert_eq!(d.len(), len as usize);
                d
            }
            (other, _) => panic!("expected data for {what}, got {other:?}"),
        }
    }

    pub async fn mailbox(&self, nameplate: Option<u32>, side: Side) -> Result<Mailbox, WireError> {
        let (mut send, mut recv) = self.conn.open_bi().await.unwrap();
        send.write_all(&encode_frame(&Request::Mailbox { nameplate, side }).unwrap()).await.unwrap();
        match tokio::time::timeout(STEP, read_frame::<Response>(&mut recv)).await.unwrap() {
            Some(Response::MailboxOpened { nameplate }) => Ok(Mailbox { nameplate, send, recv }),
            Some(Response::Error(e)) => Err(e),
            other => panic!("unexpected answer to a mailbox request: {other:?}"),
        }
    }
}

/// Read one frame; None when the stream finished cleanly before it.
pub async fn read_frame<T: serde::de::DeserializeOwned>(recv: &mut RecvStream) -> Option<T> {
    let mut len = [0u8; 4];
    match recv.read_exact(&mut len).await {
        Ok(()) => {}
        Err(quinn::ReadExactError::FinishedEarly(0)) => return None,
        Err(e) => panic!("reading a frame: {e}"),
    }
    let mut body = vec![0u8; frame_len(len).unwrap()];
    recv.read_exact(&mut body).await.unwrap();
    Some(decode_body(&body).unwrap())
}

#[derive(Debug)]
pub struct Mailbox {
    pub nameplate: u32,
    pub send: SendStream,
    pub recv: RecvStream,
}

impl Mailbox {
    pub async fn send(&mut self, m: &MailboxMsg) {
        self.send.write_all(&encode_frame(m).unwrap()).await.unwrap();
    }

    /// The next frame from the relay, None when it finished the stream.
    pub async fn recv(&mut self) -> Option<MailboxMsg> {
        tokio::time::timeout(STEP, read_frame(&mut self.recv)).await.expect("no mailbox frame in time")
    }

    /// The next frame that is not `PeerJoined`.
    pub async fn recv_skipping_joins(&mut self) -> Option<MailboxMsg> {
        loop {
            match self.recv().await {
                Some(MailboxMsg::PeerJoined) => continue,
                other => return other,
            }
        }
    }
}

/// A transfer's id and capabilities, with requests built from them.
#[derive(Clone, Copy)]
pub struct Transfer {
    pub tid: TransferId,
    pub owner: Capability,
    pub download: Capability,
    pub receipt: Capability,
}

impl Transfer {
    pub fn new(seed: u8) -> Transfer {
        let mut tid = [0u8; 16];
        getrandom::fill(&mut tid).unwrap();
        Transfer { tid, owner: [seed; 32], download: [seed.wrapping_add(1); 32], receipt: [seed.wrapping_add(2); 32] }
    }

    pub fn create(&self, expire_secs: u64, max_downloads: Option<u32>) -> Request {
        Request::Create {
            tid: self.tid,
            owner: cap_hash(&self.owner),
            download: cap_hash(&self.download),
            receipt: cap_hash(&self.receipt),
            expire_secs,
            max_downloads,
            size_hint: Some(16 << 20),
        }
    }

    pub fn put_chunk(&self, index: u64, body: &[u8]) -> Request {
        Request::PutChunk { tid: self.tid, owner: self.owner, index, len: body.len() as u32 }
    }

    pub fn put_manifest(&self, body: &[u8]) -> Request {
        Request::PutManifest { tid: self.tid, owner: self.owner, len: body.len() as u32 }
    }

    pub fn complete(&self, chunk_count: u64) -> Request {
        Request::Complete { tid: self.tid, owner: self.owner, chunk_count }
    }

    pub fn get_chunk(&self, index: u64, wait_secs: u32) -> Request {
        Request::GetChunk { tid: self.tid, download: self.download, index, wait_secs }
    }

    pub fn get_manifest(&self) -> Request {
        Request::GetManifest { tid: self.tid, download: self.download, wait_secs: 5 }
    }

    pub fn status(&self, cap: Capability) -> Request {
        Request::Status { tid: self.tid, cap }
    }

    pub fn receipt(&self) -> Request {
        Request::Receipt { tid: self.tid, receipt: self.receipt }
    }
}

/// Deterministic filler bytes that differ per chunk.
pub fn bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}
