#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The relay in-process, spoken to in raw frames over real QUIC on 127.0.0.1.
//!
//! Each test starts its own relay (`Server::spawn` on port 0, a memory store, a temporary
//! data folder) and connects a quinn client that pins the relay's certificate by its
//! SHA-256, the way `veil-client` does. Nothing here uses the client library: the bytes on
//! the streams are exactly those `PROTOCOL.md` describes.

use quinn::RecvStream;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use veil_store::{MemoryStore, Store};
use veil_wire::{
    Capability, ErrorCode, MAX_CHUNK_BODY, MailboxMsg, Request, Response, Side, StreamFrame, TransferId, WireError,
    cap_hash, encode_frame, tid_hex,
};

mod common;

use common::*;

// ---------------------------------------------------------------------------------------
// (a) (b) (c): bad streams do not disturb good ones

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_streams_fail_alone_while_an_upload_on_the_same_connection_succeeds() {
    let relay = TestRelay::start().await;
    let client = relay.client().await;
    let t = Transfer::new(0x10);
    client.ok(t.create(3600, None), None).await;
    let chunks: Vec<Vec<u8>> =
        [200_000usize, 1 << 20, 33].iter().enumerate().map(|(i, n)| bytes(*n, i as u64)).collect();
    let manifest = bytes(1000, 99);

    let oversized = async {
        // A 10 MiB length prefix: refused from the prefix alone.
        let (resp, _) = client.raw(&(10u32 << 20).to_le_bytes(), false).await;
        match resp {
            Response::Error(e) => assert_eq!(e.code, ErrorCode::TooLarge, "{e}"),
            other => panic!("expected TooLarge, got {other:?}"),
        }
    };
    let garbage = async {
        // A plausible length, then a body that is no request (variant 0xff...).
        let (resp, _) = client.raw(&[5, 0, 0, 0, 0xff, 0xfe, 0xfd, 0xfc, 0xfb], true).await;
        match resp {
            Response::Error(e) => assert_eq!(e.code, ErrorCode::BadRequest, "{e}"),
            other => panic!("expected BadRequest, got {other:?}"),
        }
        // A Ping followed by a trailing byte inside the frame.
        let (resp, _) = client.raw(&[2, 0, 0, 0, 0, 0], true).await;
        assert!(matches!(resp, Response::Error(WireError { code: ErrorCode::BadRequest, .. })), "{resp:?}");
        // A frame cut short by the end of the stream.
        let (resp, _) = client.raw(&[10, 0, 0, 0, 1, 2], true).await;
        assert!(matches!(resp, Response::Error(WireError { code: ErrorCode::BadRequest, .. })), "{resp:?}");
    };
    let bad_bodies = async {
        // A body longer than the protocol allows, and one shorter than declared.
        let too_long = Request::PutChunk { tid: t.tid, owner: t.owner, index: 9, len: MAX_CHUNK_BODY + 1 };
        assert_eq!(client.error(too_long, None).await.code, ErrorCode::TooLarge);
        let short = Request::PutChunk { tid: t.tid, owner: t.owner, index: 9, len: 1000 };
        let e = client.error(short, Some(&[1, 2, 3])).await;
        assert_eq!(e.code, ErrorCode::BadRequest);
    };
    let upload = async {
        let puts = chunks.iter().enumerate().map(|(i, c)| client.ok(t.put_chunk(i as u64, c), Some(c)));
        futures_join_all(puts).await;
        client.ok(t.put_manifest(&manifest), Some(&manifest)).await;
        client.ok(t.complete(3), None).await;
        for (i, c) in chunks.iter().enumerate() {
            assert_eq!(&client.data(t.get_chunk(i as u64, 5)).await, c, "chunk {i}");
        }
        assert_eq!(client.data(t.get_manifest()).await, manifest);
    };
    tokio::time::timeout(STEP, async { tokio::join!(oversized, garbage, bad_bodies, upload) }).await.unwrap();

    // The connection is still fine, and so is a new one.
    client.ok(Request::Ping, None).await;
    let second = relay.client().await;
    second.ok(Request::Ping, None).await;
    assert_eq!(second.data(t.get_chunk(2, 0)).await, chunks[2]);
    match second.request(t.status(t.download), None).await.0 {
        Response::Status(s) => {
            assert_eq!(s.chunks, vec![(0, 3)]);
            assert!(s.manifest);
            assert_eq!(s.complete, Some(3));
            assert_eq!(s.downloads, 0);
        }
        other => panic!("{other:?}"),
    }
    second.close().await;
    client.close().await;
    relay.stop().await;
}

/// Await all futures concurrently (no extra crate for `join_all`).
async fn futures_join_all<F: std::future::Future<Output = ()>>(futs: impl IntoIterator<Item = F>) {
    let mut set: Vec<std::pin::Pin<Box<F>>> = futs.into_iter().map(Box::pin).collect();
    std::future::poll_fn(|cx| {
        set.retain_mut(|f| f.as_mut().poll(cx).is_pending());
        if set.is_empty() { std::task::Poll::Ready(()) } else { std::task::Poll::Pending }
    })
    .await;
}

