#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Attacks on the relay by a scripted client speaking raw frames (no client library):
//! a ticket holder trying to write, replace or delete a transfer; a code guesser taking
//! one side of a mailbox to check its guess offline and leaving without a burn; a client
//! opening mailboxes without end. Each test performs the attack and checks that the relay
//! refuses it and that what was stored is intact.

mod common;

use common::*;
use veil_wire::{ErrorCode, MailboxMsg, Request, Response, Side};

/// What someone holding a ticket or code has: the download and receipt capabilities (and
/// `K`, so anything else derivable from it), but not the sender's owner secret.
fn ticket_holder(t: &Transfer) -> Vec<[u8; 32]> {
    vec![t.download, t.receipt, [0u8; 32]]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ticket_holder_cannot_write_replace_or_delete_before_or_after_completion() {
    let relay = TestRelay::start().await;
    let owner = relay.client().await;
    let thief = relay.client().await;
    let t = Transfer::new(0x31);
    owner.ok(t.create(3600, None), None).await;
    let (manifest, c0, c1) = (bytes(300, 7), bytes(40_000, 0), bytes(20_000, 1));
    owner.ok(t.put_manifest(&manifest), Some(&manifest)).await;
    owner.ok(t.put_chunk(0, &c0), Some(&c0)).await;

    let forged = bytes(40_000, 99);
    for phase in ["before completion", "after completion"] {
        for cap in ticket_holder(&t) {
            let as_owner = Transfer { owner: cap, ..t };
            for (req, body) in [
                (as_owner.put_manifest(&forged), Some(&forged[..])),
                (as_owner.put_chunk(0, &forged), Some(&forged[..])),
                (as_owner.put_chunk(5, &forged), Some(&forged[..])),
                (as_owner.complete(1), None),
                (Request::Delete { tid: t.tid, owner: cap }, None),
            ] {
                let what = format!("{req:?}");
                let e = thief.error(req, body).await;
                assert_eq!(e.code, ErrorCode::Forbidden, "{phase}: {what}: {e}");
            }
        }
        if phase == "before completion" {
            // The owner itself cannot replace what is stored (write-once); a retry of
            // the same bytes is fine.
            assert_eq!(owner.error(t.put_chunk(0, &forged), Some(&forged)).await.code, ErrorCode::Conflict);
            assert_eq!(owner.error(t.put_manifest(&forged), Some(&forged)).await.code, ErrorCode::Conflict);
            owner.ok(t.put_chunk(0, &c0), Some(&c0)).await;
            owner.ok(t.put_manifest(&manifest), Some(&manifest)).await;
            owner.ok(t.put_chunk(1, &c1), Some(&c1)).await;
            owner.ok(t.complete(2), None).await;
        }
    }
    // Complete is immutable, even for the owner.
    for (req, body) in [
        (t.put_chunk(0, &forged), Some(&forged[..])),
        (t.put_chunk(2, &forged), Some(&forged[..])),
        (t.put_manifest(&forged), Some(&forged[..])),
        (t.complete(3), None),
    ] {
        let what = format!("{req:?}");
        assert_eq!(owner.error(req, body).await.code, ErrorCode::Completed, "{what}");
    }
    owner.ok(t.complete(2), None).await;

    // Every later receiver gets the original.
    assert_eq!(thief.data(t.get_manifest()).await, manifest);
    assert_eq!(thief.data(t.get_chunk(0, 0)).await, c0);
    assert_eq!(thief.data(t.get_chunk(1, 0)).await, c1);
    // Only the owner deletes.
    owner.ok(Request::Delete { tid: t.tid, owner: t.owner }, None).await;
    assert_eq!(thief.error(t.get_manifest(), None).await.code, ErrorCode::NotFound);
    owner.close().await;
    thief.close().await;
    relay.stop().await;
}

/// The chosen-code attack: the honest receiver came first and posted its SPAKE2 message
/// and key confirmation; the attacker claims the sender side, takes both (enough to check
/// one guess offline) and leaves, by disconnecting or by a polite `Close`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guesser_taking_the_sender_side_burns_the_code_however_it_leaves() {
    let relay = TestRelay::start().await;
    for (n, polite) in [(4242u32, false), (4343, true)] {
        let honest = relay.client().await;
        let mut receiver = honest.mailbox(Some(n), Side::Receiver).await.unwrap();
        receiver.send(&MailboxMsg::Message(vec![0xb0; 33])).await;

        let attacker = relay.client().await;
        let mut stolen = attacker.mailbox(Some(n), Side::Sender).await.unwrap();
        stolen.send(&MailboxMsg::Message(vec![0xa0; 33])).await;
        // The receiver confirms once it has the (attacker's) SPAKE2 message.
        assert_eq!(receiver.recv_skipping_joins().await, Some(MailboxMsg::Message(vec![0xa0; 33])));
        receiver.send(&MailboxMsg::Message(vec![0xc0; 32])).await;
        assert_eq!(stolen.recv_skipping_joins().await, Some(MailboxMsg::Message(vec![0xb0; 33])));
        assert_eq!(stolen.recv_skipping_joins().await, Some(MailboxMsg::Message(vec![0xc0; 32])));
        if polite {
            stolen.send(&MailboxMsg::Close).await;
            let _ = stolen.send.finish();
        } else {
            attacker.close().await;
        }

        // The receiver is told, and the code is dead for everyone.
        assert_eq!(receiver.recv().await, Some(MailboxMsg::Burned), "polite: {polite}");
        let retry = relay.client().await;
        for side in [Side::Sender, Side::Receiver] {
            assert_eq!(retry.mailbox(Some(n), side).await.unwrap_err().code, ErrorCode::Burned);
        }
        retry.close().await;
        honest.close().await;
    }
    relay.stop().await;
}

