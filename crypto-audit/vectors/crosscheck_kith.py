#!/usr/bin/env python3
"""Independent re-derivation of Kith's own vectors (kith-*.json) from PROTOCOL.md, with
Python's `cryptography` package and hashlib/hmac, sharing no code with the Rust crate.

Not part of CI (it needs `pip install cryptography`); run it by hand when auditing:
    cd crypto-audit/vectors && python3 crosscheck_kith.py
"""
import base64
import hashlib
import hmac
import json
import sys

from cryptography.hazmat.primitives import serialization as S
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305


def raw(pub):
    return pub.public_bytes(S.Encoding.Raw, S.PublicFormat.Raw)


def extract(salt, ikm):
    return hmac.new(salt, ikm, hashlib.sha256).digest()


def expand(prk, info, n):
    out, t, i = b"", b"", 1
    while len(out) < n:
        t = hmac.new(prk, t + info + bytes([i]), hashlib.sha256).digest()
        out, i = out + t, i + 1
    return out[:n]


def channel(c):
    a = X25519PrivateKey.from_private_bytes(bytes.fromhex(c["inviter_secret"]))
    b = X25519PrivateKey.from_private_bytes(bytes.fromhex(c["joiner_secret"]))
    ap, bp = raw(a.public_key()), raw(b.public_key())
    secret = bytes.fromhex(c["invite_secret"])
    transcript = hashlib.sha256(b"kith channel v1 transcript" + ap + bp).digest()
    prk = extract(transcript, a.exchange(b.public_key()) + secret)
    i2j = expand(prk, b"kith channel v1 inviter to joiner", 32)
    j2i = expand(prk, b"kith channel v1 joiner to inviter", 32)
    sas = f"{int.from_bytes(expand(prk, b'kith channel v1 sas', 8), 'big') % 10**6:06d}"
    pt = bytes.fromhex(c["plaintext"])
    zero = (0).to_bytes(8, "big")
    return {
        "inviter_public": ap.hex(),
        "joiner_public": bp.hex(),
        "transcript": transcript.hex(),
        "key_inviter_to_joiner": i2j.hex(),
        "key_joiner_to_inviter": j2i.hex(),
        "sas": sas[:3] + " " + sas[3:],
        "first_message_key": expand(extract(b"\0" * 32, secret), b"kith invite first message v1", 32).hex(),
        "sealed_inviter_to_joiner_0": (zero + ChaCha20Poly1305(i2j).encrypt(b"\0" * 12, pt, transcript)).hex(),
        "sealed_joiner_to_inviter_0": (zero + ChaCha20Poly1305(j2i).encrypt(b"\0" * 12, pt, transcript)).hex(),
    }


def fingerprint(c):
    pub = raw(Ed25519PrivateKey.from_private_bytes(bytes.fromhex(c["identity_seed"])).public_key())
    fp = hashlib.sha256(b"kith identity fingerprint v1" + pub).digest()
    digits = f"{int.from_bytes(fp, 'big') % 10**60:060d}"
    return {
        "identity_public": pub.hex(),
        "fingerprint": fp.hex(),
        "safety_number": " ".join(digits[i : i + 5] for i in range(0, 60, 5)),
        "uri": "kith:fp1/" + base64.urlsafe_b64encode(fp).decode().rstrip("="),
    }


def certificate(c):
    ik = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(c["identity_seed"]))
    dk = raw(Ed25519PrivateKey.from_private_bytes(bytes.fromhex(c["device_signing_seed"])).public_key())
    addr = c["delivery_address"].encode()
    tbs = (bytes([1]) + raw(ik.public_key()) + bytes.fromhex(c["device_id"]) + dk
           + len(addr).to_bytes(2, "big") + addr + c["created_at"].to_bytes(8, "big"))
    return {"device_signature_key": dk.hex(), "encoded": (tbs + ik.sign(b"kith device certificate v1" + tbs)).hex()}


def media(c):
    kid = (c["leaf_index"] << 8) | (c["epoch"] % 256)
    secret = extract(b"", bytes.fromhex(c["base_key"]))
    suffix = kid.to_bytes(8, "big") + (4).to_bytes(2, "big")
    return {
        "kid": kid,
        "sframe_key": expand(secret, b"SFrame 1.0 Secret key " + suffix, 16).hex(),
        "sframe_salt": expand(secret, b"SFrame 1.0 Secret salt " + suffix, 12).hex(),
    }


failed = 0
for name, derive in [("channel", channel), ("fingerprint", fingerprint), ("certificate", certificate), ("media", media)]:
    for case in json.load(open(f"kith-{name}.json"))["cases"]:
        for key, value in derive(case).items():
            if case[key] != value:
                failed += 1
                print(f"MISMATCH {name} {case['name']} {key}")
print("FAILED" if failed else "all Kith vectors re-derived independently")
sys.exit(1 if failed else 0)