// ---------------------------------------------------------------------------------------
// (d) capabilities

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_capabilities_are_forbidden() {
    let relay = TestRelay::start().await;
    let client = relay.client().await;
    let t = Transfer::new(0x20);
    client.ok(t.create(3600, None), None).await;
    let chunk = bytes(4096, 1);
    client.ok(t.put_chunk(0, &chunk), Some(&chunk)).await;

    let mut wrong = t;
    wrong.owner = [0x77; 32];
    wrong.download = t.owner; // a real capability, but not the download one
    wrong.receipt = t.download;
    let forbidden = [
        client.error(wrong.put_chunk(1, &chunk), Some(&chunk)).await,
        client.error(wrong.put_manifest(&chunk), Some(&chunk)).await,
        client.error(wrong.complete(1), None).await,
        client.error(wrong.get_chunk(0, 0), None).await,
        client.error(wrong.get_manifest(), None).await,
        client.error(wrong.receipt(), None).await,
        client.error(t.status(t.receipt), None).await,
        client.error(Request::Delete { tid: t.tid, owner: t.download }, None).await,
    ];
    for e in forbidden {
        assert_eq!(e.code, ErrorCode::Forbidden, "{e}");
    }
    // The same id with another owner is a conflict; with the same owner, idempotent.
    let mut other_owner = t;
    other_owner.owner = [0x78; 32];
    assert_eq!(client.error(other_owner.create(3600, None), None).await.code, ErrorCode::Conflict);
    client.ok(t.create(3600, None), None).await;
    // Unknown transfers are not found, whatever the capability.
    let unknown = Transfer::new(0x21);
    assert_eq!(client.error(unknown.get_chunk(0, 0), None).await.code, ErrorCode::NotFound);
    // Nothing was changed by the refused requests.
    assert_eq!(client.data(t.get_chunk(0, 0)).await, chunk);
    client.close().await;
    relay.stop().await;
}

// ---------------------------------------------------------------------------------------
// (e) waiting downloads

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_chunk_waits_for_a_chunk_uploaded_later() {
    let relay = TestRelay::start().await;
    let uploader = relay.client().await;
    let downloader = relay.client().await;
    let t = Transfer::new(0x30);
    uploader.ok(t.create(3600, None), None).await;

    // Not uploaded and no wait: Timeout at once.
    assert_eq!(downloader.error(t.get_chunk(4, 0), None).await.code, ErrorCode::Timeout);

    let chunk = bytes(300_000, 4);
    let started = Instant::now();
    let waiting = downloader.data(t.get_chunk(4, 20));
    let upload = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        uploader.ok(t.put_chunk(4, &chunk), Some(&chunk)).await;
        Instant::now()
    };
    let (got, uploaded_at) = tokio::time::timeout(STEP, async { tokio::join!(waiting, upload) }).await.unwrap();
    assert_eq!(got, chunk);
    assert!(started.elapsed() >= Duration::from_millis(300));
    // Answered once the chunk is there, long before the 20 s deadline.
    assert!(uploaded_at.elapsed() < Duration::from_secs(5), "answered {:?} after the upload", uploaded_at.elapsed());

    // The manifest waits the same way.
    let manifest = bytes(777, 5);
    let waiting = downloader.data(t.get_manifest());
    let upload = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        uploader.ok(t.put_manifest(&manifest), Some(&manifest)).await;
    };
    let (got, ()) = tokio::time::timeout(STEP, async { tokio::join!(waiting, upload) }).await.unwrap();
    assert_eq!(got, manifest);
    uploader.close().await;
    downloader.close().await;
    relay.stop().await;
}