/// The same with the honest sender first: an attacker as receiver posts its guess and
/// leaves before confirming.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guesser_taking_the_receiver_side_burns_the_code() {
    let relay = TestRelay::start().await;
    let honest = relay.client().await;
    let mut sender = honest.mailbox(Some(777), Side::Sender).await.unwrap();
    sender.send(&MailboxMsg::Message(vec![0xa0; 33])).await;
    let attacker = relay.client().await;
    let mut stolen = attacker.mailbox(Some(777), Side::Receiver).await.unwrap();
    assert_eq!(stolen.recv_skipping_joins().await, Some(MailboxMsg::Message(vec![0xa0; 33])));
    stolen.send(&MailboxMsg::Message(vec![0xb0; 33])).await;
    assert_eq!(sender.recv_skipping_joins().await, Some(MailboxMsg::Message(vec![0xb0; 33])));
    attacker.close().await;
    assert_eq!(sender.recv().await, Some(MailboxMsg::Burned));
    assert_eq!(honest.mailbox(Some(777), Side::Sender).await.unwrap_err().code, ErrorCode::Burned);
    honest.close().await;
    relay.stop().await;
}

/// What does not burn: a confirmed delivery (in either closing order), and a side that
/// leaves before any exchange started (its queued message is dropped, not replayed to
/// the next peer).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confirmed_delivery_or_an_early_leave_does_not_burn() {
    let relay = TestRelay::start().await;
    for (n, sender_closes_first) in [(11u32, true), (12, false)] {
        let (cs, cr) = (relay.client().await, relay.client().await);
        let mut sender = cs.mailbox(Some(n), Side::Sender).await.unwrap();
        let mut receiver = cr.mailbox(Some(n), Side::Receiver).await.unwrap();
        sender.send(&MailboxMsg::Message(vec![1; 33])).await;
        receiver.send(&MailboxMsg::Message(vec![2; 33])).await;
        receiver.send(&MailboxMsg::Message(vec![3; 32])).await;
        assert_eq!(sender.recv_skipping_joins().await, Some(MailboxMsg::Message(vec![2; 33])));
        assert_eq!(sender.recv_skipping_joins().await, Some(MailboxMsg::Message(vec![3; 32])));
        sender.send(&MailboxMsg::Message(vec![4; 122])).await;
        assert_eq!(receiver.recv_skipping_joins().await, Some(MailboxMsg::Message(vec![1; 33])));
        assert_eq!(receiver.recv_skipping_joins().await, Some(MailboxMsg::Message(vec![4; 122])));
        if sender_closes_first {
            sender.send(&MailboxMsg::Close).await;
            assert_eq!(sender.recv().await, None, "a closed side's stream ends without a burn");
            receiver.send(&MailboxMsg::Close).await;
            assert_eq!(receiver.recv().await, None);
        } else {
            receiver.send(&MailboxMsg::Close).await;
            assert_eq!(receiver.recv().await, None);
            assert_eq!(sender.recv().await, Some(MailboxMsg::PeerGone));
            sender.send(&MailboxMsg::Close).await;
            assert_eq!(sender.recv().await, None);
        }
        cs.close().await;
        cr.close().await;
        // Not burned: the nameplate can be used again.
        let again = relay.client().await;
        let mut m = again.mailbox(Some(n), Side::Receiver).await.unwrap();
        m.send(&MailboxMsg::Close).await;
        again.close().await;
    }

    // A sender that posts and leaves before anyone came: no burn, nothing stale.
    let early = relay.client().await;
    let mut gone = early.mailbox(Some(13), Side::Sender).await.unwrap();
    gone.send(&MailboxMsg::Message(vec![9; 33])).await;
    early.close().await;
    let late = relay.client().await;
    let mut receiver = late.mailbox(Some(13), Side::Receiver).await.unwrap();
    let next = tokio::time::timeout(std::time::Duration::from_millis(300), receiver.recv_skipping_joins()).await;
    assert!(next.is_err(), "a departed side's message was replayed: {next:?}");
    late.close().await;
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mailboxes_are_limited_per_connection_and_in_messages() {
    let relay = TestRelay::start().await;
    let c = relay.client().await;
    let mut open = Vec::new();
    for n in 0..veil_relay::MAX_MAILBOXES_PER_CONN as u32 {
        open.push(c.mailbox(Some(100 + n), Side::Sender).await.unwrap());
    }
    let e = c.mailbox(Some(200), Side::Sender).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::LimitExceeded, "{e}");
    // Closing one frees a slot.
    let mut first = open.remove(0);
    first.send(&MailboxMsg::Close).await;
    assert_eq!(first.recv().await, None);
    let mut again = c.mailbox(Some(201), Side::Sender).await.unwrap();

    // A side posting more than an exchange needs is cut off; nothing was queued past it.
    for i in 0..veil_wire::MAX_MAILBOX_MESSAGES + 1 {
        again.send(&MailboxMsg::Message(vec![i as u8; 16])).await;
    }
    assert_eq!(again.recv().await, None, "the relay ends a flooding side's stream");
    c.close().await;
    relay.stop().await;
}

