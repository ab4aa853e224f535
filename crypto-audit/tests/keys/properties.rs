use kith_crypto::certificate::{DeviceCertificate, DeviceId};
use kith_crypto::channel::{ChannelKey, Role};
use kith_crypto::fingerprint::Fingerprint;
use kith_crypto::identity::IdentityKey;
use kith_crypto::invite::{InviteKind, InvitePayload, InviteSecret};
use proptest::prelude::*;

fn certificate(
    seed: [u8; 32],
    device_seed: [u8; 32],
    id: [u8; 16],
    address: &str,
    at: u64,
) -> (IdentityKey, DeviceCertificate) {
    let identity = IdentityKey::from_bytes(&seed).expect("32 bytes");
    let device = IdentityKey::from_bytes(&device_seed)
        .expect("32 bytes")
        .public_key()
        .to_bytes();
    let cert =
        DeviceCertificate::issue(&identity, DeviceId(id), device, address, at).expect("valid");
    (identity, cert)
}

fn channels(
    a: [u8; 32],
    b: [u8; 32],
    s: [u8; 16],
) -> Option<(kith_crypto::channel::Channel, kith_crypto::channel::Channel)> {
    let secret = InviteSecret::from_bytes(s);
    let inviter = ChannelKey::from_secret_bytes(Role::Inviter, a);
    let joiner = ChannelKey::from_secret_bytes(Role::Joiner, b);
    Some((
        inviter.establish(&joiner.public_key(), &secret).ok()?,
        joiner.establish(&inviter.public_key(), &secret).ok()?,
    ))
}

proptest! {
    #[test]
    fn certificate_round_trips(seed: [u8; 32], device_seed: [u8; 32], id: [u8; 16],
                               address in "[a-z0-9]{1,30}@[a-z]{1,20}\\.example", at: u64) {
        let (identity, cert) = certificate(seed, device_seed, id, &address, at);
        let decoded = DeviceCertificate::decode(&cert.encode()).expect("decodes");
        prop_assert_eq!(&decoded, &cert);
        let verified = decoded.verify(Some(&identity.public_key())).expect("verifies");
        prop_assert_eq!(verified.delivery_address, address);
        prop_assert_eq!(verified.created_at, at);
    }

    #[test]
    fn any_flipped_certificate_bit_is_rejected(seed: [u8; 32], device_seed: [u8; 32], id: [u8; 16],
                                               address in "[a-z0-9]{1,30}@[a-z]{1,20}\\.example",
                                               at: u64, bit: prop::sample::Index) {
        let (identity, cert) = certificate(seed, device_seed, id, &address, at);
        let mut bytes = cert.encode();
        let bit = bit.index(bytes.len() * 8);
        bytes[bit / 8] ^= 1 << (bit % 8);
        let accepted = DeviceCertificate::decode(&bytes)
            .and_then(|c| c.verify(Some(&identity.public_key())))
            .is_ok();
        prop_assert!(!accepted, "flipped bit {} accepted", bit);
    }

    #[test]
    fn channel_opens_what_it_seals(a: [u8; 32], b: [u8; 32], s: [u8; 16],
                                   messages in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 1..5)) {
        let (mut inviter, mut joiner) = channels(a, b, s).expect("random keys are contributory");
        prop_assert_eq!(inviter.short_authentication_string(), joiner.short_authentication_string());
        for m in &messages {
            let sealed = inviter.seal(m).expect("seal");
            prop_assert_eq!(&joiner.open(&sealed).expect("open")[..], &m[..]);
            let reply = joiner.seal(m).expect("seal");
            prop_assert_eq!(&inviter.open(&reply).expect("open")[..], &m[..]);
        }
    }

    #[test]
    fn channel_rejects_flipped_bits_and_wrong_keys(a: [u8; 32], b: [u8; 32], s: [u8; 16], other: [u8; 16],
                                                   m in prop::collection::vec(any::<u8>(), 0..200),
                                                   bit: prop::sample::Index) {
        let (mut inviter, mut joiner) = channels(a, b, s).expect("contributory");
        let sealed = inviter.seal(&m).expect("seal");
        let mut flipped = sealed.clone();
        let bit = bit.index(flipped.len() * 8);
        flipped[bit / 8] ^= 1 << (bit % 8);
        prop_assert!(joiner.open(&flipped).is_err());
        // A channel with another invite secret has other keys.
        let secret = InviteSecret::from_bytes(other);
        prop_assume!(other != s);
        let mut stranger = ChannelKey::from_secret_bytes(Role::Joiner, b)
            .establish(&ChannelKey::from_secret_bytes(Role::Inviter, a).public_key(), &secret)
            .expect("contributory");
        prop_assert!(stranger.open(&sealed).is_err());
        // The untouched message still opens on the right channel.
        prop_assert_eq!(&joiner.open(&sealed).expect("open")[..], &m[..]);
    }

    #[test]
    fn invite_uri_round_trips(is_contact: bool, fp: [u8; 32], key: [u8; 32], secret: [u8; 16], expires: u64,
                              address in "[a-z0-9.]{1,40}@[a-z0-9-]{1,30}\\.[a-z]{2,6}",
                              host in "[a-z0-9-]{1,20}(\\.[a-z]{2,6})?") {
        let kind = if is_contact { InviteKind::Contact { fingerprint: Fingerprint::from_bytes(fp) } } else { InviteKind::DeviceLink };
        let invite = InvitePayload {
            kind, channel_public_key: key, delivery_address: address,
            invite_secret: InviteSecret::from_bytes(secret), expires_at: expires,
        };
        prop_assert_eq!(InvitePayload::parse(&invite.to_uri().expect("uri")).expect("parse"), invite.clone());
        prop_assert_eq!(InvitePayload::parse(&invite.to_https_url(&host).expect("url")).expect("parse"), invite);
    }

    #[test]
    fn invite_decoder_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = InvitePayload::decode(&bytes);
        let _ = DeviceCertificate::decode(&bytes);
    }
}
