//! crypto-basics, key-schedule and secret-tree: RFC 9420's derivations (our transcription)
//! over openmls_rust_crypto's HKDF, hash, signature and HPKE.
use super::*;

#[test]
fn crypto_basics() {
    let c = crypto();
    for case in load("crypto-basics") {
        let v = &case["ref_hash"];
        let input = cat(&[
            &vl(v["label"].as_str().expect("label").as_bytes()),
            &vl(&h(v, "value")),
        ]);
        assert_eq!(c.hash(HASH, &input).expect("hash"), h(v, "out"), "RefHash");

        let v = &case["expand_with_label"];
        let label = v["label"].as_str().expect("label").as_bytes();
        let out = expand_with_label(
            &h(v, "secret"),
            label,
            &h(v, "context"),
            n(v, "length") as usize,
        );
        assert_eq!(out, h(v, "out"), "ExpandWithLabel");

        let v = &case["derive_secret"];
        let label = v["label"].as_str().expect("label").as_bytes();
        assert_eq!(
            derive_secret(&h(v, "secret"), label),
            h(v, "out"),
            "DeriveSecret"
        );

        let v = &case["derive_tree_secret"];
        let label = v["label"].as_str().expect("label").as_bytes();
        let out = derive_tree_secret(
            &h(v, "secret"),
            label,
            n(v, "generation") as u32,
            n(v, "length") as usize,
        );
        assert_eq!(out, h(v, "out"), "DeriveTreeSecret");

        let v = &case["sign_with_label"];
        let label = v["label"].as_str().expect("label").as_bytes();
        assert!(
            verify_with_label(&h(v, "pub"), label, &h(v, "content"), &h(v, "signature")),
            "SignWithLabel verify"
        );
        // Ed25519 is deterministic: signing again gives the vector's signature.
        let signature = c
            .sign(
                SignatureScheme::ED25519,
                &labelled(label, &h(v, "content")),
                &h(v, "priv"),
            )
            .expect("sign");
        assert_eq!(signature, h(v, "signature"), "SignWithLabel sign");

        let v = &case["encrypt_with_label"];
        let label = v["label"].as_str().expect("label").as_bytes();
        let ciphertext = HpkeCiphertext {
            kem_output: h(v, "kem_output").into(),
            ciphertext: h(v, "ciphertext").into(),
        };
        let info = labelled(label, &h(v, "context"));
        let plaintext = c
            .hpke_open(hpke_config(), &ciphertext, &h(v, "priv"), &info, &[])
            .expect("EncryptWithLabel opens");
        assert_eq!(plaintext, h(v, "plaintext"), "EncryptWithLabel");
    }
}

#[test]
fn key_schedule() {
    let c = crypto();
    for case in load("key-schedule") {
        let group_id = h(&case, "group_id");
        let mut init_secret = h(&case, "initial_init_secret");
        for (epoch, e) in case["epochs"]
            .as_array()
            .expect("epochs")
            .iter()
            .enumerate()
        {
            let context = group_context(
                &group_id,
                epoch as u64,
                &h(e, "tree_hash"),
                &h(e, "confirmed_transcript_hash"),
            );
            assert_eq!(context, h(e, "group_context"), "GroupContext epoch {epoch}");
            let joiner = expand_with_label(
                &extract(&init_secret, &h(e, "commit_secret")),
                b"joiner",
                &context,
                NH,
            );
            assert_eq!(joiner, h(e, "joiner_secret"), "joiner_secret epoch {epoch}");
            let member = extract(&joiner, &h(e, "psk_secret"));
            assert_eq!(derive_secret(&member, b"welcome"), h(e, "welcome_secret"));
            let epoch_secret = expand_with_label(&member, b"epoch", &context, NH);
            for (label, key) in [
                (&b"sender data"[..], "sender_data_secret"),
                (b"encryption", "encryption_secret"),
                (b"exporter", "exporter_secret"),
                (b"external", "external_secret"),
                (b"confirm", "confirmation_key"),
                (b"membership", "membership_key"),
                (b"resumption", "resumption_psk"),
                (b"authentication", "epoch_authenticator"),
            ] {
                assert_eq!(
                    derive_secret(&epoch_secret, label),
                    h(e, key),
                    "{key} epoch {epoch}"
                );
            }
            let external = c
                .derive_hpke_keypair(hpke_config(), &h(e, "external_secret"))
                .expect("DeriveKeyPair");
            assert_eq!(
                external.public,
                h(e, "external_pub"),
                "external_pub epoch {epoch}"
            );
            let x = &e["exporter"];
            // The label is used as the text it is written in (a string of hex digits), as
            // openmls's `export_secret(label: &str, ..)` receives it.
            let label = x["label"].as_str().expect("label").as_bytes();
            let secret = derive_secret(&h(e, "exporter_secret"), label);
            let hashed = c.hash(HASH, &h(x, "context")).expect("hash");
            let exported =
                expand_with_label(&secret, b"exported", &hashed, n(x, "length") as usize);
            assert_eq!(exported, h(x, "secret"), "MLS-Exporter epoch {epoch}");
            init_secret = derive_secret(&epoch_secret, b"init");
            assert_eq!(
                init_secret,
                h(e, "init_secret"),
                "init_secret epoch {epoch}"
            );
        }
    }
}

