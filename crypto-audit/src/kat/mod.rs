//! Known-answer tests: the RFC vectors of every primitive Kith uses, and vectors of Kith's
//! own constructions, all checked in under `crypto-audit/vectors/` and compiled into the
//! crate (no file I/O here). Each `check_*` function returns one [`VectorCheck`] per case,
//! so the `kith-audit vectors` command can print a pass/fail table.
//!
//! Kith's own vectors were generated once from fixed inputs by [`kith_vectors`] and checked
//! in; any change to a derivation or an encoding makes its check fail loudly. To regenerate
//! them deliberately (after a versioned protocol change), run the crate's tests with
//! `KITH_WRITE_VECTORS=1` and review the diff.
mod kith;
mod rfc;

pub use kith::{kith_vectors, KITH_VECTOR_FILES};
pub use rfc::{check_rfc5869, check_rfc7748, check_rfc8032, check_rfc8439, check_rfc9605};

use serde_json::Value;

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

/// Runs every known-answer test this module holds (RFC primitives and Kith's own).
pub fn check_all() -> Vec<VectorCheck> {
    let mut all = Vec::new();
    all.extend(check_rfc7748());
    all.extend(check_rfc5869());
    all.extend(check_rfc8032());
    all.extend(check_rfc8439());
    all.extend(check_rfc9605());
    all.extend(kith::check_kith());
    all
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
