#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Hex snapshots of one frame of every `Request`, `Response` and `MailboxMsg` variant
//! (`vectors/frames-all-variants.json`), a decode round trip of each, and a check that appending a
//! variant never moves an existing one. Regenerate after an intended change with
//!
//! ```text
//! VEIL_WRITE_VECTORS=1 cargo test -p veil-wire --test vectors
//! ```

use serde_json::{Value, json};
use std::collections::BTreeMap;
use veil_wire::*;

fn requests() -> Vec<(&'static str, Request)> {
    let all = vec![
        Request::Ping,
        Request::Create {
            tid: [1; 16],
            owner: [2; 32],
            download: [3; 32],
            receipt: [4; 32],
            expire_secs: 86_400,
            max_downloads: Some(3),
            size_hint: Some(1 << 20),
        },
        Request::PutChunk { tid: [1; 16], owner: [2; 32], index: 300, len: 1_048_600 },
        Request::PutManifest { tid: [1; 16], owner: [2; 32], len: 512 },
        Request::Complete { tid: [1; 16], owner: [2; 32], chunk_count: 2 },
        Request::Status { tid: [1; 16], cap: [5; 32] },
        Request::GetManifest { tid: [1; 16], download: [3; 32], wait_secs: 30 },
        Request::GetChunk { tid: [1; 16], download: [3; 32], index: 7, wait_secs: 30 },
        Request::Receipt { tid: [1; 16], receipt: [4; 32] },
        Request::Delete { tid: [1; 16], owner: [2; 32] },
        Request::Mailbox { nameplate: Some(42), side: Side::Receiver },
        Request::StreamPublish { tid: [1; 16], owner: [2; 32], download: [3; 32], max_viewers: 4 },
        Request::StreamWatch { tid: [1; 16], download: [3; 32] },
        Request::AuthChallenge,
        Request::Auth { ed25519: [6; 32], signature: [7; 64] },
        Request::InboxPut { inbox: [8; 32], expire_secs: 3600, len: 222 },
        Request::InboxList { inbox: [8; 32], after: Some([9; 16]) },
        Request::InboxDelete { inbox: [8; 32], entry: [9; 16] },
    ];
    all.into_iter().map(|r| (request_name(&r), r)).collect()
}

/// Exhaustive on purpose: a new variant does not compile until it has a snapshot.
fn request_name(r: &Request) -> &'static str {
    match r {
        Request::Ping => "Ping",
        Request::Create { .. } => "Create",
        Request::PutChunk { .. } => "PutChunk",
        Request::PutManifest { .. } => "PutManifest",
        Request::Complete { .. } => "Complete",
        Request::Status { .. } => "Status",
        Request::GetManifest { .. } => "GetManifest",
        Request::GetChunk { .. } => "GetChunk",
        Request::Receipt { .. } => "Receipt",
        Request::Delete { .. } => "Delete",
        Request::Mailbox { .. } => "Mailbox",
        Request::StreamPublish { .. } => "StreamPublish",
        Request::StreamWatch { .. } => "StreamWatch",
        Request::AuthChallenge => "AuthChallenge",
        Request::Auth { .. } => "Auth",
        Request::InboxPut { .. } => "InboxPut",
        Request::InboxList { .. } => "InboxList",
        Request::InboxDelete { .. } => "InboxDelete",
    }
}

fn response_name(r: &Response) -> &'static str {
    match r {
        Response::Ok => "Ok",
        Response::Status(_) => "Status",
        Response::Data { .. } => "Data",
        Response::Counted { .. } => "Counted",
        Response::MailboxOpened { .. } => "MailboxOpened",
        Response::Error(_) => "Error",
        Response::Redirect { .. } => "Redirect",
        Response::Challenge { .. } => "Challenge",
        Response::Inbox { .. } => "Inbox",
    }
}

