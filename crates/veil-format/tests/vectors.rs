#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Test vectors: one JSON file per construction under `crates/veil-format/vectors/`.
//!
//! By default every test reads its file, recomputes each expected output from the inputs
//! stored in that file, requires an exact match, and checks that every sealed value opens
//! (and that wrong keys, flags or passwords do not). With `VEIL_WRITE_VECTORS=1` the tests
//! first (re)write the files from the fixed inputs below, then check them as usual:
//!
//! ```text
//! VEIL_WRITE_VECTORS=1 cargo test -p veil-format --test vectors
//! ```
//!
//! All vectors are deterministic, so regenerating an unchanged implementation rewrites
//! identical files; a diff in `vectors/` is a format change.

use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use ed25519_dalek::{Signer, SigningKey};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use veil_format::chunk::{self, ChunkOpener};
use veil_format::code::{self, Code, PakeStart, Role, code_words};
use veil_format::identity::{self, Identity, KdfParams, PublicIdentity, passphrase_words};
use veil_format::kdf::{self, blake2b_256, derive};
use veil_format::manifest::{self, ContentKind, Entry, EntryKind, Manifest, SignedManifest};
use veil_format::pq;
use veil_format::sealed::{self, open_sealed, seal_v1_with};
use veil_format::ticket::{self, Ticket, is_ticket};
use veil_format::{Capabilities, ContentKey, FormatError, OwnerSecret, SecretKey, TransferId};
use x25519_dalek::{PublicKey as XPublic, StaticSecret};

// ---------------------------------------------------------------------------------------
// The runner

type Outputs = Map<String, Value>;

fn writing() -> bool {
    std::env::var("VEIL_WRITE_VECTORS").is_ok_and(|v| v == "1")
}

/// Write (when asked) and check one vector file. Each case is stored as
/// `{"case": name, "in": {inputs}, "out": {expected outputs}}`; `cases` are the inputs used
/// when writing (with their `name`), `compute` maps one case's inputs to its outputs and
/// checks openings as it goes.
fn run(file: &str, description: &str, cases: Vec<Value>, compute: fn(&Value) -> Outputs) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("vectors").join(file);
    if writing() {
        let cases: Vec<Value> = cases
            .into_iter()
            .map(|mut input| {
                let name = input.as_object_mut().and_then(|m| m.remove("name")).expect("every case has a name");
                let out = compute(&input);
                json!({ "case": name, "in": input, "out": out })
            })
            .collect();
        let doc = json!({ "description": description, "cases": cases });
        std::fs::write(&path, serde_json::to_string_pretty(&doc).unwrap() + "\n").unwrap();
    }
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (regenerate with VEIL_WRITE_VECTORS=1)", path.display()));
    let doc: Value = serde_json::from_str(&text).unwrap();
    let cases = doc["cases"].as_array().expect("a cases array");
    assert!(!cases.is_empty(), "{file} has no cases");
    for case in cases {
        let name = case["case"].as_str().expect("every case has a name");
        let expected = case["out"].as_object().expect("every case has outputs");
        let got = compute(&case["in"]);
        for (k, v) in &got {
            assert_eq!(expected.get(k), Some(v), "{file}, case {name:?}: output {k:?} differs");
        }
        assert_eq!(expected.len(), got.len(), "{file}, case {name:?}: stale outputs in the file");
    }
}

fn obj(v: Value) -> Outputs {
    match v {
        Value::Object(m) => m,
        _ => unreachable!("outputs are built with json!({{..}})"),
    }
}

fn field<'a>(c: &'a Value, k: &str) -> &'a Value {
    c.get(k).unwrap_or_else(|| panic!("missing input {k:?}"))
}
fn s<'a>(c: &'a Value, k: &str) -> &'a str {
    field(c, k).as_str().unwrap_or_else(|| panic!("{k} is not a string"))
}
fn n(c: &Value, k: &str) -> u64 {
    field(c, k).as_u64().unwrap_or_else(|| panic!("{k} is not a number"))
}
fn b(c: &Value, k: &str) -> bool {
    field(c, k).as_bool().unwrap_or_else(|| panic!("{k} is not a bool"))
}
fn bytes(c: &Value, k: &str) -> Vec<u8> {
    hex::decode(s(c, k)).unwrap_or_else(|e| panic!("{k}: {e}"))
}
fn arr<const N: usize>(c: &Value, k: &str) -> [u8; N] {
    bytes(c, k).try_into().unwrap_or_else(|_| panic!("{k} must be {N} bytes"))
}
fn key(c: &Value, k: &str) -> SecretKey {
    SecretKey::from_bytes(arr(c, k))
}
fn tid(c: &Value, k: &str) -> TransferId {
    TransferId(arr(c, k))
}
fn h(b: &[u8]) -> String {
    hex::encode(b)
}
/// `n` bytes counting up from `start`: recognisable fixed inputs.
fn seq(start: u8, n: usize) -> String {
    h(&(0..n).map(|i| start.wrapping_add(i as u8)).collect::<Vec<_>>())
}
fn base32(b: &[u8]) -> String {
    data_encoding::BASE32_NOPAD.encode(b).to_ascii_lowercase()
}

const K1: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
const TID1: &str = "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf";

// ---------------------------------------------------------------------------------------
// kdf.json

fn context_by_name(name: &str) -> &'static kdf::Context {
    match name {
        "CTX_CHUNK" => kdf::CTX_CHUNK,
        "CTX_MANIFEST" => kdf::CTX_MANIFEST,
        "CTX_CAPABILITY" => kdf::CTX_CAPABILITY,
        "CTX_IDENTITY" => kdf::CTX_IDENTITY,
        "CTX_PAKE" => kdf::CTX_PAKE,
        "CTX_TICKET" => kdf::CTX_TICKET,
        "CTX_SEAL" => kdf::CTX_SEAL,
        other => panic!("unknown context {other}"),
    }
}

fn kdf_compute(c: &Value) -> Outputs {
    match s(c, "kind") {
        "context" => {
            let ctx = context_by_name(s(c, "const"));
            obj(json!({ "context": std::str::from_utf8(ctx).unwrap() }))
        }
        "derive" => {
            let ctx: kdf::Context = s(c, "context").as_bytes().try_into().expect("8-byte context");
            obj(json!({ "subkey": h(derive(&key(c, "key"), n(c, "id"), &ctx).expose()) }))
        }
        "chunk_key" => obj(json!({ "chunk_key": h(chunk::chunk_key(&key(c, "key"), n(c, "index")).expose()) })),
        "capabilities" => {
            let k = key(c, "key");
            let caps = Capabilities::derive(&k);
            assert_eq!(caps.download, derive(&k, kdf::cap::DOWNLOAD, kdf::CTX_CAPABILITY));
            assert_eq!(caps.receipt, derive(&k, kdf::cap::RECEIPT, kdf::CTX_CAPABILITY));
            // The owner capability comes from the sender's own secret O, never from K.
            let o = key(c, "owner_secret");
            let owner = OwnerSecret::from_bytes(*o.expose()).capability();
            assert_eq!(owner, derive(&o, kdf::cap::OWNER, kdf::CTX_CAPABILITY));
            assert_ne!(owner, derive(&k, kdf::cap::OWNER, kdf::CTX_CAPABILITY));
            obj(json!({
                "download_id": kdf::cap::DOWNLOAD,
                "owner_id": kdf::cap::OWNER,
                "receipt_id": kdf::cap::RECEIPT,
                "download": h(caps.download.expose()),
                "owner": h(owner.expose()),
                "receipt": h(caps.receipt.expose()),
            }))
        }
        "blake2b_256" => {
            let parts: Vec<Vec<u8>> = field(c, "parts")
                .as_array()
                .unwrap()
                .iter()
                .map(|p| hex::decode(p.as_str().unwrap()).unwrap())
                .collect();
            let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
            obj(json!({ "hash": h(&blake2b_256(&refs)) }))
        }
        other => panic!("unknown kind {other}"),
    }
}

#[test]
fn kdf_vectors() {
    let mut cases = Vec::new();
    for name in ["CTX_CHUNK", "CTX_MANIFEST", "CTX_CAPABILITY", "CTX_IDENTITY", "CTX_PAKE", "CTX_TICKET", "CTX_SEAL"] {
        cases.push(json!({ "name": format!("constant {name}"), "kind": "context", "const": name }));
    }
    let ids: &[(&str, &[u64])] = &[
        ("veilchk1", &[0, 1, 2, 1 << 32, u64::MAX]),
        ("veilman1", &[0]),
        ("veilcap1", &[1, 2, 3]),
        ("veilid01", &[1, 2]),
        ("veilpak1", &[1, 2, 3, 4]),
        ("veiltkt1", &[1]),
        ("veilsea1", &[1]),
    ];
    for (ctx, list) in ids {
        for id in *list {
            cases.push(
                json!({ "name": format!("{ctx} id {id}"), "kind": "derive", "key": K1, "context": ctx, "id": id }),
            );
        }
    }
    let kff = "ff".repeat(32);
    cases.push(json!({ "name": "all-ones key", "kind": "derive", "key": kff, "context": "veilchk1", "id": 7 }));
    for index in [0u64, 1, 0x0102_0304_0506_0708] {
        cases.push(json!({ "name": format!("chunk key {index}"), "kind": "chunk_key", "key": K1, "index": index }));
    }
    cases.push(json!({ "name": "capabilities", "kind": "capabilities", "key": K1, "owner_secret": h(&[0xee; 32]) }));
    cases.push(json!({ "name": "blake2b-256 of nothing", "kind": "blake2b_256", "parts": [] }));
    cases.push(
        json!({ "name": "blake2b-256 of two parts", "kind": "blake2b_256", "parts": [h(b"veil pake key v1\0"), K1] }),
    );
    run(
        "kdf.json",
        "libsodium crypto_kdf (BLAKE2b-256 keyed with `key`, salt = id as u64 LE || 8 zero bytes, \
         personal = 8-byte context || 8 zero bytes), the per-chunk keys, the three capabilities, \
         and unkeyed BLAKE2b-256 over the concatenation of `parts`.",
        cases,
        kdf_compute,
    );
}

// ---------------------------------------------------------------------------------------
// chunk.json

