#!/usr/bin/env bash
# Regenerate fuzz/seeds/<target>/ from the test vectors (crates/veil-format/vectors/*.json,
# crates/veil-wire/vectors/frames.json) and deploy/relay.example.toml. The seeds are
# committed (a few KB); run this again when the vectors change. Needs python3.
set -euo pipefail
cd "$(dirname "$0")/.."
exec python3 - <<'PY'
import hashlib, json, os, shutil, struct

root = "fuzz/seeds"
shutil.rmtree(root, ignore_errors=True)

def put(target, data, name=None):
    d = os.path.join(root, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    name = name or hashlib.sha1(data).hexdigest()[:16]
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)

def vec(name):
    with open(f"crates/veil-format/vectors/{name}.json") as f:
        return json.load(f)["cases"]

h = bytes.fromhex

# Manifests: the first byte picks the vector's key / transfer id / recipient (see
# fuzz/src/lib.rs, manifest_case), in vector order.
names = [None, "alice@example.org", "", "bad\x1b[2Jname"]
for i, c in enumerate([c for c in vec("manifest") if c["in"].get("kind") == "manifest"]):
    put("manifest_open", bytes([i]) + h(c["out"]["sealed"]))
    ctl = (1 if c["in"]["recipient"] else 0) | (names.index(c["in"].get("sender_name")) << 1)
    put("manifest_body", bytes([ctl]) + h(c["out"]["body"]))
    put("manifest_body", bytes([0]) + h(c["out"]["signed"]))

for c in vec("sealed"):
    put("sealed_open", h(c["out"]["sealed"]))
for c in vec("pq"):
    o = c["out"]
    if "sealed" in o:
        put("sealed_open", h(o["sealed"]))
    if "bundle" in o:
        put("key_bundle", h(o["bundle"]))
        put("key_bundle", h(o["bundle"])[:-1])

# Chunks: control byte = last | index slot << 1 | split << 3.
indices = [0, 1, 2, 72623859790382856]
for c in vec("chunk"):
    if c["in"].get("kind") != "chunk":
        continue
    ctl = (1 if c["in"]["last"] else 0) | (indices.index(int(c["in"]["index"])) << 1) | (16 << 3)
    put("chunk_open", bytes([ctl]) + h(c["out"]["sealed"]))

for c in vec("ticket"):
    put("ticket", c["out"]["ticket"])
    put("ticket", " " + c["out"]["ticket"].upper() + "\n")

ids = [c["out"]["identity"] for c in vec("identity") if "identity" in c["out"]]
ids += [c["out"]["recipient_identity"] for c in vec("sealed")]
ids += [c["out"]["identity_v2"] for c in vec("identity") if "identity_v2" in c["out"]]
ids += [c["out"]["identity"] for c in vec("pq") if "identity" in c["out"]]
for s in ids:
    put("identity", s)
put("relay_allow_list", "# who may upload\n" + ids[0] + "\n\n  " + ids[1] + "  # bob\n" + ids[2].upper() + "\n")
put("relay_allow_list", ids[0] + "\nveilid1notanidentity\n")

for c in vec("pake"):
    if c["in"].get("kind") == "code":
        put("code", c["in"]["typed"])

# SPAKE2 messages: side byte ('A' sender, 'B' receiver) || compressed Edwards point (the
# base point here); ours is the other side.
base = h("5866666666666666666666666666666666666666666666666666666666666666")
put("pake", b"\x00" + b"B" + base)
put("pake", b"\x01" + b"A" + base)

with open("crates/veil-wire/vectors/frames.json") as f:
    frames = json.load(f)
target = {"request": "wire_request", "response": "wire_response", "error": "wire_response",
          "mailbox": "wire_mailbox", "stream": "wire_stream"}
for k, v in frames.items():
    t = target.get(k.split("/")[0])
    if t:
        b = h(v)
        put(t, b)        # a whole frame (decode_frame)
        put(t, b[4:])    # its body alone (decode_body)

put("wire_misc", b"\x00" + b"a0a1a2a3a4a5a6a7a8a9aaabacadaeaf")
put("wire_misc", b"\x00" + b"A0A1A2A3A4A5A6A7A8A9AAABACADAEAF")
put("wire_misc", b"\x01" + struct.pack("<I", 65536))
put("wire_misc", b"\x02" + struct.pack("<I", 2 * 1000))
put("wire_misc", b"\x02" + struct.pack("<I", 2 * 65530))

with open("deploy/relay.example.toml", "rb") as f:
    put("relay_config", f.read())

for t in sorted(os.listdir(root)):
    n = len(os.listdir(os.path.join(root, t)))
    size = sum(os.path.getsize(os.path.join(root, t, x)) for x in os.listdir(os.path.join(root, t)))
    print(f"{t:18} {n:3} files {size:6} bytes")
PY
