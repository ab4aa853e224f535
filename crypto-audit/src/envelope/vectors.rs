//! Known-answer vectors for the envelope: derivations, hints, frames, buckets, dates, and
//! sealed envelopes that must keep opening (`vectors/envelope.json`).

use crate::vectors::expect_eq;
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use super::hint::message_id_local;
use super::keys::{DeviceKeypair, OpenKey, SealKey, SymmetricKey, SymmetricKind};
use super::mime::rfc5322_hour;
use super::{check_envelope, open, seal};
use crate::frame::{Frame, FrameKind};
use crate::padding::bucket_len;
use crate::vectors::VectorSuite;

/// The envelope suite for the registry.
pub(crate) const SUITE: VectorSuite = VectorSuite {
    name: "envelope",
    file: "envelope.json",
    check,
    generate: Some(generate),
};

#[derive(Serialize, Deserialize)]
struct File {
    description: String,
    derivations: Vec<Derivation>,
    device_keys: Vec<DeviceVector>,
    hints: Vec<HintVector>,
    frames: Vec<FrameVector>,
    buckets: Vec<(usize, usize)>,
    dates: Vec<(u64, String)>,
    envelopes: Vec<EnvelopeVector>,
}

#[derive(Serialize, Deserialize)]
struct Derivation {
    kind: String,
    key: String,
    skesk_password: String,
    hint_key: String,
}

#[derive(Serialize, Deserialize)]
struct DeviceVector {
    secret: String,
    public: String,
    hint_key: String,
}

#[derive(Serialize, Deserialize)]
struct HintVector {
    hint_key: String,
    nonce: String,
    message_id_local: String,
}

#[derive(Serialize, Deserialize)]
struct FrameVector {
    kind: u8,
    payload: String,
    encoded: String,
}

#[derive(Serialize, Deserialize)]
struct EnvelopeVector {
    /// "epoch", "invite" or "device".
    key_kind: String,
    /// The symmetric key, or the device's secret key.
    key: String,
    rng_seed: u64,
    from: String,
    now_unix: u64,
    frame_kind: u8,
    payload: String,
    message_id_local: String,
    message: String,
}

fn kind_of(name: &str) -> Result<SymmetricKind, String> {
    match name {
        "epoch" => Ok(SymmetricKind::Epoch),
        "invite" => Ok(SymmetricKind::Invite),
        other => Err(format!("unknown kind {other}")),
    }
}

fn key32(hex_text: &str) -> Result<[u8; 32], String> {
    hex::decode(hex_text)
        .map_err(|e| e.to_string())?
        .try_into()
        .map_err(|_| "key is not 32 bytes".to_owned())
}

fn frame_kind(value: u8) -> Result<FrameKind, String> {
    FrameKind::from_u8(value).ok_or_else(|| format!("unknown frame kind {value}"))
}

/// Checks `vectors/envelope.json`.
pub(crate) fn check(json: &str) -> Result<usize, String> {
    let file: File = serde_json::from_str(json).map_err(|e| e.to_string())?;
    let mut cases = 0;
    for d in &file.derivations {
        let key = SymmetricKey::new(kind_of(&d.kind)?, key32(&d.key)?);
        expect_eq(
            "skesk password",
            hex::encode(&*key.skesk_password()),
            d.skesk_password.clone(),
        )?;
        expect_eq(
            "hint key",
            hex::encode(&*key.hint_key()),
            d.hint_key.clone(),
        )?;
        cases += 1;
    }
    for d in &file.device_keys {
        let pair = DeviceKeypair::from_secret_bytes(key32(&d.secret)?);
        expect_eq(
            "device public",
            hex::encode(pair.public().to_bytes()),
            d.public.clone(),
        )?;
        expect_eq(
            "device hint key",
            hex::encode(&*pair.public().hint_key()),
            d.hint_key.clone(),
        )?;
        cases += 1;
    }
    for h in &file.hints {
        let key = hex::decode(&h.hint_key).map_err(|e| e.to_string())?;
        let nonce: [u8; 16] = hex::decode(&h.nonce)
            .map_err(|e| e.to_string())?
            .try_into()
            .map_err(|_| "nonce is not 16 bytes".to_owned())?;
        expect_eq(
            "hint",
            message_id_local(&key, &nonce),
            h.message_id_local.clone(),
        )?;
        cases += 1;
    }
    for f in &file.frames {
        let frame = Frame {
            kind: frame_kind(f.kind)?,
            payload: hex::decode(&f.payload).map_err(|e| e.to_string())?,
        };
        let encoded = frame.encode().map_err(|e| e.to_string())?;
        expect_eq("frame encoding", hex::encode(&encoded), f.encoded.clone())?;
        expect_eq(
            "frame decoding",
            Frame::decode(&encoded).as_ref(),
            Ok(&frame),
        )?;
        cases += 1;
    }
    for (len, bucket) in &file.buckets {
        expect_eq("bucket", bucket_len(*len), *bucket)?;
        cases += 1;
    }
    for (unix, date) in &file.dates {
        expect_eq("date", rfc5322_hour(*unix), date.clone())?;
        cases += 1;
    }
    for e in &file.envelopes {
        check_envelope_vector(e)?;
        cases += 1;
    }
    Ok(cases)
}