fn chunk_compute(c: &Value) -> Outputs {
    match s(c, "kind") {
        "constants" => obj(json!({
            "CHUNK_VERSION": chunk::CHUNK_VERSION,
            "CHUNK_PREFIX_LEN": chunk::CHUNK_PREFIX_LEN,
            "MESSAGE_OVERHEAD": chunk::MESSAGE_OVERHEAD,
            "FILE_MESSAGE_SIZE": chunk::FILE_MESSAGE_SIZE,
            "DEFAULT_CHUNK_SIZE": chunk::DEFAULT_CHUNK_SIZE,
            "MAX_CHUNK_SIZE": chunk::MAX_CHUNK_SIZE,
            "MAX_MESSAGE_CIPHERTEXT": chunk::MAX_MESSAGE_CIPHERTEXT,
            "CHUNK_AD_LEN": chunk::CHUNK_AD_LEN,
        })),
        "sizes" => {
            let (plain, ms) = (n(c, "plain_len"), n(c, "message_size"));
            obj(json!({
                "sealed_len": chunk::sealed_len(plain as usize, ms as usize),
                "chunk_count": chunk::chunk_count(n(c, "total"), n(c, "chunk_size") as u32),
            }))
        }
        "chunk" => {
            let (k, t, index, last) = (key(c, "key"), tid(c, "transfer_id"), n(c, "index"), b(c, "last"));
            let (ms, plain) = (n(c, "message_size") as usize, bytes(c, "plaintext"));
            let sealed = chunk::seal_chunk_with(&k, &t, index, last, &plain, ms, arr(c, "header"));
            assert_eq!(sealed.len(), chunk::sealed_len(plain.len(), ms));
            assert_eq!(chunk::open_chunk(&k, &t, index, last, &sealed).unwrap(), plain);
            // Byte by byte through the incremental opener.
            let mut opener = ChunkOpener::new(&k, &t, index, last);
            let mut out = Vec::new();
            for byte in &sealed {
                opener.feed(std::slice::from_ref(byte), &mut out).unwrap();
            }
            opener.finish().unwrap();
            assert_eq!(out, plain);
            // Wrong flag, index, transfer or key; missing final message; one flipped bit.
            let fail = FormatError::DecryptionFailed;
            assert_eq!(chunk::open_chunk(&k, &t, index, !last, &sealed).unwrap_err(), fail);
            assert_eq!(chunk::open_chunk(&k, &t, index ^ 1, last, &sealed).unwrap_err(), fail);
            assert_eq!(chunk::open_chunk(&k, &TransferId([0; 16]), index, last, &sealed).unwrap_err(), fail);
            assert_eq!(
                chunk::open_chunk(&ContentKey::from_bytes([0; 32]), &t, index, last, &sealed).unwrap_err(),
                fail
            );
            let mut bad = sealed.clone();
            *bad.last_mut().unwrap() ^= 1;
            assert_eq!(chunk::open_chunk(&k, &t, index, last, &bad).unwrap_err(), fail);
            let mut opener = ChunkOpener::new(&k, &t, index, last);
            opener.feed(&sealed[..sealed.len() - 1], &mut Vec::new()).unwrap();
            assert_eq!(opener.finish().unwrap_err(), FormatError::ChunkTruncated { index });
            obj(json!({
                "ad": h(&chunk::chunk_ad(&t, index, last)),
                "chunk_key": h(chunk::chunk_key(&k, index).expose()),
                "sealed": h(&sealed),
            }))
        }
        other => panic!("unknown kind {other}"),
    }
}

#[test]
fn chunk_vectors() {
    let mut cases = vec![json!({ "name": "constants", "kind": "constants" })];
    for (plain_len, message_size, total, chunk_size) in [
        (0u64, 65_536u64, 0u64, 1_048_576u64),
        (1_048_576, 65_536, 1_048_576, 1_048_576),
        (100, 64, 3_000_000, 1_048_576),
    ] {
        cases.push(json!({
            "name": format!("sizes {plain_len}/{message_size}, {total}/{chunk_size}"), "kind": "sizes",
            "plain_len": plain_len, "message_size": message_size, "total": total, "chunk_size": chunk_size,
        }));
    }
    let chunk = |name: &str, index: u64, last: bool, ms: usize, header: String, plain: Vec<u8>| {
        json!({
            "name": name, "kind": "chunk", "key": K1, "transfer_id": TID1, "index": index, "last": last,
            "message_size": ms, "header": header, "plaintext": h(&plain),
        })
    };
    cases.push(chunk("empty final chunk", 0, true, chunk::FILE_MESSAGE_SIZE, seq(0x10, 24), Vec::new()));
    cases.push(chunk(
        "one message",
        1,
        false,
        chunk::FILE_MESSAGE_SIZE,
        seq(0x30, 24),
        b"veil: one message chunk".to_vec(),
    ));
    cases.push(chunk(
        "three messages, short last one",
        0x0102_0304_0506_0708,
        true,
        16,
        seq(0x50, 24),
        (0..40).collect(),
    ));
    cases.push(chunk("two full messages", 2, false, 8, seq(0x70, 24), b"exactly16bytes!!".to_vec()));
    run(
        "chunk.json",
        "Sealed chunks: version 0x01 || secretstream header || (u32 LE ciphertext length || ciphertext)*, \
         key KDF(key, index, \"veilchk1\"), every message with AD transfer id || index (u64 LE) || last flag; \
         the last message tagged FINAL. `header` is normally random; fixed here.",
        cases,
        chunk_compute,
    );
}

// ---------------------------------------------------------------------------------------
// envelope.json

fn envelope_compute(c: &Value) -> Outputs {
    let (k, ad, plain) = (key(c, "key"), bytes(c, "ad"), bytes(c, "plaintext"));
    let sealed = chunk::envelope_seal_with(&k, &ad, &plain, arr(c, "header"));
    assert_eq!(chunk::envelope_open(&k, &ad, &sealed).unwrap(), plain);
    assert_eq!(chunk::envelope_open(&k, b"other ad", &sealed).unwrap_err(), FormatError::DecryptionFailed);
    obj(json!({ "sealed": h(&sealed) }))
}

#[test]
fn envelope_vectors() {
    run(
        "envelope.json",
        "Single-message secretstream: header (24) || ciphertext (plaintext + 17), the one message tagged FINAL.",
        vec![
            json!({ "name": "empty", "key": K1, "ad": "", "plaintext": "", "header": seq(0x90, 24) }),
            json!({
                "name": "with ad", "key": K1, "ad": h(b"veil key delivery v1"),
                "plaintext": h(b"an envelope holds one message"), "header": seq(0xb0, 24),
            }),
        ],
        envelope_compute,
    );
}

// ---------------------------------------------------------------------------------------
// manifest.json

fn entries_from(c: &Value) -> Vec<Entry> {
    field(c, "entries")
        .as_array()
        .unwrap()
        .iter()
        .map(|e| Entry {
            path: s(e, "path").to_string(),
            kind: match s(e, "kind") {
                "File" => EntryKind::File,
                "Dir" => EntryKind::Dir,
                other => panic!("unknown entry kind {other}"),
            },
            size: n(e, "size"),
            mode: n(e, "mode") as u32,
            hash: arr(e, "hash"),
        })
        .collect()
}

fn manifest_compute(c: &Value) -> Outputs {
    if s(c, "kind") == "constants" {
        return obj(json!({
            "MANIFEST_MAGIC": std::str::from_utf8(manifest::MANIFEST_MAGIC).unwrap(),
            "MANIFEST_VERSION": manifest::MANIFEST_VERSION,
            "MAX_MANIFEST_LEN": manifest::MAX_MANIFEST_LEN,
            "MAX_ENTRIES": manifest::MAX_ENTRIES,
            "MAX_TOTAL_SIZE": manifest::MAX_TOTAL_SIZE,
        }));
    }
    let (k, t) = (key(c, "content_key"), tid(c, "transfer_id"));
    let signer = SigningKey::from_bytes(&arr(c, "signer_seed"));
    let recipient: Option<[u8; 32]> = (!field(c, "recipient").is_null()).then(|| arr(c, "recipient"));
    let sender_name: Option<String> =
        c.get("sender_name").filter(|v| !v.is_null()).map(|v| v.as_str().unwrap().to_string());
    let content = match s(c, "content") {
        "Files" => ContentKind::Files,
        "Text" => ContentKind::Text,
        "Stdin" => ContentKind::Stdin,
        other => panic!("unknown content kind {other}"),
    };
    let m = Manifest::new(t, content, n(c, "chunk_size") as u32, entries_from(c)).unwrap();

    // The construction as FORMAT.md states it, from public pieces and a fixed header.
    let body = postcard::to_allocvec(&m).unwrap();
    let mut msg = b"veil manifest v1\0".to_vec();
    msg.extend_from_slice(&t.0);
    msg.extend_from_slice(&recipient.unwrap_or([0; 32]));
    // postcard(Option<String>): 0x00, or 0x01 || varint length || UTF-8.
    match &sender_name {
        None => msg.push(0),
        Some(name) => {
            assert!(name.len() < 128);
            msg.push(1);
            msg.push(name.len() as u8);
            msg.extend_from_slice(name.as_bytes());
        }
    }
    msg.extend_from_slice(&body);
    let signature = signer.sign(&msg).to_bytes();
    let signed = SignedManifest {
        signer: signer.verifying_key().to_bytes(),
        recipient,
        signature,
        body: body.clone(),
        sender_name: sender_name.clone(),
    };
    let plain = postcard::to_allocvec(&signed).unwrap();
    let mk = derive(&k, 0, kdf::CTX_MANIFEST);
    let mut ad = b"VMAN\x01".to_vec();
    ad.extend_from_slice(&t.0);
    let mut sealed = ad[..5].to_vec();
    sealed.extend_from_slice(&chunk::envelope_seal_with(&mk, &ad, &plain, arr(c, "header")));

    // The implementation opens it to the same manifest and signer...
    let v = Manifest::open(&sealed, &k, &t, recipient).unwrap();
    assert_eq!(v.manifest, m);
    assert_eq!(v.signer, signer.verifying_key().to_bytes());
    assert_eq!(v.sender_name, sender_name);
    let other = Some(recipient.map_or([9; 32], |r| r.map(|x| x ^ 1)));
    assert_eq!(Manifest::open(&sealed, &k, &t, other).unwrap_err(), FormatError::BadSignature);
    assert_eq!(
        Manifest::open(&sealed, &k, &TransferId([0; 16]), recipient).unwrap_err(),
        FormatError::DecryptionFailed
    );
    // ...and its own sealing (random header) carries exactly the same signed plaintext.
    let own = m.seal_named(&k, &signer, recipient, sender_name.as_deref()).unwrap();
    assert_eq!(own.len(), sealed.len());
    assert_eq!(own[..5], sealed[..5]);
    assert_eq!(chunk::envelope_open(&mk, &ad, &own[5..]).unwrap(), plain);

    obj(json!({
        "total_size": m.total_size,
        "chunk_count": m.chunk_count,
        "body": h(&body),
        "signed_message": h(&msg),
        "signer": h(&signer.verifying_key().to_bytes()),
        "signature": h(&signature),
        "signed": h(&plain),
        "manifest_key": h(mk.expose()),
        "ad": h(&ad),
        "sealed": h(&sealed),
    }))
}

