//! [`SeededHpke`]: hpke-rs's RustCrypto backend with a PRNG taken from a seed.
//!
//! hpke-rs builds its PRNG with the static `HpkeCrypto::prng()` inside `Hpke::new`, so a
//! seed cannot be passed in. [`set_next_seed`] stores one in a thread-local slot right
//! before `Hpke::<SeededHpke>::new`, and `prng()` takes it out (leaving the slot empty), on
//! the same thread, within the same call of [`super::crypto::KithCrypto`]. Everything but
//! the PRNG and the KEM key generation that uses it is [`HpkeRustCrypto`]'s.
//!
//! This is not hpke-rs's `hpke-test-prng` / `deterministic-prng` features: those would be
//! unified into production builds; this backend is used only by a seeded `KithCrypto`.
use std::cell::Cell;
use std::convert::Infallible;

use hpke_rs_crypto::error::Error;
use hpke_rs_crypto::types::{AeadAlgorithm, KdfAlgorithm, KemAlgorithm};
use hpke_rs_crypto::{HpkeCrypto, HpkeTestRng, TryCryptoRng, TryRng};
use hpke_rs_rust_crypto::HpkeRustCrypto;
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore as _, SeedableRng as _};
use zeroize::{Zeroize, Zeroizing};

thread_local! {
    /// The seed the next `SeededHpke::prng()` on this thread takes.
    static NEXT_SEED: Cell<Option<[u8; 32]>> = const { Cell::new(None) };
}

/// Sets the seed the next `Hpke::<SeededHpke>::new` on this thread uses for its PRNG.
pub(crate) fn set_next_seed(seed: &[u8; 32]) {
    NEXT_SEED.with(|slot| slot.set(Some(*seed)));
}

/// How often a P-curve key generation redraws a scalar out of range before giving up.
const SCALAR_DRAWS: usize = 16;

/// The HPKE backend of a seeded `KithCrypto`.
#[derive(Debug)]
pub(crate) struct SeededHpke;

/// A ChaCha20 PRNG seeded by [`set_next_seed`].
pub(crate) struct SeededHpkePrng(ChaCha20Rng);

impl Zeroize for SeededHpkePrng {
    fn zeroize(&mut self) {
        // ChaCha20Rng has no zeroize; overwrite its state with a fixed one instead.
        self.0 = ChaCha20Rng::from_seed([0; 32]);
    }
}

impl TryRng for SeededHpkePrng {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        Ok(self.0.next_u32())
    }

    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        Ok(self.0.next_u64())
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        self.0.fill_bytes(dst);
        Ok(())
    }
}

impl TryCryptoRng for SeededHpkePrng {}

impl HpkeTestRng for SeededHpkePrng {
    type Error = Infallible;

    fn try_fill_test_bytes(&mut self, dest: &mut [u8]) -> Result<(), Self::Error> {
        self.0.fill_bytes(dest);
        Ok(())
    }

    fn seed(&mut self, _: &[u8]) {}
}

impl SeededHpkePrng {
    /// A fresh secret of `len` bytes from the stream.
    fn secret(&mut self, len: usize) -> Zeroizing<Vec<u8>> {
        let mut secret = Zeroizing::new(vec![0u8; len]);
        self.0.fill_bytes(&mut secret);
        secret
    }
}

impl HpkeCrypto for SeededHpke {
    type HpkePrng = SeededHpkePrng;

    fn name() -> String {
        "RustCrypto (seeded)".into()
    }

    fn supports_kdf(alg: KdfAlgorithm) -> Result<(), Error> {
        HpkeRustCrypto::supports_kdf(alg)
    }

    fn supports_kem(alg: KemAlgorithm) -> Result<(), Error> {
        HpkeRustCrypto::supports_kem(alg)
    }

    fn supports_aead(alg: AeadAlgorithm) -> Result<(), Error> {
        HpkeRustCrypto::supports_aead(alg)
    }

