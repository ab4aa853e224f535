//! Relay account passwords: how a relay stores and checks them.
//!
//! Relay accounts are made the chatmail way: the client picks a random address and a random
//! password and the relay creates the account on first login. Kith clients generate
//! passwords with at least 128 bits of entropy, and the relay refuses passwords shorter than
//! its configured minimum.
//!
//! We store `HMAC-SHA256(key = salt, message = password)` with a 16-byte random salt per
//! account, and compare in constant time. This is deliberately a fast hash:
//! - after a restart, every client reconnects at once; 10,000 logins must cost milliseconds,
//!   not the minutes a memory-hard hash (Argon2 at its recommended settings, ~10 ms and
//!   ~19 MiB each) would cost a 2-core relay — a slow hash would let any crowd of legitimate
//!   clients, or an attacker with a list of addresses, take the relay down;
//! - a slow hash only helps against offline guessing of low-entropy passwords after the
//!   database is stolen. For 128-bit random passwords guessing is infeasible whatever the
//!   hash; a hand-picked weak password would, once cracked, expose only a mailbox of
//!   ciphertext the relay already holds.
//!
//! Format of a stored hash: `hmac-sha256$<salt, 32 hex>$<tag, 64 hex>`.
use hmac::{Hmac, Mac};
use rand_core::{CryptoRng, RngCore};
use sha2::Sha256;
use subtle::ConstantTimeEq;

const SCHEME: &str = "hmac-sha256";
const SALT_LEN: usize = 16;

/// Hashes a new account password for storage, with a fresh random salt.
pub fn hash_account_password(password: &str, rng: &mut (impl RngCore + CryptoRng)) -> String {
    let mut salt = [0u8; SALT_LEN];
    rng.fill_bytes(&mut salt);
    let tag = tag(&salt, password);
    format!("{SCHEME}${}${}", hex::encode(salt), hex::encode(tag))
}

/// Checks a password against a stored hash, in constant time. A malformed stored hash
/// never verifies.
pub fn verify_account_password(password: &str, stored: &str) -> bool {
    let mut parts = stored.split('$');
    let (Some(SCHEME), Some(salt), Some(expected), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let (Ok(salt), Ok(expected)) = (hex::decode(salt), hex::decode(expected)) else {
        return false;
    };
    if salt.len() != SALT_LEN {
        return false;
    }
    tag(&salt, password).ct_eq(&expected).into()
}

fn tag(salt: &[u8], password: &str) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(salt).expect("HMAC takes a key of any length");
    mac.update(password.as_bytes());
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::OsRng;

    #[test]
    fn right_password_verifies_and_wrong_does_not() {
        let stored = hash_account_password("correct horse battery", &mut OsRng);
        assert!(verify_account_password("correct horse battery", &stored));
        assert!(!verify_account_password("correct horse batterx", &stored));
        assert!(!verify_account_password("", &stored));
    }

    #[test]
    fn same_password_gets_a_different_salt() {
        let a = hash_account_password("pw", &mut OsRng);
        let b = hash_account_password("pw", &mut OsRng);
        assert_ne!(a, b);
    }

    #[test]
    fn malformed_stored_hashes_never_verify() {
        for stored in [
            "",
            "hmac-sha256",
            "hmac-sha256$00$00",
            "md5$00112233445566778899aabbccddeeff$00",
            "hmac-sha256$zz$zz",
            "hmac-sha256$00112233445566778899aabbccddeeff$00$extra",
        ] {
            assert!(!verify_account_password("pw", stored), "{stored}");
        }
    }

    #[test]
    fn known_answer() {
        // HMAC-SHA256 with key = 16 zero bytes over "password", computed independently with
        // Python: hmac.new(bytes(16), b"password", hashlib.sha256).hexdigest()
        let stored = format!(
            "hmac-sha256${}${}",
            "00".repeat(16),
            "7f777bccedb2356c3ebab81ddf752e65664ee4248e356e25c3310919860eeb02"
        );
        assert!(verify_account_password("password", &stored));
    }
}
