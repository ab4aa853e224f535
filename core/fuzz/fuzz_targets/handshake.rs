//! Fuzzes the handshake message codec (join request, reply, key packages; the card; the
//! reply body): any bytes must decode or fail cleanly, and whatever decodes must re-encode
//! to the same bytes (each format has one encoding).
#![no_main]
use kith_core::contacts::wire::{Card, HandshakeMessage, ReplyBody};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(message) = HandshakeMessage::decode(data) {
        assert_eq!(message.encode().expect("a decoded message encodes"), data);
    }
    if let Ok(card) = Card::decode(data) {
        assert_eq!(card.encode().expect("a decoded card encodes"), data);
    }
    if let Ok(body) = ReplyBody::decode(data) {
        assert_eq!(body.encode().expect("a decoded reply encodes"), data);
    }
});