/// Cut-through: a receiver waiting for a chunk gets its bytes while the upload is still
/// coming in, all but the last byte before the store acknowledged it; an upload that
/// breaks off resets the waiting receiver and stores nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_receiver_is_served_a_chunk_as_it_arrives() {
    let relay = TestRelay::start().await;
    let uploader = relay.client().await;
    let downloader = relay.client().await;
    let t = Transfer::new(0x31);
    uploader.ok(t.create(3600, None), None).await;
    let chunk = bytes(600_000, 7);

    // The receiver asks first, then the upload sends half of the body and pauses.
    let (mut dsend, mut drecv) = downloader.conn.open_bi().await.unwrap();
    dsend.write_all(&encode_frame(&t.get_chunk(0, 20)).unwrap()).await.unwrap();
    dsend.finish().unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (mut usend, mut urecv) = uploader.conn.open_bi().await.unwrap();
    usend.write_all(&encode_frame(&t.put_chunk(0, &chunk)).unwrap()).await.unwrap();
    usend.write_all(&chunk[..300_000]).await.unwrap();
    let resp = tokio::time::timeout(STEP, read_frame::<Response>(&mut drecv)).await.unwrap();
    assert_eq!(resp, Some(Response::Data { len: 600_000 }));
    let mut first = vec![0u8; 300_000];
    tokio::time::timeout(STEP, drecv.read_exact(&mut first)).await.expect("the first half came early").unwrap();
    assert_eq!(first, chunk[..300_000]);
    // Not stored yet: Status does not count it.
    match uploader.request(t.status(t.owner), None).await.0 {
        Response::Status(s) => assert!(s.chunks.is_empty(), "{s:?}"),
        other => panic!("{other:?}"),
    }
    usend.write_all(&chunk[300_000..]).await.unwrap();
    usend.finish().unwrap();
    assert_eq!(tokio::time::timeout(STEP, read_frame::<Response>(&mut urecv)).await.unwrap(), Some(Response::Ok));
    let mut rest = vec![0u8; 300_000];
    tokio::time::timeout(STEP, drecv.read_exact(&mut rest)).await.unwrap().unwrap();
    assert_eq!(rest, chunk[300_000..]);

    // An upload that breaks off: the waiting receiver's answer is reset, nothing stored.
    let (mut dsend, mut drecv) = downloader.conn.open_bi().await.unwrap();
    dsend.write_all(&encode_frame(&t.get_chunk(1, 20)).unwrap()).await.unwrap();
    dsend.finish().unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (mut usend, _urecv) = uploader.conn.open_bi().await.unwrap();
    usend.write_all(&encode_frame(&t.put_chunk(1, &chunk)).unwrap()).await.unwrap();
    usend.write_all(&chunk[..599_999]).await.unwrap();
    let resp = tokio::time::timeout(STEP, read_frame::<Response>(&mut drecv)).await.unwrap();
    assert_eq!(resp, Some(Response::Data { len: 600_000 }));
    let mut almost = vec![0u8; 599_999];
    tokio::time::timeout(STEP, drecv.read_exact(&mut almost)).await.unwrap().unwrap();
    // The last byte is held back until the store acknowledges the chunk...
    let mut last = [0u8; 1];
    assert!(tokio::time::timeout(Duration::from_millis(300), drecv.read_exact(&mut last)).await.is_err());
    // ...and it never will: the uploader gives up.
    usend.reset(0u32.into()).unwrap();
    let end = tokio::time::timeout(STEP, drecv.read_exact(&mut last)).await.unwrap();
    assert!(end.is_err(), "the receiver must see the response break off, got {end:?}");
    assert!(relay.store.get(&veil_relay::keys::chunk(&t.tid, 1)).await.unwrap().is_none());
    assert!(relay.store.get(&veil_relay::keys::chunk(&t.tid, 0)).await.unwrap().is_some());
    uploader.close().await;
    downloader.close().await;
    relay.stop().await;
}

// ---------------------------------------------------------------------------------------
// (f) completion

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn complete_with_missing_parts_is_incomplete() {
    let relay = TestRelay::start().await;
    let client = relay.client().await;
    let t = Transfer::new(0x40);
    client.ok(t.create(3600, None), None).await;
    for i in [0u64, 2] {
        let c = bytes(1000, i);
        client.ok(t.put_chunk(i, &c), Some(&c)).await;
    }
    // Chunk 1 missing.
    assert_eq!(client.error(t.complete(3), None).await.code, ErrorCode::Incomplete);
    // A chunk beyond the count.
    let c1 = bytes(1000, 1);
    client.ok(t.put_chunk(1, &c1), Some(&c1)).await;
    assert_eq!(client.error(t.complete(2), None).await.code, ErrorCode::Incomplete);
    // All chunks, but no manifest.
    let e = client.error(t.complete(3), None).await;
    assert_eq!(e.code, ErrorCode::Incomplete);
    assert!(e.message.contains("manifest"), "{e}");
    let m = bytes(100, 7);
    client.ok(t.put_manifest(&m), Some(&m)).await;
    client.ok(t.complete(3), None).await;
    match client.request(t.status(t.owner), None).await.0 {
        Response::Status(s) => {
            assert_eq!(s.chunks, vec![(0, 3)]);
            assert_eq!(s.complete, Some(3));
        }
        other => panic!("{other:?}"),
    }
    // Once complete, a chunk that is not there will never come: NotFound, no waiting.
    let started = Instant::now();
    assert_eq!(client.error(t.get_chunk(3, 20), None).await.code, ErrorCode::NotFound);
    assert!(started.elapsed() < Duration::from_secs(2));
    client.close().await;
    relay.stop().await;
}