#[test]
fn manifest_vectors() {
    let recipient = XPublic::from(&StaticSecret::from([0x42; 32])).to_bytes();
    let cases = vec![
        json!({ "name": "constants", "kind": "constants" }),
        json!({
            "name": "files, no recipient", "kind": "manifest", "content_key": K1, "transfer_id": TID1,
            "signer_seed": seq(0xc0, 32), "recipient": null, "header": seq(0xd0, 24),
            "content": "Files", "chunk_size": chunk::DEFAULT_CHUNK_SIZE,
            "entries": [
                { "path": "docs", "kind": "Dir", "size": 0, "mode": 0o755, "hash": "00".repeat(32) },
                { "path": "docs/naïve café.txt", "kind": "File", "size": 300, "mode": 0o644, "hash": seq(0x01, 32) },
                { "path": "docs/report.pdf", "kind": "File", "size": 3_000_000, "mode": 0o600, "hash": seq(0x21, 32) },
            ],
        }),
        json!({
            "name": "text to a recipient", "kind": "manifest", "content_key": seq(0x20, 32), "transfer_id": seq(0x50, 16),
            "signer_seed": seq(0xe0, 32), "recipient": h(&recipient), "header": seq(0xf0, 24),
            "sender_name": "alice@example.org",
            "content": "Text", "chunk_size": 65_536,
            "entries": [ { "path": "message.txt", "kind": "File", "size": 11, "mode": 0o644, "hash": seq(0x41, 32) } ],
        }),
        json!({
            "name": "empty stdin", "kind": "manifest", "content_key": K1, "transfer_id": seq(0x60, 16),
            "signer_seed": seq(0xc0, 32), "recipient": null, "header": seq(0x80, 24),
            "content": "Stdin", "chunk_size": chunk::DEFAULT_CHUNK_SIZE,
            "entries": [ { "path": "stdin", "kind": "File", "size": 0, "mode": 0o644, "hash": seq(0x61, 32) } ],
        }),
    ];
    run(
        "manifest.json",
        "Manifests: `body` = postcard(Manifest); `signed_message` = \"veil manifest v1\\0\" || transfer id || \
         recipient X25519 (or 32 zero bytes) || postcard(Option<String> sender_name) || body; Ed25519 `signature` by the key with seed `signer_seed`; \
         `signed` = postcard(SignedManifest); `sealed` = \"VMAN\" || 0x01 || envelope(KDF(content_key, 0, \
         \"veilman1\"), ad = \"VMAN\" || 0x01 || transfer id, signed) with the fixed `header` (random in real use).",
        cases,
        manifest_compute,
    );
}

// ---------------------------------------------------------------------------------------
// identity.json

fn identity_compute(c: &Value) -> Outputs {
    let params = KdfParams::from_version(n(c, "kdf_version") as u8).unwrap();
    if s(c, "kind") == "kdf_params" {
        return obj(json!({ "m_kib": params.m_kib, "t": params.t, "p": params.p }));
    }
    let (pass, handle) = (s(c, "passphrase"), s(c, "handle"));
    let id = Identity::derive(pass, handle, params).unwrap();
    let public = id.public();
    let encoded = public.encode();
    assert_eq!(PublicIdentity::decode(&encoded).unwrap(), public);
    assert_eq!(PublicIdentity::decode(&encoded.to_uppercase()).unwrap(), public);
    let mut typo = encoded.clone().into_bytes();
    typo[20] = if typo[20] == b'a' { b'b' } else { b'a' };
    assert!(PublicIdentity::decode(std::str::from_utf8(&typo).unwrap()).is_err());
    let again = Identity::from_seed(id.seed().clone(), params);
    assert_eq!(again.public(), public);
    assert_eq!(again.signing_key().to_bytes(), *derive(id.seed(), 1, kdf::CTX_IDENTITY).expose());
    assert_eq!(again.x25519_secret().to_bytes(), *derive(id.seed(), 2, kdf::CTX_IDENTITY).expose());
    let old = public.without_commitment().encode();
    assert_eq!(PublicIdentity::decode(&old).unwrap(), public.without_commitment());
    obj(json!({
        "normalized_passphrase": *identity::normalize_passphrase(pass),
        "normalized_handle": identity::normalize_handle(handle),
        "salt": h(&identity::handle_salt(handle)),
        "seed": h(id.seed().expose()),
        "ed25519_public": h(&public.ed25519),
        "x25519_public": h(&public.x25519),
        "identity": old,
        "xwing_commitment": h(&public.xwing.unwrap()),
        "identity_v2": encoded,
        "fingerprint": public.fingerprint(),
    }))
}

#[test]
fn identity_vectors() {
    run(
        "identity.json",
        "Identities: salt = BLAKE2b-256(\"veil identity salt v1\\0\" || normalized handle)[..16]; seed = \
         Argon2id v1.3 (normalized passphrase, salt, parameters of `kdf_version`, 32 bytes); Ed25519 secret seed \
         = KDF(seed, 1, \"veilid01\"), X25519 secret = KDF(seed, 2, \"veilid01\"), X-Wing decapsulation key = \
         KDF(seed, 3, \"veilid01\"). `identity` is the old veilid1 string, `identity_v2` the veilid2 string with the \
         commitment to the X-Wing key (see pq.json). kdf_version 240 (0xF0) is the insecure test set; kdf_version 1 \
         is the real default (256 MiB, t = 3, p = 1).",
        vec![
            json!({ "name": "parameters V1", "kind": "kdf_params", "kdf_version": 1 }),
            json!({ "name": "parameters INSECURE_TEST", "kind": "kdf_params", "kdf_version": 0xF0 }),
            json!({
                "name": "insecure test parameters, NFKC and trimming", "kind": "identity", "kdf_version": 0xF0,
                "passphrase": "  correct horse battery staple \u{FB01}nal\u{2003}", "handle": " Alice@Example.ORG ",
            }),
            json!({
                "name": "insecure test parameters, other handle", "kind": "identity", "kdf_version": 0xF0,
                "passphrase": "correct horse battery staple final", "handle": "bob",
            }),
            json!({
                "name": "V1 parameters (256 MiB, t=3, p=1)", "kind": "identity", "kdf_version": 1,
                "passphrase": "cactus-oblong-morphing-shrank-tapioca-outnumber-sprinkled", "handle": "alice",
            }),
        ],
        identity_compute,
    );
}

// ---------------------------------------------------------------------------------------
// ticket.json

fn ticket_compute(c: &Value) -> Outputs {
    let (t, k) = (tid(c, "transfer_id"), key(c, "content_key"));
    match s(c, "kind") {
        "plain" => {
            let encoded = Ticket::encode_plain(&t, &k);
            assert!(is_ticket(&encoded));
            for text in [encoded.clone(), encoded.to_uppercase(), format!(" {encoded} ")] {
                match Ticket::decode(&text).unwrap() {
                    Ticket::Plain { tid, key } => assert_eq!((tid, key), (t, k.clone())),
                    other => panic!("decoded {other:?}"),
                }
            }
            let mut raw = t.0.to_vec();
            raw.extend_from_slice(k.expose());
            assert_eq!(encoded, format!("{}{}", ticket::TICKET_PREFIX, base32(&raw)));
            obj(json!({ "ticket": encoded }))
        }
        "password" => {
            let (password, salt, version) = (s(c, "password"), arr::<16>(c, "salt"), n(c, "kdf_version") as u8);
            let params = KdfParams::from_version(version).unwrap();
            let stretched = params.hash(identity::normalize_passphrase(password).as_bytes(), &salt).unwrap();
            let wk = derive(&stretched, 1, kdf::CTX_TICKET);
            let mut ad = b"veil ticket v1".to_vec();
            ad.extend_from_slice(&t.0);
            let wrapped = chunk::envelope_seal_with(&wk, &ad, k.expose(), arr(c, "header"));
            let mut raw = t.0.to_vec();
            raw.extend_from_slice(&salt);
            raw.push(version);
            raw.extend_from_slice(&wrapped);
            let encoded = format!("{}{}", ticket::TICKET_PASSWORD_PREFIX, base32(&raw));

            let decoded = Ticket::decode(&encoded).unwrap();
            match &decoded {
                Ticket::Password { tid, salt: s2, kdf, wrapped: w2 } => {
                    assert_eq!((tid, s2, *kdf, w2), (&t, &salt, version, &wrapped));
                }
                other => panic!("decoded {other:?}"),
            }
            assert!(decoded.needs_password());
            assert_eq!(decoded.key(Some(password)).unwrap(), k);
            assert!(decoded.key(None).is_err());
            if params == KdfParams::INSECURE_TEST {
                assert_eq!(decoded.key(Some("not the password")).unwrap_err(), FormatError::DecryptionFailed);
                // The implementation's own (random salt and header) ticket has the same shape.
                let own = Ticket::encode_with_password(&t, &k, password, params).unwrap();
                assert_eq!(own.len(), encoded.len());
                assert_eq!(Ticket::decode(&own).unwrap().key(Some(password)).unwrap(), k);
            }
            obj(json!({ "wrapping_key": h(wk.expose()), "wrapped": h(&wrapped), "ticket": encoded }))
        }
        other => panic!("unknown kind {other}"),
    }
}

