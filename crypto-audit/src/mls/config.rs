//! The openmls group settings every Kith group uses.
use openmls::prelude::{
    Capabilities, Ciphersuite, ExtensionType, Extensions, GroupContext, MlsGroupCreateConfig,
    MlsGroupCreateConfigBuilder, MlsGroupJoinConfig, SenderRatchetConfiguration,
    MIXED_PLAINTEXT_WIRE_FORMAT_POLICY,
};

use super::credential::seeded_lifetime;
use super::provider::KithProvider;

/// The only ciphersuite Kith uses: MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519 (0x0001).
pub const CIPHERSUITE: Ciphersuite = Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;

/// The private-use group-context extension that lists a Kith group's admin devices
/// (`docs/groups.md`, "Admins"). Every Kith leaf lists it in its capabilities, because
/// openmls admits a leaf into a group only if it supports every group-context extension.
pub const ADMINS_EXTENSION_TYPE: u16 = 0xF4B2;

/// The capabilities of every Kith leaf: openmls's defaults plus [`ADMINS_EXTENSION_TYPE`]
/// (and `LastResort` for a last-resort KeyPackage, which must list its own extension).
pub fn leaf_capabilities(last_resort: bool) -> Capabilities {
    let mut extensions = vec![ExtensionType::Unknown(ADMINS_EXTENSION_TYPE)];
    if last_resort {
        extensions.push(ExtensionType::LastResort);
    }
    Capabilities::new(None, None, Some(&extensions), None, None)
}

/// How many past epochs' message secrets a member keeps, so that application messages sent
/// before a commit still decrypt when they arrive after it — also those of a device that
/// was offline while the group moved on. Equal to kith-core's `DETECT_EPOCHS` (32), the
/// epochs it keeps envelope keys for; 8 lost such messages (openmls defaults to 0).
pub const MAX_PAST_EPOCHS: usize = 32;

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
    group_create_config_with(provider, Extensions::empty())
}

/// [`group_create_config_for`] with these group-context extensions (Kith's admin list).
pub fn group_create_config_with(
    provider: &KithProvider<'_>,
    context_extensions: Extensions<GroupContext>,
) -> MlsGroupCreateConfig {
    let builder = create_config_builder().with_group_context_extensions(context_extensions);
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
        .capabilities(leaf_capabilities(false))
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