fn responses() -> Vec<(&'static str, Response)> {
    let all = vec![
        Response::Ok,
        Response::Status(TransferStatus {
            chunks: vec![(0, 3), (5, 6)],
            manifest: true,
            complete: None,
            downloads: 1,
            max_downloads: Some(2),
            expires_in_secs: 3600,
        }),
        Response::Data { len: 1_048_600 },
        Response::Counted { remaining: Some(0) },
        Response::MailboxOpened { nameplate: 42 },
        Response::Error(WireError::new(ErrorCode::Forbidden, "no")),
        Response::Redirect { addr: "10.0.0.2:4433".to_string(), fingerprint: "ab".repeat(32) },
        Response::Challenge { nonce: [0xaa; 32] },
        Response::Inbox {
            entries: vec![InboxEntry { id: [9; 16], created: 1_700_000_000, sealed: vec![1, 2, 3] }],
            more: false,
        },
    ];
    all.into_iter().map(|r| (response_name(&r), r)).collect()
}

fn mailbox() -> Vec<(&'static str, MailboxMsg)> {
    vec![
        ("Message", MailboxMsg::Message(vec![0xde, 0xad])),
        ("Burn", MailboxMsg::Burn),
        ("Burned", MailboxMsg::Burned),
        ("PeerJoined", MailboxMsg::PeerJoined),
        ("PeerGone", MailboxMsg::PeerGone),
        ("Close", MailboxMsg::Close),
    ]
}

fn snapshot() -> Value {
    let mut out = BTreeMap::new();
    let mut put = |kind: &str, i: usize, name: &str, bytes: Vec<u8>| {
        out.insert(format!("{kind}/{i:02}-{name}"), Value::String(hex::encode(bytes)));
    };
    for (i, (n, r)) in requests().iter().enumerate() {
        let b = encode_frame(r).unwrap();
        assert_eq!(decode_frame::<Request>(&b).unwrap(), Some((r.clone(), b.len())));
        // The variant index is the first body byte: the position in the enum.
        assert_eq!(usize::from(b[4]), i, "{n}");
        put("request", i, n, b);
    }
    for (i, (n, r)) in responses().iter().enumerate() {
        let b = encode_frame(r).unwrap();
        assert_eq!(decode_frame::<Response>(&b).unwrap(), Some((r.clone(), b.len())));
        assert_eq!(usize::from(b[4]), i, "{n}");
        put("response", i, n, b);
    }
    for (i, (n, m)) in mailbox().iter().enumerate() {
        let b = encode_frame(m).unwrap();
        assert_eq!(decode_frame::<MailboxMsg>(&b).unwrap(), Some((m.clone(), b.len())));
        put("mailbox", i, n, b);
    }
    put("auth", 0, "auth_message", auth_message(&[0xaa; 32]));
    put("inbox", 0, "inbox_id", inbox_id(&[6; 32]).to_vec());
    json!(out)
}

#[test]
fn frames_match_the_snapshot() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("vectors/frames-all-variants.json");
    let now = snapshot();
    if std::env::var("VEIL_WRITE_VECTORS").is_ok_and(|v| v == "1") {
        std::fs::write(&path, serde_json::to_string_pretty(&now).unwrap() + "\n").unwrap();
        return;
    }
    let stored: Value = serde_json::from_str(
        &std::fs::read_to_string(&path)
            .expect("vectors/frames-all-variants.json (regenerate with VEIL_WRITE_VECTORS=1)"),
    )
    .unwrap();
    for (k, v) in stored.as_object().unwrap() {
        assert_eq!(
            now.get(k),
            Some(v),
            "{k} changed: existing frames must keep their bytes (append new variants at the end)"
        );
    }
    assert_eq!(now, stored, "new frames: regenerate with VEIL_WRITE_VECTORS=1");
}

#[test]
fn largest_inbox_listing_fits_in_a_frame() {
    let e = InboxEntry { id: [0xff; 16], created: u64::MAX, sealed: vec![0xff; MAX_INBOX_BODY as usize] };
    let r = Response::Inbox { entries: vec![e; MAX_INBOX_LIST], more: true };
    assert!(encode_frame(&r).is_ok());
}
