//! Accounts the generator logs in with: read from a file (`address:password` lines, for
//! servers where accounts must exist beforehand) or generated the chatmail way (random
//! 9-character local part, random 20-character password, created by the first login).
use std::fmt;
use std::path::Path;

use rand::distributions::{Alphanumeric, DistString, Uniform};
use rand::Rng;
use zeroize::Zeroizing;

use crate::errors::AccountsError;

const LOCAL_PART_LEN: usize = 9;
const PASSWORD_LEN: usize = 20;

/// One mail account.
#[derive(Clone)]
pub(crate) struct Account {
    /// The full address, `local@domain`.
    pub(crate) address: String,
    /// The password.
    pub(crate) password: Zeroizing<String>,
}

impl fmt::Debug for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Account").finish_non_exhaustive()
    }
}

/// Where accounts come from; hands out each account at most once.
#[derive(Debug)]
pub(crate) enum AccountPool {
    /// Accounts listed in a file, handed out in order.
    Listed {
        /// The accounts not yet handed out, in reverse order.
        remaining: Vec<Account>,
        /// How many the file held.
        total: usize,
    },
    /// Fresh random accounts under this domain.
    Generated {
        /// The mail domain.
        domain: String,
    },
}

impl AccountPool {
    /// Reads an accounts file: one `address:password` per line; blank lines and lines
    /// starting with `#` are skipped.
    pub(crate) fn from_file(path: &Path) -> Result<Self, AccountsError> {
        let text = std::fs::read_to_string(path).map_err(|source| AccountsError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut accounts = parse_accounts(&text)?;
        accounts.reverse();
        Ok(Self::Listed {
            total: accounts.len(),
            remaining: accounts,
        })
    }

    /// Generates accounts under `domain`.
    pub(crate) fn generated(domain: &str) -> Self {
        Self::Generated {
            domain: domain.to_owned(),
        }
    }

    /// Hands out `n` accounts not handed out before.
    pub(crate) fn take(&mut self, n: usize) -> Result<Vec<Account>, AccountsError> {
        match self {
            Self::Listed { remaining, total } => {
                if remaining.len() < n {
                    return Err(AccountsError::NotEnough {
                        needed: n,
                        available: remaining.len(),
                        total: *total,
                    });
                }
                Ok((0..n).filter_map(|_| remaining.pop()).collect())
            }
            Self::Generated { domain } => Ok((0..n).map(|_| generate(domain)).collect()),
        }
    }

    /// Whether the accounts still have to be created by a first login.
    pub(crate) fn is_generated(&self) -> bool {
        matches!(self, Self::Generated { .. })
    }
}

/// A fresh account: random `[a-z0-9]{9}` local part, random alphanumeric password.
pub(crate) fn generate(domain: &str) -> Account {
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::thread_rng();
    let pick = Uniform::from(0..CHARS.len());
    let local: String = (0..LOCAL_PART_LEN)
        .map(|_| char::from(CHARS[rng.sample(pick)]))
        .collect();
    Account {
        address: format!("{local}@{domain}"),
        password: Zeroizing::new(Alphanumeric.sample_string(&mut rng, PASSWORD_LEN)),
    }
}

fn parse_accounts(text: &str) -> Result<Vec<Account>, AccountsError> {
    let mut accounts = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (address, password) = line
            .split_once(':')
            .filter(|(a, p)| a.contains('@') && !p.is_empty())
            .ok_or(AccountsError::BadLine { line: index + 1 })?;
        accounts.push(Account {
            address: address.to_owned(),
            password: Zeroizing::new(password.to_owned()),
        });
    }
    Ok(accounts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_accounts_look_like_chatmail_ones() {
        let account = generate("relay.test");
        let (local, domain) = account.address.split_once('@').expect("has @");
        assert_eq!(domain, "relay.test");
        assert_eq!(local.len(), 9);
        assert!(local
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
        assert_eq!(account.password.len(), 20);
        assert_ne!(generate("relay.test").address, account.address);
    }

    #[test]
    fn accounts_file_is_handed_out_in_order_once() {
        let dir = std::env::temp_dir().join(format!("kith-loadgen-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("accounts.txt");
        std::fs::write(&path, "# header\na@x.test:pw:with:colons\n\nb@x.test:two\n")
            .expect("write");
        let mut pool = AccountPool::from_file(&path).expect("reads");
        let first = pool.take(1).expect("one");
        assert_eq!(first[0].address, "a@x.test");
        assert_eq!(first[0].password.as_str(), "pw:with:colons");
        assert!(matches!(
            pool.take(2),
            Err(AccountsError::NotEnough {
                needed: 2,
                available: 1,
                total: 2
            })
        ));
        assert_eq!(pool.take(1).expect("the second")[0].address, "b@x.test");
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn malformed_lines_are_reported_with_their_number() {
        let err = parse_accounts("a@x.test:pw\nnocolon\n").expect_err("bad line");
        assert!(matches!(err, AccountsError::BadLine { line: 2 }));
        assert!(parse_accounts("a@x.test:\n").is_err());
    }

    #[test]
    fn debug_output_hides_the_password() {
        let account = generate("relay.test");
        let shown = format!("{account:?}");
        assert!(!shown.contains(account.password.as_str()));
    }
}
