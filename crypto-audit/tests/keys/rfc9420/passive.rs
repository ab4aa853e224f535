//! welcome and passive-client vectors.
//!
//! `welcome`: openmls parses the Welcome and the KeyPackage; we open the group secrets with
//! the provider's HPKE, derive the welcome key (RFC 9420 §12.4.3.1), decrypt the GroupInfo
//! and verify its signature.
//!
//! `passive-client-*`: openmls 0.9.2 itself, with Kith's join configuration and a
//! [`KithProvider`] over SQLite, joins from the Welcome using the vector's private keys and
//! processes every proposal and commit; the epoch authenticator must match at every epoch.
use super::*;
use kith_crypto::mls::openmls::prelude::tls_codec::Deserialize as _;
use kith_crypto::mls::openmls::schedule::PreSharedKeyId;
use kith_crypto::mls::{group_join_config, run_migrations, KithProvider, MAX_PAST_EPOCHS};
use openmls_traits::storage::StorageProvider as _;
use rusqlite::Connection;

fn mls_message(bytes: &[u8]) -> MlsMessageIn {
    MlsMessageIn::tls_deserialize_exact(bytes).expect("openmls parses the MLSMessage")
}

#[test]
fn welcome() {
    let c = crypto();
    for case in load("welcome") {
        // openmls parses both messages.
        let MlsMessageBodyIn::Welcome(parsed) = mls_message(&h(&case, "welcome")).extract() else {
            panic!("not a Welcome");
        };
        let MlsMessageBodyIn::KeyPackage(key_package) =
            mls_message(&h(&case, "key_package")).extract()
        else {
            panic!("not a KeyPackage");
        };
        let key_package = key_package
            .validate(&c, ProtocolVersion::Mls10)
            .expect("openmls validates the KeyPackage");
        let kp_ref = key_package.hash_ref(&c).expect("hash ref");
        let secrets = parsed
            .secrets()
            .iter()
            .find(|s| s.new_member() == kp_ref)
            .expect("the Welcome names our KeyPackage by its reference");

        // Our own walk through the Welcome: MLSMessage header, then Welcome fields.
        let welcome = h(&case, "welcome");
        let mut r = Reader::new(&welcome[4..]);
        assert_eq!(r.u16(), 1, "cipher suite");
        let secrets_bytes = r.vl();
        let encrypted_group_info = r.vl().to_vec();
        assert!(r.is_done());
        let mut s = Reader::new(secrets_bytes);
        let mut found = None;
        while !s.is_done() {
            let member = s.vl().to_vec();
            let kem_output = s.vl().to_vec();
            let ciphertext = s.vl().to_vec();
            if member == kp_ref.as_slice() {
                found = Some(HpkeCiphertext {
                    kem_output: kem_output.into(),
                    ciphertext: ciphertext.into(),
                });
            }
        }
        let hpke = found.expect("our entry");
        let _ = secrets;
        let info = labelled(b"Welcome", &encrypted_group_info);
        let group_secrets = c
            .hpke_open(hpke_config(), &hpke, &h(&case, "init_priv"), &info, &[])
            .expect("group secrets open with init_priv");
        let mut g = Reader::new(&group_secrets);
        let joiner_secret = g.vl().to_vec();
        if g.u8() == 1 {
            g.vl(); // path secret
        }
        assert!(g.vl().is_empty(), "no PSKs in this vector");
        assert!(g.is_done());
        let member = extract(&joiner_secret, &[0u8; NH]);
        let welcome_secret = derive_secret(&member, b"welcome");
        let key = expand_with_label(&welcome_secret, b"key", &[], NK);
        let nonce = expand_with_label(&welcome_secret, b"nonce", &[], NN);
        let group_info = c
            .aead_decrypt(
                AeadType::Aes128Gcm,
                &key,
                &encrypted_group_info,
                &nonce,
                &[],
            )
            .expect("GroupInfo decrypts under the welcome key");

        // GroupInfo = GroupContext ‖ extensions ‖ confirmation_tag ‖ signer ‖ signature.
        let mut gi = Reader::new(&group_info);
        gi.take(4);
        gi.vl();
        gi.u64();
        gi.vl();
        gi.vl();
        gi.vl();
        gi.vl();
        gi.vl();
        gi.u32();
        let tbs_len = gi.pos;
        let signature = gi.vl().to_vec();
        assert!(gi.is_done());
        assert!(
            verify_with_label(
                &h(&case, "signer_pub"),
                b"GroupInfoTBS",
                &group_info[..tbs_len],
                &signature
            ),
            "GroupInfo signature verifies"
        );
    }
}

/// Kith's join configuration, plus 16 retained resumption PSKs: Kith never uses PSKs, but
/// some vectors' commits inject resumption PSKs of earlier epochs.
fn vector_join_config() -> MlsGroupJoinConfig {
    let kith = group_join_config();
    MlsGroupJoinConfig::builder()
        .wire_format_policy(kith.wire_format_policy())
        .padding_size(kith.padding_size())
        .max_past_epochs(MAX_PAST_EPOCHS)
        .sender_ratchet_configuration(*kith.sender_ratchet_configuration())
        .use_ratchet_tree_extension(true)
        .number_of_resumption_psks(16)
        .build()
}