#[test]
fn ticket_vectors() {
    run(
        "ticket.json",
        "Tickets: \"veil1-\" + base32(transfer id || K); \"veil1p-\" + base32(transfer id || salt || kdf version || \
         envelope(KDF(Argon2id(normalized password, salt), 1, \"veiltkt1\"), ad = \"veil ticket v1\" || transfer id, \
         K)). Base32 is RFC 4648, lowercase, unpadded. `salt` and `header` are normally random; fixed here.",
        vec![
            json!({ "name": "plain", "kind": "plain", "transfer_id": TID1, "content_key": K1 }),
            json!({
                "name": "password, insecure test parameters", "kind": "password", "transfer_id": TID1, "content_key": K1,
                "password": "hunter2 but longer", "salt": seq(0x11, 16), "kdf_version": 0xF0, "header": seq(0x31, 24),
            }),
            json!({
                "name": "password, V1 parameters", "kind": "password", "transfer_id": seq(0x70, 16), "content_key": seq(0x80, 32),
                "password": "correct horse", "salt": seq(0x91, 16), "kdf_version": 1, "header": seq(0xa1, 24),
            }),
        ],
        ticket_compute,
    );
}

// ---------------------------------------------------------------------------------------
// sealed.json

fn sealed_compute(c: &Value) -> Outputs {
    let recipient = Identity::from_seed(key(c, "recipient_seed"), KdfParams::V1);
    let sender = SigningKey::from_bytes(&arr(c, "sender_seed"));
    let (t, k, eph) = (tid(c, "transfer_id"), key(c, "content_key"), arr::<32>(c, "ephemeral_secret"));

    // The construction as FORMAT.md states it.
    let esk = StaticSecret::from(eph);
    let e = XPublic::from(&esk).to_bytes();
    let r = recipient.public().x25519;
    let shared = esk.diffie_hellman(&XPublic::from(r)).to_bytes();
    let domain = b"veil seal v1\0";
    let ek = derive(&SecretKey::from_bytes(blake2b_256(&[domain, &shared, &e, &r])), 1, kdf::CTX_SEAL);
    let mut ad = b"VSEL\x01".to_vec();
    ad.extend_from_slice(&e);
    ad.extend_from_slice(&r);
    let mut msg = domain.to_vec();
    for part in [&e[..], &r, &t.0, k.expose()] {
        msg.extend_from_slice(part);
    }
    let signature = sender.sign(&msg).to_bytes();
    let mut plain = sender.verifying_key().to_bytes().to_vec();
    for part in [&signature[..], &t.0, k.expose()] {
        plain.extend_from_slice(part);
    }
    let mut sealed = ad[..5 + 32].to_vec();
    sealed.extend_from_slice(&chunk::envelope_seal_with(&ek, &ad, &plain, arr(c, "header")));

    let opened = open_sealed(&recipient, &sealed).unwrap();
    assert_eq!((opened.sender, opened.tid, &opened.key), (sender.verifying_key().to_bytes(), t, &k));
    let stranger = Identity::from_seed(SecretKey::from_bytes([7; 32]), KdfParams::V1);
    assert_eq!(open_sealed(&stranger, &sealed).unwrap_err(), FormatError::DecryptionFailed);
    // seal_to_with fixes the ephemeral key but draws a random envelope header: same prefix,
    // same length, the same plaintext inside.
    let own = seal_v1_with(&recipient.public(), &sender, &t, &k, eph).unwrap();
    assert_eq!(own.len(), sealed.len());
    assert_eq!(own[..37], sealed[..37]);
    assert_eq!(chunk::envelope_open(&ek, &ad, &own[37..]).unwrap(), plain);
    assert_eq!(&sealed[..4], sealed::SEALED_MAGIC);

    obj(json!({
        "recipient_x25519": h(&r),
        "recipient_identity": recipient.public().without_commitment().encode(),
        "sender_ed25519": h(&sender.verifying_key().to_bytes()),
        "ephemeral_public": h(&e),
        "shared_secret": h(&shared),
        "envelope_key": h(ek.expose()),
        "ad": h(&ad),
        "signed_message": h(&msg),
        "signature": h(&signature),
        "plaintext": h(&plain),
        "sealed": h(&sealed),
    }))
}

#[test]
fn sealed_vectors() {
    run(
        "sealed.json",
        "Content key sealed to an identity: \"VSEL\" || 0x01 || E || envelope(KDF(BLAKE2b-256(\"veil seal v1\\0\" || \
         X25519(e, R) || E || R), 1, \"veilsea1\"), ad = \"VSEL\" || 0x01 || E || R, sender Ed25519 public || \
         signature || transfer id || K); the signature covers \"veil seal v1\\0\" || E || R || transfer id || K. \
         The recipient is Identity::from_seed(recipient_seed); `ephemeral_secret` and `header` are normally random.",
        vec![json!({
            "name": "sealed key", "recipient_seed": seq(0x01, 32), "sender_seed": seq(0x21, 32), "transfer_id": TID1,
            "content_key": K1, "ephemeral_secret": seq(0x41, 32), "header": seq(0x61, 24),
        })],
        sealed_compute,
    );
}

// ---------------------------------------------------------------------------------------
// pake.json

fn pake_compute(c: &Value) -> Outputs {
    match s(c, "kind") {
        "code" => match Code::parse(s(c, "typed")) {
            Ok(code) => obj(json!({ "valid": true, "nameplate": code.nameplate(), "password": code.reveal() })),
            Err(_) => obj(json!({ "valid": false })),
        },
        "derivation" => {
            let k = bytes(c, "spake2_output");
            let pk = SecretKey::from_bytes(blake2b_256(&[b"veil pake key v1\0", &k]));
            let sub = |id| derive(&pk, id, kdf::CTX_PAKE);
            let words = code_words();
            let v = sub(4);
            let verification: Vec<&str> = (0..4)
                .map(|i| words[u16::from_le_bytes([v.expose()[2 * i], v.expose()[2 * i + 1]]) as usize % words.len()])
                .collect();
            let (t, content_key) = (tid(c, "transfer_id"), key(c, "content_key"));
            let mut plain = vec![1u8];
            plain.extend_from_slice(&t.0);
            plain.extend_from_slice(content_key.expose());
            let delivery = chunk::envelope_seal_with(&sub(3), b"veil key delivery v1", &plain, arr(c, "header"));
            obj(json!({
                "pake_key": h(pk.expose()),
                "sender_confirmation": h(sub(1).expose()),
                "receiver_confirmation": h(sub(2).expose()),
                "delivery_key": h(sub(3).expose()),
                "verification_key": h(v.expose()),
                "verification_string": verification.join(" "),
                "delivery_plaintext": h(&plain),
                "delivery": h(&delivery),
            }))
        }
        "spake2" => spake2_compute(c),
        "peer_message" => {
            let code = Code::parse(s(c, "code")).unwrap();
            let role = if s(c, "role") == "sender" { Role::Sender } else { Role::Receiver };
            let (start, _) = PakeStart::new_with(role, &code, arr(c, "scalar_bytes"));
            obj(json!({ "accepted": start.finish(&bytes(c, "message")).is_ok() }))
        }
        other => panic!("unknown kind {other}"),
    }
}

/// SPAKE2 (spake2 0.4, python-spake2's Ed25519 parameters) recomputed from FORMAT.md with
/// curve25519-dalek, HKDF and SHA-256, and required to match the crate's messages and keys.
const SPAKE2_M: &str = "15cfd18e385952982b6a8f8c7854963b58e34388c8e6dae891db756481a02312";
const SPAKE2_N: &str = "f04f2e7eb734b2a8f8b472eaf9c3c632576ac64aea650b496a8a20ff00e583c3";

fn edwards(hex_point: &str) -> EdwardsPoint {
    CompressedEdwardsY(hex::decode(hex_point).unwrap().try_into().unwrap()).decompress().unwrap()
}

/// w = HKDF-SHA256(salt = empty, ikm = password, info = "SPAKE2 pw", 48 bytes) read as a
/// big-endian integer, reduced modulo the group order l.
fn spake2_password_scalar(pw: &[u8]) -> Scalar {
    let mut okm = [0u8; 48];
    hkdf::Hkdf::<Sha256>::new(Some(b""), pw).expand(b"SPAKE2 pw", &mut okm).unwrap();
    let mut wide = [0u8; 64];
    for (i, b) in okm.iter().enumerate() {
        wide[47 - i] = *b;
    }
    Scalar::from_bytes_mod_order_wide(&wide)
}

fn sha256(b: &[u8]) -> [u8; 32] {
    Sha256::digest(b).into()
}

