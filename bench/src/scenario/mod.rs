//! The four scenarios and what they share: the targets, the accounts, logging in many
//! sessions at once.
pub(crate) mod fanout;
pub(crate) mod flow;
pub(crate) mod idle;

use std::future::Future;

use anyhow::{Context, Result};
use futures::{StreamExt, TryStreamExt};
use lettre::Address;

use crate::accounts::{Account, AccountPool};
use crate::imap::{ImapTarget, Session};
use crate::smtp::{Sender, SmtpTarget};

/// How many logins or connects run at once while setting a scenario up.
const SETUP_CONCURRENCY: usize = 64;

/// Everything a scenario needs to reach the server under test.
pub(crate) struct Bench {
    /// Submission server.
    pub(crate) smtp: SmtpTarget,
    /// IMAP server.
    pub(crate) imap: ImapTarget,
    /// Where accounts come from.
    pub(crate) accounts: AccountPool,
    /// The mail domain (Message-IDs of generated messages use it).
    pub(crate) domain: String,
    /// Name of the server under test, for the report.
    pub(crate) label: String,
    /// Random id of this run; part of every Message-ID.
    pub(crate) run: u64,
}

impl Bench {
    /// Takes `n` accounts; generated ones are created by one IMAP login each (the chatmail
    /// way), so that they exist before anyone sends to them or submits as them.
    pub(crate) async fn accounts(&mut self, n: usize) -> Result<Vec<Account>> {
        let accounts = self.accounts.take(n)?;
        if self.accounts.is_generated() {
            let imap = self.imap.clone();
            concurrently(&accounts, |account| {
                let imap = imap.clone();
                async move {
                    let mut session = imap.login(&account).await?;
                    session.logout().await.context("LOGOUT")?;
                    Ok(())
                }
            })
            .await
            .context("creating accounts by first login")?;
        }
        Ok(accounts)
    }

    /// One logged-in IMAP session per account, in order.
    pub(crate) async fn sessions(&self, accounts: &[Account]) -> Result<Vec<Session>> {
        let imap = self.imap.clone();
        concurrently(accounts, |account| {
            let imap = imap.clone();
            async move { imap.login(&account).await }
        })
        .await
    }

    /// One authenticated submission connection per account, in order.
    pub(crate) async fn senders(&self, accounts: &[Account]) -> Result<Vec<Sender>> {
        let smtp = self.smtp.clone();
        concurrently(accounts, |account| {
            let smtp = smtp.clone();
            async move { Sender::connect(&smtp, account).await }
        })
        .await
    }
}

/// The parsed addresses of `accounts`.
pub(crate) fn addresses(accounts: &[Account]) -> Result<Vec<Address>> {
    accounts
        .iter()
        .map(|a| {
            a.address
                .parse()
                .context("account address is not a mail address")
        })
        .collect()
}

/// Runs `f` on every account, `SETUP_CONCURRENCY` at a time, keeping the order.
async fn concurrently<T, F, Fut>(accounts: &[Account], f: F) -> Result<Vec<T>>
where
    F: Fn(Account) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    futures::stream::iter(accounts.iter().cloned().map(f))
        .buffered(SETUP_CONCURRENCY)
        .try_collect()
        .await
}
