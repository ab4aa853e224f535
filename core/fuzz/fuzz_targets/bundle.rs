//! Fuzzes the key-bundle codec: any bytes must decode or fail cleanly, and whatever
//! decodes must re-encode to the same bytes (the format has one encoding).
#![no_main]
use kith_core::client::Bundle;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(bundle) = Bundle::decode(data) {
        assert_eq!(bundle.encode().expect("a decoded bundle encodes"), data);
    }
});