fn spake2_compute(c: &Value) -> Outputs {
    let (code_a, code_b) = (Code::parse(s(c, "sender_code")).unwrap(), Code::parse(s(c, "receiver_code")).unwrap());
    let (pw_a, pw_b) = (code_a.reveal(), code_b.reveal());
    let (m, n) = (edwards(SPAKE2_M), edwards(SPAKE2_N));
    assert!(m.is_torsion_free() && n.is_torsion_free(), "M and N lie in the prime-order subgroup");
    let (x_bytes, y_bytes) = (arr::<64>(c, "sender_scalar_bytes"), arr::<64>(c, "receiver_scalar_bytes"));
    let (x, y) = (Scalar::from_bytes_mod_order_wide(&x_bytes), Scalar::from_bytes_mod_order_wide(&y_bytes));
    let (w_a, w_b) = (spake2_password_scalar(pw_a.as_bytes()), spake2_password_scalar(pw_b.as_bytes()));
    let big_x = (ED25519_BASEPOINT_POINT * x + m * w_a).compress().to_bytes();
    let big_y = (ED25519_BASEPOINT_POINT * y + n * w_b).compress().to_bytes();
    let k_a = ((CompressedEdwardsY(big_y).decompress().unwrap() - n * w_a) * x).compress().to_bytes();
    let k_b = ((CompressedEdwardsY(big_x).decompress().unwrap() - m * w_b) * y).compress().to_bytes();
    let transcript = |pw: &str, k: &[u8; 32]| {
        let mut t = Vec::with_capacity(192);
        for part in [sha256(pw.as_bytes()), sha256(b"veil/pake/v1/sender"), sha256(b"veil/pake/v1/receiver")] {
            t.extend_from_slice(&part);
        }
        for part in [&big_x, &big_y, k] {
            t.extend_from_slice(part);
        }
        t
    };
    let (t_a, t_b) = (transcript(&pw_a, &k_a), transcript(&pw_b, &k_b));
    let (out_a, out_b) = (sha256(&t_a), sha256(&t_b));
    let pake_key = |o: &[u8; 32]| SecretKey::from_bytes(blake2b_256(&[b"veil pake key v1\0", o]));
    let (kp_a, kp_b) = (pake_key(&out_a), pake_key(&out_b));

    // The crate, with the same scalars, sends the same messages and derives the same keys.
    let (sa, msg_a) = PakeStart::new_with(Role::Sender, &code_a, x_bytes);
    let (sb, msg_b) = PakeStart::new_with(Role::Receiver, &code_b, y_bytes);
    assert_eq!(msg_a, [&[0x41u8][..], &big_x].concat());
    assert_eq!(msg_b, [&[0x42u8][..], &big_y].concat());
    let (ka, kb) = (sa.finish(&msg_b).unwrap(), sb.finish(&msg_a).unwrap());
    assert_eq!(ka.confirmation(), *derive(&kp_a, 1, kdf::CTX_PAKE).expose());
    assert_eq!(kb.confirmation(), *derive(&kp_b, 2, kdf::CTX_PAKE).expose());
    let same = pw_a == pw_b;
    assert_eq!(same, out_a == out_b);
    assert_eq!(ka.verify_peer(&kb.confirmation()).is_ok(), same);
    assert_eq!(kb.verify_peer(&ka.confirmation()).is_ok(), same);
    let (t, content_key) = (tid(c, "transfer_id"), key(c, "content_key"));
    let mut plain = vec![1u8];
    plain.extend_from_slice(&t.0);
    plain.extend_from_slice(content_key.expose());
    let delivery =
        chunk::envelope_seal_with(&derive(&kp_a, 3, kdf::CTX_PAKE), b"veil key delivery v1", &plain, arr(c, "header"));
    // The classical delivery of the first protocol (kept as a vector; veil now delivers
    // under the hybrid key, see pq.json): it opens only under the receiver's `Kp`.
    let opened = chunk::envelope_open(&derive(&kp_b, 3, kdf::CTX_PAKE), b"veil key delivery v1", &delivery);
    if same {
        assert_eq!(opened.unwrap(), plain);
        assert_eq!(ka.verification_string(), kb.verification_string());
    } else {
        assert_eq!(opened.unwrap_err(), FormatError::DecryptionFailed);
    }
    obj(json!({
        "M": SPAKE2_M,
        "N": SPAKE2_N,
        "sender_password": pw_a,
        "receiver_password": pw_b,
        "sender_password_scalar": h(w_a.as_bytes()),
        "receiver_password_scalar": h(w_b.as_bytes()),
        "sender_scalar": h(x.as_bytes()),
        "receiver_scalar": h(y.as_bytes()),
        "sender_message": h(&msg_a),
        "receiver_message": h(&msg_b),
        "sender_key_element": h(&k_a),
        "receiver_key_element": h(&k_b),
        "sender_transcript": h(&t_a),
        "receiver_transcript": h(&t_b),
        "sender_spake2_output": h(&out_a),
        "receiver_spake2_output": h(&out_b),
        "sender_pake_key": h(kp_a.expose()),
        "receiver_pake_key": h(kp_b.expose()),
        "sender_confirmation": h(&ka.confirmation()),
        "receiver_confirmation": h(&kb.confirmation()),
        "confirmations_verify": same,
        "sender_verification_string": ka.verification_string(),
        "receiver_verification_string": kb.verification_string(),
        "delivery": h(&delivery),
    }))
}

#[test]
fn pake_vectors() {
    let code = |typed: &str| json!({ "name": format!("code {typed:?}"), "kind": "code", "typed": typed });
    let mut cases: Vec<Value> =
        [" 7-Guitar-Orbit ", "0042-acid-zoom-yoyo", "7", "guitar-7", "0-acid-zoom", "7--acid", "7-acid zoom"]
            .into_iter()
            .map(code)
            .collect();
    // Edges of "trim", "lowercase" and "letters or digits" (Unicode, as Rust's std has them).
    for typed in [
        "\u{a0}7-acid-zoom\u{3000}",
        "7-ΣΑΣ-Straße",
        "7-\u{212a}elvin",
        "7-İstanbul",
        "7-caf\u{e9}",
        "7-cafe\u{301}",
        "7-acid\u{200b}",
        "7-x\u{0663}\u{2167}\u{00bd}",
        "\u{0667}-acid",
        "\u{ff17}-acid",
        "4294967295-acid",
        "4294967296-acid",
        "7-acid-",
        "7_acid",
        "7-acid\u{202e}",
        &format!("7-{}", "a".repeat(64)),
        &format!("7-{}", "a".repeat(65)),
    ] {
        cases.push(code(typed));
    }
    let spake2 = |name: &str, sender: &str, receiver: &str| {
        json!({
            "name": name, "kind": "spake2", "sender_code": sender, "receiver_code": receiver,
            "sender_scalar_bytes": seq(0x01, 64), "receiver_scalar_bytes": seq(0x81, 64),
            "transfer_id": TID1, "content_key": K1, "header": seq(0x15, 24),
        })
    };
    cases.push(spake2("SPAKE2 with fixed scalars, same code", "7-guitar-orbit", " 7-Guitar-Orbit"));
    cases.push(spake2("SPAKE2 with fixed scalars, receiver typed another code", "7-guitar-orbit", "7-guitar-orbits"));
    let (_, own_a) = PakeStart::new_with(Role::Sender, &Code::parse("7-guitar-orbit").unwrap(), [1; 64]);
    let (_, own_b) = PakeStart::new_with(Role::Receiver, &Code::parse("7-guitar-orbit").unwrap(), [2; 64]);
    // The smallest y whose encoding does not decompress (no x for it on the curve).
    let off_curve = (2u8..)
        .map(|y| {
            let mut b = [0u8; 32];
            b[0] = y;
            b
        })
        .find(|b| CompressedEdwardsY(*b).decompress().is_none())
        .unwrap();
    let mut identity = [0u8; 32];
    identity[0] = 1;
    // p + 1 = 2^255 - 18: a non-canonical encoding of y = 1, the identity point.
    let mut identity_noncanonical = [0xffu8; 32];
    identity_noncanonical[0] = 0xee;
    identity_noncanonical[31] = 0x7f;
    let peer = |name: &str, role: &str, message: Vec<u8>| {
        json!({
            "name": format!("peer message: {name}"), "kind": "peer_message", "role": role, "code": "7-guitar-orbit",
            "scalar_bytes": seq(0x01, 64), "message": h(&message),
        })
    };
    cases.push(peer("the receiver's message at the sender", "sender", own_b.clone()));
    cases.push(peer("the sender's message at the receiver", "receiver", own_a.clone()));
    cases.push(peer("side byte A at the sender", "sender", own_a.clone()));
    cases.push(peer("32 bytes (no side byte)", "sender", own_b[1..].to_vec()));
    cases.push(peer("34 bytes", "sender", [&own_b[..], &[0]].concat()));
    cases.push(peer("a y with no point", "sender", [&[0x42u8][..], &off_curve].concat()));
    cases.push(peer("the identity point (small order, accepted)", "sender", [&[0x42u8][..], &identity].concat()));
    cases.push(peer("a non-canonical encoding (accepted)", "sender", [&[0x42u8][..], &identity_noncanonical].concat()));
    cases.push(json!({
        "name": "derivation from a fixed SPAKE2 output", "kind": "derivation", "spake2_output": seq(0x05, 32),
        "transfer_id": TID1, "content_key": K1, "header": seq(0x15, 24),
    }));
    run(
        "pake.json",
        "Codes and the PAKE. `code` cases: what a user typed -> nameplate and the SPAKE2 password (the whole \
         normalised code). The `derivation` case is computed from the spec formulas with public primitives (pake key = \
         BLAKE2b-256(\"veil pake key v1\\0\" || SPAKE2 output), subkeys 1..4 of \"veilpak1\", the key-delivery \
         envelope with a fixed header). `spake2` cases fix the 64 bytes each side draws for its secret scalar \
         (scalar = bytes as a little-endian integer mod l) and give every intermediate value of SPAKE2 (python-spake2 \
         Ed25519 parameters M and N, password scalar, messages, key element, transcript, output) and what follows; \
         `peer_message` cases say which peer messages `finish` accepts.",
        cases,
        pake_compute,
    );
}

/// The live PAKE: message shapes, confirmations, delivery, verification strings.
#[test]
fn pake_round_trip_matches_spec_shapes() {
    let code = Code::parse("7-guitar-orbit").unwrap();
    let (s, smsg) = PakeStart::new(Role::Sender, &code);
    let (r, rmsg) = PakeStart::new(Role::Receiver, &code);
    assert_eq!((smsg.len(), smsg[0]), (33, b'A'));
    assert_eq!((rmsg.len(), rmsg[0]), (33, b'B'));
    let (sk, rk) = (s.finish(&rmsg).unwrap(), r.finish(&smsg).unwrap());
    sk.verify_peer(&rk.confirmation()).unwrap();
    rk.verify_peer(&sk.confirmation()).unwrap();
    assert_ne!(sk.confirmation(), rk.confirmation());
    let (t, k) = (TransferId::random(), ContentKey::random());
    let (offer, offer_msg) = rk.pq_offer();
    assert_eq!(offer_msg.len(), code::PQ_OFFER_LEN);
    assert_eq!(offer_msg.len(), 1225);
    let (hs, ct) = sk.pq_accept(&offer_msg).unwrap();
    assert_eq!(ct.len(), 1088);
    let delivery = hs.seal_delivery(&t, &k);
    assert_eq!(delivery.len(), code::DELIVERY_LEN);
    assert_eq!(ct.len() + delivery.len(), code::PQ_ANSWER_LEN);
    let hr = offer.finish(&ct).unwrap();
    assert_eq!(hr.expose(), hs.expose());
    assert_eq!(hr.open_delivery(&delivery).unwrap(), (t, k));
    let words = sk.verification_string();
    assert_eq!(words, rk.verification_string());
    assert_eq!(words.split(' ').filter(|w| code_words().contains(w)).count(), 4);
}

// ---------------------------------------------------------------------------------------
// words.json

fn words_compute(c: &Value) -> Outputs {
    if c.get("kind").and_then(Value::as_str) == Some("file") {
        return word_file_compute(c);
    }
    let (list, raw): (&[&str], &str) = match s(c, "list") {
        "code" => (code_words(), include_str!("../src/words-eff-short.txt")),
        "passphrase" => (passphrase_words(), include_str!("../src/words-eff-long.txt")),
        other => panic!("unknown list {other}"),
    };
    assert!(list.windows(2).all(|w| w[0] < w[1]), "sorted and unique (binary search relies on it)");
    let removed: Vec<&str> = raw.lines().map(str::trim).filter(|l| !l.is_empty() && !list.contains(l)).collect();
    obj(json!({
        "count": list.len(),
        "first": list[0],
        "last": list[list.len() - 1],
        "removed": removed,
        "blake2b_256_of_words_joined_by_newline": h(&blake2b_256(&[list.join("\n").as_bytes()])),
    }))
}

