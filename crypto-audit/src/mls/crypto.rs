//! [`KithCrypto`]: openmls's crypto and randomness, from the operating system in production
//! or from a seed in simulations.
//!
//! Every `OpenMlsCrypto` method delegates to `openmls_rust_crypto`'s [`RustCrypto`]. A
//! *seeded* `KithCrypto` differs in exactly the places that draw randomness: `OpenMlsRand`
//! (path secrets, init secrets, group ids, reuse guards, ...), HPKE sealing and sender setup
//! (the ephemeral KEM key of every UpdatePath and Welcome secret: derived from the sealing's
//! inputs under a key drawn once per provider, because openmls seals in parallel) and
//! Ed25519 signature key generation all draw from one ChaCha20 stream seeded with the given
//! 32 bytes
//! ([`SeededRandomness`]). So the same seed and the same calls give byte-identical MLS
//! messages. Several providers may share one stream (an engine makes a provider per call):
//! they then draw in call order, and a call that draws nothing (loading a group, reading
//! members) leaves the stream where it was.
use std::sync::{Arc, Mutex};

use hpke_rs::{Hpke, Mode};
use hpke_rs_crypto::types::{AeadAlgorithm, KdfAlgorithm, KemAlgorithm};
use openmls::prelude::tls_codec::SecretVLBytes;
use openmls_rust_crypto::{RandError, RustCrypto};
use openmls_traits::crypto::OpenMlsCrypto;
use openmls_traits::random::OpenMlsRand;
use openmls_traits::types::{
    AeadType, Ciphersuite, CryptoError, ExporterSecret, HashType, HpkeAeadType, HpkeCiphertext,
    HpkeConfig, HpkeKdfType, HpkeKemType, HpkeKeyPair, KemOutput, SignatureScheme,
};
use rand_chacha::ChaCha20Rng;
use rand_core::RngCore as _;
use zeroize::Zeroizing;

use super::seeded_hpke::{set_next_seed, SeededHpke};

/// openmls's crypto and randomness provider in Kith: [`RustCrypto`], optionally with every
/// random draw taken from a seeded stream (simulation and tests only).
pub struct KithCrypto {
    rust_crypto: RustCrypto,
    /// The seeded stream, when this provider is deterministic.
    seeded: Option<SeededRandomness>,
    /// A seeded provider's HPKE key: drawn from the stream at the first HPKE sealing, then
    /// every sealing's ephemeral randomness is derived from it and the sealing's inputs.
    /// openmls seals an UpdatePath's path secrets in parallel (rayon), so drawing each
    /// sealing's randomness from the stream would depend on thread scheduling.
    hpke_key: Mutex<Option<Zeroizing<[u8; 32]>>>,
}

/// **Simulation and tests only.** A ChaCha20 stream every seeded [`KithCrypto`] made from it
/// draws from; clones share the stream. Whoever knows the seed knows every key drawn.
#[derive(Clone)]
pub struct SeededRandomness(Arc<Mutex<ChaCha20Rng>>);

impl std::fmt::Debug for SeededRandomness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SeededRandomness { .. }")
    }
}

impl SeededRandomness {
    /// The stream seeded with `seed`. Needs the `seeded-randomness` feature.
    #[cfg(any(test, feature = "seeded-randomness"))]
    pub fn new(seed: [u8; 32]) -> Self {
        use rand_core::SeedableRng as _;
        Self(Arc::new(Mutex::new(ChaCha20Rng::from_seed(seed))))
    }

    /// The next 32 bytes of the stream, to seed a provider of their own
    /// ([`KithCrypto::seeded`]): a caller that may have to redo an operation gives each try
    /// a provider with the same seed, so the stream advances by the same amount however
    /// many tries it takes.
    pub fn next_seed(&self) -> Result<Zeroizing<[u8; 32]>, RandError> {
        let mut seed = Zeroizing::new([0u8; 32]);
        self.fill(seed.as_mut_slice())?;
        Ok(seed)
    }