/// A relay refuses a `Data`-sized lie in the other direction too: an upload body longer
/// than its limit is refused before it is read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_are_refused_before_reading() {
    let relay = TestRelay::start().await;
    let c = relay.client().await;
    let t = Transfer::new(0x44);
    c.ok(t.create(3600, None), None).await;
    let req = Request::PutChunk { tid: t.tid, owner: t.owner, index: 0, len: veil_wire::MAX_CHUNK_BODY + 1 };
    let (resp, _) = c.request(req, Some(&[0u8; 16])).await;
    assert!(matches!(resp, Response::Error(ref e) if e.code == ErrorCode::TooLarge), "{resp:?}");
    let req = Request::InboxPut { inbox: [1; 32], expire_secs: 60, len: 1 << 30 };
    let (resp, _) = c.request(req, Some(&[0u8; 16])).await;
    assert!(matches!(resp, Response::Error(ref e) if e.code == ErrorCode::TooLarge), "{resp:?}");
    c.close().await;
    relay.stop().await;
}

/// A client that declares a large body, sends a little and goes quiet (its connection
/// kept alive) holds nothing for long: the body has a progress deadline, and nothing is
/// stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_stops_coming_times_out() {
    let relay = TestRelay::start().await;
    let c = relay.client().await;
    let t = Transfer::new(0x45);
    c.ok(t.create(3600, None), None).await;
    let (mut send, mut recv) = c.conn.open_bi().await.unwrap();
    let req = Request::PutChunk { tid: t.tid, owner: t.owner, index: 0, len: veil_wire::MAX_CHUNK_BODY };
    send.write_all(&veil_wire::encode_frame(&req).unwrap()).await.unwrap();
    send.write_all(&[0u8; 1000]).await.unwrap();
    let resp = tokio::time::timeout(std::time::Duration::from_secs(40), read_frame::<Response>(&mut recv))
        .await
        .expect("the relay kept waiting for the body")
        .expect("an answer");
    assert!(matches!(resp, Response::Error(ref e) if e.code == ErrorCode::Timeout), "{resp:?}");
    let (status, _) = c.request(t.status(t.owner), None).await;
    let Response::Status(status) = status else { panic!("{status:?}") };
    assert!(status.chunks.is_empty(), "nothing stored: {status:?}");
    drop(send);
    c.close().await;
    relay.stop().await;
}