// ---------------------------------------------------------------------------------------
// (g) expiry and the sweeper

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_transfers_are_refused_then_swept() {
    let relay = TestRelay::start().await;
    let client = relay.client().await;
    // Expiry is in whole seconds: start early in a second so the uploads below finish
    // before it.
    let sub = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_millis();
    if sub > 300 {
        tokio::time::sleep(Duration::from_millis(u64::from(1010 - sub))).await;
    }
    let t = Transfer::new(0x50);
    let keep = Transfer::new(0x51);
    client.ok(t.create(1, None), None).await;
    client.ok(keep.create(3600, None), None).await;
    let c = bytes(5000, 1);
    client.ok(t.put_chunk(0, &c), Some(&c)).await;
    client.ok(t.put_manifest(&c), Some(&c)).await;
    client.ok(keep.put_chunk(0, &c), Some(&c)).await;
    let prefix = format!("t/{}/", tid_hex(&t.tid));
    assert_eq!(relay.store.list(&prefix).await.unwrap().len(), 3);

    tokio::time::sleep(Duration::from_secs(2)).await;
    for req in [t.get_chunk(0, 0), t.get_manifest(), t.status(t.owner), t.put_chunk(1, &c)] {
        let body = matches!(req, Request::PutChunk { .. }).then_some(&c[..]);
        assert_eq!(client.error(req.clone(), body).await.code, ErrorCode::Expired, "{req:?}");
    }

    let swept = relay.server.shared.transfers.sweep().await.unwrap();
    assert_eq!(swept.len(), 1);
    assert!(relay.store.list(&prefix).await.unwrap().is_empty());
    let index = format!("e/{}", tid_hex(&t.tid));
    assert_eq!(relay.store.get(&index).await.unwrap(), None);
    assert_eq!(client.error(t.get_chunk(0, 0), None).await.code, ErrorCode::NotFound);
    // The other transfer is untouched.
    assert_eq!(client.data(keep.get_chunk(0, 0)).await, c);
    assert!(relay.store.get(&format!("e/{}", tid_hex(&keep.tid))).await.unwrap().is_some());
    assert!(relay.server.shared.transfers.sweep().await.unwrap().is_empty());
    client.close().await;
    relay.stop().await;
}

// ---------------------------------------------------------------------------------------
// (h) download limit

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn download_limit_counts_receipts() {
    let relay = TestRelay::start().await;
    let client = relay.client().await;
    let t = Transfer::new(0x60);
    client.ok(t.create(3600, Some(1)), None).await;
    let c = bytes(2048, 3);
    let m = bytes(64, 4);
    client.ok(t.put_chunk(0, &c), Some(&c)).await;
    client.ok(t.put_manifest(&m), Some(&m)).await;
    client.ok(t.complete(1), None).await;

    // Fetching is not downloading: without a receipt nothing is used up.
    for _ in 0..3 {
        assert_eq!(client.data(t.get_manifest()).await, m);
        assert_eq!(client.data(t.get_chunk(0, 0)).await, c);
    }
    assert_eq!(client.request(t.receipt(), None).await.0, Response::Counted { remaining: Some(0) });
    assert_eq!(client.error(t.get_chunk(0, 0), None).await.code, ErrorCode::DownloadLimit);
    assert_eq!(client.error(t.get_manifest(), None).await.code, ErrorCode::DownloadLimit);
    match client.request(t.status(t.download), None).await.0 {
        Response::Status(s) => {
            assert_eq!(s.downloads, 1);
            assert_eq!(s.max_downloads, Some(1));
        }
        other => panic!("{other:?}"),
    }
    // One `dl/` object per receipt.
    let dl = format!("t/{}/dl/", tid_hex(&t.tid));
    assert_eq!(relay.store.list(&dl).await.unwrap().len(), 1);

    // Without a limit, receipts count but never refuse.
    let u = Transfer::new(0x61);
    client.ok(u.create(3600, None), None).await;
    client.ok(u.put_chunk(0, &c), Some(&c)).await;
    for _ in 0..2 {
        assert_eq!(client.request(u.receipt(), None).await.0, Response::Counted { remaining: None });
    }
    assert_eq!(client.data(u.get_chunk(0, 0)).await, c);
    client.close().await;
    relay.stop().await;
}