    /// Fills `out` from the stream.
    fn fill(&self, out: &mut [u8]) -> Result<(), RandError> {
        self.0
            .lock()
            .map_err(|_| RandError::LockPoisoned)?
            .fill_bytes(out);
        Ok(())
    }
}

impl Default for KithCrypto {
    fn default() -> Self {
        Self::from_os()
    }
}

impl std::fmt::Debug for KithCrypto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KithCrypto")
            .field("is_seeded", &self.is_seeded())
            .finish_non_exhaustive()
    }
}

impl KithCrypto {
    /// Randomness from the operating system (RustCrypto's ChaCha20 seeded from the OS, and
    /// HPKE's own OS-seeded PRNG): the production provider.
    pub fn from_os() -> Self {
        Self {
            rust_crypto: RustCrypto::default(),
            seeded: None,
            hpke_key: Mutex::new(None),
        }
    }

    /// **Simulation and tests only: every key this provider makes is predictable from
    /// `seed`.** All randomness (OpenMlsRand, HPKE ephemeral keys, signature keys) comes from
    /// one ChaCha20 stream seeded with `seed`, so equal seeds and equal calls give
    /// byte-identical output. Never use it for a real account.
    #[cfg(any(test, feature = "seeded-randomness"))]
    pub fn seeded(seed: [u8; 32]) -> Self {
        Self::drawing_from(&SeededRandomness::new(seed))
    }

    /// **Simulation and tests only**, like [`KithCrypto::seeded`], drawing from `stream`,
    /// which other providers may share: they draw in the order of their calls.
    #[cfg(any(test, feature = "seeded-randomness"))]
    pub fn drawing_from(stream: &SeededRandomness) -> Self {
        Self {
            rust_crypto: RustCrypto::default(),
            seeded: Some(stream.clone()),
            hpke_key: Mutex::new(None),
        }
    }

    /// Whether this provider draws from a seed instead of the operating system.
    pub fn is_seeded(&self) -> bool {
        self.seeded.is_some()
    }

    /// Fills `out` from the seeded stream; `Ok(false)` when this provider is not seeded.
    fn fill_seeded(&self, out: &mut [u8]) -> Result<bool, RandError> {
        match &self.seeded {
            None => Ok(false),
            Some(stream) => stream.fill(out).map(|()| true),
        }
    }

    /// An HPKE instance for `config` whose PRNG is seeded with HMAC-SHA256 over `inputs`
    /// (length-prefixed) under this provider's HPKE key, so the same inputs give the same
    /// ephemeral key whatever order parallel sealings run in.
    fn seeded_hpke(
        &self,
        config: HpkeConfig,
        inputs: &[&[u8]],
    ) -> Result<Hpke<SeededHpke>, CryptoError> {
        let seed = self.hpke_seed(inputs)?;
        let (kem, kdf, aead) = hpke_algorithms(config)?;
        // `Hpke::new` calls `SeededHpke::prng()` exactly once, on this thread, which takes
        // the seed set here.
        set_next_seed(&seed);
        Ok(Hpke::<SeededHpke>::new(Mode::Base, kem, kdf, aead))
    }

    /// HMAC-SHA256(HPKE key, inputs), drawing the HPKE key from the stream the first time.
    fn hpke_seed(&self, inputs: &[&[u8]]) -> Result<Zeroizing<[u8; 32]>, CryptoError> {
        use hmac::{Hmac, Mac as _};
        let mut key = self
            .hpke_key
            .lock()
            .map_err(|_| CryptoError::InsufficientRandomness)?;
        if key.is_none() {
            let mut fresh = Zeroizing::new([0u8; 32]);
            self.fill_seeded(fresh.as_mut_slice())
                .map_err(|_| CryptoError::InsufficientRandomness)?;
            *key = Some(fresh);
        }
        let key = key.as_ref().ok_or(CryptoError::InsufficientRandomness)?;
        let mut mac = <Hmac<sha2::Sha256>>::new_from_slice(key.as_slice())
            .map_err(|_| CryptoError::CryptoLibraryError)?;
        for input in inputs {
            mac.update(&(input.len() as u64).to_be_bytes());
            mac.update(input);
        }
        Ok(Zeroizing::new(mac.finalize().into_bytes().into()))
    }
}

