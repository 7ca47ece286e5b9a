#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The relay in-process with a raw QUIC client: authentication, inbox ownership and the
//! allow-list, at the protocol level (what the CLI cannot even attempt).

use ed25519_dalek::{Signer, SigningKey};
use std::sync::Arc;
use veil_relay::{Config, Server};
use veil_wire::{ErrorCode, Request, Response, auth_message, decode_frame, encode_frame, inbox_id};

async fn connect(addr: std::net::SocketAddr) -> quinn::Connection {
    let cfg = veil_quic::client_config(veil_quic::PinVerifier::new(None), veil_quic::client_transport()).unwrap();
    let mut ep = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    ep.set_default_client_config(cfg);
    ep.connect(addr, veil_quic::SERVER_NAME).unwrap().await.unwrap()
}

/// What `conn`'s TLS session exports for authentication.
fn exporter(conn: &quinn::Connection) -> [u8; 32] {
    let mut x = [0u8; 32];
    conn.export_keying_material(&mut x, veil_wire::AUTH_EXPORTER_LABEL, b"").unwrap();
    x
}

async fn call(conn: &quinn::Connection, req: &Request, body: Option<&[u8]>) -> Response {
    let (mut send, mut recv) = conn.open_bi().await.unwrap();
    send.write_all(&encode_frame(req).unwrap()).await.unwrap();
    if let Some(b) = body {
        let _ = send.write_all(b).await;
    }
    let _ = send.finish();
    let buf = recv.read_to_end(1 << 20).await.unwrap();
    decode_frame::<Response>(&buf).unwrap().unwrap().0
}

async fn auth(conn: &quinn::Connection, sk: &SigningKey) -> Response {
    let Response::Challenge { nonce } = call(conn, &Request::AuthChallenge, None).await else { panic!("no challenge") };
    call(
        conn,
        &Request::Auth {
            ed25519: sk.verifying_key().to_bytes(),
            signature: sk.sign(&auth_message(&nonce, &exporter(conn))).to_bytes(),
        },
        None,
    )
    .await
}

fn code(r: &Response) -> Option<ErrorCode> {
    match r {
        Response::Error(e) => Some(e.code),
        _ => None,
    }
}

async fn start(dir: &std::path::Path, allow: Option<std::path::PathBuf>) -> Server {
    let mut config =
        Config { listen: "127.0.0.1:0".parse().unwrap(), http: None, data_dir: dir.to_path_buf(), ..Config::default() };
    config.access.allow_file = allow;
    Server::spawn(config, Arc::new(veil_store::MemoryStore::new())).await.unwrap()
}

