#![allow(clippy::unwrap_used, clippy::expect_used)]
use veil_format::code::*;
use veil_format::identity::*;
use veil_format::sealed::*;
use veil_format::ticket::*;
use veil_format::{Capabilities, ContentKey, FormatError, TransferId};

type Delivered = Result<(TransferId, ContentKey), FormatError>;

fn pake(send_code: &str, recv_code: &str) -> (Result<(), FormatError>, Delivered, TransferId, ContentKey) {
    let (s, smsg) = PakeStart::new(Role::Sender, &Code::parse(send_code).unwrap());
    let (r, rmsg) = PakeStart::new(Role::Receiver, &Code::parse(recv_code).unwrap());
    let sk = s.finish(&rmsg).unwrap();
    let rk = r.finish(&smsg).unwrap();
    let tid = TransferId::random();
    let key = ContentKey::random();
    // Receiver confirms first; the sender checks before handing over anything.
    let sender_check = sk.verify_peer(&rk.confirmation());
    let got = if sender_check.is_ok() {
        let (offer, offer_msg) = rk.pq_offer();
        let (hs, ct) = sk.pq_accept(&offer_msg).unwrap();
        rk.verify_peer(&sk.confirmation())
            .and_then(|()| offer.finish(&ct))
            .and_then(|hr| hr.open_delivery(&hs.seal_delivery(&tid, &key)))
    } else {
        Err(FormatError::WrongCode)
    };
    (sender_check, got, tid, key)
}

#[test]
fn pake_right_code_delivers_key() {
    let (s, r, tid, key) = pake("7-guitar-orbit", "7-Guitar-Orbit ");
    assert!(s.is_ok());
    let (t2, k2) = r.unwrap();
    assert_eq!(t2, tid);
    assert_eq!(k2.expose(), key.expose());
}

#[test]
fn pake_wrong_code_fails_on_both_sides() {
    let (s, r, _, _) = pake("7-guitar-orbit", "7-guitar-orbiT-x");
    assert_eq!(s.unwrap_err(), FormatError::WrongCode);
    assert_eq!(r.unwrap_err(), FormatError::WrongCode);
    // And the receiver's own check of a sender confirmation fails too.
    let (s, smsg) = PakeStart::new(Role::Sender, &Code::parse("3-a-b").unwrap());
    let (r, rmsg) = PakeStart::new(Role::Receiver, &Code::parse("3-a-c").unwrap());
    let (sk, rk) = (s.finish(&rmsg).unwrap(), r.finish(&smsg).unwrap());
    assert_eq!(rk.verify_peer(&sk.confirmation()).unwrap_err(), FormatError::WrongCode);
    assert_ne!(sk.verification_string(), rk.verification_string());
}

#[test]
fn verification_strings_match() {
    let code = Code::generate(12, 2);
    let (s, smsg) = PakeStart::new(Role::Sender, &code);
    let (r, rmsg) = PakeStart::new(Role::Receiver, &code);
    let (sk, rk) = (s.finish(&rmsg).unwrap(), r.finish(&smsg).unwrap());
    assert_eq!(sk.verification_string(), rk.verification_string());
    assert_eq!(sk.verification_string().split(' ').count(), 4);
}

#[test]
fn code_parsing() {
    let c = Code::parse("7-guitar-orbit").unwrap();
    assert_eq!(c.nameplate(), 7);
    assert_eq!(c.reveal(), "7-guitar-orbit");
    assert!(!format!("{c:?}").contains("guitar"), "Debug hides the words");
    for bad in ["", "guitar-orbit", "7", "7-", "0-a-b", "-7-a", "7--a", "7-a b", "99999999999-a"] {
        assert!(Code::parse(bad).is_err(), "{bad:?}");
    }
    assert!(Code::parse("7-x").unwrap().is_short());
    let g = Code::generate(5, DEFAULT_CODE_WORDS);
    assert!(!g.is_short());
    assert!(g.word_bits() >= 20.0);
    assert_eq!(Code::parse(&g.reveal()).unwrap(), g);
}

