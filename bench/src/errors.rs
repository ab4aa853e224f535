//! Error types of the generator's own parsers (the network side reports through anyhow).
use std::path::PathBuf;

/// Reading the accounts file or handing out accounts.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum AccountsError {
    /// The accounts file could not be read.
    #[error("cannot read accounts file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A line is not `address:password`.
    #[error("accounts file line {line} is not address:password")]
    BadLine {
        /// 1-based line number.
        line: usize,
    },
    /// The scenario needs more accounts than the file has left.
    #[error("need {needed} more accounts but only {available} of the file's {total} are left")]
    NotEnough {
        /// How many were asked for.
        needed: usize,
        /// How many are left.
        available: usize,
        /// How many the file held.
        total: usize,
    },
}

/// Reading a process's memory or limits from /proc.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum ProcError {
    /// A /proc file could not be read (the process may have exited).
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A /proc file lacks the field we need.
    #[error("{path} has no {field} field")]
    MissingField {
        /// The file.
        path: PathBuf,
        /// The field looked for.
        field: &'static str,
    },
}