/// A stored envelope must still pass the filter and open to its frame; sealing again with
/// the same inputs must give the same Message-ID and the same length.
fn check_envelope_vector(e: &EnvelopeVector) -> Result<(), String> {
    let message = e.message.as_bytes();
    check_envelope(message).map_err(|err| format!("stored envelope: {err}"))?;
    let frame = Frame {
        kind: frame_kind(e.frame_kind)?,
        payload: hex::decode(&e.payload).map_err(|err| err.to_string())?,
    };
    let key = key32(&e.key)?;
    let (opened, resealed) = if e.key_kind == "device" {
        let pair = DeviceKeypair::from_secret_bytes(key);
        let public = pair.public();
        let opened = open(message, OpenKey::Device(&pair));
        (opened, reseal(e, &frame, SealKey::Device(&public))?)
    } else {
        let sym = SymmetricKey::new(kind_of(&e.key_kind)?, key);
        let opened = open(message, OpenKey::Symmetric(&sym));
        (opened, reseal(e, &frame, SealKey::Symmetric(&sym))?)
    };
    expect_eq(
        "opened frame",
        opened.map_err(|err| err.to_string()),
        Ok(frame),
    )?;
    let id = format!("Message-ID: <{}@", e.message_id_local);
    let resealed_text = String::from_utf8_lossy(&resealed).into_owned();
    expect_eq("message id", resealed_text.contains(&id), true)?;
    expect_eq("stored message id", e.message.contains(&id), true)?;
    expect_eq("sealed length", resealed.len(), message.len())
}

fn reseal(e: &EnvelopeVector, frame: &Frame, key: SealKey<'_>) -> Result<Vec<u8>, String> {
    let mut rng = StdRng::seed_from_u64(e.rng_seed);
    seal(frame, key, &e.from, e.now_unix, &mut rng).map_err(|err| err.to_string())
}

/// Generates the file once (the sealed ciphertexts use sequoia's own randomness).
pub(crate) fn generate() -> Result<String, String> {
    let device_secret = [0x33u8; 32];
    let envelopes = vec![
        envelope_vector("epoch", [0x11; 32], 1, b"group message".to_vec())?,
        envelope_vector("invite", [0x22; 32], 2, b"invite handshake".to_vec())?,
        envelope_vector("device", device_secret, 3, vec![0x77; 1500])?,
    ];
    let file = File {
        description: "Kith envelope known-answer vectors; see PROTOCOL.md sections 5-6.".into(),
        derivations: generate_derivations()?,
        device_keys: vec![generate_device(device_secret)],
        hints: vec![generate_hint([0x44; 32], [0x55; 16])],
        frames: generate_frames()?,
        buckets: [0usize, 1, 511, 512, 513, 1000, 4097, 65_542, 1_000_000]
            .into_iter()
            .map(|len| (len, bucket_len(len)))
            .collect(),
        dates: [0u64, 1_800_000_123, 1_793_559_599]
            .into_iter()
            .map(|t| (t, rfc5322_hour(t)))
            .collect(),
        envelopes,
    };
    serde_json::to_string_pretty(&file).map_err(|e| e.to_string())
}