#[test]
fn tickets() {
    let tid = TransferId::random();
    let key = ContentKey::random();
    let t = Ticket::encode_plain(&tid, &key);
    assert!(t.starts_with("veil1-") && is_ticket(&t));
    let d = Ticket::decode(&t.to_uppercase()).unwrap();
    assert_eq!(d.transfer_id(), tid);
    assert_eq!(d.key(None).unwrap().expose(), key.expose());
    assert!(Ticket::decode(&t[..t.len() - 3]).is_err());
    assert!(Ticket::decode("veil9-abc").is_err());

    let p = Ticket::encode_with_password(&tid, &key, "hunter2 correct", KdfParams::INSECURE_TEST).unwrap();
    let d = Ticket::decode(&p).unwrap();
    assert!(d.needs_password());
    assert_eq!(d.key(Some("hunter2 correct")).unwrap().expose(), key.expose());
    assert_eq!(d.key(Some("wrong")).unwrap_err(), FormatError::DecryptionFailed);
    assert!(d.key(None).is_err());
}

#[test]
fn identity_is_deterministic_and_separates_keys() {
    let a = Identity::derive("correct horse battery staple extra words", "Alice@example", KdfParams::INSECURE_TEST)
        .unwrap();
    let b = Identity::derive(" correct horse battery staple extra words ", "alice@example", KdfParams::INSECURE_TEST)
        .unwrap();
    assert_eq!(a.public(), b.public());
    let c = Identity::derive("correct horse battery staple extra words", "bob", KdfParams::INSECURE_TEST).unwrap();
    assert_ne!(a.public(), c.public());
    assert_ne!(a.public().ed25519, a.public().x25519);
    let s = a.public().encode();
    assert_eq!(PublicIdentity::decode(&s).unwrap(), a.public());
    let mut typo = s.clone().into_bytes();
    let last = typo.len() - 5;
    typo[last] = if typo[last] == b'a' { b'b' } else { b'a' };
    assert!(PublicIdentity::decode(std::str::from_utf8(&typo).unwrap()).is_err());
    assert_eq!(a.public().fingerprint().len(), 24);
    let dbg = format!("{a:?}");
    assert!(!dbg.contains(&data_hex(a.seed().expose())), "Debug must not print the seed");
    // NFKC: a composed and a decomposed é derive the same identity.
    let x = Identity::derive("caf\u{e9} long passphrase here", "h", KdfParams::INSECURE_TEST).unwrap();
    let y = Identity::derive("cafe\u{301} long passphrase here", "h", KdfParams::INSECURE_TEST).unwrap();
    assert_eq!(x.public(), y.public());
}

fn data_hex(b: &[u8]) -> String {
    hex::encode(b)
}

#[test]
fn passphrase_strength() {
    let p = generate_passphrase(DEFAULT_PASSPHRASE_WORDS);
    assert_eq!(p.split('-').count(), 7);
    assert!(estimate_bits(&p) >= 77, "{}", estimate_bits(&p));
    assert!(check_passphrase(&p).is_ok());
    for weak in ["", "password", "password123", "correct horse battery staple", "aaaaaaaaaaaaaaaaaaaaaaaa"] {
        assert!(matches!(check_passphrase(weak), Err(FormatError::WeakPassphrase { .. })), "{weak:?}");
    }
}

