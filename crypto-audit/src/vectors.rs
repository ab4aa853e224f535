//! The registry of known-answer vector suites that `kith-audit vectors` runs.
//!
//! Two kinds of entry, one line per module:
//! - [`SUITES`]: a JSON file in `crypto-audit/vectors/` read by the binary (so an auditor
//!   can edit a file and watch the check fail) and a function that checks its text and
//!   returns how many cases passed. The library does no I/O: the binary passes the text in.
//! - [`COMPILED_SUITES`]: functions whose vectors are compiled into the crate
//!   (`include_str!`) and that return one [`VectorCheck`] per case (the RFC primitives and
//!   the identity, channel, invite and media vectors in `kat/`).

/// One vector file and the function that checks it.
#[derive(Clone, Copy, Debug)]
pub struct VectorSuite {
    /// Short name shown in the pass/fail table.
    pub name: &'static str,
    /// File name under `crypto-audit/vectors/`.
    pub file: &'static str,
    /// Checks the file's JSON text; returns the number of cases checked, or what failed.
    pub check: fn(&str) -> Result<usize, String>,
    /// Regenerates the file's JSON text (fresh randomness where sequoia draws its own).
    /// Only for creating the file once; a check-in of new output must be deliberate.
    pub generate: Option<fn() -> Result<String, String>>,
}

pub use crate::kat::VectorCheck;

/// Suites whose vector text is compiled in; each returns one result per case.
pub const COMPILED_SUITES: &[fn() -> Vec<VectorCheck>] = &[crate::kat::check_all];

/// Every file-based suite, one line per module.
pub const SUITES: &[VectorSuite] = &[
    crate::envelope::vectors::SUITE,
    crate::backup::vectors::SUITE,
];

/// Compares a recomputed value with the recorded one, naming what differed.
pub(crate) fn expect_eq<T: PartialEq + std::fmt::Debug>(
    what: &str,
    got: T,
    want: T,
) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        Err(format!("{what}: got {got:?}, want {want:?}"))
    }
}