fn generate_derivations() -> Result<Vec<Derivation>, String> {
    let keys: [(&str, [u8; 32]); 3] = [
        ("epoch", [0x11; 32]),
        ("invite", [0x22; 32]),
        ("epoch", core::array::from_fn(|i| i as u8)),
    ];
    keys.iter()
        .map(|(kind, bytes)| {
            let key = SymmetricKey::new(kind_of(kind)?, *bytes);
            Ok(Derivation {
                kind: (*kind).to_owned(),
                key: hex::encode(bytes),
                skesk_password: hex::encode(&*key.skesk_password()),
                hint_key: hex::encode(&*key.hint_key()),
            })
        })
        .collect()
}

fn generate_device(secret: [u8; 32]) -> DeviceVector {
    let public = DeviceKeypair::from_secret_bytes(secret).public();
    DeviceVector {
        secret: hex::encode(secret),
        public: hex::encode(public.to_bytes()),
        hint_key: hex::encode(&*public.hint_key()),
    }
}

fn generate_hint(hint_key: [u8; 32], nonce: [u8; 16]) -> HintVector {
    HintVector {
        hint_key: hex::encode(hint_key),
        nonce: hex::encode(nonce),
        message_id_local: message_id_local(&hint_key, &nonce),
    }
}

fn generate_frames() -> Result<Vec<FrameVector>, String> {
    [
        (1u8, b"".to_vec()),
        (2, b"hello".to_vec()),
        (3, vec![0xEE; 600]),
    ]
    .into_iter()
    .map(|(kind, payload)| {
        let frame = Frame {
            kind: frame_kind(kind)?,
            payload: payload.clone(),
        };
        Ok(FrameVector {
            kind,
            payload: hex::encode(&payload),
            encoded: hex::encode(frame.encode().map_err(|e| e.to_string())?),
        })
    })
    .collect()
}

fn envelope_vector(
    key_kind: &str,
    key: [u8; 32],
    rng_seed: u64,
    payload: Vec<u8>,
) -> Result<EnvelopeVector, String> {
    let mut e = EnvelopeVector {
        key_kind: key_kind.to_owned(),
        key: hex::encode(key),
        rng_seed,
        from: "q3v8k2m7@relay.example".to_owned(),
        now_unix: 1_800_000_123,
        frame_kind: 1,
        payload: hex::encode(&payload),
        message_id_local: String::new(),
        message: String::new(),
    };
    let frame = Frame {
        kind: FrameKind::Mls,
        payload,
    };
    let sealed = if key_kind == "device" {
        let public = DeviceKeypair::from_secret_bytes(key).public();
        reseal(&e, &frame, SealKey::Device(&public))?
    } else {
        let sym = SymmetricKey::new(kind_of(key_kind)?, key);
        reseal(&e, &frame, SealKey::Symmetric(&sym))?
    };
    e.message = String::from_utf8(sealed).map_err(|err| err.to_string())?;
    let id_start = e.message.find("Message-ID: <").ok_or("no Message-ID")? + 13;
    let id_end = e.message[id_start..]
        .find('@')
        .ok_or("no @ in Message-ID")?
        + id_start;
    e.message_id_local = e.message[id_start..id_end].to_owned();
    Ok(e)
}

#[cfg(test)]
mod tests {
    #[test]
    fn checked_in_vectors_pass() {
        let json = include_str!("../../vectors/envelope.json");
        let cases = super::check(json).expect("envelope vectors pass");
        assert!(cases >= 20, "only {cases} cases");
    }

    #[test]
    fn a_changed_derivation_fails_loudly() {
        let json = include_str!("../../vectors/envelope.json");
        let mut value: serde_json::Value = serde_json::from_str(json).expect("valid JSON");
        value["derivations"][0]["hint_key"] = serde_json::Value::String("00".repeat(32));
        let err = super::check(&value.to_string()).expect_err("a wrong hint key fails");
        assert!(err.contains("hint key"), "{err}");
    }
}