#[test]
fn repeated_words_and_patterns_count_once() {
    let six = "abacus abacus abacus abacus abacus abacus";
    assert_eq!(estimate_bits(six), 12, "one distinct list word");
    assert!(matches!(check_passphrase(six), Err(FormatError::WeakPassphrase { .. })));
    let many_a = "a".repeat(200);
    for weak in [
        "abacus-abacus-abacus-abacus-abacus-abacus-abacus-abacus-abacus-abacus",
        "Abacus abacus ABACUS abacus abacus abacus abacus",
        "abacus abbey abacus abbey abacus abbey abacus abbey",
        "abacusabacusabacusabacusabacusabacusabacusabacus",
        many_a.as_str(),
        "Tr0ub4dor&3 Tr0ub4dor&3 Tr0ub4dor&3 Tr0ub4dor&3 Tr0ub4dor&3",
        "xK9#mQ2$xK9#mQ2$xK9#mQ2$xK9#mQ2$xK9#mQ2$xK9#mQ2$",
        "passworddddddddddddddddddddddddddddddddddddd!!!!!!!!!!!!!!!!!!!!!!!",
    ] {
        assert!(matches!(check_passphrase(weak), Err(FormatError::WeakPassphrase { .. })), "{weak:?}");
    }
    // A real six-word diceware passphrase: six distinct list words, 6 x 12.92 bits.
    let real = "cactus oblong morphing shrank tapioca outnumber";
    assert_eq!(estimate_bits(real), 77);
    assert_eq!(check_passphrase(real), Ok(77));
    assert_eq!(check_passphrase("cactus-oblong-morphing-shrank-tapioca-outnumber"), Ok(77));
    // Random-looking text without repetition still counts in full.
    assert!(check_passphrase("vT8#qL2!mZ6&wR4$kP9*").is_ok());
}

#[test]
fn sealed_to_identity() {
    let alice = Identity::ephemeral();
    let bob = Identity::ephemeral();
    let carol = Identity::ephemeral();
    let tid = TransferId::random();
    let key = ContentKey::random();
    let sealed = seal_to(&bob.public(), &bob.key_bundle(), alice.signing_key(), &tid, &key).unwrap();
    assert_eq!(sealed.len(), SEALED_LEN);
    assert_eq!(sealed[4], SEALED_VERSION);
    let u = open_sealed(&bob, &sealed).unwrap();
    assert_eq!(u.sender, alice.public().ed25519);
    assert_eq!(u.tid, tid);
    assert_eq!(u.key.expose(), key.expose());
    assert_eq!(open_sealed(&carol, &sealed).unwrap_err(), FormatError::DecryptionFailed);
    for i in [0, 4, 10, 40, 1124, 1125, 1200, sealed.len() - 1] {
        let mut t = sealed.clone();
        t[i] ^= 1;
        assert!(open_sealed(&bob, &t).is_err(), "flip at {i}");
    }
    assert!(open_sealed(&bob, &sealed[..30]).is_err());
    assert!(open_sealed(&bob, &sealed[..1200]).is_err());
}

#[test]
fn old_style_sealed_keys_still_open() {
    let (alice, bob) = (Identity::ephemeral(), Identity::ephemeral());
    let (tid, key) = (TransferId::random(), ContentKey::random());
    let sealed = seal_v1_with(&bob.public(), alice.signing_key(), &tid, &key, [9; 32]).unwrap();
    assert_eq!((sealed.len(), sealed[4]), (222, SEALED_VERSION_X25519));
    let u = open_sealed(&bob, &sealed).unwrap();
    assert_eq!((u.sender, u.tid, u.key.expose()), (alice.public().ed25519, tid, key.expose()));
    // An unknown version is an upgrade hint, not garbage.
    let mut v3 = sealed.clone();
    v3[4] = 3;
    assert!(matches!(open_sealed(&bob, &v3), Err(FormatError::UnsupportedVersion { version: 3, .. })));
}

