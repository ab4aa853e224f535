//! The receiving side: async-imap sessions over implicit TLS that sit in IDLE, fetch what
//! arrives (`UID FETCH n:* BODY.PEEK[]`, the whole message, as a client does), and delete it.
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use async_imap::extensions::idle::{Handle, IdleResponse};
use async_imap::imap_proto::{MailboxDatum, Response};
use async_imap::types::UnsolicitedResponse;
use futures::StreamExt;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;
use tokio_util::sync::CancellationToken;

use crate::accounts::Account;
use crate::message::MessageBuilder;
use crate::tls::{self, Trust};

const TIMEOUT: Duration = Duration::from_secs(60);

/// A logged-in IMAP session.
pub(crate) type Session = async_imap::Session<TlsStream<TcpStream>>;
/// A session in IDLE.
pub(crate) type IdleHandle = Handle<TlsStream<TcpStream>>;

/// Where and how to fetch.
#[derive(Clone)]
pub(crate) struct ImapTarget {
    host: String,
    port: u16,
    connector: TlsConnector,
}

/// One benchmark message seen by a receiver.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fetched {
    /// Its sequence number in the run.
    pub(crate) seq: u64,
    /// When its FETCH response arrived.
    pub(crate) at: Instant,
}

impl ImapTarget {
    /// A target at `host:port` with the given certificate trust.
    pub(crate) fn new(host: &str, port: u16, trust: &Trust) -> Result<Self> {
        Ok(Self {
            host: host.to_owned(),
            port,
            connector: tls::imap_connector(trust)?,
        })
    }

    /// Connects, reads the greeting and logs in (creating the account on a chatmail relay).
    pub(crate) async fn login(&self, account: &Account) -> Result<Session> {
        let tcp = tokio::time::timeout(TIMEOUT, TcpStream::connect((&*self.host, self.port)))
            .await
            .context("IMAP connect timed out")?
            .context("IMAP connect")?;
        tcp.set_nodelay(true).context("TCP_NODELAY")?;
        let name = tls::server_name(&self.host)?;
        let stream = tokio::time::timeout(TIMEOUT, self.connector.connect(name, tcp))
            .await
            .context("IMAP TLS handshake timed out")?
            .context("IMAP TLS handshake")?;
        let mut client = async_imap::Client::new(stream);
        match tokio::time::timeout(TIMEOUT, client.read_response()).await {
            Ok(Ok(Some(_greeting))) => {}
            Ok(Err(e)) => return Err(e).context("IMAP greeting"),
            Ok(Ok(None)) => bail!("IMAP server closed before its greeting"),
            Err(_) => bail!("IMAP greeting timed out"),
        }
        let login = client.login(&account.address, account.password.as_str());
        let session = tokio::time::timeout(TIMEOUT, login)
            .await
            .context("IMAP LOGIN timed out")?
            .map_err(|(e, _)| e)
            .context("IMAP LOGIN")?;
        Ok(session)
    }

    /// Logs in, selects INBOX and enters IDLE; the returned handle keeps the connection.
    pub(crate) async fn idle(&self, account: &Account) -> Result<IdleHandle> {
        let mut session = self.login(account).await?;
        session.select("INBOX").await.context("SELECT INBOX")?;
        let mut handle = session.idle();
        handle.init().await.context("IDLE")?;
        Ok(handle)
    }
}

/// A receiver: selects INBOX, then fetches and deletes every new message, sitting in IDLE
/// between fetches (re-entering it at least every `poll`), until `stop` is cancelled.
pub(crate) async fn receive(
    mut session: Session,
    builder: Arc<MessageBuilder>,
    seen: mpsc::UnboundedSender<Fetched>,
    stop: CancellationToken,
    poll: Duration,
) -> Result<()> {
    session.select("INBOX").await.context("SELECT INBOX")?;
    let mut next_uid = 1;
    loop {
        for fetched in fetch_and_delete(&mut session, &mut next_uid, &builder).await? {
            // The collector may be gone once it has everything it waits for.
            let _ = seen.send(fetched);
        }
        if stop.is_cancelled() {
            break;
        }
        // A server may announce a delivery as an untagged EXISTS in the answer to STORE or
        // EXPUNGE; async-imap files that aside, and IDLE would not repeat it: fetch again.
        if has_new_messages(&session) {
            continue;
        }
        let mut idle = session.idle();
        idle.init().await.context("IDLE")?;
        {
            let (wait, interrupt) = idle.wait_with_timeout(poll);
            tokio::select! {
                response = wait => { response.context("IDLE wait")?; }
                () = stop.cancelled() => {}
            }
            drop(interrupt);
        }
        session = idle.done().await.context("IDLE DONE")?;
    }
    session.logout().await.context("LOGOUT")?;
    Ok(())
}

/// Whether the server announced new messages (`* n EXISTS`) outside a FETCH answer;
/// drains the other unsolicited responses.
fn has_new_messages(session: &Session) -> bool {
    let mut is_new = false;
    while let Ok(response) = session.unsolicited_responses.try_recv() {
        is_new |= matches!(response, UnsolicitedResponse::Exists(_));
    }
    is_new
}

/// Waits in IDLE until the server announces a new message (`* n EXISTS`); returns when the
/// announcement arrived, and the session out of IDLE.
pub(crate) async fn wait_for_exists(
    mut idle: IdleHandle,
    limit: Duration,
) -> Result<(Instant, Session)> {
    let deadline = Instant::now() + limit;
    let at = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let (wait, interrupt) = idle.wait_with_timeout(left);
        let response = wait.await.context("IDLE wait")?;
        drop(interrupt);
        match response {
            IdleResponse::NewData(data) => {
                if matches!(
                    data.parsed(),
                    Response::MailboxData(MailboxDatum::Exists(_))
                ) {
                    break Instant::now();
                }
            }
            IdleResponse::Timeout | IdleResponse::ManualInterrupt => {
                bail!("no EXISTS within {limit:?}")
            }
        }
    };
    let session = idle.done().await.context("IDLE DONE")?;
    Ok((at, session))
}

/// Fetches every message from `next_uid` on, deletes them, and advances `next_uid`.
/// Returns the benchmark messages of this run among them, with their arrival times.
pub(crate) async fn fetch_and_delete(
    session: &mut Session,
    next_uid: &mut u32,
    builder: &MessageBuilder,
) -> Result<Vec<Fetched>> {
    let mut found = Vec::new();
    let mut uids = Vec::new();
    {
        let mut stream = session
            .uid_fetch(format!("{next_uid}:*"), "(UID BODY.PEEK[])")
            .await
            .context("UID FETCH")?;
        while let Some(item) = stream.next().await {
            let fetch = item.context("UID FETCH response")?;
            let at = Instant::now();
            // `n:*` also names the last message when n is past it: skip what we had.
            let Some(uid) = fetch.uid.filter(|&u| u >= *next_uid) else {
                continue;
            };
            uids.push(uid);
            if let Some(seq) = fetch.body().and_then(|b| builder.sequence_of(b)) {
                found.push(Fetched { seq, at });
            }
        }
    }
    if let Some(&max) = uids.iter().max() {
        *next_uid = max + 1;
        let set = uids
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let stored = session
            .uid_store(&set, "+FLAGS.SILENT (\\Deleted)")
            .await
            .context("UID STORE")?;
        stored.for_each(|_| async {}).await;
        let expunged = session.expunge().await.context("EXPUNGE")?;
        expunged.for_each(|_| async {}).await;
    }
    Ok(found)
}
