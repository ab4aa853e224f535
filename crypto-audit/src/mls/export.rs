//! Secrets Kith exports from an MLS epoch with `MLS-Exporter` (RFC 9420 §8.5).
use openmls::prelude::{MlsGroup, OpenMlsCrypto};
use zeroize::Zeroizing;

use super::errors::MlsSetupError;

/// The exporter label of the epoch's envelope key (the SKESK password of group envelopes).
pub const ENVELOPE_KEY_LABEL: &str = "kith envelope key v1";
/// The exporter label of the epoch id: a public 32-byte name of the epoch on this branch.
pub const EPOCH_ID_LABEL: &str = "kith epoch id v1";

/// The secrets Kith exports from an epoch. Each has its own label, so learning one (the
/// epoch id is sent in clear inside frames) says nothing about another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EpochExport {
    /// The 32-byte key that seals group envelopes in this epoch.
    EnvelopeKey,
    /// The 32-byte epoch id that names the epoch and its branch (it differs between forks).
    EpochId,
}

impl EpochExport {
    /// The exporter label of this secret.
    pub fn label(self) -> &'static str {
        match self {
            EpochExport::EnvelopeKey => ENVELOPE_KEY_LABEL,
            EpochExport::EpochId => EPOCH_ID_LABEL,
        }
    }
}

/// `MLS-Exporter(label, "", 32)` from the group's current epoch.
pub fn export_epoch_key(
    group: &MlsGroup,
    crypto: &impl OpenMlsCrypto,
    export: EpochExport,
) -> Result<Zeroizing<[u8; 32]>, MlsSetupError> {
    let secret = Zeroizing::new(group.export_secret(crypto, export.label(), &[], 32)?);
    let mut key = Zeroizing::new([0u8; 32]);
    key.copy_from_slice(&secret);
    Ok(key)
}

/// The current epoch's id (`MLS-Exporter("kith epoch id v1", "", 32)`), public by design.
pub fn epoch_id(group: &MlsGroup, crypto: &impl OpenMlsCrypto) -> Result<[u8; 32], MlsSetupError> {
    Ok(*export_epoch_key(group, crypto, EpochExport::EpochId)?)
}