#[test]
fn word_list_vectors() {
    run(
        "words.json",
        "The word lists in order: codes and verification strings use the EFF short list 1, passphrases the EFF \
         large list, each without its hyphenated entries. `removed` lists the lines of the file shipped in the crate \
         that parsing drops (the shipped short list already lacks `yo-yo`, so none); the hash is over the parsed \
         words joined by single \\n, with no final \\n. `file` cases describe the shipped files themselves (ASCII \
         lowercase words and `-`, one per line, every line ending in \\n). Changing a list changes verification \
         strings.",
        vec![
            json!({ "name": "code words (EFF short list 1)", "list": "code" }),
            json!({ "name": "passphrase words (EFF large list)", "list": "passphrase" }),
            json!({ "name": "code word file", "kind": "file", "list": "code" }),
            json!({ "name": "passphrase word file", "kind": "file", "list": "passphrase" }),
        ],
        words_compute,
    );
}

/// How the words of a list file are laid out: the parse in FORMAT.md relies on it.
fn word_file_compute(c: &Value) -> Outputs {
    let raw = match s(c, "list") {
        "code" => include_str!("../src/words-eff-short.txt"),
        "passphrase" => include_str!("../src/words-eff-long.txt"),
        other => panic!("unknown list {other}"),
    };
    assert!(raw.ends_with('\n') && !raw.contains('\r'));
    let lines: Vec<&str> = raw.split_terminator('\n').collect();
    assert!(lines.iter().all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_lowercase() || b == b'-')));
    let hyphenated: Vec<&str> = lines.iter().copied().filter(|l| l.contains('-')).collect();
    obj(json!({
        "file_bytes": raw.len(),
        "file_lines": lines.len(),
        "file_blake2b_256": h(&blake2b_256(&[raw.as_bytes()])),
        "ends_with_newline": true,
        "hyphenated_lines_dropped": hyphenated,
    }))
}

// ---------------------------------------------------------------------------------------
// refused.json: inputs every decoder must refuse (and the unmodified controls it accepts)

fn error_kind(e: &FormatError) -> &'static str {
    match e {
        FormatError::DecryptionFailed => "DecryptionFailed",
        FormatError::Malformed { .. } => "Malformed",
        FormatError::BadSignature => "BadSignature",
        FormatError::InvalidTicket(_) => "InvalidTicket",
        FormatError::InvalidIdentity(_) => "InvalidIdentity",
        FormatError::UnsafeName { .. } => "UnsafeName",
        FormatError::UnsupportedVersion { .. } => "UnsupportedVersion",
        FormatError::Truncated { .. } => "Truncated",
        FormatError::TooLarge { .. } => "TooLarge",
        other => panic!("unexpected error {other:?}"),
    }
}

fn verdict<T>(r: Result<T, FormatError>) -> Outputs {
    match r {
        Ok(_) => obj(json!({ "refused": false })),
        Err(e) => obj(json!({ "refused": true, "error": error_kind(&e) })),
    }
}

fn refused_manifest(c: &Value) -> Outputs {
    let (k, t) = (key(c, "content_key"), tid(c, "transfer_id"));
    let signer = SigningKey::from_bytes(&arr(c, "signer_seed"));
    let mutation = s(c, "mutation");
    // One file, built without `Manifest::new` so that invalid modes can be encoded.
    let manifest = Manifest {
        transfer_id: t,
        content: ContentKind::Files,
        chunk_size: 65_536,
        total_size: 5,
        chunk_count: 1,
        entries: vec![Entry {
            path: "a.txt".into(),
            kind: EntryKind::File,
            size: 5,
            mode: n(c, "mode") as u32,
            hash: arr(c, "hash"),
        }],
    };
    let mut body = postcard::to_allocvec(&manifest).unwrap();
    match mutation {
        "body with trailing bytes" => body.extend_from_slice(&[0; 3]),
        // transfer id (16) || content kind varint 0 -> 0x80 0x00
        "overlong varint in body" => body = [&body[..16], &[0x80, 0x00], &body[17..]].concat(),
        _ => {}
    }
    let mut msg = b"veil manifest v1\0".to_vec();
    msg.extend_from_slice(&t.0);
    msg.extend_from_slice(&[0; 32]);
    msg.push(0); // no sender name
    msg.extend_from_slice(&body);
    let signature = signer.sign(&msg).to_bytes();
    let signed = SignedManifest {
        signer: signer.verifying_key().to_bytes(),
        recipient: None,
        signature,
        body,
        sender_name: None,
    };
    let mut plain = postcard::to_allocvec(&signed).unwrap();
    match mutation {
        "signed plaintext with trailing bytes" => plain.extend_from_slice(&[0x6a; 7]),
        // signer (32) || recipient None (0x00) || signature length 64 = 0x40 -> 0xc0 0x00
        "overlong varint in signed plaintext" => plain = [&plain[..33], &[0xc0, 0x00], &plain[34..]].concat(),
        _ => {}
    }
    let mut ad = b"VMAN\x01".to_vec();
    ad.extend_from_slice(&t.0);
    let mut sealed = ad[..5].to_vec();
    sealed.extend_from_slice(&chunk::envelope_seal_with(
        &derive(&k, 0, kdf::CTX_MANIFEST),
        &ad,
        &plain,
        arr(c, "header"),
    ));
    let mut out = verdict(Manifest::open(&sealed, &k, &t, None));
    out.insert("signed".into(), json!(h(&plain)));
    out.insert("sealed".into(), json!(h(&sealed)));
    out
}

fn refused_compute(c: &Value) -> Outputs {
    match s(c, "kind") {
        "manifest" => refused_manifest(c),
        "ticket" => verdict(Ticket::decode(s(c, "text"))),
        "identity" => verdict(PublicIdentity::decode(s(c, "text"))),
        other => panic!("unknown kind {other}"),
    }
}

const BASE32_ALPHABET: &str = "abcdefghijklmnopqrstuvwxyz234567";

/// Set the lowest bit of the last base32 character: a trailing bit when the encoded length
/// is not a multiple of 5 bytes.
fn with_trailing_bit(text: &str) -> String {
    let last = text.chars().last().unwrap();
    let v = BASE32_ALPHABET.find(last).unwrap();
    assert_eq!(v & 1, 0);
    let mut out = text[..text.len() - 1].to_string();
    out.push(BASE32_ALPHABET.as_bytes()[v | 1] as char);
    out
}

/// A public identity string for arbitrary key bytes (with a correct checksum).
fn identity_string(ed25519: [u8; 32], x25519: [u8; 32]) -> String {
    let mut b = ed25519.to_vec();
    b.extend_from_slice(&x25519);
    let c = blake2b_256(&[b"veil identity checksum v1\0", &b]);
    b.extend_from_slice(&c[..4]);
    format!("veilid1{}", base32(&b))
}

#[test]
fn refused_vectors() {
    let mut cases = Vec::new();
    for (mutation, mode) in [
        ("none (control)", 0o644),
        ("signed plaintext with trailing bytes", 0o644),
        ("body with trailing bytes", 0o644),
        ("overlong varint in body", 0o644),
        ("overlong varint in signed plaintext", 0o644),
        ("mode 0o777 (control)", 0o777),
        ("mode 0o1000", 0o1000),
        ("mode 0o4755 (set-user-id)", 0o4755),
    ] {
        cases.push(json!({
            "name": format!("manifest: {mutation}"), "kind": "manifest", "mutation": mutation, "mode": mode,
            "content_key": K1, "transfer_id": TID1, "signer_seed": seq(0xc0, 32), "hash": seq(0x01, 32),
            "header": seq(0xd0, 24),
        }));
    }
    let (t, k) = (tid(&json!({ "t": TID1 }), "t"), key(&json!({ "k": K1 }), "k"));
    let plain = Ticket::encode_plain(&t, &k);
    let mut raw = t.0.to_vec();
    raw.extend_from_slice(&[0x11; 16]);
    raw.push(0xf0);
    raw.extend_from_slice(&[0x22; 24 + 32 + 17]);
    let password = format!("veil1p-{}", base32(&raw));
    let kelvin = |text: &str| {
        let at = text.rfind('k').expect("a k to replace");
        format!("{}\u{212a}{}", &text[..at], &text[at + 1..])
    };
    let ticket =
        |name: &str, text: String| json!({ "name": format!("ticket: {name}"), "kind": "ticket", "text": text });
    cases.push(ticket("plain (control)", plain.clone()));
    cases.push(ticket("plain, upper case and spaces (control)", format!(" {} ", plain.to_uppercase())));
    cases.push(ticket("plain, non-zero trailing bit", with_trailing_bit(&plain)));
    cases.push(ticket("plain, one character short", plain[..plain.len() - 1].to_string()));
    cases.push(ticket("plain, Kelvin sign for k", kelvin(&plain)));
    cases.push(ticket("password (control)", password.clone()));
    cases.push(ticket("password, non-zero trailing bits", with_trailing_bit(&password)));

    let me = Identity::from_seed(SecretKey::from_bytes(arr(&json!({ "s": seq(0x01, 32) }), "s")), KdfParams::V1);
    let good = me.public();
    let x = good.x25519;
    let ident =
        |name: &str, text: String| json!({ "name": format!("identity: {name}"), "kind": "identity", "text": text });
    let mut identity_point = [0u8; 32];
    identity_point[0] = 1;
    // A valid key plus a point of order 8: on the curve, not small-order, but not in the
    // prime-order subgroup.
    let torsioned = (CompressedEdwardsY(good.ed25519).decompress().unwrap()
        + curve25519_dalek::constants::EIGHT_TORSION[1])
        .compress()
        .to_bytes();
    // y + p for the smallest y < 19 that is the y of a large-order point: a non-canonical
    // encoding that decompresses to a valid-looking point.
    let noncanonical = (0u8..19).find_map(|y| {
        let mut b = [0u8; 32];
        b[0] = y;
        let p = CompressedEdwardsY(b).decompress()?;
        if p.is_small_order() {
            return None;
        }
        // y + p, with p = 2^255 - 19, little endian.
        let mut e = [0xffu8; 32];
        e[31] = 0x7f;
        let (low, carry) = (0xedu8).overflowing_add(y);
        e[0] = low;
        assert!(!carry);
        Some(e)
    });
    // The veilid1 form (old strings stay readable, and refused the same way).
    let good_v1 = good.without_commitment().encode();
    cases.push(ident("valid (control)", good_v1.clone()));
    cases.push(ident("valid, upper case with spaces (control)", format!("{} ", good_v1.to_uppercase())));
    cases.push(ident("non-zero trailing bit", with_trailing_bit(&good_v1)));
    cases.push(ident("Kelvin sign for k", kelvin(&good_v1)));
    // The veilid2 form.
    let good_v2 = good.encode();
    cases.push(ident("veilid2 valid (control)", good_v2.clone()));
    cases.push(ident("veilid2 valid, upper case with spaces (control)", format!(" {}", good_v2.to_uppercase())));
    cases.push(ident("veilid2 non-zero trailing bit", with_trailing_bit(&good_v2)));
    cases.push(ident("veilid2 Kelvin sign for k", kelvin(&good_v2)));
    cases.push(ident("veilid2 prefix on a veilid1 body", good_v1.replacen("veilid1", "veilid2", 1)));
    cases.push(ident("veilid1 prefix on a veilid2 body", good_v2.replacen("veilid2", "veilid1", 1)));
    cases.push(ident("unknown version veilid3", good_v2.replacen("veilid2", "veilid3", 1)));
    cases.push(ident("Ed25519 key is the identity point (small order)", identity_string(identity_point, x)));
    cases.push(ident("Ed25519 key has a torsion component", identity_string(torsioned, x)));
    if let Some(e) = noncanonical {
        cases.push(ident("Ed25519 key encoded non-canonically (y + p)", identity_string(e, x)));
    }
    run(
        "refused.json",
        "Inputs decoders must refuse, each beside an unmodified control that is accepted. `out.refused` says whether \
         the input is refused and `out.error` names the FormatError variant. Manifest cases: a one-file manifest \
         (\"a.txt\", 5 bytes, `mode`), signed correctly by the key with seed `signer_seed`, then mutated; \
         `out.signed` is the envelope plaintext and `out.sealed` the stored manifest (open it with `content_key` \
         and `transfer_id`, no recipient). Trailing bytes and overlong varints are refused wherever postcard is \
         decoded; modes above 0o777 are malformed. Ticket and identity cases: the string as given to the decoder \
         (base32 with non-zero trailing bits, non-ASCII letters, invalid Ed25519 keys with a correct checksum).",
        cases,
        refused_compute,
    );
}