#[tokio::test]
async fn only_the_owner_lists_or_deletes_an_inbox() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), None).await;
    let (bob, eve) = (SigningKey::from_bytes(&[1; 32]), SigningKey::from_bytes(&[2; 32]));
    let bob_inbox = inbox_id(&bob.verifying_key().to_bytes());

    // Anyone may leave an entry (even unauthenticated).
    let anon = connect(server.quic_addr).await;
    assert_eq!(
        call(&anon, &Request::InboxPut { inbox: bob_inbox, expire_secs: 60, len: 5 }, Some(b"hello")).await,
        Response::Ok
    );
    let r = call(&anon, &Request::InboxList { inbox: bob_inbox, after: None }, None).await;
    assert_eq!(code(&r), Some(ErrorCode::AuthRequired), "{r:?}");
    // Oversized entries are refused.
    let big = vec![0u8; 5000];
    let r = call(&anon, &Request::InboxPut { inbox: bob_inbox, expire_secs: 60, len: 5000 }, Some(&big)).await;
    assert_eq!(code(&r), Some(ErrorCode::TooLarge), "{r:?}");

    // Eve proves her own identity: still not Bob's inbox.
    let e = connect(server.quic_addr).await;
    assert_eq!(auth(&e, &eve).await, Response::Ok);
    let Response::Error(err) = call(&e, &Request::InboxList { inbox: bob_inbox, after: None }, None).await else {
        panic!()
    };
    assert_eq!(err.code, ErrorCode::Forbidden);
    assert!(err.message.contains("only its owner"), "{err}");
    // A signature for a stale nonce or someone else's key does not make her Bob.
    let Response::Challenge { nonce } = call(&e, &Request::AuthChallenge, None).await else { panic!() };
    let forged = Request::Auth {
        ed25519: bob.verifying_key().to_bytes(),
        signature: eve.sign(&auth_message(&nonce, &exporter(&e))).to_bytes(),
    };
    assert_eq!(code(&call(&e, &forged, None).await), Some(ErrorCode::Forbidden));
    // A relayed challenge: Bob's real signature over this nonce, but made for another
    // TLS session (a machine in the middle passing the challenge on), is worthless here.
    let Response::Challenge { nonce } = call(&e, &Request::AuthChallenge, None).await else { panic!() };
    let elsewhere = connect(server.quic_addr).await;
    let relayed = Request::Auth {
        ed25519: bob.verifying_key().to_bytes(),
        signature: bob.sign(&auth_message(&nonce, &exporter(&elsewhere))).to_bytes(),
    };
    assert_eq!(code(&call(&e, &relayed, None).await), Some(ErrorCode::Forbidden));

    // Bob lists and sees the entry; Eve cannot delete it; Bob can.
    let b = connect(server.quic_addr).await;
    assert_eq!(auth(&b, &bob).await, Response::Ok);
    let Response::Inbox { entries, more } = call(&b, &Request::InboxList { inbox: bob_inbox, after: None }, None).await
    else {
        panic!()
    };
    assert!(!more);
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].sealed, b"hello");
    let del = Request::InboxDelete { inbox: bob_inbox, entry: entries[0].id };
    assert_eq!(code(&call(&e, &del, None).await), Some(ErrorCode::Forbidden));
    assert_eq!(code(&call(&anon, &del, None).await), Some(ErrorCode::AuthRequired));
    let Response::Inbox { entries: still, .. } =
        call(&b, &Request::InboxList { inbox: bob_inbox, after: None }, None).await
    else {
        panic!()
    };
    assert_eq!(still.len(), 1);
    assert_eq!(call(&b, &del, None).await, Response::Ok);
    let Response::Inbox { entries, .. } = call(&b, &Request::InboxList { inbox: bob_inbox, after: None }, None).await
    else {
        panic!()
    };
    assert!(entries.is_empty());

    // Authentication is per connection: a new connection starts anonymous.
    let b2 = connect(server.quic_addr).await;
    assert_eq!(
        code(&call(&b2, &Request::InboxList { inbox: bob_inbox, after: None }, None).await),
        Some(ErrorCode::AuthRequired)
    );
    server.shutdown().await;
}

#[tokio::test]
async fn listing_pages_through_many_entries() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), None).await;
    let bob = SigningKey::from_bytes(&[3; 32]);
    let inbox = inbox_id(&bob.verifying_key().to_bytes());
    let c = connect(server.quic_addr).await;
    for i in 0..30u8 {
        assert_eq!(call(&c, &Request::InboxPut { inbox, expire_secs: 60, len: 1 }, Some(&[i])).await, Response::Ok);
    }
    assert_eq!(auth(&c, &bob).await, Response::Ok);
    let (mut all, mut after) = (Vec::new(), None);
    loop {
        let Response::Inbox { entries, more } = call(&c, &Request::InboxList { inbox, after }, None).await else {
            panic!()
        };
        assert!(entries.len() <= veil_wire::MAX_INBOX_LIST);
        after = entries.last().map(|e| e.id);
        all.extend(entries);
        if !more {
            break;
        }
    }
    assert_eq!(all.len(), 30);
    let mut ids: Vec<_> = all.iter().map(|e| e.id).collect();
    ids.dedup();
    assert_eq!(ids.len(), 30);
    server.shutdown().await;
}

#[tokio::test]
async fn allow_list_refuses_unlisted_uploads_but_not_downloads() {
    let dir = tempfile::tempdir().unwrap();
    let other = SigningKey::from_bytes(&[5; 32]);
    // An identity from the format's vectors (its secret is not needed here: the CLI
    // end-to-end tests cover a listed identity uploading).
    let id = "veilid1mr2rtblw327dqaeksbqdub2bumddyrfjo7klzrndf74chz5wtcgatudwzdcirdhfc3npizmx372vpk67symut5w44fng5a3kee3pojkvroah2";
    let allow = dir.path().join("allow");
    std::fs::write(&allow, format!("# test\n{id}\n")).unwrap();
    let server = start(dir.path(), Some(allow)).await;
    let c = connect(server.quic_addr).await;
    let put = Request::InboxPut { inbox: [0; 32], expire_secs: 60, len: 1 };
    let Response::Error(e) = call(&c, &put, Some(b"x")).await else { panic!() };
    assert_eq!(e.code, ErrorCode::AuthRequired, "an anonymous upload is asked for an identity");
    assert!(e.message.contains("allow-list"), "{e}");
    assert_eq!(auth(&c, &other).await, Response::Ok);
    assert_eq!(code(&call(&c, &put, Some(b"x")).await), Some(ErrorCode::Forbidden));
    // Downloads are not gated.
    let r = call(&c, &Request::GetManifest { tid: [0; 16], download: [0; 32], wait_secs: 0 }, None).await;
    assert_eq!(code(&r), Some(ErrorCode::NotFound));
    server.shutdown().await;
}

