//! Media keys for calls: SFrame (RFC 9605) keyed from the MLS epoch. See PROTOCOL.md §9.
//!
//! Following RFC 9605 §5.2 (SFrame with MLS), with one deliberate change — the exporter
//! context is the call id, so two calls in the same epoch never share keys:
//!
//! ```text
//! base_key    = MLS-Exporter("SFrame 1.0 Base Key", call_id, 16)
//! KID         = (leaf_index << 8) | (epoch mod 2^8)          (E = 8, context = 0)
//! secret      = HKDF-Extract(salt = "", ikm = base_key)
//! sframe_key  = HKDF-Expand(secret, "SFrame 1.0 Secret key "  ‖ KID u64 ‖ 0x0004, 16)
//! sframe_salt = HKDF-Expand(secret, "SFrame 1.0 Secret salt " ‖ KID u64 ‖ 0x0004, 12)
//! ```
//! Each sender's KID holds its own leaf index, so each sender has its own key and salt.
//! Frames use cipher suite AES_128_GCM_SHA256_128 (0x0004): `nonce = salt XOR (CTR as 12
//! bytes big-endian)`, `aad = header ‖ metadata`, and the frame is `header ‖ ciphertext ‖
//! tag` with the header of RFC 9605 §4.3.
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::Aes128Gcm;
use hkdf::Hkdf;
use openmls::prelude::{MlsGroup, OpenMlsCrypto};
use sha2::Sha256;
use thiserror::Error;
use zeroize::Zeroizing;

/// The SFrame cipher suite Kith uses: AES_128_GCM_SHA256_128.
pub const SFRAME_CIPHER_SUITE: u16 = 0x0004;
/// The MLS exporter label of RFC 9605 §5.2.
pub const SFRAME_EXPORTER_LABEL: &str = "SFrame 1.0 Base Key";
/// How many low bits of the epoch the KID carries (RFC 9605's `E`).
pub const EPOCH_BITS: u32 = 8;
const KEY_LABEL: &[u8] = b"SFrame 1.0 Secret key ";
const SALT_LABEL: &[u8] = b"SFrame 1.0 Secret salt ";
const NK: usize = 16;
const NN: usize = 12;
const TAG_LEN: usize = 16;

/// What can go wrong deriving media keys or opening a frame.
#[derive(Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum MediaKeyError {
    /// openmls refused to export from the epoch (the group is inactive).
    #[error("could not export the SFrame base key from the MLS epoch")]
    Export,
    /// The frame ends inside its header or before its tag.
    #[error("SFrame frame truncated")]
    Truncated,
    /// The frame's KID is not the one these keys were derived for.
    #[error("frame key id {got} does not match the expected {expected}")]
    WrongKeyId {
        /// The KID of the keys in hand.
        expected: u64,
        /// The KID in the frame header.
        got: u64,
    },
    /// The frame does not authenticate under this sender's key.
    #[error("the frame does not authenticate")]
    Unauthentic,
}

/// A per-call SFrame base key (16 bytes), exported from one MLS epoch. Never printed.
pub struct SframeBaseKey(Zeroizing<[u8; NK]>);

impl SframeBaseKey {
    /// A base key from raw bytes (known-answer tests; RFC 9605 vectors).
    pub fn from_bytes(bytes: [u8; NK]) -> Self {
        Self(Zeroizing::new(bytes))
    }
}

impl std::fmt::Debug for SframeBaseKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SframeBaseKey(..)")
    }
}

/// `MLS-Exporter("SFrame 1.0 Base Key", call_id, 16)` from the group's current epoch.
pub fn call_base_key(
    group: &MlsGroup,
    crypto: &impl OpenMlsCrypto,
    call_id: &[u8],
) -> Result<SframeBaseKey, MediaKeyError> {
    let secret = Zeroizing::new(
        group
            .export_secret(crypto, SFRAME_EXPORTER_LABEL, call_id, NK)
            .map_err(|_| MediaKeyError::Export)?,
    );
    let mut key = [0u8; NK];
    key.copy_from_slice(&secret);
    let key = SframeBaseKey::from_bytes(key);
    Ok(key)
}

/// The KID of a sender: `(leaf_index << 8) | (epoch mod 256)` (a u32 leaf index always
/// fits in the 56 bits above the epoch).
pub fn sframe_key_id(epoch: u64, leaf_index: u32) -> u64 {
    (u64::from(leaf_index) << EPOCH_BITS) | (epoch % (1 << EPOCH_BITS))
}