/// hpke-rs's names for an openmls HPKE configuration.
fn hpke_algorithms(
    config: HpkeConfig,
) -> Result<(KemAlgorithm, KdfAlgorithm, AeadAlgorithm), CryptoError> {
    let HpkeConfig(kem, kdf, aead) = config;
    #[allow(unreachable_patterns)] // post-quantum KEMs exist only with an openmls feature
    let kem = match kem {
        HpkeKemType::DhKemP256 => KemAlgorithm::DhKemP256,
        HpkeKemType::DhKemP384 => KemAlgorithm::DhKemP384,
        HpkeKemType::DhKemP521 => KemAlgorithm::DhKemP521,
        HpkeKemType::DhKem25519 => KemAlgorithm::DhKem25519,
        HpkeKemType::DhKem448 => KemAlgorithm::DhKem448,
        _ => return Err(CryptoError::UnsupportedCiphersuite),
    };
    let kdf = match kdf {
        HpkeKdfType::HkdfSha256 => KdfAlgorithm::HkdfSha256,
        HpkeKdfType::HkdfSha384 => KdfAlgorithm::HkdfSha384,
        HpkeKdfType::HkdfSha512 => KdfAlgorithm::HkdfSha512,
    };
    let aead = match aead {
        HpkeAeadType::AesGcm128 => AeadAlgorithm::Aes128Gcm,
        HpkeAeadType::AesGcm256 => AeadAlgorithm::Aes256Gcm,
        HpkeAeadType::ChaCha20Poly1305 => AeadAlgorithm::ChaCha20Poly1305,
        HpkeAeadType::Export => AeadAlgorithm::HpkeExport,
    };
    Ok((kem, kdf, aead))
}

impl OpenMlsRand for KithCrypto {
    type Error = RandError;

    fn random_array<const N: usize>(&self) -> Result<[u8; N], Self::Error> {
        let mut out = [0u8; N];
        if self.fill_seeded(&mut out)? {
            Ok(out)
        } else {
            self.rust_crypto.random_array()
        }
    }

    fn random_vec(&self, len: usize) -> Result<Vec<u8>, Self::Error> {
        let mut out = vec![0u8; len];
        if self.fill_seeded(&mut out)? {
            Ok(out)
        } else {
            self.rust_crypto.random_vec(len)
        }
    }
}

impl OpenMlsCrypto for KithCrypto {
    fn supports(&self, ciphersuite: Ciphersuite) -> Result<(), CryptoError> {
        self.rust_crypto.supports(ciphersuite)
    }

    fn supported_ciphersuites(&self) -> Vec<Ciphersuite> {
        self.rust_crypto.supported_ciphersuites()
    }

    fn hkdf_extract(
        &self,
        hash_type: HashType,
        salt: &[u8],
        ikm: &[u8],
    ) -> Result<SecretVLBytes, CryptoError> {
        self.rust_crypto.hkdf_extract(hash_type, salt, ikm)
    }

    fn hmac(
        &self,
        hash_type: HashType,
        key: &[u8],
        message: &[u8],
    ) -> Result<SecretVLBytes, CryptoError> {
        self.rust_crypto.hmac(hash_type, key, message)
    }

    fn hkdf_expand(
        &self,
        hash_type: HashType,
        prk: &[u8],
        info: &[u8],
        okm_len: usize,
    ) -> Result<SecretVLBytes, CryptoError> {
        self.rust_crypto.hkdf_expand(hash_type, prk, info, okm_len)
    }

    fn hash(&self, hash_type: HashType, data: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.rust_crypto.hash(hash_type, data)
    }

    fn aead_encrypt(
        &self,
        alg: AeadType,
        key: &[u8],
        data: &[u8],
        nonce: &[u8],
        aad: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        self.rust_crypto.aead_encrypt(alg, key, data, nonce, aad)
    }

    fn aead_decrypt(
        &self,
        alg: AeadType,
        key: &[u8],
        ct_tag: &[u8],
        nonce: &[u8],
        aad: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        self.rust_crypto.aead_decrypt(alg, key, ct_tag, nonce, aad)
    }

