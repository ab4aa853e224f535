//! Backup decryption on arbitrary bytes with a fixed recovery code: must never panic.
//! (Inputs that reach the SKESK run Argon2 at 64 MiB, so this target is slow per input.)
#![no_main]
use kith_crypto::backup::decrypt_backup;
use kith_crypto::recovery_code::RecoveryCode;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let code = RecoveryCode::parse("1RGK-4T8S-A9DC-5HMG-T98J-T1FD-K5Y")
        .expect("the vector code is valid");
    let _ = decrypt_backup(data, &code);
});
