//! Known-answer tests: the RFC vectors of every primitive Kith uses, and vectors of Kith's
//! own constructions, all checked in under `crypto-audit/vectors/`. Each `check_*` function
//! takes a file's text and returns one [`VectorCheck`] per case; [`SUITES`] adapts them to
//! the `kith-audit vectors` registry ([`crate::vectors`]), and [`check_all`] runs them on
//! the copies compiled into the crate (no file I/O here).
//!
//! Kith's own vectors were generated once from fixed inputs by [`kith_vectors`] and checked
//! in; any change to a derivation or an encoding makes its check fail loudly. To regenerate
//! them deliberately (after a versioned protocol change), run the crate's tests with
//! `KITH_WRITE_VECTORS=1` and review the diff.
mod kith;
mod rfc;

pub use kith::{check_kith_file, kith_vectors, KITH_VECTOR_FILES};
pub use rfc::{check_rfc5869, check_rfc7748, check_rfc8032, check_rfc8439, check_rfc9605};

use serde_json::Value;

use crate::vectors::VectorSuite;
use kith::{CERTIFICATE_FILE, CHANNEL_FILE, FINGERPRINT_FILE, INVITE_FILE, MEDIA_FILE};
use rfc::{CHACHA_FILE, ED25519_FILE, HKDF_FILE, SFRAME_FILE, X25519_FILE};

/// The outcome of one known-answer case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VectorCheck {
    /// The vector file the case comes from (under `crypto-audit/vectors/`).
    pub file: &'static str,
    /// The case's name within the file.
    pub case: String,
    /// Whether the computed values equal the recorded ones.
    pub passed: bool,
    /// On failure, what differed; empty on success.
    pub detail: String,
}

impl VectorCheck {
    fn new(file: &'static str, case: impl Into<String>, result: Result<(), String>) -> Self {
        let (passed, detail) = match result {
            Ok(()) => (true, String::new()),
            Err(detail) => (false, detail),
        };
        Self {
            file,
            case: case.into(),
            passed,
            detail,
        }
    }
}

/// Runs every known-answer test this module holds (RFC primitives and Kith's own) on the
/// vector files as compiled into this build.
pub fn check_all() -> Vec<VectorCheck> {
    let mut all = Vec::new();
    all.extend(check_rfc7748(include_str!(
        "../../vectors/rfc7748-x25519.json"
    )));
    all.extend(check_rfc5869(include_str!(
        "../../vectors/rfc5869-hkdf-sha256.json"
    )));
    all.extend(check_rfc8032(include_str!(
        "../../vectors/rfc8032-ed25519.json"
    )));
    all.extend(check_rfc8439(include_str!(
        "../../vectors/rfc8439-chacha20poly1305.json"
    )));
    all.extend(check_rfc9605(include_str!(
        "../../vectors/rfc9605-sframe.json"
    )));
    for (file, text) in [
        (
            CERTIFICATE_FILE,
            include_str!("../../vectors/kith-certificate.json"),
        ),
        (
            FINGERPRINT_FILE,
            include_str!("../../vectors/kith-fingerprint.json"),
        ),
        (
            CHANNEL_FILE,
            include_str!("../../vectors/kith-channel.json"),
        ),
        (INVITE_FILE, include_str!("../../vectors/kith-invite.json")),
        (MEDIA_FILE, include_str!("../../vectors/kith-media.json")),
    ] {
        all.extend(check_kith_file(file, text));
    }
    all
}

/// This module's vector files as `kith-audit vectors` suites.
pub const SUITES: [VectorSuite; 10] = [
    suite("x25519", X25519_FILE, |t| summarize(check_rfc7748(t)), None),
    suite("hkdf", HKDF_FILE, |t| summarize(check_rfc5869(t)), None),
    suite(
        "ed25519",
        ED25519_FILE,
        |t| summarize(check_rfc8032(t)),
        None,
    ),
    suite(
        "chacha-poly",
        CHACHA_FILE,
        |t| summarize(check_rfc8439(t)),
        None,
    ),
    suite("sframe", SFRAME_FILE, |t| summarize(check_rfc9605(t)), None),
    suite(
        "certificate",
        CERTIFICATE_FILE,
        |t| summarize(check_kith_file(CERTIFICATE_FILE, t)),
        Some(|| kith::generate(CERTIFICATE_FILE)),
    ),
    suite(
        "fingerprint",
        FINGERPRINT_FILE,
        |t| summarize(check_kith_file(FINGERPRINT_FILE, t)),
        Some(|| kith::generate(FINGERPRINT_FILE)),
    ),
    suite(
        "channel",
        CHANNEL_FILE,
        |t| summarize(check_kith_file(CHANNEL_FILE, t)),
        Some(|| kith::generate(CHANNEL_FILE)),
    ),
    suite(
        "invite",
        INVITE_FILE,
        |t| summarize(check_kith_file(INVITE_FILE, t)),
        Some(|| kith::generate(INVITE_FILE)),
    ),
    suite(
        "media",
        MEDIA_FILE,
        |t| summarize(check_kith_file(MEDIA_FILE, t)),
        Some(|| kith::generate(MEDIA_FILE)),
    ),
];

const fn suite(
    name: &'static str,
    file: &'static str,
    check: fn(&str) -> Result<usize, String>,
    generate: Option<fn() -> Result<String, String>>,
) -> VectorSuite {
    VectorSuite {
        name,
        file,
        check,
        generate,
    }
}

/// The number of cases if all passed, else what failed.
fn summarize(checks: Vec<VectorCheck>) -> Result<usize, String> {
    let failed: Vec<String> = checks
        .iter()
        .filter(|c| !c.passed)
        .map(|c| format!("{}: {}", c.case, c.detail))
        .collect();
    if failed.is_empty() {
        Ok(checks.len())
    } else {
        Err(failed.join("; "))
    }
}

/// Parses a checked-in vector file; a broken file becomes one failed check.
fn parse(file: &'static str, text: &str) -> Result<Value, VectorCheck> {
    serde_json::from_str(text)
        .map_err(|e| VectorCheck::new(file, "parse", Err(format!("invalid JSON: {e}"))))
}

/// The cases under `key`, or an empty list.
fn cases<'a>(value: &'a Value, key: &str) -> &'a [Value] {
    value
        .get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// A hex field of a case.
fn hex_field(case: &Value, key: &str) -> Result<Vec<u8>, String> {
    let text = case
        .get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("missing field {key}"))?;
    hex::decode(text).map_err(|e| format!("field {key} is not hex: {e}"))
}

/// A fixed-size hex field of a case.
fn hex_array<const N: usize>(case: &Value, key: &str) -> Result<[u8; N], String> {
    hex_field(case, key)?
        .try_into()
        .map_err(|v: Vec<u8>| format!("field {key} has {} bytes, expected {N}", v.len()))
}

/// An integer field of a case.
fn u64_field(case: &Value, key: &str) -> Result<u64, String> {
    case.get(key)
        .and_then(Value::as_u64)
        .ok_or_else(|| format!("missing integer field {key}"))
}

/// Compares a computed value with the recorded one.
fn expect_eq(what: &str, computed: &[u8], recorded: &[u8]) -> Result<(), String> {
    if computed == recorded {
        Ok(())
    } else {
        Err(format!(
            "{what}: computed {}, recorded {}",
            hex::encode(computed),
            hex::encode(recorded)
        ))
    }
}

/// The case name: its `name` field, or its position.
fn case_name(case: &Value, index: usize) -> String {
    case.get("name")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| format!("#{index}"))
}