// ---------------------------------------------------------------------------------------
// pq.json: X-Wing identities, key bundles, sealed keys v2, the code-mode hybrid step

fn pq_compute(c: &Value) -> Outputs {
    match s(c, "kind") {
        "xwing_keygen" => {
            let id = Identity::from_seed(key(c, "identity_seed"), KdfParams::V1);
            let xsk = derive(id.seed(), 3, kdf::CTX_IDENTITY);
            let public = pq::XWingSecret::from_bytes(&xsk).public();
            assert_eq!(id.xwing_secret().public(), public);
            let commitment = blake2b_256(&[b"veil xwing key v1\0", public.as_bytes()]);
            assert_eq!(public.commitment(), commitment);
            assert_eq!(id.public().xwing, Some(commitment));
            // The veilid2 string, rebuilt from the layout.
            let p = id.public();
            let mut raw = [&p.ed25519[..], &p.x25519, &commitment].concat();
            let sum = blake2b_256(&[b"veil identity checksum v2\0", &raw]);
            raw.extend_from_slice(&sum[..4]);
            let v2 = format!("veilid2{}", base32(&raw));
            assert_eq!(p.encode(), v2);
            assert_eq!(v2.len(), 167);
            assert_eq!(PublicIdentity::decode(&v2).unwrap(), p);
            assert_eq!(PublicIdentity::decode(&p.without_commitment().encode()).unwrap().xwing, None);
            obj(json!({
                "xwing_secret": h(xsk.expose()),
                "xwing_public": h(public.as_bytes()),
                "xwing_commitment": h(&commitment),
                "identity": v2,
            }))
        }
        "xwing_encaps" => {
            let id = Identity::from_seed(key(c, "identity_seed"), KdfParams::V1);
            let public = id.xwing_secret().public();
            let randomness: [u8; 64] = arr(c, "randomness");
            let (ct, ss) = public.encapsulate_with(&randomness).unwrap();
            assert_eq!(ct.len(), pq::XWING_CIPHERTEXT_LEN);
            // X-Wing (draft 06) recomputed from its parts: ML-KEM-768 and X25519 from the
            // SHAKE256 expansion of the decapsulation key, the SHA3-256 combiner.
            let xsk = derive(id.seed(), 3, kdf::CTX_IDENTITY);
            let mut expanded = [0u8; 96];
            {
                use sha3::digest::Update;
                use shake::{ExtendableOutput, XofReader};
                let mut sh = shake::Shake256::default();
                sh.update(xsk.expose());
                sh.finalize_xof().read(&mut expanded);
            }
            let mlkem = pq::MlKemSecret::from_seed(&expanded[..64].try_into().unwrap());
            let sk_x = StaticSecret::from(<[u8; 32]>::try_from(&expanded[64..]).unwrap());
            let pk_x = XPublic::from(&sk_x).to_bytes();
            assert_eq!(public.as_bytes()[..], [&mlkem.public()[..], &pk_x].concat()[..]);
            let (ct_m, ss_m) =
                pq::mlkem_encapsulate_with(&mlkem.public(), &randomness[..32].try_into().unwrap()).unwrap();
            let ek_x = StaticSecret::from(<[u8; 32]>::try_from(&randomness[32..]).unwrap());
            let ct_x = XPublic::from(&ek_x).to_bytes();
            let ss_x = ek_x.diffie_hellman(&XPublic::from(pk_x)).to_bytes();
            assert_eq!(ct, [&ct_m[..], &ct_x].concat());
            let combined: [u8; 32] = {
                use sha3::Digest;
                sha3::Sha3_256::digest([ss_m.expose(), &ss_x[..], &ct_x, &pk_x, br"\.//^\"].concat()).into()
            };
            assert_eq!(ss.expose(), &combined);
            assert_eq!(id.xwing_secret().decapsulate(&ct).unwrap(), ss);
            let stranger = Identity::from_seed(SecretKey::from_bytes([7; 32]), KdfParams::V1);
            assert_ne!(stranger.xwing_secret().decapsulate(&ct).unwrap(), ss);
            assert!(id.xwing_secret().decapsulate(&ct[1..]).is_err());
            obj(json!({ "ciphertext": h(&ct), "shared_secret": h(ss.expose()) }))
        }
        "mlkem_keygen_encaps" => {
            let sk = pq::MlKemSecret::from_seed(&arr(c, "seed"));
            let ek = sk.public();
            let (ct, ss) = pq::mlkem_encapsulate_with(&ek, &arr(c, "m")).unwrap();
            assert_eq!((ek.len(), ct.len()), (pq::MLKEM_PUBLIC_LEN, pq::MLKEM_CIPHERTEXT_LEN));
            assert_eq!(sk.decapsulate(&ct).unwrap(), ss);
            obj(json!({ "encapsulation_key": h(&ek), "ciphertext": h(&ct), "shared_secret": h(ss.expose()) }))
        }
        "bundle" => {
            let id = Identity::from_seed(key(c, "identity_seed"), KdfParams::V1);
            let p = id.public();
            let xw = id.xwing_secret().public();
            let msg = [&b"veil key bundle v1\0"[..], &p.ed25519, &p.x25519, xw.as_bytes()].concat();
            let signature = id.signing_key().sign(&msg).to_bytes();
            let bundle = [&b"VKEY\x01"[..], &p.ed25519, &p.x25519, xw.as_bytes(), &signature].concat();
            assert_eq!(bundle.len(), pq::BUNDLE_LEN);
            assert_eq!(id.key_bundle().encode(), bundle);
            let decoded = pq::KeyBundle::decode(&bundle).unwrap();
            assert_eq!(decoded.identity(), p);
            decoded.check_for(&p).unwrap();
            decoded.check_for(&p.without_commitment()).unwrap();
            // Any flipped bit is refused; another identity's bundle does not belong.
            for i in [0, 4, 5, 40, 100, bundle.len() - 1] {
                let mut bad = bundle.clone();
                bad[i] ^= 1;
                assert!(pq::KeyBundle::decode(&bad).is_err(), "bit flip at {i} accepted");
            }
            let other = Identity::from_seed(SecretKey::from_bytes([7; 32]), KdfParams::V1);
            assert!(matches!(other.key_bundle().check_for(&p), Err(FormatError::KeyBundleMismatch { .. })));
            obj(json!({ "signed_message": h(&msg), "signature": h(&signature), "bundle": h(&bundle) }))
        }
        "sealed_v2" => pq_sealed_compute(c),
        "code_hybrid" => pq_code_compute(c),
        other => panic!("unknown kind {other}"),
    }
}

fn pq_sealed_compute(c: &Value) -> Outputs {
    let recipient = Identity::from_seed(key(c, "recipient_seed"), KdfParams::V1);
    let sender = SigningKey::from_bytes(&arr(c, "sender_seed"));
    let (t, k) = (tid(c, "transfer_id"), key(c, "content_key"));
    let randomness: [u8; 64] = arr(c, "randomness");
    let bundle = recipient.key_bundle();
    let r = recipient.public();

    // The construction as FORMAT.md states it.
    let (ct, ss) = recipient.xwing_secret().public().encapsulate_with(&randomness).unwrap();
    let commitment = r.xwing.unwrap();
    let domain = b"veil seal v2\0";
    let ek = derive(
        &SecretKey::from_bytes(blake2b_256(&[domain, ss.expose(), &ct, &commitment, &r.ed25519])),
        1,
        kdf::CTX_SEAL_XWING,
    );
    let ad = [&b"VSEL\x02"[..], &commitment, &r.ed25519].concat();
    let msg = [&domain[..], &ct, &commitment, &r.ed25519, &t.0, k.expose()].concat();
    let signature = sender.sign(&msg).to_bytes();
    let plain = [&sender.verifying_key().to_bytes()[..], &signature, &t.0, k.expose()].concat();
    let mut sealed = b"VSEL\x02".to_vec();
    sealed.extend_from_slice(&ct);
    sealed.extend_from_slice(&chunk::envelope_seal_with(&ek, &ad, &plain, arr(c, "header")));
    assert_eq!(sealed.len(), sealed::SEALED_LEN);
    assert_eq!(sealed.len(), 1310);

    let own = sealed::seal_to_with(&r, &bundle, &sender, &t, &k, &randomness, Some(arr(c, "header"))).unwrap();
    assert_eq!(own, sealed);
    let opened = open_sealed(&recipient, &sealed).unwrap();
    assert_eq!((opened.sender, opened.tid, &opened.key), (sender.verifying_key().to_bytes(), t, &k));
    let stranger = Identity::from_seed(SecretKey::from_bytes([7; 32]), KdfParams::V1);
    assert_eq!(open_sealed(&stranger, &sealed).unwrap_err(), FormatError::DecryptionFailed);
    // Random sealing: same length, opens the same.
    let random = sealed::seal_to(&r, &bundle, &sender, &t, &k).unwrap();
    assert_eq!(random.len(), sealed.len());
    assert_eq!(open_sealed(&recipient, &random).unwrap().key, k);
    // Sealing to a bundle that is not the recipient's is refused before anything else.
    assert!(matches!(
        sealed::seal_to(&r, &stranger.key_bundle(), &sender, &t, &k),
        Err(FormatError::KeyBundleMismatch { .. })
    ));
    obj(json!({
        "recipient_identity": r.encode(),
        "xwing_ciphertext": h(&ct),
        "xwing_shared_secret": h(ss.expose()),
        "envelope_key": h(ek.expose()),
        "ad": h(&ad),
        "signed_message": h(&msg),
        "signature": h(&signature),
        "plaintext": h(&plain),
        "sealed": h(&sealed),
    }))
}

fn pq_code_compute(c: &Value) -> Outputs {
    let code = Code::parse(s(c, "code")).unwrap();
    let (sa, msg_a) = PakeStart::new_with(Role::Sender, &code, arr(c, "sender_scalar_bytes"));
    let (sb, msg_b) = PakeStart::new_with(Role::Receiver, &code, arr(c, "receiver_scalar_bytes"));
    let (ka, kb) = (sa.finish(&msg_b).unwrap(), sb.finish(&msg_a).unwrap());
    let (t, k) = (tid(c, "transfer_id"), key(c, "content_key"));

    // The crate's hybrid step with fixed randomness.
    let mlkem = pq::MlKemSecret::from_seed(&arr(c, "mlkem_seed"));
    let (offer, offer_msg) = kb.pq_offer_with(mlkem, arr(c, "offer_header"));
    let (hs, ct) = ka.pq_accept_with(&offer_msg, &arr(c, "m")).unwrap();
    let delivery = hs.seal_delivery_with(&t, &k, arr(c, "delivery_header"));
    let hr = offer.finish(&ct).unwrap();
    assert_eq!(hr.open_delivery(&delivery).unwrap(), (t, k.clone()));

    // The same from the formulas, with the PAKE key from the crate's confirmation check:
    // Kp is recomputed by pake_vectors; here it comes from the SPAKE2 run's own output.
    let kp = pake_key_of(&code, &arr(c, "sender_scalar_bytes"), &arr(c, "receiver_scalar_bytes"));
    assert_eq!(ka.confirmation(), *derive(&kp, 1, kdf::CTX_PAKE).expose());
    let ek = pq::MlKemSecret::from_seed(&arr(c, "mlkem_seed")).public();
    let offer_key = derive(&kp, 5, kdf::CTX_PAKE);
    let expect_offer = chunk::envelope_seal_with(&offer_key, b"veil pq offer v1", &ek, arr(c, "offer_header"));
    assert_eq!(offer_msg, expect_offer);
    let (ct2, ss) = pq::mlkem_encapsulate_with(&ek, &arr(c, "m")).unwrap();
    assert_eq!(ct, ct2);
    let kh = blake2b_256(&[b"veil pake hybrid v1\0", kp.expose(), ss.expose(), &ek, &ct]);
    assert_eq!(hs.expose(), &kh);
    let dk = derive(&SecretKey::from_bytes(kh), 1, kdf::CTX_PAKE_HYBRID);
    let plain = [&[2u8][..], &t.0, k.expose()].concat();
    let expect_delivery = chunk::envelope_seal_with(&dk, b"veil key delivery v2", &plain, arr(c, "delivery_header"));
    assert_eq!(delivery, expect_delivery);
    let receiver_msg = [&kb.confirmation()[..], &offer_msg].concat();
    let sender_msg = [&ka.confirmation()[..], &ct, &delivery].concat();
    assert_eq!((receiver_msg.len(), sender_msg.len()), (1257, 1210));

    // Downgrades: a bare confirmation (no offer) and an answer without the ciphertext.
    assert_eq!(ka.pq_accept(&[]).unwrap_err(), FormatError::PostQuantumMissing);
    // A tampered offer does not open under the PAKE key.
    let mut bad = offer_msg.clone();
    bad[100] ^= 1;
    assert_eq!(ka.pq_accept(&bad).unwrap_err(), FormatError::WrongCode);
    // A ciphertext changed in transit gives another Kh: the delivery does not open.
    let mut bad_ct = ct.clone();
    bad_ct[0] ^= 1;
    let (offer2, _) = kb.pq_offer_with(pq::MlKemSecret::from_seed(&arr(c, "mlkem_seed")), arr(c, "offer_header"));
    assert_eq!(offer2.finish(&bad_ct).unwrap().open_delivery(&delivery).unwrap_err(), FormatError::DecryptionFailed);
    // The classical key alone (what a recording plus a broken discrete log yields) does
    // not open the delivery.
    let classical = derive(&kp, 3, kdf::CTX_PAKE);
    assert!(chunk::envelope_open(&classical, b"veil key delivery v2", &delivery).is_err());

    obj(json!({
        "pake_key": h(kp.expose()),
        "offer_key": h(offer_key.expose()),
        "mlkem_encapsulation_key": h(&ek),
        "offer": h(&offer_msg),
        "mlkem_ciphertext": h(&ct),
        "mlkem_shared_secret": h(ss.expose()),
        "hybrid_key": h(&kh),
        "delivery_key": h(dk.expose()),
        "delivery": h(&delivery),
        "receiver_message": h(&receiver_msg),
        "sender_message": h(&sender_msg),
    }))
}

/// The PAKE key of a SPAKE2 run with fixed scalars, from the formulas (as `spake2_compute`).
fn pake_key_of(code: &Code, x_bytes: &[u8; 64], y_bytes: &[u8; 64]) -> SecretKey {
    let pw = code.reveal();
    let w = spake2_password_scalar(pw.as_bytes());
    let (x, y) = (Scalar::from_bytes_mod_order_wide(x_bytes), Scalar::from_bytes_mod_order_wide(y_bytes));
    let (m, n) = (edwards(SPAKE2_M), edwards(SPAKE2_N));
    let big_x: EdwardsPoint = ED25519_BASEPOINT_POINT * x + m * w;
    let big_y: EdwardsPoint = ED25519_BASEPOINT_POINT * y + n * w;
    let k = (big_y - n * w) * x;
    let mut t = Vec::new();
    for part in [sha256(pw.as_bytes()), sha256(b"veil/pake/v1/sender"), sha256(b"veil/pake/v1/receiver")] {
        t.extend_from_slice(&part);
    }
    for part in [big_x.compress().to_bytes(), big_y.compress().to_bytes(), k.compress().to_bytes()] {
        t.extend_from_slice(&part);
    }
    SecretKey::from_bytes(blake2b_256(&[b"veil pake key v1\0", &sha256(&t)]))
}

#[test]
fn pq_vectors() {
    let seed = seq(0x01, 32);
    run(
        "pq.json",
        "Post-quantum. `xwing_keygen`: an identity's X-Wing decapsulation key is KDF(seed, 3, \"veilid01\") (X-Wing \
         draft 06, RustCrypto x-wing 0.1.1); commitment = BLAKE2b-256(\"veil xwing key v1\\0\" || X-Wing public key); \
         veilid2 string = \"veilid2\" + base32(ed25519 || x25519 || commitment || BLAKE2b-256(\"veil identity \
         checksum v2\\0\" || those 96 bytes)[..4]). `xwing_encaps`: encapsulation with fixed randomness (first 32 \
         bytes ML-KEM m, last 32 the ephemeral X25519 secret). `mlkem_keygen_encaps`: ML-KEM-768 (FIPS 203) from a \
         64-byte seed d || z and m. `bundle`: \"VKEY\" || 0x01 || ed25519 || x25519 || X-Wing public || \
         Ed25519(\"veil key bundle v1\\0\" || ed25519 || x25519 || X-Wing public). `sealed_v2`: a sealed key, version \
         2. `code_hybrid`: the ML-KEM step after SPAKE2 with fixed scalars, seed, m and headers. Identity seeds are \
         Argon2id outputs; sender_seed is a raw Ed25519 secret seed.",
        vec![
            json!({ "name": "X-Wing key from an identity seed", "kind": "xwing_keygen", "identity_seed": seed }),
            json!({
                "name": "X-Wing key from another identity seed", "kind": "xwing_keygen", "identity_seed": seq(0x90, 32),
            }),
            json!({
                "name": "X-Wing encapsulation with fixed randomness", "kind": "xwing_encaps", "identity_seed": seed,
                "randomness": seq(0x30, 64),
            }),
            json!({
                "name": "ML-KEM-768 from a seed", "kind": "mlkem_keygen_encaps", "seed": seq(0x50, 64), "m": seq(0xa0, 32),
            }),
            json!({ "name": "key bundle", "kind": "bundle", "identity_seed": seed }),
            json!({
                "name": "sealed key, version 2 (X-Wing)", "kind": "sealed_v2", "recipient_seed": seed,
                "sender_seed": seq(0x21, 32), "transfer_id": TID1, "content_key": K1, "randomness": seq(0x30, 64),
                "header": seq(0x61, 24),
            }),
            json!({
                "name": "code mode hybrid step", "kind": "code_hybrid", "code": "7-guitar-orbit",
                "sender_scalar_bytes": seq(0x01, 64), "receiver_scalar_bytes": seq(0x81, 64),
                "mlkem_seed": seq(0x50, 64), "offer_header": seq(0x11, 24), "m": seq(0xa0, 32),
                "delivery_header": seq(0xc1, 24), "transfer_id": TID1, "content_key": K1,
            }),
        ],
        pq_compute,
    );
}
