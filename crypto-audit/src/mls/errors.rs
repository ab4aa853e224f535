//! Errors of the MLS configuration area.
use thiserror::Error;

/// What can go wrong setting up MLS state or exporting from an epoch.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum MlsSetupError {
    /// Creating or upgrading openmls's SQLite tables failed.
    #[error("could not migrate the MLS storage tables: {0}")]
    StorageMigration(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// openmls refused to export a secret from the current epoch (the group is inactive).
    #[error("could not export a secret from the MLS epoch: {0}")]
    Export(#[from] openmls::prelude::ExportSecretError),
    /// The device signing key bytes are not a valid Ed25519 secret key.
    #[error("a device signing key must be {expected} bytes, got {actual}")]
    SigningKeyLength {
        /// The required length.
        expected: usize,
        /// The length given.
        actual: usize,
    },
}