// ---------------------------------------------------------------------------------------
// (i) mailboxes

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mailbox_relays_messages_and_burns() {
    let relay = TestRelay::start().await;
    let (c1, c2, c3) = (relay.client().await, relay.client().await, relay.client().await);

    let mut sender = c1.mailbox(None, Side::Sender).await.unwrap();
    let n = sender.nameplate;
    assert!(n >= 1);
    // Posted before the receiver arrives: queued for it.
    sender.send(&MailboxMsg::Message(b"A: spake2".to_vec())).await;

    let mut receiver = c2.mailbox(Some(n), Side::Receiver).await.unwrap();
    assert_eq!(receiver.nameplate, n);
    assert_eq!(receiver.recv_skipping_joins().await, Some(MailboxMsg::Message(b"A: spake2".to_vec())));
    assert_eq!(sender.recv().await, Some(MailboxMsg::PeerJoined));
    receiver.send(&MailboxMsg::Message(b"B: spake2".to_vec())).await;
    receiver.send(&MailboxMsg::Message(vec![0x42; 32])).await;
    assert_eq!(sender.recv().await, Some(MailboxMsg::Message(b"B: spake2".to_vec())));
    assert_eq!(sender.recv().await, Some(MailboxMsg::Message(vec![0x42; 32])));

    // A third party cannot take either occupied side.
    for side in [Side::Sender, Side::Receiver] {
        let e = c3.mailbox(Some(n), side).await.unwrap_err();
        assert_eq!(e.code, ErrorCode::NameplateInUse, "{side:?}: {e}");
    }

    // The sender's key confirmation fails: it burns, the receiver is told.
    sender.send(&MailboxMsg::Burn).await;
    assert_eq!(receiver.recv_skipping_joins().await, Some(MailboxMsg::Burned));
    assert_eq!(receiver.recv().await, None, "the relay ends the burned mailbox");
    assert_eq!(sender.recv().await, None);
    for side in [Side::Sender, Side::Receiver] {
        let e = c3.mailbox(Some(n), side).await.unwrap_err();
        assert_eq!(e.code, ErrorCode::Burned, "{side:?}: {e}");
    }
    // A new allocation never hands out the burned nameplate.
    let fresh = c3.mailbox(None, Side::Sender).await.unwrap();
    assert_ne!(fresh.nameplate, n);
    drop(fresh);

    // With a chosen nameplate either side may come first; Close tells the peer.
    let chosen = 424_242;
    let mut r = c2.mailbox(Some(chosen), Side::Receiver).await.unwrap();
    r.send(&MailboxMsg::Message(b"receiver first".to_vec())).await;
    let mut s = c1.mailbox(Some(chosen), Side::Sender).await.unwrap();
    assert_eq!(s.recv_skipping_joins().await, Some(MailboxMsg::Message(b"receiver first".to_vec())));
    assert_eq!(r.recv().await, Some(MailboxMsg::PeerJoined));
    s.send(&MailboxMsg::Close).await;
    assert_eq!(r.recv().await, Some(MailboxMsg::PeerGone));
    // (The queued message and PeerJoined reach `s` in either order.)
    assert_eq!(s.recv_skipping_joins().await, None);

    // An oversized mailbox message ends that side (the peer sees it go).
    let mut s2 = c1.mailbox(Some(chosen), Side::Sender).await.unwrap();
    assert_eq!(r.recv().await, Some(MailboxMsg::PeerJoined));
    assert_eq!(s2.recv().await, Some(MailboxMsg::PeerJoined));
    s2.send(&MailboxMsg::Message(vec![0; veil_wire::MAX_MAILBOX_BODY + 1])).await;
    assert_eq!(s2.recv().await, None);
    assert_eq!(r.recv().await, Some(MailboxMsg::PeerGone));

    for c in [c1, c2, c3] {
        c.close().await;
    }
    relay.stop().await;
}

/// The relay reads mailbox frames inside a `select!` with `read_exact`, which quinn
/// documents as not cancel-safe: when a message for this side arrives while a frame from
/// this side is half read, the bytes already read are lost and the stream desynchronises.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mailbox_frame_split_around_a_peer_message_is_not_lost() {
    let relay = TestRelay::start().await;
    let (c1, c2) = (relay.client().await, relay.client().await);
    let mut a = c1.mailbox(None, Side::Sender).await.unwrap();
    let mut b = c2.mailbox(Some(a.nameplate), Side::Receiver).await.unwrap();
    assert_eq!(a.recv().await, Some(MailboxMsg::PeerJoined));
    assert_eq!(b.recv().await, Some(MailboxMsg::PeerJoined));

    let frame = encode_frame(&MailboxMsg::Message(b"split".to_vec())).unwrap();
    b.send.write_all(&frame[..4]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    a.send(&MailboxMsg::Message(b"ping".to_vec())).await;
    assert_eq!(b.recv().await, Some(MailboxMsg::Message(b"ping".to_vec())));
    b.send.write_all(&frame[4..]).await.unwrap();
    assert_eq!(a.recv().await, Some(MailboxMsg::Message(b"split".to_vec())));
    relay.stop().await;
}

/// A chunk stored at index `u64::MAX` makes `Status` compute `u64::MAX + 1` in
/// `veil_wire::to_ranges` (a panic with overflow checks, a bogus range without). The relay
/// should refuse such an index, or `Status` should still answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunk_index_u64_max_does_not_break_status() {
    let relay = TestRelay::start().await;
    let client = relay.client().await;
    let t = Transfer::new(0x80);
    client.ok(t.create(3600, None), None).await;
    let c = bytes(10, 1);
    if let (Response::Ok, _) = client.request(t.put_chunk(u64::MAX, &c), Some(&c)).await {
        match client.request(t.status(t.owner), None).await.0 {
            Response::Status(s) => assert!(s.chunks.iter().all(|(a, b)| a < b), "{:?}", s.chunks),
            other => panic!("{other:?}"),
        }
    }
    client.close().await;
    relay.stop().await;
}

