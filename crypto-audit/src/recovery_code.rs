//! Recovery codes: 130 random bits, written as Crockford base32 with a check symbol.
//!
//! Format (PROTOCOL.md §8.1): 26 data symbols (Crockford base32, 5 bits each: 130 bits of
//! entropy) followed by one check symbol, shown in groups of four separated by `-`:
//! `XXXX-XXXX-XXXX-XXXX-XXXX-XXXX-XXC`. The check symbol is Crockford's: the 130-bit
//! number modulo 37, written with the alphabet `0-9 A-Z` minus `I L O U`, then `* ~ $ = U`.
//! Because 37 is a prime larger than 32, any single mistyped symbol changes the value
//! modulo 37, and any swap of two adjacent different symbols changes it by
//! `(a - b)·31·32^k ≢ 0 (mod 37)`; both are caught before any decryption is tried.
//! Parsing ignores case, spaces and dashes, and reads `I`/`L` as `1` and `O` as `0`.

use rand_core::{CryptoRng, RngCore};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// Number of data symbols (5 bits each).
pub const DATA_SYMBOLS: usize = 26;
/// Crockford's base32 alphabet, then the five extra check symbols.
const ALPHABET: &[u8; 37] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ*~$=U";
const GROUP: usize = 4;

/// Why a typed recovery code was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecoveryCodeError {
    /// The code has the wrong number of symbols.
    #[error("a recovery code has {expected} symbols, this one has {found}")]
    WrongLength {
        /// Symbols expected (data and check).
        expected: usize,
        /// Symbols found.
        found: usize,
    },
    /// A character is not in the code's alphabet.
    #[error("symbol {position} is not a valid character")]
    InvalidSymbol {
        /// 1-based position among the symbols.
        position: usize,
    },
    /// The check symbol does not match: a symbol was mistyped or two were swapped.
    #[error("the recovery code has a typo (its check symbol does not match)")]
    ChecksumMismatch,
}

/// A recovery code. Holds the canonical symbols; zeroized on drop; never printed by Debug.
#[derive(Clone, Zeroize, ZeroizeOnDrop, PartialEq, Eq)]
pub struct RecoveryCode {
    /// The 26 data symbols and the check symbol, upper case, without dashes.
    symbols: [u8; DATA_SYMBOLS + 1],
}

impl std::fmt::Debug for RecoveryCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RecoveryCode(..)")
    }
}

impl RecoveryCode {
    /// Generates a fresh code with 130 bits from `rng`.
    pub fn generate(rng: &mut (impl RngCore + CryptoRng)) -> Self {
        let mut values = Zeroizing::new([0u8; DATA_SYMBOLS]);
        let mut random = Zeroizing::new([0u8; DATA_SYMBOLS]);
        rng.fill_bytes(random.as_mut());
        for (v, r) in values.iter_mut().zip(random.iter()) {
            *v = r & 0x1F;
        }
        Self::from_values(&values)
    }

    fn from_values(values: &[u8; DATA_SYMBOLS]) -> Self {
        let mut symbols = [0u8; DATA_SYMBOLS + 1];
        for (s, v) in symbols.iter_mut().zip(values.iter()) {
            *s = ALPHABET[usize::from(*v)];
        }
        symbols[DATA_SYMBOLS] = ALPHABET[usize::from(check_value(values))];
        RecoveryCode { symbols }
    }

    /// Parses a typed code, checking the check symbol before anything else is done.
    pub fn parse(typed: &str) -> Result<Self, RecoveryCodeError> {
        let cleaned: Zeroizing<Vec<u8>> = Zeroizing::new(
            typed
                .bytes()
                .filter(|b| !matches!(b, b'-' | b' ' | b'\t' | b'\r' | b'\n'))
                .collect(),
        );
        if cleaned.len() != DATA_SYMBOLS + 1 {
            return Err(RecoveryCodeError::WrongLength {
                expected: DATA_SYMBOLS + 1,
                found: cleaned.len(),
            });
        }
        let mut values = Zeroizing::new([0u8; DATA_SYMBOLS]);
        for (i, (v, c)) in values.iter_mut().zip(cleaned.iter()).enumerate() {
            *v = symbol_value(*c, false)
                .ok_or(RecoveryCodeError::InvalidSymbol { position: i + 1 })?;
        }
        let check =
            symbol_value(cleaned[DATA_SYMBOLS], true).ok_or(RecoveryCodeError::InvalidSymbol {
                position: DATA_SYMBOLS + 1,
            })?;
        if check != check_value(&values) {
            return Err(RecoveryCodeError::ChecksumMismatch);
        }
        Ok(Self::from_values(&values))
    }