/// The response and the body bytes after it.
async fn call_data(conn: &quinn::Connection, req: &Request) -> (Response, Vec<u8>) {
    let (mut send, mut recv) = conn.open_bi().await.unwrap();
    send.write_all(&encode_frame(req).unwrap()).await.unwrap();
    let _ = send.finish();
    let buf = recv.read_to_end(1 << 20).await.unwrap();
    let (r, used) = decode_frame::<Response>(&buf).unwrap().unwrap();
    (r, buf[used..].to_vec())
}

/// Key bundles: opaque blobs, one per identity, written only by that identity, read by
/// anyone, size-capped.
#[tokio::test]
async fn key_bundles_are_published_by_their_owner_and_fetched_by_anyone() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), None).await;
    let (bob, eve) = (SigningKey::from_bytes(&[1; 32]), SigningKey::from_bytes(&[2; 32]));
    let bob_inbox = inbox_id(&bob.verifying_key().to_bytes());
    let anon = connect(server.quic_addr).await;

    // Nothing published yet.
    let (r, _) = call_data(&anon, &Request::BundleGet { inbox: bob_inbox }).await;
    assert_eq!(code(&r), Some(ErrorCode::NotFound), "{r:?}");
    // Publishing needs an authenticated connection.
    let r = call(&anon, &Request::BundlePut { len: 4 }, Some(b"nope")).await;
    assert_eq!(code(&r), Some(ErrorCode::AuthRequired), "{r:?}");

    let bob_conn = connect(server.quic_addr).await;
    assert_eq!(auth(&bob_conn, &bob).await, Response::Ok);
    // The relay does not parse it: any bytes up to the limit are kept as they are.
    let blob = vec![0x5a; 1349];
    assert_eq!(call(&bob_conn, &Request::BundlePut { len: 1349 }, Some(&blob)).await, Response::Ok);
    let (r, body) = call_data(&anon, &Request::BundleGet { inbox: bob_inbox }).await;
    assert_eq!((r, body), (Response::Data { len: 1349 }, blob));
    // Republishing replaces it.
    assert_eq!(call(&bob_conn, &Request::BundlePut { len: 3 }, Some(b"new")).await, Response::Ok);
    assert_eq!(call_data(&anon, &Request::BundleGet { inbox: bob_inbox }).await.1, b"new");

    // Eve, authenticated as herself, can only write her own slot, never Bob's.
    let eve_conn = connect(server.quic_addr).await;
    assert_eq!(auth(&eve_conn, &eve).await, Response::Ok);
    assert_eq!(call(&eve_conn, &Request::BundlePut { len: 3 }, Some(b"eve")).await, Response::Ok);
    assert_eq!(call_data(&anon, &Request::BundleGet { inbox: bob_inbox }).await.1, b"new");
    let eve_inbox = inbox_id(&eve.verifying_key().to_bytes());
    assert_eq!(call_data(&anon, &Request::BundleGet { inbox: eve_inbox }).await.1, b"eve");

    // Size limits: too large, and empty.
    let big = vec![0u8; veil_wire::MAX_BUNDLE_BODY as usize + 1];
    let r = call(&bob_conn, &Request::BundlePut { len: big.len() as u32 }, Some(&big)).await;
    assert_eq!(code(&r), Some(ErrorCode::TooLarge), "{r:?}");
    let r = call(&bob_conn, &Request::BundlePut { len: 0 }, Some(b"")).await;
    assert_eq!(code(&r), Some(ErrorCode::BadRequest), "{r:?}");
    assert_eq!(call_data(&anon, &Request::BundleGet { inbox: bob_inbox }).await.1, b"new");
    server.shutdown().await;
}
