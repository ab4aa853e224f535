//! Frame decoding on arbitrary bytes: must never panic; a decoded frame re-encodes to
//! exactly the input.
#![no_main]
use kith_crypto::frame::Frame;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(frame) = Frame::decode(data) {
        assert_eq!(frame.encode().expect("a decoded frame re-encodes"), data);
    }
});
