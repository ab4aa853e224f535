//! The openmls group settings every Kith group uses.
use openmls::prelude::{
    Ciphersuite, MlsGroupCreateConfig, MlsGroupJoinConfig, SenderRatchetConfiguration,
    MIXED_PLAINTEXT_WIRE_FORMAT_POLICY,
};

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

/// The configuration for creating a new group: ciphersuite 0x0001, commits and proposals as
/// PublicMessage, application messages as PrivateMessage (openmls always encrypts those),
/// incoming messages of either form, [`MAX_PAST_EPOCHS`], the sender-ratchet tolerances,
/// [`PADDING_SIZE`], and the ratchet tree carried in the Welcome.
pub fn group_create_config() -> MlsGroupCreateConfig {
    MlsGroupCreateConfig::builder()
        .ciphersuite(CIPHERSUITE)
        .wire_format_policy(MIXED_PLAINTEXT_WIRE_FORMAT_POLICY)
        .padding_size(PADDING_SIZE)
        .max_past_epochs(MAX_PAST_EPOCHS)
        .sender_ratchet_configuration(sender_ratchet())
        .use_ratchet_tree_extension(true)
        .build()
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
