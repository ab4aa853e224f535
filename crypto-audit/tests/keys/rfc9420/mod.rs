//! RFC 9420 interoperability vectors (mls-implementations), ciphersuite 1, run against the
//! MLS stack Kith ships: openmls 0.9.2 for parsing, tree validation, joining and processing
//! (passive-client), and openmls_rust_crypto's primitives under our own transcription of
//! RFC 9420's derivations where openmls keeps the derivation internal.
//!
//! The vectors are read at test time from `../shared/test-vectors/rfc9420` relative to the
//! repository root and are never edited.
mod basics;
mod passive;
mod protection;
mod tree;

use kith_crypto::mls::openmls::prelude::*;
use openmls_rust_crypto::RustCrypto;
use serde_json::Value;
use std::path::PathBuf;

pub(crate) const NH: usize = 32;
pub(crate) const NK: usize = 16;
pub(crate) const NN: usize = 12;
pub(crate) const HASH: HashType = HashType::Sha2_256;

/// The cipher-suite-1 cases of one vector file; panics with the path when it is missing.
pub(crate) fn load(name: &str) -> Vec<Value> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/test-vectors/rfc9420");
    let path = dir.join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "RFC 9420 test vectors missing: cannot read {} ({e}); they belong in \
             ../shared/test-vectors/rfc9420 relative to the repository root",
            path.display()
        )
    });
    let all: Vec<Value> = serde_json::from_str(&text).expect("vector file is JSON");
    let cases: Vec<Value> = all
        .into_iter()
        .filter(|c| c["cipher_suite"].as_u64() == Some(1))
        .collect();
    assert!(!cases.is_empty(), "{name}: no ciphersuite-1 cases");
    cases
}

/// A hex field.
pub(crate) fn h(value: &Value, key: &str) -> Vec<u8> {
    let text = value[key]
        .as_str()
        .unwrap_or_else(|| panic!("field {key} missing"));
    hex::decode(text).unwrap_or_else(|e| panic!("field {key}: {e}"))
}

/// An integer field.
pub(crate) fn n(value: &Value, key: &str) -> u64 {
    value[key]
        .as_u64()
        .unwrap_or_else(|| panic!("integer field {key} missing"))
}

pub(crate) fn crypto() -> RustCrypto {
    RustCrypto::default()
}

/// RFC 9420 variable-length integer prefix (§2.1.2).
pub(crate) fn varint(len: usize) -> Vec<u8> {
    match len {
        0..=0x3f => vec![len as u8],
        0x40..=0x3fff => ((len as u16) | 0x4000).to_be_bytes().to_vec(),
        _ => ((len as u32) | 0x8000_0000).to_be_bytes().to_vec(),
    }
}

/// `opaque data<V>`.
pub(crate) fn vl(data: &[u8]) -> Vec<u8> {
    let mut out = varint(data.len());
    out.extend_from_slice(data);
    out
}

pub(crate) fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// ExpandWithLabel(secret, label, context, length) (RFC 9420 §8).
pub(crate) fn expand_with_label(
    secret: &[u8],
    label: &[u8],
    context: &[u8],
    length: usize,
) -> Vec<u8> {
    let full = cat(&[b"MLS 1.0 ", label]);
    let info = cat(&[&(length as u16).to_be_bytes(), &vl(&full), &vl(context)]);
    crypto()
        .hkdf_expand(HASH, secret, &info, length)
        .expect("expand")
        .as_slice()
        .to_vec()
}

/// DeriveSecret(secret, label).
pub(crate) fn derive_secret(secret: &[u8], label: &[u8]) -> Vec<u8> {
    expand_with_label(secret, label, &[], NH)
}

/// DeriveTreeSecret(secret, label, generation, length).
pub(crate) fn derive_tree_secret(
    secret: &[u8],
    label: &[u8],
    generation: u32,
    length: usize,
) -> Vec<u8> {
    expand_with_label(secret, label, &generation.to_be_bytes(), length)
}

/// KDF.Extract(salt, ikm).
pub(crate) fn extract(salt: &[u8], ikm: &[u8]) -> Vec<u8> {
    crypto()
        .hkdf_extract(HASH, salt, ikm)
        .expect("extract")
        .as_slice()
        .to_vec()
}

/// The SignContent / EncryptContext wrapper: `opaque label<V> = "MLS 1.0 " + label;
/// opaque content<V>`.
pub(crate) fn labelled(label: &[u8], content: &[u8]) -> Vec<u8> {
    cat(&[&vl(&cat(&[b"MLS 1.0 ", label])), &vl(content)])
}

/// Verifies SignWithLabel with Ed25519.
pub(crate) fn verify_with_label(
    public: &[u8],
    label: &[u8],
    content: &[u8],
    signature: &[u8],
) -> bool {
    crypto()
        .verify_signature(
            SignatureScheme::ED25519,
            &labelled(label, content),
            public,
            signature,
        )
        .is_ok()
}

pub(crate) fn hpke_config() -> HpkeConfig {
    HpkeConfig(
        HpkeKemType::DhKem25519,
        HpkeKdfType::HkdfSha256,
        HpkeAeadType::AesGcm128,
    )
}

/// A cursor over TLS-presentation bytes.
pub(crate) struct Reader<'a> {
    pub(crate) bytes: &'a [u8],
    pub(crate) pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, pos: 0 }
    }

    pub(crate) fn take(&mut self, n: usize) -> &'a [u8] {
        let out = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        out
    }

    pub(crate) fn u8(&mut self) -> u8 {
        self.take(1)[0]
    }

    pub(crate) fn u16(&mut self) -> u16 {
        u16::from_be_bytes(self.take(2).try_into().expect("2"))
    }

    pub(crate) fn u32(&mut self) -> u32 {
        u32::from_be_bytes(self.take(4).try_into().expect("4"))
    }

    pub(crate) fn u64(&mut self) -> u64 {
        u64::from_be_bytes(self.take(8).try_into().expect("8"))
    }

    pub(crate) fn varint(&mut self) -> usize {
        let first = self.bytes[self.pos];
        match first >> 6 {
            0 => self.u8() as usize,
            1 => (self.u16() & 0x3fff) as usize,
            2 => (self.u32() & 0x3fff_ffff) as usize,
            _ => panic!("invalid varint prefix"),
        }
    }

    pub(crate) fn vl(&mut self) -> &'a [u8] {
        let len = self.varint();
        self.take(len)
    }

    pub(crate) fn is_done(&self) -> bool {
        self.pos == self.bytes.len()
    }
}

/// Serialized GroupContext (RFC 9420 §8.1) with no extensions.
pub(crate) fn group_context(group_id: &[u8], epoch: u64, tree_hash: &[u8], cth: &[u8]) -> Vec<u8> {
    cat(&[
        &1u16.to_be_bytes(),
        &1u16.to_be_bytes(),
        &vl(group_id),
        &epoch.to_be_bytes(),
        &vl(tree_hash),
        &vl(cth),
        &vl(&[]),
    ])
}
