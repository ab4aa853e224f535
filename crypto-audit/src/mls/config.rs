//! The openmls group settings every Kith group uses.
use openmls::prelude::{
    Ciphersuite, MlsGroupCreateConfig, MlsGroupCreateConfigBuilder, MlsGroupJoinConfig,
    SenderRatchetConfiguration, MIXED_PLAINTEXT_WIRE_FORMAT_POLICY,
};

use super::credential::seeded_lifetime;
use super::provider::KithProvider;

/// The only ciphersuite Kith uses: MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519 (0x0001).
pub const CIPHERSUITE: Ciphersuite = Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;

/// How many past epochs' message secrets a member keeps, so that application messages sent
/// just before a commit still decrypt when they arrive after it. Equal to the fork-choice
/// horizon H = 8 in DESIGN.md (openmls defaults to 0).
pub const MAX_PAST_EPOCHS: usize = 8;

/// Sender-ratchet out-of-order tolerance: how many generations behind the newest one seen a
/// message may still arrive (openmls defaults to 5; IMAP reorders).
pub const OUT_OF_ORDER_TOLERANCE: u32 = 100;

/// Sender-ratchet maximum forward distance: how many generations a message may skip ahead
/// (openmls defaults to 1000).
pub const MAXIMUM_FORWARD_DISTANCE: u32 = 5000;

/// openmls pads the content of every PrivateMessage to a multiple of this many bytes. The
/// envelope pads again to coarse size buckets; this only hides small length differences
/// inside the MLS ciphertext.
pub const PADDING_SIZE: usize = 32;

/// The most members one commit may add: adding N members in one commit costs super-linear
/// time in openmls (1,000 ≈ 0.4 s, 10,000 ≈ 68 s measured), so adds are batched.
pub const MAX_ADDS_PER_COMMIT: usize = 1000;

/// The configuration for creating a new group: ciphersuite 0x0001, commits and proposals as
/// PublicMessage, application messages as PrivateMessage (openmls always encrypts those),
/// incoming messages of either form, [`MAX_PAST_EPOCHS`], the sender-ratchet tolerances,
/// [`PADDING_SIZE`], and the ratchet tree carried in the Welcome.
pub fn group_create_config() -> MlsGroupCreateConfig {
    create_config_builder().build()
}

/// [`group_create_config`] for a group created through `provider`. A
/// [`KithProvider::seeded`] provider gives the creator's leaf the fixed
/// [`SEEDED_KEY_PACKAGE_LIFETIME`](super::SEEDED_KEY_PACKAGE_LIFETIME) instead of one read
/// from the wall clock (which would leak into the tree hash and every epoch secret, so a
/// replay would differ); any other provider gets exactly [`group_create_config`].
pub fn group_create_config_for(provider: &KithProvider<'_>) -> MlsGroupCreateConfig {
    let builder = create_config_builder();
    if provider.is_seeded() {
        builder.lifetime(seeded_lifetime()).build()
    } else {
        builder.build()
    }
}

fn create_config_builder() -> MlsGroupCreateConfigBuilder {
    MlsGroupCreateConfig::builder()
        .ciphersuite(CIPHERSUITE)
        .wire_format_policy(MIXED_PLAINTEXT_WIRE_FORMAT_POLICY)
        .padding_size(PADDING_SIZE)
        .max_past_epochs(MAX_PAST_EPOCHS)
        .sender_ratchet_configuration(sender_ratchet())
        .use_ratchet_tree_extension(true)
}

/// The configuration for joining a group from a Welcome: the same settings as
/// [`group_create_config`].
pub fn group_join_config() -> MlsGroupJoinConfig {
    MlsGroupJoinConfig::builder()
        .wire_format_policy(MIXED_PLAINTEXT_WIRE_FORMAT_POLICY)
        .padding_size(PADDING_SIZE)
        .max_past_epochs(MAX_PAST_EPOCHS)
        .sender_ratchet_configuration(sender_ratchet())
        .use_ratchet_tree_extension(true)
        .build()
}

fn sender_ratchet() -> SenderRatchetConfiguration {
    SenderRatchetConfiguration::new(OUT_OF_ORDER_TOLERANCE, MAXIMUM_FORWARD_DISTANCE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use openmls::prelude::{IncomingWireFormatPolicy, OutgoingWireFormatPolicy};

    #[test]
    fn create_and_join_configs_agree() {
        let create = group_create_config();
        let join = group_join_config();
        assert_eq!(create.join_config(), &join);
        assert_eq!(create.ciphersuite(), CIPHERSUITE);
        assert_eq!(u16::from(create.ciphersuite()), 0x0001);
        assert_eq!(create.max_past_epochs(), Some(MAX_PAST_EPOCHS));
        assert!(create.use_ratchet_tree_extension());
        let policy = join.wire_format_policy();
        assert_eq!(policy.outgoing(), OutgoingWireFormatPolicy::AlwaysPlaintext);
        assert_eq!(policy.incoming(), IncomingWireFormatPolicy::Mixed);
        let ratchet = join.sender_ratchet_configuration();
        assert_eq!(ratchet.out_of_order_tolerance(), 100);
        assert_eq!(ratchet.maximum_forward_distance(), 5000);
        assert_eq!(join.padding_size(), PADDING_SIZE);
    }
}
