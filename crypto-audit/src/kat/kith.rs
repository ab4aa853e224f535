//! Vectors of Kith's own constructions, generated from fixed inputs.
use serde_json::{json, Value};

use super::{parse, VectorCheck};
use crate::certificate::{DeviceCertificate, DeviceId};
use crate::channel::{first_message_key, ChannelKey, Role};
use crate::fingerprint::Fingerprint;
use crate::identity::IdentityKey;
use crate::invite::{InviteKind, InvitePayload, InviteSecret};
use crate::media::{sframe_key_id, SframeBaseKey, SframeKeys};

/// The files of Kith's own vectors, with their checked-in contents.
pub const KITH_VECTOR_FILES: [(&str, &str); 5] = [
    (
        "kith-certificate.json",
        include_str!("../../vectors/kith-certificate.json"),
    ),
    (
        "kith-fingerprint.json",
        include_str!("../../vectors/kith-fingerprint.json"),
    ),
    (
        "kith-channel.json",
        include_str!("../../vectors/kith-channel.json"),
    ),
    (
        "kith-invite.json",
        include_str!("../../vectors/kith-invite.json"),
    ),
    (
        "kith-media.json",
        include_str!("../../vectors/kith-media.json"),
    ),
];

/// Kith's own vectors as computed by this build, file by file (the same order as
/// [`KITH_VECTOR_FILES`]).
pub fn kith_vectors() -> Vec<(&'static str, Value)> {
    vec![
        ("kith-certificate.json", certificate_vectors()),
        ("kith-fingerprint.json", fingerprint_vectors()),
        ("kith-channel.json", channel_vectors()),
        ("kith-invite.json", invite_vectors()),
        ("kith-media.json", media_vectors()),
    ]
}

/// Compares each checked-in case with the same case computed now.
pub(crate) fn check_kith() -> Vec<VectorCheck> {
    let mut out = Vec::new();
    for ((file, text), (_, computed)) in KITH_VECTOR_FILES.iter().zip(kith_vectors()) {
        let recorded = match parse(file, text) {
            Ok(value) => value,
            Err(failed) => {
                out.push(failed);
                continue;
            }
        };
        let recorded_cases = super::cases(&recorded, "cases");
        let computed_cases = super::cases(&computed, "cases");
        if recorded_cases.len() != computed_cases.len() {
            out.push(VectorCheck::new(
                file,
                "cases",
                Err(format!(
                    "{} recorded cases, {} computed",
                    recorded_cases.len(),
                    computed_cases.len()
                )),
            ));
        }
        for (i, (r, c)) in recorded_cases.iter().zip(computed_cases).enumerate() {
            out.push(VectorCheck::new(
                file,
                super::case_name(r, i),
                compare(r, c),
            ));
        }
    }
    out
}

fn compare(recorded: &Value, computed: &Value) -> Result<(), String> {
    let (Some(r), Some(c)) = (recorded.as_object(), computed.as_object()) else {
        return Err("case is not an object".into());
    };
    let mut diffs = Vec::new();
    for (key, value) in c {
        match r.get(key) {
            Some(v) if v == value => {}
            Some(v) => diffs.push(format!("{key}: computed {value}, recorded {v}")),
            None => diffs.push(format!("{key}: missing from the recorded case")),
        }
    }
    if r.len() != c.len() {
        diffs.push(format!(
            "recorded case has {} fields, computed {}",
            r.len(),
            c.len()
        ));
    }
    if diffs.is_empty() {
        Ok(())
    } else {
        Err(diffs.join("; "))
    }
}

fn certificate_vectors() -> Value {
    let cases: Vec<Value> = [
        (
            [0x11u8; 32],
            [0x22u8; 16],
            [0x33u8; 32],
            "a1b2c3@relay.example",
            1_700_000_000u64,
        ),
        ([0x44; 32], [0x00; 16], [0x55; 32], "x@y", 0),
    ]
    .iter()
    .enumerate()
    .map(
        |(i, (identity_seed, device_id, device_seed, address, created_at))| {
            let identity = IdentityKey::from_bytes(identity_seed).expect("32-byte seed");
            let device = IdentityKey::from_bytes(device_seed)
                .expect("32-byte seed")
                .public_key();
            let cert = DeviceCertificate::issue(
                &identity,
                DeviceId(*device_id),
                device.to_bytes(),
                address,
                *created_at,
            )
            .expect("fixed inputs are valid");
            json!({
                "name": format!("certificate {i}"),
                "identity_seed": hex::encode(identity_seed),
                "identity_public": hex::encode(identity.public_key().to_bytes()),
                "device_id": hex::encode(device_id),
                "device_signing_seed": hex::encode(device_seed),
                "device_signature_key": hex::encode(device.to_bytes()),
                "delivery_address": address,
                "created_at": created_at,
                "encoded": hex::encode(cert.encode()),
            })
        },
    )
    .collect();
    json!({
        "description": "Device certificates (PROTOCOL.md §3): Ed25519 seeds as inputs; `encoded` is the full wire form ending in the 64-byte signature over \"kith device certificate v1\" ‖ the fields.",
        "cases": cases,
    })
}

fn fingerprint_vectors() -> Value {
    let cases: Vec<Value> = [[0x11u8; 32], [0x01; 32], [0xfe; 32]]
        .iter()
        .enumerate()
        .map(|(i, seed)| {
            let public = IdentityKey::from_bytes(seed)
                .expect("32-byte seed")
                .public_key();
            let fp = Fingerprint::of(&public);
            json!({
                "name": format!("fingerprint {i}"),
                "identity_seed": hex::encode(seed),
                "identity_public": hex::encode(public.to_bytes()),
                "fingerprint": hex::encode(fp.as_bytes()),
                "safety_number": fp.safety_number(),
                "uri": fp.to_uri(),
            })
        })
        .collect();
    json!({
        "description": "Identity fingerprints (PROTOCOL.md §2): SHA-256(\"kith identity fingerprint v1\" ‖ key), its 60-digit safety number and kith:fp1 form.",
        "cases": cases,
    })
}

