//! The same group scenario ([`kith_e2e::scenario`]) against a standard mail server: Postfix
//! (submission, implicit TLS) and Dovecot (IMAPS with IDLE) from Debian's packages, set up
//! on loopback by `bench/postfix-dovecot/setup.sh` — which `.ci/run` runs, and which this
//! test runs itself when the servers are not up and it may (as root). The client needs
//! nothing from the server but SMTP and IMAP: accounts are the server's ordinary mailboxes.
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use kith_core::account::Account;
use kith_core::transport::{RelayEndpoint, Security, ServerEndpoint, TrustAnchor};
use kith_crypto::identity::IdentityKey;
use kith_e2e::scenario::{self, Accounts};
use zeroize::Zeroizing;

/// The mail domain the test's mailboxes live in.
const DOMAIN: &str = "kith-pd.test";
/// Postfix's submissions and Dovecot's IMAPS ports (setup.sh's defaults).
const SUBMISSIONS_PORT: u16 = 11465;
const IMAPS_PORT: u16 = 11993;
/// Mailboxes the scenario needs.
const MAILBOXES: usize = 4;

fn bench_dir() -> PathBuf {
    std::env::var_os("KITH_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/etc/kith-bench"))
}

fn listening() -> bool {
    [SUBMISSIONS_PORT, IMAPS_PORT]
        .iter()
        .all(|port| TcpStream::connect(("127.0.0.1", *port)).is_ok())
}

/// The mailboxes of [`DOMAIN`] from setup.sh's accounts file.
fn mailboxes(dir: &Path) -> Result<Vec<(String, Zeroizing<String>)>> {
    let text = std::fs::read_to_string(dir.join("accounts.txt")).unwrap_or_default();
    Ok(text
        .lines()
        .filter_map(|line| line.split_once(':'))
        .filter(|(address, _)| address.ends_with(&format!("@{DOMAIN}")))
        .map(|(a, p)| (a.to_owned(), Zeroizing::new(p.to_owned())))
        .collect())
}

/// Makes sure Postfix and Dovecot are up with enough mailboxes: runs setup.sh if not
/// (it is idempotent); fails with instructions when this user cannot.
fn servers() -> Result<Vec<(String, Zeroizing<String>)>> {
    let dir = bench_dir();
    if listening() && mailboxes(&dir)?.len() >= MAILBOXES {
        return mailboxes(&dir);
    }
    let setup = Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/postfix-dovecot/setup.sh");
    let status = Command::new("sh")
        .arg(&setup)
        .args([DOMAIN, &(MAILBOXES * 2).to_string()])
        .status()
        .context("running setup.sh")?;
    if !status.success() {
        bail!(
            "Postfix + Dovecot are not running and {} failed ({status}); run it as root: \
             sudo {} {DOMAIN} 8",
            setup.display(),
            setup.display()
        );
    }
    let found = mailboxes(&dir)?;
    if !listening() || found.len() < MAILBOXES {
        bail!("setup.sh ran but the servers or mailboxes are missing");
    }
    Ok(found)
}

fn endpoint() -> RelayEndpoint {
    let server = |port| ServerEndpoint {
        host: "127.0.0.1".into(),
        port,
        security: Security::ImplicitTls,
    };
    RelayEndpoint {
        domain: DOMAIN.into(),
        imap: server(IMAPS_PORT),
        smtp: server(SUBMISSIONS_PORT),
        trust: TrustAnchor::PemFile(bench_dir().join("cert.pem")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_group_scenario_runs_unchanged_on_postfix_and_dovecot() -> Result<()> {
    let mut mailboxes = servers()?.into_iter();
    let dirs = tempfile::tempdir()?;
    let dir = |name: &str| dirs.path().join(name);
    let mut account = |name: &str, identity: IdentityKey| -> Result<Account> {
        let (address, password) = mailboxes.next().context("not enough mailboxes")?;
        Ok(Account::create_with_login(
            &dir(name),
            endpoint(),
            address,
            password,
            identity,
        )?)
    };
    let new_identity = || IdentityKey::generate(&mut rand::rngs::OsRng);
    let alice1 = account("alice1", new_identity())?;
    let alice_identity = IdentityKey::from_bytes(&alice1.identity().to_bytes()[..])?;
    let accounts = Accounts {
        alice2: account("alice2", alice_identity)?,
        alice1,
        bob: account("bob", new_identity())?,
        bob_dir: dir("bob"),
        carol: account("carol", new_identity())?,
    };
    scenario::run(accounts).await
}