// ---------------------------------------------------------------------------------------
// Live streams: frames relayed as they are, from the next segment on

async fn next_stream_frame(r: &mut RecvStream) -> Option<StreamFrame> {
    tokio::time::timeout(STEP, read_frame(r)).await.expect("no stream frame in time")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_stream_frames_reach_the_viewer() {
    let relay = TestRelay::start().await;
    let (c1, c2) = (relay.client().await, relay.client().await);
    let t = Transfer::new(0x90);
    let publish = publish_req(&t, 1, None);
    let (resp, mut publisher, mut from_relay) = c1.open(&publish).await;
    assert_eq!(resp, Response::Ok);

    let watch = |tid: TransferId, download: Capability| Request::StreamWatch { tid, download };
    let code = |r: Response| match r {
        Response::Error(e) => e.code,
        other => panic!("expected an error, got {other:?}"),
    };
    assert_eq!(code(c2.open(&watch(t.tid, t.owner)).await.0), ErrorCode::Forbidden);
    assert_eq!(code(c2.open(&watch([0xee; 16], t.download)).await.0), ErrorCode::NotFound);
    let (resp, _keep, mut viewer) = c2.open(&watch(t.tid, t.download)).await;
    assert_eq!(resp, Response::Ok);
    assert_eq!(next_stream_frame(&mut from_relay).await, Some(StreamFrame::Viewers(1)));
    // Over the publisher's viewer limit; and a stream id is published once.
    assert_eq!(code(c2.open(&watch(t.tid, t.download)).await.0), ErrorCode::LimitExceeded);
    assert_eq!(code(c2.open(&publish).await.0), ErrorCode::Conflict);

    let frames = [
        StreamFrame::Segment { index: 0, last: false, prefix: vec![1; 25] },
        StreamFrame::Message(bytes(3000, 1)),
        StreamFrame::Message(bytes(10, 2)),
        StreamFrame::Segment { index: 1, last: true, prefix: vec![2; 25] },
        StreamFrame::Message(bytes(500, 3)),
        StreamFrame::End,
    ];
    for f in &frames {
        publisher.write_all(&encode_frame(f).unwrap()).await.unwrap();
    }
    for f in &frames {
        assert_eq!(next_stream_frame(&mut viewer).await.as_ref(), Some(f));
    }
    assert_eq!(next_stream_frame(&mut viewer).await, None, "the relay finishes the viewer's stream after End");
    c1.close().await;
    c2.close().await;
    relay.stop().await;
}

/// Publish `t` as a stream; recorded for `record` seconds if given.
fn publish_req(t: &Transfer, max_viewers: u32, record: Option<u64>) -> Request {
    let (tid, owner, download) = (t.tid, cap_hash(&t.owner), cap_hash(&t.download));
    match record {
        Some(expire_secs) => Request::StreamPublishRecorded {
            tid,
            owner,
            download,
            max_viewers,
            receipt: cap_hash(&t.receipt),
            expire_secs,
        },
        None => Request::StreamPublish { tid, owner, download, max_viewers },
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recorded_stream_is_kept_as_a_transfer_of_its_segments() {
    let relay = TestRelay::start().await;
    let c = relay.client().await;
    let t = Transfer::new(0x94);
    let (resp, mut publisher, mut from_relay) = c.open(&publish_req(&t, 1, Some(3600))).await;
    assert_eq!(resp, Response::Ok);
    let (p0, m1, m2, p1, m3) = (vec![1; 25], bytes(3000, 1), bytes(10, 2), vec![2; 25], bytes(21, 3));
    let frames = [
        StreamFrame::Segment { index: 0, last: false, prefix: p0.clone() },
        StreamFrame::Message(m1.clone()),
        StreamFrame::Message(m2.clone()),
        StreamFrame::Segment { index: 1, last: true, prefix: p1.clone() },
        StreamFrame::Message(m3.clone()),
        StreamFrame::End,
    ];
    for f in &frames {
        publisher.write_all(&encode_frame(f).unwrap()).await.unwrap();
    }
    // The relay confirms once the whole recording is stored.
    assert_eq!(next_stream_frame(&mut from_relay).await, Some(StreamFrame::End));
    match c.request(t.status(t.download), None).await.0 {
        Response::Status(s) => {
            assert_eq!(s.chunks, vec![(0, 2)]);
            assert_eq!(s.complete, Some(2));
            assert!(!s.manifest);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(c.data(t.get_chunk(0, 0)).await, [p0, m1, m2].concat());
    assert_eq!(c.data(t.get_chunk(1, 0)).await, [p1, m3].concat());
    let e = c.error(Request::GetManifest { tid: t.tid, download: t.download, wait_secs: 0 }, None).await;
    assert_eq!(e.code, ErrorCode::BadRequest);
    assert!(e.message.contains("--from-start"), "{e}");
    // It expires and is swept like any transfer; the owner may delete it.
    c.ok(Request::Delete { tid: t.tid, owner: t.owner }, None).await;
    assert_eq!(c.error(t.get_chunk(0, 0), None).await.code, ErrorCode::NotFound);

    // Segments out of order stop the recording, not the live stream.
    let t2 = Transfer::new(0x98);
    let (resp, mut publisher, mut from_relay) = c.open(&publish_req(&t2, 1, Some(3600))).await;
    assert_eq!(resp, Response::Ok);
    for f in [StreamFrame::Segment { index: 3, last: false, prefix: vec![1; 25] }, StreamFrame::Message(bytes(5, 1))] {
        publisher.write_all(&encode_frame(&f).unwrap()).await.unwrap();
    }
    match next_stream_frame(&mut from_relay).await {
        Some(StreamFrame::Aborted(why)) => assert!(why.contains("recording stopped"), "{why}"),
        other => panic!("{other:?}"),
    }
    c.close().await;
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recording_outlives_a_stream_longer_than_its_expiry() {
    let relay = TestRelay::start().await;
    let c = relay.client().await;
    let t = Transfer::new(0x9c);
    let req = publish_req(&t, 1, Some(3));
    let (resp, mut publisher, mut from_relay) = c.open(&req).await;
    assert_eq!(resp, Response::Ok);
    // Six segments over about 4.2 s: longer than the 3 s expiry.
    for i in 0..6u64 {
        for f in [
            StreamFrame::Segment { index: i, last: i == 5, prefix: vec![i as u8; 25] },
            StreamFrame::Message(bytes(100, i)),
        ] {
            publisher.write_all(&encode_frame(&f).unwrap()).await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
    publisher.write_all(&encode_frame(&StreamFrame::End).unwrap()).await.unwrap();
    assert_eq!(next_stream_frame(&mut from_relay).await, Some(StreamFrame::End), "recording confirmed");
    match c.request(t.status(t.download), None).await.0 {
        Response::Status(s) => {
            assert_eq!(s.complete, Some(6));
            assert!(s.expires_in_secs >= 2, "{s:?}");
        }
        other => panic!("{other:?}"),
    }
    c.close().await;
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_wide_stream_limits_hold() {
    let relay = TestRelay::start_with(Arc::new(MemoryStore::new()), |c| {
        c.streams.max_streams = 2;
        c.streams.max_viewers = 1;
        c.streams.max_viewers_per_stream = 3;
    })
    .await;
    let c = relay.client().await;
    let (a, b, x) = (Transfer::new(0xa4), Transfer::new(0xa8), Transfer::new(0xac));
    let (ra, _pa, _fa) = c.open(&publish_req(&a, 50, None)).await;
    let (rb, _pb, _fb) = c.open(&publish_req(&b, 50, None)).await;
    assert_eq!((ra, rb), (Response::Ok, Response::Ok));
    match c.open(&publish_req(&x, 1, None)).await.0 {
        Response::Error(e) => assert_eq!(e.code, ErrorCode::LimitExceeded, "{e}"),
        other => panic!("{other:?}"),
    }
    let watch = |t: &Transfer| Request::StreamWatch { tid: t.tid, download: t.download };
    let (r1, _k1, _v1) = c.open(&watch(&a)).await;
    assert_eq!(r1, Response::Ok);
    // One viewer on the whole relay: the other stream is refused too.
    match c.open(&watch(&b)).await.0 {
        Response::Error(e) => assert!(e.code == ErrorCode::LimitExceeded && e.message.contains("relay"), "{e}"),
        other => panic!("{other:?}"),
    }
    c.close().await;
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_publisher_is_cut_after_the_idle_timeout() {
    let relay =
        TestRelay::start_with(Arc::new(MemoryStore::new()), |c| c.streams.idle = Duration::from_millis(300)).await;
    let c = relay.client().await;
    let t = Transfer::new(0xb4);
    let (resp, _publisher, _from_relay) = c.open(&publish_req(&t, 1, None)).await;
    assert_eq!(resp, Response::Ok);
    let (resp, _keep, mut viewer) = c.open(&Request::StreamWatch { tid: t.tid, download: t.download }).await;
    assert_eq!(resp, Response::Ok);
    match next_stream_frame(&mut viewer).await {
        Some(StreamFrame::Aborted(why)) => assert!(why.contains("publisher"), "{why}"),
        other => panic!("{other:?}"),
    }
    c.close().await;
    relay.stop().await;
}

// ---------------------------------------------------------------------------------------
// Several relay instances sharing one store

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_sharing_a_store_serve_transfers_and_redirect_mailboxes() {
    let store = Arc::new(MemoryStore::new());
    let a = TestRelay::start_on(store.clone()).await;
    let b = TestRelay::start_on(store.clone()).await;
    assert_ne!(a.server.fingerprint, b.server.fingerprint);
    let (ca, cb) = (a.client().await, b.client().await);

    // A transfer uploaded through A is served by B, even a chunk B is waiting for.
    let t = Transfer::new(0xa0);
    ca.ok(t.create(3600, None), None).await;
    let c0 = bytes(50_000, 0);
    ca.ok(t.put_chunk(0, &c0), Some(&c0)).await;
    assert_eq!(cb.data(t.get_chunk(0, 0)).await, c0);
    let c1 = bytes(70_000, 1);
    let waiting = cb.data(t.get_chunk(1, 10));
    let upload = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        ca.ok(t.put_chunk(1, &c1), Some(&c1)).await;
    };
    let (got, ()) = tokio::time::timeout(STEP, async { tokio::join!(waiting, upload) }).await.unwrap();
    assert_eq!(got, c1);
    // Idempotent creation and capability checks hold across instances too.
    cb.ok(t.create(3600, None), None).await;
    let mut wrong = t;
    wrong.download = [0x55; 32];
    assert_eq!(cb.error(wrong.get_chunk(0, 0), None).await.code, ErrorCode::Forbidden);

    // A mailbox opened on A: B redirects to A.
    let mut sender = ca.mailbox(None, Side::Sender).await.unwrap();
    let n = sender.nameplate;
    let (resp, _, _) = cb.open(&Request::Mailbox { nameplate: Some(n), side: Side::Receiver }).await;
    assert_eq!(
        resp,
        Response::Redirect { addr: a.server.quic_addr.to_string(), fingerprint: a.server.fingerprint.clone() }
    );
    let mut receiver = ca.mailbox(Some(n), Side::Receiver).await.unwrap();
    sender.send(&MailboxMsg::Message(b"hello".to_vec())).await;
    assert_eq!(receiver.recv_skipping_joins().await, Some(MailboxMsg::Message(b"hello".to_vec())));
    // Burned on A: refused on B as well.
    receiver.send(&MailboxMsg::Burn).await;
    assert_eq!(sender.recv_skipping_joins().await, Some(MailboxMsg::Burned));
    for relay_client in [&ca, &cb] {
        let e = relay_client.mailbox(Some(n), Side::Sender).await.unwrap_err();
        assert_eq!(e.code, ErrorCode::Burned, "{e}");
    }
    ca.close().await;
    cb.close().await;
    a.stop().await;
    b.stop().await;
}

// ---------------------------------------------------------------------------------------
// (j) HTTP side

async fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(STEP, s.read_to_end(&mut raw)).await.unwrap().unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP response");
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).expect("a status code");
    (status, body.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_health_readiness_and_metrics() {
    let relay = TestRelay::start().await;
    let addr = relay.server.http_addr.unwrap();
    let client = relay.client().await;
    let t = Transfer::new(0x70);
    client.ok(t.create(3600, None), None).await;
    let c = bytes(12_345, 1);
    client.ok(t.put_chunk(0, &c), Some(&c)).await;

    let (status, body) = http_get(addr, "/healthz").await;
    assert_eq!((status, body.trim()), (200, "ok"));
    let (status, body) = http_get(addr, "/readyz").await;
    assert_eq!((status, body.trim()), (200, "ready"));
    let (status, metrics) = http_get(addr, "/metrics").await;
    assert_eq!(status, 200);
    assert!(metrics.contains("veil_relay_bytes_in"), "{metrics}");
    let bytes_in: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("veil_relay_bytes_in_total "))
        .and_then(|v| v.trim().parse().ok())
        .expect("a veil_relay_bytes_in_total sample");
    assert!(bytes_in >= c.len() as u64, "{bytes_in}");
    assert!(metrics.contains("veil_relay_connections"), "{metrics}");
    let (status, _) = http_get(addr, "/nope").await;
    assert_eq!(status, 404);
    client.close().await;
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_pin_or_alpn_fails_the_handshake() {
    let relay = TestRelay::start().await;
    // A wrong fingerprint.
    let mut endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    endpoint.set_default_client_config(client_config(&"00".repeat(32)));
    let r = tokio::time::timeout(STEP, endpoint.connect(relay.server.quic_addr, "veil-relay").unwrap()).await.unwrap();
    assert!(r.is_err());
    // The right fingerprint but another protocol version.
    let mut tls = rustls::ClientConfig::builder_with_provider(veil_quic::provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(veil_quic::PinVerifier::new(Some(relay.server.fingerprint.clone())))
        .with_no_client_auth();
    tls.alpn_protocols = vec![b"veil/0".to_vec()];
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls).unwrap();
    let cfg = quinn::ClientConfig::new(Arc::new(crypto));
    let r = tokio::time::timeout(STEP, endpoint.connect_with(cfg, relay.server.quic_addr, "veil-relay").unwrap())
        .await
        .unwrap();
    assert!(r.is_err());
    relay.stop().await;
}