fn channel_vectors() -> Value {
    let plaintext = b"kith channel vector";
    let cases: Vec<Value> = [
        ([0x61u8; 32], [0x62u8; 32], [0x63u8; 16]),
        ([0x01; 32], [0x02; 32], [0x00; 16]),
    ]
    .iter()
    .enumerate()
    .map(|(i, (inviter_secret, joiner_secret, invite_secret))| {
        let secret = InviteSecret::from_bytes(*invite_secret);
        let inviter = ChannelKey::from_secret_bytes(Role::Inviter, *inviter_secret);
        let joiner = ChannelKey::from_secret_bytes(Role::Joiner, *joiner_secret);
        let mut a = inviter
            .establish(&joiner.public_key(), &secret)
            .expect("valid keys");
        let mut b = joiner
            .establish(&inviter.public_key(), &secret)
            .expect("valid keys");
        let (i2j, j2i) = a.direction_keys(Role::Inviter);
        let (i2j, j2i) = (hex::encode(i2j), hex::encode(j2i));
        json!({
            "name": format!("channel {i}"),
            "inviter_secret": hex::encode(inviter_secret),
            "joiner_secret": hex::encode(joiner_secret),
            "invite_secret": hex::encode(invite_secret),
            "inviter_public": hex::encode(inviter.public_key()),
            "joiner_public": hex::encode(joiner.public_key()),
            "transcript": hex::encode(a.transcript_hash()),
            "key_inviter_to_joiner": i2j,
            "key_joiner_to_inviter": j2i,
            "sas": a.short_authentication_string(),
            "first_message_key": hex::encode(&first_message_key(&secret)[..]),
            "plaintext": hex::encode(plaintext),
            "sealed_inviter_to_joiner_0": hex::encode(a.seal(plaintext).expect("counter 0")),
            "sealed_joiner_to_inviter_0": hex::encode(b.seal(plaintext).expect("counter 0")),
        })
    })
    .collect();
    json!({
        "description": "Invite/link channel (PROTOCOL.md §4): X25519 secrets as inputs; keys, SAS and the first sealed message in each direction.",
        "cases": cases,
    })
}

fn invite_vectors() -> Value {
    let contact = InvitePayload {
        kind: InviteKind::Contact {
            fingerprint: Fingerprint::from_bytes([0xab; 32]),
        },
        channel_public_key: [0x09; 32],
        delivery_address: "q7w8e9@relay.example".into(),
        invite_secret: InviteSecret::from_bytes([0x5a; 16]),
        expires_at: 1_800_000_000,
    };
    let link = InvitePayload {
        kind: InviteKind::DeviceLink,
        channel_public_key: [0x0a; 32],
        delivery_address: "new@relay.example".into(),
        invite_secret: InviteSecret::from_bytes([0xa5; 16]),
        expires_at: 1_800_000_600,
    };
    let cases: Vec<Value> = [("contact", contact), ("device link", link)]
        .iter()
        .map(|(name, invite)| {
            json!({
                "name": name,
                "encoded": hex::encode(invite.encode().expect("valid address")),
                "uri": invite.to_uri().expect("valid address"),
                "https": invite.to_https_url("relay.example").expect("valid address"),
            })
        })
        .collect();
    json!({
        "description": "Invite payloads (PROTOCOL.md §4): binary form, kith:i1 URI and https fallback. Inputs: see the encoded bytes.",
        "cases": cases,
    })
}

fn media_vectors() -> Value {
    let base = [0x0fu8; 16];
    let cases: Vec<Value> = [(5u64, 0u32, 1u64), (261, 3, 1000), (7, 1000, 0)]
        .iter()
        .map(|(epoch, leaf, ctr)| {
            let kid = sframe_key_id(*epoch, *leaf);
            let keys = SframeKeys::derive(&SframeBaseKey::from_bytes(base), kid);
            json!({
                "name": format!("epoch {epoch} leaf {leaf}"),
                "base_key": hex::encode(base),
                "epoch": epoch,
                "leaf_index": leaf,
                "kid": kid,
                "sframe_key": hex::encode(keys.key_bytes()),
                "sframe_salt": hex::encode(keys.salt_bytes()),
                "ctr": ctr,
                "frame": hex::encode(keys.seal_frame(*ctr, b"", b"opus frame")),
            })
        })
        .collect();
    json!({
        "description": "Media keys (PROTOCOL.md §9): KID = leaf << 8 | epoch mod 256; SFrame suite 0x0004 key, salt and a sealed frame of \"opus frame\" with empty metadata.",
        "cases": cases,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checks every known-answer vector; with `KITH_WRITE_VECTORS=1`, first rewrites Kith's
    /// own vector files from this build (then the check still runs, on the next build).
    #[test]
    fn all_known_answer_vectors_pass() {
        if std::env::var_os("KITH_WRITE_VECTORS").is_some() {
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("vectors");
            for (file, value) in kith_vectors() {
                let text = serde_json::to_string_pretty(&value).expect("JSON") + "\n";
                std::fs::write(dir.join(file), text).expect("write vector file");
            }
        }
        let results = super::super::check_all();
        let failed: Vec<_> = results.iter().filter(|r| !r.passed).collect();
        assert!(failed.is_empty(), "failed vectors: {failed:#?}");
        assert!(results.len() >= 30, "only {} vectors ran", results.len());
    }
}