    /// Seeded: Ed25519 keys come from the seeded stream (other schemes, which Kith does not
    /// use, still come from the OS).
    fn signature_key_gen(&self, alg: SignatureScheme) -> Result<(Vec<u8>, Vec<u8>), CryptoError> {
        if self.is_seeded() && alg == SignatureScheme::ED25519 {
            let mut secret = Zeroizing::new([0u8; 32]);
            self.fill_seeded(secret.as_mut_slice())
                .map_err(|_| CryptoError::InsufficientRandomness)?;
            let key = ed25519_dalek::SigningKey::from_bytes(&secret);
            return Ok((secret.to_vec(), key.verifying_key().to_bytes().to_vec()));
        }
        self.rust_crypto.signature_key_gen(alg)
    }

    fn verify_signature(
        &self,
        alg: SignatureScheme,
        data: &[u8],
        pk: &[u8],
        signature: &[u8],
    ) -> Result<(), CryptoError> {
        self.rust_crypto.verify_signature(alg, data, pk, signature)
    }

    fn sign(&self, alg: SignatureScheme, data: &[u8], key: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.rust_crypto.sign(alg, data, key)
    }

    fn hpke_seal(
        &self,
        config: HpkeConfig,
        pk_r: &[u8],
        info: &[u8],
        aad: &[u8],
        ptxt: &[u8],
    ) -> Result<HpkeCiphertext, CryptoError> {
        if !self.is_seeded() {
            return self.rust_crypto.hpke_seal(config, pk_r, info, aad, ptxt);
        }
        let (kem_output, ciphertext) = self
            .seeded_hpke(config, &[b"seal", pk_r, info, aad, ptxt])?
            .seal(&pk_r.into(), info, aad, ptxt, None, None, None)
            .map_err(|e| match e {
                hpke_rs::HpkeError::InvalidInput => CryptoError::InvalidLength,
                _ => CryptoError::CryptoLibraryError,
            })?;
        Ok(HpkeCiphertext {
            kem_output: kem_output.into(),
            ciphertext: ciphertext.into(),
        })
    }

    fn hpke_open(
        &self,
        config: HpkeConfig,
        input: &HpkeCiphertext,
        sk_r: &[u8],
        info: &[u8],
        aad: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        self.rust_crypto.hpke_open(config, input, sk_r, info, aad)
    }

    fn hpke_setup_sender_and_export(
        &self,
        config: HpkeConfig,
        pk_r: &[u8],
        info: &[u8],
        exporter_context: &[u8],
        exporter_length: usize,
    ) -> Result<(KemOutput, ExporterSecret), CryptoError> {
        if !self.is_seeded() {
            return self.rust_crypto.hpke_setup_sender_and_export(
                config,
                pk_r,
                info,
                exporter_context,
                exporter_length,
            );
        }
        let (kem_output, context) = self
            .seeded_hpke(
                config,
                &[
                    b"export",
                    pk_r,
                    info,
                    exporter_context,
                    &(exporter_length as u64).to_be_bytes(),
                ],
            )?
            .setup_sender(&pk_r.into(), info, None, None, None)
            .map_err(|_| CryptoError::SenderSetupError)?;
        let exported = context
            .export(exporter_context, exporter_length)
            .map_err(|_| CryptoError::ExporterError)?;
        Ok((kem_output, exported.into()))
    }

    fn hpke_setup_receiver_and_export(
        &self,
        config: HpkeConfig,
        enc: &[u8],
        sk_r: &[u8],
        info: &[u8],
        exporter_context: &[u8],
        exporter_length: usize,
    ) -> Result<ExporterSecret, CryptoError> {
        self.rust_crypto.hpke_setup_receiver_and_export(
            config,
            enc,
            sk_r,
            info,
            exporter_context,
            exporter_length,
        )
    }

    fn derive_hpke_keypair(
        &self,
        config: HpkeConfig,
        ikm: &[u8],
    ) -> Result<HpkeKeyPair, CryptoError> {
        self.rust_crypto.derive_hpke_keypair(config, ikm)
    }
}
