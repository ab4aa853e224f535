//! RFC known-answer vectors of the primitives Kith uses.
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::ChaCha20Poly1305;
use ed25519_dalek::{Signer as _, SigningKey};
use hkdf::Hkdf;
use serde_json::Value;
use sha2::Sha256;
use x25519_dalek::{x25519, PublicKey, StaticSecret};

use super::{case_name, cases, expect_eq, hex_array, hex_field, parse, u64_field, VectorCheck};
use crate::media::{decode_header, encode_header, SframeBaseKey, SframeKeys};

const X25519_FILE: &str = "rfc7748-x25519.json";
const HKDF_FILE: &str = "rfc5869-hkdf-sha256.json";
const ED25519_FILE: &str = "rfc8032-ed25519.json";
const CHACHA_FILE: &str = "rfc8439-chacha20poly1305.json";
const SFRAME_FILE: &str = "rfc9605-sframe.json";

/// Checks one case; returns what differed.
type CaseCheck = fn(&Value) -> Result<(), String>;

fn run(file: &'static str, text: &str, sections: &[(&str, CaseCheck)]) -> Vec<VectorCheck> {
    let value = match parse(file, text) {
        Ok(value) => value,
        Err(failed) => return vec![failed],
    };
    let mut out = Vec::new();
    for (section, check) in sections {
        for (i, case) in cases(&value, section).iter().enumerate() {
            let name = format!("{section} {}", case_name(case, i));
            out.push(VectorCheck::new(file, name, check(case)));
        }
    }
    if out.is_empty() {
        out.push(VectorCheck::new(
            file,
            "cases",
            Err("no cases found".into()),
        ));
    }
    out
}

/// RFC 7748: the X25519 function, its iteration, and the Diffie-Hellman example.
pub fn check_rfc7748() -> Vec<VectorCheck> {
    run(
        X25519_FILE,
        include_str!("../../vectors/rfc7748-x25519.json"),
        &[
            ("scalar_mult", |c| {
                let out = x25519(hex_array(c, "scalar")?, hex_array(c, "u")?);
                expect_eq("output", &out, &hex_field(c, "output")?)
            }),
            ("iterated", |c| {
                let mut k = [0u8; 32];
                k[0] = 9;
                let mut u = k;
                for _ in 0..u64_field(c, "iterations")? {
                    let next = x25519(k, u);
                    u = k;
                    k = next;
                }
                expect_eq("output", &k, &hex_field(c, "output")?)
            }),
            ("diffie_hellman", |c| {
                let alice = StaticSecret::from(hex_array::<32>(c, "alice_private")?);
                let bob = StaticSecret::from(hex_array::<32>(c, "bob_private")?);
                expect_eq(
                    "alice public",
                    PublicKey::from(&alice).as_bytes(),
                    &hex_field(c, "alice_public")?,
                )?;
                expect_eq(
                    "bob public",
                    PublicKey::from(&bob).as_bytes(),
                    &hex_field(c, "bob_public")?,
                )?;
                let shared = alice.diffie_hellman(&PublicKey::from(&bob));
                let shared2 = bob.diffie_hellman(&PublicKey::from(&alice));
                expect_eq(
                    "shared (alice)",
                    shared.as_bytes(),
                    &hex_field(c, "shared")?,
                )?;
                expect_eq("shared (bob)", shared2.as_bytes(), &hex_field(c, "shared")?)
            }),
        ],
    )
}

/// RFC 5869: HKDF-SHA256 extract and expand.
pub fn check_rfc5869() -> Vec<VectorCheck> {
    run(
        HKDF_FILE,
        include_str!("../../vectors/rfc5869-hkdf-sha256.json"),
        &[("cases", |c| {
            let salt = hex_field(c, "salt")?;
            let (prk, hkdf) = Hkdf::<Sha256>::extract(Some(&salt), &hex_field(c, "ikm")?);
            expect_eq("prk", &prk, &hex_field(c, "prk")?)?;
            let length = usize::try_from(u64_field(c, "length")?).map_err(|e| e.to_string())?;
            let mut okm = vec![0u8; length];
            hkdf.expand(&hex_field(c, "info")?, &mut okm)
                .map_err(|e| e.to_string())?;
            expect_eq("okm", &okm, &hex_field(c, "okm")?)
        })],
    )
}

