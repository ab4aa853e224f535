//! Recovery-code parsing on arbitrary text: must never panic; a parsed code shows as a
//! string that parses back to the same code.
#![no_main]
use kith_crypto::recovery_code::RecoveryCode;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(code) = RecoveryCode::parse(text) {
            let shown = code.to_display_string();
            assert_eq!(RecoveryCode::parse(&shown).expect("round trip"), code);
        }
    }
});
