//! Known-answer vectors for recovery codes and backups (`vectors/backup.json`).

use crate::vectors::expect_eq;
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use super::{decrypt_backup, encrypt_backup};
use crate::recovery_code::RecoveryCode;
use crate::vectors::VectorSuite;

/// The backup suite for the registry.
pub(crate) const SUITE: VectorSuite = VectorSuite {
    name: "backup",
    file: "backup.json",
    check,
    generate: Some(generate),
};

#[derive(Serialize, Deserialize)]
struct File {
    description: String,
    /// `RecoveryCode::generate(StdRng::seed_from_u64(seed))` (rand 0.8's StdRng).
    recovery_codes: Vec<(u64, String)>,
    /// Typed codes and whether they must parse.
    typed: Vec<(String, bool)>,
    backups: Vec<BackupVector>,
}

#[derive(Serialize, Deserialize)]
struct BackupVector {
    code: String,
    plaintext: String,
    backup: String,
}

/// Checks `vectors/backup.json`.
pub(crate) fn check(json: &str) -> Result<usize, String> {
    let file: File = serde_json::from_str(json).map_err(|e| e.to_string())?;
    let mut cases = 0;
    for (seed, code) in &file.recovery_codes {
        let generated = RecoveryCode::generate(&mut StdRng::seed_from_u64(*seed));
        expect_eq(
            "recovery code",
            generated.to_display_string().as_str(),
            code.as_str(),
        )?;
        cases += 1;
    }
    for (typed, is_valid) in &file.typed {
        expect_eq(typed, RecoveryCode::parse(typed).is_ok(), *is_valid)?;
        cases += 1;
    }
    for b in &file.backups {
        let code = RecoveryCode::parse(&b.code).map_err(|e| e.to_string())?;
        let plaintext = decrypt_backup(b.backup.as_bytes(), &code).map_err(|e| e.to_string())?;
        expect_eq(
            "backup plaintext",
            hex::encode(&*plaintext),
            b.plaintext.clone(),
        )?;
        cases += 1;
    }
    Ok(cases)
}

/// Generates the file once (the backup ciphertext uses sequoia's own randomness).
pub(crate) fn generate() -> Result<String, String> {
    let recovery_codes: Vec<(u64, String)> = [1u64, 2, 3]
        .into_iter()
        .map(|seed| {
            let code = RecoveryCode::generate(&mut StdRng::seed_from_u64(seed));
            (seed, code.to_display_string().to_string())
        })
        .collect();
    let good = recovery_codes[0].1.clone();
    let mut typo: Vec<char> = good.chars().collect();
    typo[5] = if typo[5] == 'A' { 'B' } else { 'A' };
    let mut swap: Vec<char> = good.chars().collect();
    let i = (0..swap.len() - 1)
        .find(|&i| swap[i] != swap[i + 1] && swap[i] != '-' && swap[i + 1] != '-')
        .ok_or("no adjacent distinct symbols")?;
    swap.swap(i, i + 1);
    let typed = vec![
        (good.to_lowercase(), true),
        (good.replace('-', " "), true),
        (typo.into_iter().collect(), false),
        (swap.into_iter().collect(), false),
        (good[..good.len() - 1].to_owned(), false),
    ];
    let code = RecoveryCode::parse(&good).map_err(|e| e.to_string())?;
    let plaintext = b"kith backup vector: identity key and contacts".to_vec();
    let backup = encrypt_backup(&plaintext, &code).map_err(|e| e.to_string())?;
    let backups = vec![BackupVector {
        code: good,
        plaintext: hex::encode(&plaintext),
        backup: String::from_utf8(backup).map_err(|e| e.to_string())?,
    }];
    let file = File {
        description: "Kith recovery-code and backup vectors; see PROTOCOL.md section 8.".into(),
        recovery_codes,
        typed,
        backups,
    };
    serde_json::to_string_pretty(&file).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn checked_in_vectors_pass() {
        let json = include_str!("../../vectors/backup.json");
        let cases = super::check(json).expect("backup vectors pass");
        assert!(cases >= 9, "only {cases} cases");
    }
}