/// RFC 8032: Ed25519 key derivation, signing and verification.
pub fn check_rfc8032() -> Vec<VectorCheck> {
    run(
        ED25519_FILE,
        include_str!("../../vectors/rfc8032-ed25519.json"),
        &[("cases", |c| {
            let key = SigningKey::from_bytes(&hex_array(c, "secret_key")?);
            expect_eq(
                "public key",
                key.verifying_key().as_bytes(),
                &hex_field(c, "public_key")?,
            )?;
            let message = hex_field(c, "message")?;
            let signature = key.sign(&message);
            expect_eq(
                "signature",
                &signature.to_bytes(),
                &hex_field(c, "signature")?,
            )?;
            key.verifying_key()
                .verify_strict(&message, &signature)
                .map_err(|e| format!("verification failed: {e}"))
        })],
    )
}

/// RFC 8439: ChaCha20-Poly1305 AEAD seal and open.
pub fn check_rfc8439() -> Vec<VectorCheck> {
    run(
        CHACHA_FILE,
        include_str!("../../vectors/rfc8439-chacha20poly1305.json"),
        &[("cases", |c| {
            let cipher = ChaCha20Poly1305::new(&hex_array::<32>(c, "key")?.into());
            let nonce = hex_array::<12>(c, "nonce")?;
            let aad = hex_field(c, "aad")?;
            let plaintext = hex_field(c, "plaintext")?;
            let sealed = cipher
                .encrypt(
                    (&nonce).into(),
                    Payload {
                        msg: &plaintext,
                        aad: &aad,
                    },
                )
                .map_err(|_| "encryption failed".to_string())?;
            let mut expected = hex_field(c, "ciphertext")?;
            expected.extend_from_slice(&hex_field(c, "tag")?);
            expect_eq("ciphertext ‖ tag", &sealed, &expected)?;
            let opened = cipher
                .decrypt(
                    (&nonce).into(),
                    Payload {
                        msg: &sealed,
                        aad: &aad,
                    },
                )
                .map_err(|_| "decryption failed".to_string())?;
            expect_eq("plaintext", &opened, &plaintext)
        })],
    )
}

/// RFC 9605: SFrame headers and the AES_128_GCM_SHA256_128 key schedule and frame.
pub fn check_rfc9605() -> Vec<VectorCheck> {
    run(
        SFRAME_FILE,
        include_str!("../../vectors/rfc9605-sframe.json"),
        &[
            ("headers", |c| {
                let (kid, ctr) = (u64_field(c, "kid")?, u64_field(c, "ctr")?);
                let encoded = hex_field(c, "encoded")?;
                expect_eq("header", &encode_header(kid, ctr), &encoded)?;
                match decode_header(&encoded) {
                    Ok((k, n, len)) if (k, n, len) == (kid, ctr, encoded.len()) => Ok(()),
                    other => Err(format!("decoded {other:?}")),
                }
            }),
            ("frames", |c| {
                let keys = SframeKeys::derive(
                    &SframeBaseKey::from_bytes(hex_array(c, "base_key")?),
                    u64_field(c, "kid")?,
                );
                let ctr = u64_field(c, "ctr")?;
                expect_eq("sframe_key", keys.key_bytes(), &hex_field(c, "sframe_key")?)?;
                expect_eq(
                    "sframe_salt",
                    keys.salt_bytes(),
                    &hex_field(c, "sframe_salt")?,
                )?;
                expect_eq("nonce", &keys.nonce(ctr), &hex_field(c, "nonce")?)?;
                let metadata = hex_field(c, "metadata")?;
                let frame = keys.seal_frame(ctr, &metadata, &hex_field(c, "pt")?);
                expect_eq("ct", &frame, &hex_field(c, "ct")?)
            }),
        ],
    )
}
