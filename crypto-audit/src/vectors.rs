//! The registry of known-answer vector suites that `kith-audit vectors` runs.
//!
//! Each module that has vectors contributes one [`VectorSuite`] line to [`SUITES`]: the
//! name of its JSON file in `crypto-audit/vectors/` and a function that checks the file's
//! text and returns how many cases passed. The library does no I/O: the binary reads the
//! files and passes their text in.

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

/// Every suite, one line per module.
pub const SUITES: &[VectorSuite] = &[
    crate::envelope::vectors::SUITE,
    crate::backup::vectors::SUITE,
];