    /// The PRNG seeded by [`set_next_seed`]. Without a seed set (not a path `KithCrypto`
    /// takes) it falls back to the operating system, never to a fixed stream.
    fn prng() -> Self::HpkePrng {
        let seed = NEXT_SEED.with(Cell::take);
        SeededHpkePrng(match seed {
            Some(mut seed) => {
                let rng = ChaCha20Rng::from_seed(seed);
                seed.zeroize();
                rng
            }
            None => ChaCha20Rng::from_entropy(),
        })
    }

    fn kdf_extract(alg: KdfAlgorithm, salt: &[u8], ikm: &[u8]) -> Result<Vec<u8>, Error> {
        HpkeRustCrypto::kdf_extract(alg, salt, ikm)
    }

    fn kdf_expand(
        alg: KdfAlgorithm,
        prk: &[u8],
        info: &[u8],
        output_size: usize,
    ) -> Result<Vec<u8>, Error> {
        HpkeRustCrypto::kdf_expand(alg, prk, info, output_size)
    }

    fn dh(alg: KemAlgorithm, pk: &[u8], sk: &[u8]) -> Result<Vec<u8>, Error> {
        HpkeRustCrypto::dh(alg, pk, sk)
    }

    fn secret_to_public(alg: KemAlgorithm, sk: &[u8]) -> Result<Vec<u8>, Error> {
        HpkeRustCrypto::secret_to_public(alg, sk)
    }

    /// A KEM key pair `(public, private)` from the seeded stream: X25519 takes 32 bytes as
    /// they are (as `StaticSecret::random_from_rng` does); the P-curves redraw a scalar out
    /// of range.
    fn kem_key_gen(
        alg: KemAlgorithm,
        prng: &mut Self::HpkePrng,
    ) -> Result<(Vec<u8>, Vec<u8>), Error> {
        let len = match alg {
            KemAlgorithm::DhKem25519 => {
                let sk = prng.secret(32);
                let pk = HpkeRustCrypto::secret_to_public(alg, &sk)?;
                return Ok((pk, sk.to_vec()));
            }
            KemAlgorithm::DhKemP256 | KemAlgorithm::DhKemK256 => 32,
            KemAlgorithm::DhKemP384 => 48,
            _ => return Err(Error::UnknownKemAlgorithm),
        };
        for _ in 0..SCALAR_DRAWS {
            let sk = prng.secret(len);
            if HpkeRustCrypto::dh_validate_sk(alg, &sk).is_ok() {
                let pk = HpkeRustCrypto::secret_to_public(alg, &sk)?;
                return Ok((pk, sk.to_vec()));
            }
        }
        Err(Error::InsufficientRandomness)
    }

    fn kem_key_gen_derand(alg: KemAlgorithm, seed: &[u8]) -> Result<(Vec<u8>, Vec<u8>), Error> {
        HpkeRustCrypto::kem_key_gen_derand(alg, seed)
    }

    /// Only the post-quantum KEMs encapsulate here, and Kith's ciphersuite uses none.
    fn kem_encaps(
        _alg: KemAlgorithm,
        _pk_r: &[u8],
        _prng: &mut Self::HpkePrng,
    ) -> Result<(Vec<u8>, Vec<u8>), Error> {
        Err(Error::UnsupportedKemOperation)
    }

    fn kem_decaps(alg: KemAlgorithm, ct: &[u8], sk_r: &[u8]) -> Result<Vec<u8>, Error> {
        HpkeRustCrypto::kem_decaps(alg, ct, sk_r)
    }

    fn dh_validate_sk(alg: KemAlgorithm, sk: &[u8]) -> Result<Vec<u8>, Error> {
        HpkeRustCrypto::dh_validate_sk(alg, sk)
    }

    fn aead_seal(
        alg: AeadAlgorithm,
        key: &[u8],
        nonce: &[u8],
        aad: &[u8],
        msg: &[u8],
    ) -> Result<Vec<u8>, Error> {
        HpkeRustCrypto::aead_seal(alg, key, nonce, aad, msg)
    }

    fn aead_open(
        alg: AeadAlgorithm,
        key: &[u8],
        nonce: &[u8],
        aad: &[u8],
        msg: &[u8],
    ) -> Result<Vec<u8>, Error> {
        HpkeRustCrypto::aead_open(alg, key, nonce, aad, msg)
    }
}