#[test]
fn a_substituted_key_bundle_is_refused() {
    let (alice, bob, mallory) = (Identity::ephemeral(), Identity::ephemeral(), Identity::ephemeral());
    let (tid, key) = (TransferId::random(), ContentKey::random());
    // Mallory's own (validly self-signed) bundle offered for Bob.
    let err = seal_to(&bob.public(), &mallory.key_bundle(), alice.signing_key(), &tid, &key).unwrap_err();
    assert!(matches!(&err, FormatError::KeyBundleMismatch { identity } if *identity == bob.public().fingerprint()));
    assert!(err.to_string().contains("does not belong to it"), "{err}");
    // Bob's Ed25519 and X25519 keys with Mallory's X-Wing key cannot be signed by Mallory
    // (the signature fails); and against Bob's veilid2 string even an old-string check
    // on the keys alone would not be enough: the commitment differs.
    let mut forged = bob.key_bundle().encode();
    forged[69..69 + veil_format::pq::XWING_PUBLIC_LEN].copy_from_slice(mallory.xwing_secret().public().as_bytes());
    assert_eq!(veil_format::pq::KeyBundle::decode(&forged).unwrap_err(), FormatError::BadSignature);
    // Against an old veilid1 string the signature is what binds the X-Wing key.
    let old = bob.public().without_commitment();
    seal_to(&old, &bob.key_bundle(), alice.signing_key(), &tid, &key).unwrap();
    assert!(seal_to(&old, &mallory.key_bundle(), alice.signing_key(), &tid, &key).is_err());
}

#[test]
fn identity_strings_of_both_versions() {
    let id = Identity::ephemeral();
    let v2 = id.public().encode();
    let v1 = id.public().without_commitment().encode();
    assert!(v2.starts_with("veilid2") && v1.starts_with("veilid1"));
    assert_eq!((v2.len(), v1.len()), (167, 116));
    assert_eq!(PublicIdentity::decode(&v2).unwrap(), id.public());
    assert_eq!(PublicIdentity::decode(&v1).unwrap(), id.public().without_commitment());
    assert!(PublicIdentity::decode(&v1).unwrap().same_keys(&id.public()));
    // A v1 body under the v2 prefix (or the reverse) fails its length or checksum.
    assert!(PublicIdentity::decode(&v1.replacen("veilid1", "veilid2", 1)).is_err());
    assert!(PublicIdentity::decode(&v2.replacen("veilid2", "veilid1", 1)).is_err());
    let e = PublicIdentity::decode(&v2.replacen("veilid2", "veilid9", 1)).unwrap_err();
    assert!(e.to_string().contains("upgrade"), "{e}");
    assert!(looks_like_identity(" VeilID2abc") && !looks_like_identity("veil"));
}

#[test]
fn key_sizes() {
    let id = Identity::ephemeral();
    assert_eq!(id.key_bundle().encode().len(), veil_format::pq::BUNDLE_LEN);
    assert_eq!(veil_format::pq::BUNDLE_LEN, 1349);
    assert_eq!(id.xwing_secret().public().as_bytes().len(), 1216);
    assert_eq!(SEALED_LEN, 1310);
    const { assert!(SEALED_LEN <= 4096 && veil_format::pq::BUNDLE_LEN <= 4096, "fit the relay's inbox and bundle limits") };
    assert_eq!(PQ_OFFER_LEN + CONFIRM_LEN, 1257);
    assert_eq!(PQ_ANSWER_LEN + CONFIRM_LEN, 1210);
    // Secrets never print.
    assert_eq!(format!("{:?}", id.xwing_secret()), "XWingSecret(..)");
}

#[test]
fn capabilities_are_distinct() {
    let key = ContentKey::random();
    let c = Capabilities::derive(&key);
    assert_ne!(c.download.expose(), c.receipt.expose());
    assert!(!format!("{c:?}").contains(&hex::encode(c.download.expose())));
    // The owner capability is not derived from K: holding K gives no way to it.
    let owner = veil_format::OwnerSecret::random();
    let cap = owner.capability();
    assert_ne!(cap.expose(), c.download.expose());
    assert_ne!(cap, veil_format::kdf::derive(&key, veil_format::kdf::cap::OWNER, veil_format::kdf::CTX_CAPABILITY));
    assert_eq!(format!("{owner:?}"), "OwnerSecret(..)");
}