/// Node index of leaf `leaf` and the path from the root of a tree of `n_leaves` leaves
/// (a power of two), as (node, went_right) steps.
pub(crate) fn leaf_secret(encryption_secret: &[u8], n_leaves: usize, leaf: usize) -> Vec<u8> {
    assert!(n_leaves.is_power_of_two(), "RFC 9420 trees have 2^k leaves");
    let mut secret = encryption_secret.to_vec();
    let (mut lo, mut hi) = (0usize, n_leaves);
    while hi - lo > 1 {
        let mid = (lo + hi) / 2;
        if leaf < mid {
            secret = expand_with_label(&secret, b"tree", b"left", NH);
            hi = mid;
        } else {
            secret = expand_with_label(&secret, b"tree", b"right", NH);
            lo = mid;
        }
    }
    secret
}

/// Key and nonce of a ratchet at `generation`.
pub(crate) fn ratchet(leaf_secret: &[u8], kind: &[u8], generation: u32) -> (Vec<u8>, Vec<u8>) {
    let mut secret = expand_with_label(leaf_secret, kind, &[], NH);
    for g in 0..generation {
        secret = derive_tree_secret(&secret, b"secret", g, NH);
    }
    (
        derive_tree_secret(&secret, b"key", generation, NK),
        derive_tree_secret(&secret, b"nonce", generation, NN),
    )
}

#[test]
fn secret_tree() {
    for case in load("secret-tree") {
        let s = &case["sender_data"];
        let ciphertext = h(s, "ciphertext");
        let sample = &ciphertext[..ciphertext.len().min(NH)];
        assert_eq!(
            expand_with_label(&h(s, "sender_data_secret"), b"key", sample, NK),
            h(s, "key")
        );
        assert_eq!(
            expand_with_label(&h(s, "sender_data_secret"), b"nonce", sample, NN),
            h(s, "nonce")
        );
        let leaves = case["leaves"].as_array().expect("leaves");
        for (leaf, generations) in leaves.iter().enumerate() {
            let secret = leaf_secret(&h(&case, "encryption_secret"), leaves.len(), leaf);
            for g in generations.as_array().expect("generations") {
                let generation = n(g, "generation") as u32;
                let (key, nonce) = ratchet(&secret, b"handshake", generation);
                assert_eq!(
                    (key, nonce),
                    (h(g, "handshake_key"), h(g, "handshake_nonce")),
                    "leaf {leaf} gen {generation}"
                );
                let (key, nonce) = ratchet(&secret, b"application", generation);
                assert_eq!(
                    (key, nonce),
                    (h(g, "application_key"), h(g, "application_nonce")),
                    "leaf {leaf} gen {generation}"
                );
            }
        }
    }
}
