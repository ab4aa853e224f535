//! SFrame media frames from the network: header parsing and opening arbitrary bytes never
//! panic, and nothing forged opens.
#![no_main]
use kith_crypto::media::decode_header;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((_kid, _counter, header_len)) = decode_header(data) {
        assert!(header_len <= data.len());
    }
});