/// One sender's SFrame key and salt for one KID (RFC 9605 §4.4.2).
pub struct SframeKeys {
    kid: u64,
    key: Zeroizing<[u8; NK]>,
    salt: Zeroizing<[u8; NN]>,
}

impl std::fmt::Debug for SframeKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SframeKeys {{ kid: {}, .. }}", self.kid)
    }
}

impl SframeKeys {
    /// Derives `sframe_key` and `sframe_salt` for `kid` from a base key.
    pub fn derive(base_key: &SframeBaseKey, kid: u64) -> Self {
        let hkdf = Hkdf::<Sha256>::new(Some(&[]), &base_key.0[..]);
        let mut key = Zeroizing::new([0u8; NK]);
        let mut salt = Zeroizing::new([0u8; NN]);
        hkdf.expand(&label(KEY_LABEL, kid), &mut key[..])
            .expect("16 bytes is a valid HKDF-SHA256 output length");
        hkdf.expand(&label(SALT_LABEL, kid), &mut salt[..])
            .expect("12 bytes is a valid HKDF-SHA256 output length");
        Self { kid, key, salt }
    }

    /// The KID these keys belong to.
    pub fn key_id(&self) -> u64 {
        self.kid
    }

    /// The AES-128-GCM key (for known-answer tests).
    pub fn key_bytes(&self) -> &[u8; NK] {
        &self.key
    }

    /// The salt (for known-answer tests).
    pub fn salt_bytes(&self) -> &[u8; NN] {
        &self.salt
    }

    /// `salt XOR (ctr as a 12-byte big-endian integer)`.
    pub fn nonce(&self, ctr: u64) -> [u8; NN] {
        let mut nonce = *self.salt;
        for (n, c) in nonce[NN - 8..].iter_mut().zip(ctr.to_be_bytes()) {
            *n ^= c;
        }
        nonce
    }

