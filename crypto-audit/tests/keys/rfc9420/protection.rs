//! message-protection, the unprotect direction: openmls parses every message; the
//! PublicMessages' membership tags and signatures and the PrivateMessages' sender data,
//! content decryption (secret tree of 2 members, sender leaf 1) and signatures are checked
//! with the provider's primitives per RFC 9420 §6. The protect direction (re-encrypting with
//! the vector's keys) needs openmls internals and is not checked here.
use super::basics::{leaf_secret, ratchet};
use super::*;
use kith_crypto::mls::openmls::prelude::tls_codec::Deserialize as _;

const PROPOSAL: u8 = 2;
const COMMIT: u8 = 3;
const APPLICATION: u8 = 1;

struct Case {
    group_id: Vec<u8>,
    epoch: u64,
    context: Vec<u8>,
    signature_pub: Vec<u8>,
}

fn framed_content(case: &Case, wire: u16, aad: &[u8], content_type: u8, body: &[u8]) -> Vec<u8> {
    cat(&[
        &1u16.to_be_bytes(),
        &wire.to_be_bytes(),
        &vl(&case.group_id),
        &case.epoch.to_be_bytes(),
        &[1],
        &1u32.to_be_bytes(),
        &vl(aad),
        &[content_type],
        body,
        &case.context,
    ])
}

fn check_public(case: &Case, message: &[u8], content_type: u8, raw: &[u8], membership_key: &[u8]) {
    MlsMessageIn::tls_deserialize_exact(message).expect("openmls parses the PublicMessage");
    let mut r = Reader::new(message);
    assert_eq!((r.u16(), r.u16()), (1, 1), "MLS 1.0 PublicMessage");
    assert_eq!(r.vl(), case.group_id);
    assert_eq!(r.u64(), case.epoch);
    assert_eq!((r.u8(), r.u32()), (1, 1), "member sender, leaf 1");
    let aad = r.vl().to_vec();
    assert_eq!(r.u8(), content_type);
    assert_eq!(
        r.take(raw.len()),
        raw,
        "the message carries the raw content"
    );
    let auth_start = r.pos;
    let signature = r.vl().to_vec();
    if content_type == COMMIT {
        r.vl(); // confirmation_tag
    }
    let auth_data = &message[auth_start..r.pos];
    let membership_tag = r.vl().to_vec();
    assert!(r.is_done());
    let tbs = framed_content(case, 1, &aad, content_type, raw);
    assert!(
        verify_with_label(&case.signature_pub, b"FramedContentTBS", &tbs, &signature),
        "signature"
    );
    let tbm = cat(&[&tbs, auth_data]);
    let tag = crypto().hmac(HASH, membership_key, &tbm).expect("hmac");
    assert_eq!(tag.as_slice(), membership_tag, "membership tag");
}

fn check_private(case: &Case, v: &Value, message: &[u8], content_type: u8, body: &[u8]) {
    let c = crypto();
    MlsMessageIn::tls_deserialize_exact(message).expect("openmls parses the PrivateMessage");
    let mut r = Reader::new(message);
    assert_eq!((r.u16(), r.u16()), (1, 2), "MLS 1.0 PrivateMessage");
    assert_eq!(r.vl(), case.group_id);
    assert_eq!(r.u64(), case.epoch);
    assert_eq!(r.u8(), content_type);
    let aad = r.vl().to_vec();
    let encrypted_sender_data = r.vl().to_vec();
    let ciphertext = r.vl().to_vec();
    assert!(r.is_done());

    let sample = &ciphertext[..ciphertext.len().min(NH)];
    let sender_secret = h(v, "sender_data_secret");
    let key = expand_with_label(&sender_secret, b"key", sample, NK);
    let nonce = expand_with_label(&sender_secret, b"nonce", sample, NN);
    let sender_aad = cat(&[
        &vl(&case.group_id),
        &case.epoch.to_be_bytes(),
        &[content_type],
    ]);
    let sender_data = c
        .aead_decrypt(
            AeadType::Aes128Gcm,
            &key,
            &encrypted_sender_data,
            &nonce,
            &sender_aad,
        )
        .expect("sender data decrypts");
    let mut s = Reader::new(&sender_data);
    assert_eq!(s.u32(), 1, "sender leaf 1");
    let generation = s.u32();
    let reuse_guard = s.take(4).to_vec();
    assert!(s.is_done());

    let kind: &[u8] = if content_type == APPLICATION {
        b"application"
    } else {
        b"handshake"
    };
    let (key, mut nonce) = ratchet(
        &leaf_secret(&h(v, "encryption_secret"), 2, 1),
        kind,
        generation,
    );
    for (n, g) in nonce.iter_mut().zip(&reuse_guard) {
        *n ^= g;
    }
    let content_aad = cat(&[
        &vl(&case.group_id),
        &case.epoch.to_be_bytes(),
        &[content_type],
        &vl(&aad),
    ]);
    let plaintext = c
        .aead_decrypt(AeadType::Aes128Gcm, &key, &ciphertext, &nonce, &content_aad)
        .expect("content decrypts");
    assert_eq!(&plaintext[..body.len()], body, "decrypted content");
    let mut p = Reader::new(&plaintext[body.len()..]);
    let signature = p.vl().to_vec();
    if content_type == COMMIT {
        p.vl();
    }
    assert!(p.bytes[p.pos..].iter().all(|&b| b == 0), "padding is zeros");
    let tbs = framed_content(case, 2, &aad, content_type, body);
    assert!(
        verify_with_label(&case.signature_pub, b"FramedContentTBS", &tbs, &signature),
        "signature"
    );
}

#[test]
fn message_protection() {
    for v in load("message-protection") {
        let case = Case {
            group_id: h(&v, "group_id"),
            epoch: n(&v, "epoch"),
            context: group_context(
                &h(&v, "group_id"),
                n(&v, "epoch"),
                &h(&v, "tree_hash"),
                &h(&v, "confirmed_transcript_hash"),
            ),
            signature_pub: h(&v, "signature_pub"),
        };
        let membership_key = h(&v, "membership_key");
        check_public(
            &case,
            &h(&v, "proposal_pub"),
            PROPOSAL,
            &h(&v, "proposal"),
            &membership_key,
        );
        check_public(
            &case,
            &h(&v, "commit_pub"),
            COMMIT,
            &h(&v, "commit"),
            &membership_key,
        );
        check_private(
            &case,
            &v,
            &h(&v, "proposal_priv"),
            PROPOSAL,
            &h(&v, "proposal"),
        );
        check_private(&case, &v, &h(&v, "commit_priv"), COMMIT, &h(&v, "commit"));
        check_private(
            &case,
            &v,
            &h(&v, "application_priv"),
            APPLICATION,
            &vl(&h(&v, "application")),
        );
    }
}