/// Joins and replays every case; returns (joins, epochs) checked.
fn run_passive(name: &str) -> (usize, usize) {
    let mut epochs_checked = 0;
    let mut joins = 0;
    for case in load(name) {
        let conn = {
            let mut conn = Connection::open_in_memory().expect("sqlite");
            run_migrations(&mut conn).expect("migrations");
            conn
        };
        let provider = KithProvider::new(&conn);
        for psk in case["external_psks"].as_array().into_iter().flatten() {
            PreSharedKeyId::external(h(psk, "psk_id"), vec![])
                .store(&provider, &h(psk, "psk"))
                .expect("store PSK");
        }
        inject_key_package(&provider, &case);
        let MlsMessageBodyIn::Welcome(welcome) = mls_message(&h(&case, "welcome")).extract() else {
            panic!("not a Welcome");
        };
        let tree = case["ratchet_tree"].as_str().map(|t| {
            RatchetTreeIn::tls_deserialize_exact(hex::decode(t).expect("hex")).expect("tree")
        });
        // The vectors' leaf lifetimes ended in 2024-2025; openmls checks them against the
        // clock, so the join skips only that check (everything else is validated).
        let processed =
            ProcessedWelcome::new_from_welcome(&provider, &vector_join_config(), welcome)
                .expect("openmls processes the Welcome");
        let mut builder = JoinBuilder::new(&provider, processed).skip_lifetime_validation();
        if let Some(tree) = tree {
            builder = builder.with_ratchet_tree(tree);
        }
        let mut group = builder
            .build()
            .expect("openmls stages the Welcome")
            .into_group(&provider)
            .expect("openmls joins");
        assert_eq!(
            group.epoch_authenticator().as_slice(),
            h(&case, "initial_epoch_authenticator")
        );
        joins += 1;
        for (i, epoch) in case["epochs"]
            .as_array()
            .expect("epochs")
            .iter()
            .enumerate()
        {
            for proposal in epoch["proposals"].as_array().into_iter().flatten() {
                let bytes = hex::decode(proposal.as_str().expect("hex")).expect("hex");
                process(&provider, &mut group, &bytes);
            }
            process(&provider, &mut group, &h(epoch, "commit"));
            assert_eq!(
                group.epoch_authenticator().as_slice(),
                h(epoch, "epoch_authenticator"),
                "{name}: epoch authenticator after epoch {i}"
            );
            epochs_checked += 1;
        }
    }
    (joins, epochs_checked)
}

/// Stores the vector's KeyPackage with its private keys where openmls looks for it. The
/// bundle type has no public constructor, so it is built through its serde form.
fn inject_key_package(provider: &KithProvider<'_>, case: &Value) {
    let c = crypto();
    let MlsMessageBodyIn::KeyPackage(key_package) = mls_message(&h(case, "key_package")).extract()
    else {
        panic!("not a KeyPackage");
    };
    // Validate (signature, keys) when the lifetime still holds; an expired vector KeyPackage
    // is converted through its serde form instead (its lifetime is all that fails).
    let key_package: KeyPackage = match key_package.clone().validate(&c, ProtocolVersion::Mls10) {
        Ok(key_package) => key_package,
        Err(KeyPackageVerifyError::LifetimeError(_)) => {
            serde_json::from_value(serde_json::to_value(&key_package).expect("serde"))
                .expect("KeyPackageIn and KeyPackage share a serde form")
        }
        Err(e) => panic!("vector KeyPackage invalid: {e}"),
    };
    let bundle = serde_json::json!({
        "key_package": key_package,
        "private_init_key": HpkePrivateKey::from(h(case, "init_priv")),
        "private_encryption_key": { "key": HpkePrivateKey::from(h(case, "encryption_priv")) },
    });
    let bundle: KeyPackageBundle =
        serde_json::from_value(bundle).expect("bundle from its serde form");
    let hash_ref = key_package.hash_ref(&c).expect("hash ref");
    provider
        .storage()
        .write_key_package(&hash_ref, &bundle)
        .expect("store key package");
}

fn process(provider: &KithProvider<'_>, group: &mut MlsGroup, bytes: &[u8]) {
    let message = mls_message(bytes)
        .try_into_protocol_message()
        .expect("a protocol message");
    let processed = group
        .process_message(provider, message)
        .expect("openmls processes it");
    match processed.into_content() {
        ProcessedMessageContent::ProposalMessage(proposal) => group
            .store_pending_proposal(provider.storage(), *proposal)
            .expect("store proposal"),
        ProcessedMessageContent::StagedCommitMessage(commit) => group
            .merge_staged_commit(provider, *commit)
            .expect("merge commit"),
        _ => panic!("unexpected content in a passive-client vector"),
    }
}

#[test]
fn passive_client_welcome() {
    let (joins, _) = run_passive("passive-client-welcome");
    assert!(joins >= 8, "{joins} joins");
}

#[test]
fn passive_client_handling_commit() {
    let (joins, epochs) = run_passive("passive-client-handling-commit");
    assert!(joins >= 13 && epochs > 0, "{joins} joins, {epochs} epochs");
}

#[test]
fn passive_client_random() {
    let (joins, epochs) = run_passive("passive-client-random");
    assert!(joins >= 1 && epochs > 0, "{joins} joins, {epochs} epochs");
}