    /// Encrypts one media frame: `header(KID, ctr) ‖ AES-128-GCM(plaintext) ‖ tag`. The
    /// caller never reuses a `ctr` with the same keys.
    pub fn seal_frame(&self, ctr: u64, metadata: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let mut frame = encode_header(self.kid, ctr);
        let mut aad = frame.clone();
        aad.extend_from_slice(metadata);
        let sealed = self
            .cipher()
            .encrypt(
                (&self.nonce(ctr)).into(),
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .expect("AES-GCM encryption of an in-memory frame cannot fail");
        frame.extend_from_slice(&sealed);
        frame
    }

    /// Decrypts one frame sealed with these keys; returns its counter and plaintext.
    pub fn open_frame(
        &self,
        metadata: &[u8],
        frame: &[u8],
    ) -> Result<(u64, Zeroizing<Vec<u8>>), MediaKeyError> {
        let (kid, ctr, header_len) = decode_header(frame)?;
        if kid != self.kid {
            return Err(MediaKeyError::WrongKeyId {
                expected: self.kid,
                got: kid,
            });
        }
        let (header, ciphertext) = frame.split_at(header_len);
        if ciphertext.len() < TAG_LEN {
            return Err(MediaKeyError::Truncated);
        }
        let mut aad = header.to_vec();
        aad.extend_from_slice(metadata);
        let plaintext = self
            .cipher()
            .decrypt(
                (&self.nonce(ctr)).into(),
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .map_err(|_| MediaKeyError::Unauthentic)?;
        Ok((ctr, Zeroizing::new(plaintext)))
    }

    fn cipher(&self) -> Aes128Gcm {
        Aes128Gcm::new((&*self.key).into())
    }
}

fn label(prefix: &[u8], kid: u64) -> Vec<u8> {
    let mut info = prefix.to_vec();
    info.extend_from_slice(&kid.to_be_bytes());
    info.extend_from_slice(&SFRAME_CIPHER_SUITE.to_be_bytes());
    info
}

/// The SFrame header of RFC 9605 §4.3: config byte `X K K K Y C C C`, then the KID and the
/// CTR in minimal big-endian form when they do not fit in the 3-bit fields.
pub fn encode_header(kid: u64, ctr: u64) -> Vec<u8> {
    let mut out = vec![0u8];
    let (kid_bits, kid_bytes) = field(kid);
    let (ctr_bits, ctr_bytes) = field(ctr);
    out[0] = (kid_bits << 4) | ctr_bits;
    out.extend_from_slice(&kid_bytes);
    out.extend_from_slice(&ctr_bytes);
    out
}

/// Parses an SFrame header: returns (KID, CTR, header length).
pub fn decode_header(frame: &[u8]) -> Result<(u64, u64, usize), MediaKeyError> {
    let config = *frame.first().ok_or(MediaKeyError::Truncated)?;
    let mut offset = 1;
    let kid = read_field(frame, &mut offset, config >> 4)?;
    let ctr = read_field(frame, &mut offset, config & 0x0f)?;
    Ok((kid, ctr, offset))
}

fn field(value: u64) -> (u8, Vec<u8>) {
    if value < 8 {
        return (value as u8, Vec::new());
    }
    let bytes = value.to_be_bytes();
    let skip = bytes.iter().take_while(|&&b| b == 0).count();
    let len = 8 - skip;
    (0x08 | (len as u8 - 1), bytes[skip..].to_vec())
}

fn read_field(frame: &[u8], offset: &mut usize, bits: u8) -> Result<u64, MediaKeyError> {
    if bits & 0x08 == 0 {
        return Ok(u64::from(bits));
    }
    let len = usize::from(bits & 0x07) + 1;
    let bytes = frame
        .get(*offset..*offset + len)
        .ok_or(MediaKeyError::Truncated)?;
    *offset += len;
    Ok(bytes.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s).expect("hex")
    }

    /// RFC 9605 Appendix C.4 (cipher suite 0x0004, AES_128_GCM_SHA256_128).
    #[test]
    fn rfc9605_aes_128_gcm_vector() {
        let base = SframeBaseKey::from_bytes(
            h("000102030405060708090a0b0c0d0e0f")
                .try_into()
                .expect("16"),
        );
        let keys = SframeKeys::derive(&base, 0x123);
        assert_eq!(
            keys.key_bytes().to_vec(),
            h("d34f547f4ca4f9a7447006fe7fcbf768")
        );
        assert_eq!(keys.salt_bytes().to_vec(), h("75234edefe07819026751816"));
        assert_eq!(keys.nonce(17767).to_vec(), h("75234edefe07819026755d71"));
        let metadata = h("4945544620534672616d65205747");
        let pt = h("64726166742d696574662d736672616d652d656e63");
        let ct = h(
            "9901234567b7412c2513a1b66dbb48841bbaf17f598751176ad847681a69c6d0b091c07018ce4adb34eb",
        );
        assert_eq!(keys.seal_frame(17767, &metadata, &pt), ct);
        let (ctr, opened) = keys.open_frame(&metadata, &ct).expect("opens");
        assert_eq!((ctr, opened.to_vec()), (17767, pt));
        let mut bad = ct.clone();
        bad[10] ^= 1;
        assert_eq!(
            keys.open_frame(&metadata, &bad).err(),
            Some(MediaKeyError::Unauthentic)
        );
    }

    #[test]
    fn rfc9605_header_vectors() {
        for (kid, ctr, encoded) in [
            (0u64, 0u64, "00"),
            (0, 255, "08ff"),
            (255, 0, "80ff"),
            (291, 17767, "9901234567"),
            (65536, 4294967296, "ac0100000100000000"),
            (u64::MAX, u64::MAX, "ffffffffffffffffffffffffffffffffff"),
        ] {
            assert_eq!(hex::encode(encode_header(kid, ctr)), encoded);
            let bytes = h(encoded);
            assert_eq!(decode_header(&bytes), Ok((kid, ctr, bytes.len())));
        }
        assert_eq!(decode_header(&h("9901")), Err(MediaKeyError::Truncated));
    }

    #[test]
    fn key_ids_separate_senders_and_epochs() {
        assert_eq!(sframe_key_id(0x1_05, 3), (3 << 8) | 0x05);
        assert_eq!(sframe_key_id(7, u32::MAX), (u64::from(u32::MAX) << 8) | 7);
        let base = SframeBaseKey::from_bytes([1; 16]);
        let a = SframeKeys::derive(&base, sframe_key_id(5, 0));
        let b = SframeKeys::derive(&base, sframe_key_id(5, 1));
        assert_ne!(a.key_bytes(), b.key_bytes());
        let frame = a.seal_frame(1, b"", b"opus");
        assert!(matches!(
            b.open_frame(b"", &frame),
            Err(MediaKeyError::WrongKeyId { .. })
        ));
    }
}
