//! The invite/link channel receiving arbitrary ciphertext, and importing arbitrary saved
//! state: never panic; nothing forged opens.
#![no_main]
use kith_crypto::channel::{Channel, ChannelKey, Role};
use kith_crypto::invite::InviteSecret;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = Channel::import_state(data);
    let inviter = ChannelKey::from_secret_bytes(Role::Inviter, [1; 32]);
    let joiner = ChannelKey::from_secret_bytes(Role::Joiner, [2; 32]);
    let secret = InviteSecret::from_bytes([3; 16]);
    let mut channel = inviter.establish(&joiner.public_key(), &secret).expect("fixed keys agree");
    assert!(channel.open(data).is_err(), "forged channel message opened");
});