    /// The code as people write it: groups of four symbols joined by `-`.
    pub fn to_display_string(&self) -> Zeroizing<String> {
        let groups: Vec<&str> = self
            .symbols
            .chunks(GROUP)
            .map(|g| std::str::from_utf8(g).expect("the alphabet is ASCII"))
            .collect();
        Zeroizing::new(groups.join("-"))
    }

    /// The bytes used as the OpenPGP password: the 27 canonical symbols, no dashes.
    pub(crate) fn password_bytes(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(self.symbols.to_vec())
    }
}

/// The 130-bit number the data symbols spell, modulo 37 (Horner's rule).
fn check_value(values: &[u8; DATA_SYMBOLS]) -> u8 {
    let rem = values
        .iter()
        .fold(0u32, |acc, v| (acc * 32 + u32::from(*v)) % 37);
    u8::try_from(rem).expect("a remainder modulo 37 fits in a byte")
}

/// The value of a typed symbol. Data symbols are 0..32; the check symbol may also be one
/// of the five extra symbols (32..37). Lower case, `I`, `L` and `O` are read as Crockford
/// says.
fn symbol_value(c: u8, is_check: bool) -> Option<u8> {
    let c = match c.to_ascii_uppercase() {
        b'I' | b'L' => b'1',
        b'O' => b'0',
        other => other,
    };
    let limit = if is_check { 37 } else { 32 };
    ALPHABET[..limit]
        .iter()
        .position(|a| *a == c)
        .and_then(|p| u8::try_from(p).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn code(seed: u64) -> RecoveryCode {
        RecoveryCode::generate(&mut StdRng::seed_from_u64(seed))
    }

    #[test]
    fn display_is_grouped_and_parses_back() {
        let c = code(1);
        let shown = c.to_display_string();
        assert_eq!(shown.len(), 27 + 6);
        assert_eq!(shown.matches('-').count(), 6);
        assert_eq!(RecoveryCode::parse(&shown), Ok(c.clone()));
        assert_eq!(RecoveryCode::parse(&shown.to_lowercase()), Ok(c));
    }

    #[test]
    fn debug_does_not_show_the_code() {
        let c = code(2);
        let debug = format!("{c:?}");
        assert!(!debug.contains(&c.to_display_string()[..4]));
    }

    #[test]
    fn wrong_lengths_and_symbols_are_refused() {
        assert!(matches!(
            RecoveryCode::parse("ABCD"),
            Err(RecoveryCodeError::WrongLength { found: 4, .. })
        ));
        let shown = code(3).to_display_string().replacen(|_: char| true, "U", 1);
        assert_eq!(
            RecoveryCode::parse(&shown),
            Err(RecoveryCodeError::InvalidSymbol { position: 1 })
        );
    }

    proptest! {
        #[test]
        fn every_single_substitution_is_caught(seed in any::<u64>(), pos in 0usize..27, to in 0usize..37) {
            let c = code(seed);
            let mut symbols = c.symbols;
            prop_assume!(ALPHABET[to] != symbols[pos]);
            symbols[pos] = ALPHABET[to];
            let typed = String::from_utf8(symbols.to_vec()).expect("ASCII");
            prop_assert!(RecoveryCode::parse(&typed).is_err());
        }

        #[test]
        fn every_adjacent_swap_is_caught(seed in any::<u64>(), pos in 0usize..26) {
            let c = code(seed);
            let mut symbols = c.symbols;
            prop_assume!(symbols[pos] != symbols[pos + 1]);
            symbols.swap(pos, pos + 1);
            let typed = String::from_utf8(symbols.to_vec()).expect("ASCII");
            prop_assert!(RecoveryCode::parse(&typed).is_err());
        }
    }
}
