//! An IMAP connection: TCP, TLS (implicit or STARTTLS), LOGIN, SELECT INBOX — every step
//! under a timeout.
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_imap::{Client, Session};
use futures::TryStreamExt;
use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use super::{Credentials, Security, ServerEndpoint, TransportError};

/// A logged-in IMAP session over TLS.
pub(crate) type ImapSession = Session<TlsStream<TcpStream>>;

/// Awaits `work` for at most `limit`.
pub(crate) async fn timed<T, E>(
    what: &'static str,
    limit: Duration,
    work: impl Future<Output = Result<T, E>>,
) -> Result<T, TransportError>
where
    TransportError: From<E>,
{
    match tokio::time::timeout(limit, work).await {
        Ok(result) => result.map_err(TransportError::from),
        Err(_) => Err(TransportError::Timeout(what)),
    }
}

/// Connects, secures, logs in (creating the account on a chatmail-style relay) and returns
/// the session.
pub(crate) async fn login(
    server: &ServerEndpoint,
    tls: Arc<ClientConfig>,
    credentials: &Credentials,
    limit: Duration,
) -> Result<ImapSession, TransportError> {
    let connect_error = |source| TransportError::Connect {
        what: "IMAP",
        source,
    };
    let name = ServerName::try_from(server.host.clone())
        .map_err(|e| TransportError::TlsSetup(e.to_string()))?;
    let connector = TlsConnector::from(tls);
    let connect = TcpStream::connect((server.host.as_str(), server.port));
    let tcp = match tokio::time::timeout(limit, connect).await {
        Ok(tcp) => tcp.map_err(connect_error)?,
        Err(_) => return Err(TransportError::Timeout("IMAP connect")),
    };
    // Commands are small writes answered at once; Nagle's algorithm would hold each one
    // back until the previous segment is acknowledged (a delayed ACK: ~40 ms per command).
    tcp.set_nodelay(true).map_err(connect_error)?;
    let tcp = match server.security {
        Security::ImplicitTls => tcp,
        Security::StartTls => starttls(tcp, limit).await?,
    };
    let stream = match tokio::time::timeout(limit, connector.connect(name, tcp)).await {
        Ok(stream) => stream.map_err(connect_error)?,
        Err(_) => return Err(TransportError::Timeout("IMAP TLS handshake")),
    };
    let mut client = Client::new(stream);
    if server.security == Security::ImplicitTls {
        read_greeting(&mut client, limit).await?;
    }
    let login = client.login(&credentials.address, credentials.password.as_str());
    match tokio::time::timeout(limit, login).await {
        Ok(Ok(session)) => Ok(session),
        Ok(Err((async_imap::error::Error::No(reason), _))) => {
            Err(TransportError::LoginRejected(reason))
        }
        Ok(Err((error, _))) => Err(error.into()),
        Err(_) => Err(TransportError::Timeout("IMAP login")),
    }
}

/// Reads the greeting on a plain connection, asks for STARTTLS and hands the socket back.
async fn starttls(tcp: TcpStream, limit: Duration) -> Result<TcpStream, TransportError> {
    let mut client = Client::new(tcp);
    read_greeting(&mut client, limit).await?;
    timed(
        "IMAP STARTTLS",
        limit,
        client.run_command_and_check_ok("STARTTLS", None),
    )
    .await?;
    Ok(client.into_inner())
}

async fn read_greeting<T>(client: &mut Client<T>, limit: Duration) -> Result<(), TransportError>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + std::fmt::Debug + Send,
{
    match tokio::time::timeout(limit, client.read_response()).await {
        Ok(Ok(Some(_greeting))) => Ok(()),
        Ok(Ok(None)) => Err(async_imap::error::Error::ConnectionLost.into()),
        Ok(Err(io)) => Err(TransportError::Connect {
            what: "IMAP",
            source: io,
        }),
        Err(_) => Err(TransportError::Timeout("IMAP greeting")),
    }
}

/// All UIDs in the selected mailbox, ascending.
pub(crate) async fn all_uids(
    session: &mut ImapSession,
    limit: Duration,
) -> Result<Vec<u32>, TransportError> {
    let uids = timed("UID SEARCH", limit, session.uid_search("ALL")).await?;
    let mut uids: Vec<u32> = uids.into_iter().collect();
    uids.sort_unstable();
    Ok(uids)
}

/// The whole message with `uid`, without setting \Seen; `None` if it vanished meanwhile.
pub(crate) async fn fetch_body(
    session: &mut ImapSession,
    uid: u32,
    limit: Duration,
) -> Result<Option<Vec<u8>>, TransportError> {
    let fetch = async {
        let fetches: Vec<_> = session
            .uid_fetch(uid.to_string(), "(UID BODY.PEEK[])")
            .await?
            .try_collect()
            .await?;
        Ok::<_, async_imap::error::Error>(
            fetches
                .iter()
                .find(|f| f.uid == Some(uid))
                .and_then(|f| f.body().map(<[u8]>::to_vec)),
        )
    };
    timed("UID FETCH", limit, fetch).await
}

/// Flags `uids` \Deleted and expunges them.
pub(crate) async fn delete(
    session: &mut ImapSession,
    uids: &[u32],
    limit: Duration,
) -> Result<(), TransportError> {
    if uids.is_empty() {
        return Ok(());
    }
    let set = uids
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let work = async {
        session
            .uid_store(&set, "+FLAGS.SILENT (\\Deleted)")
            .await?
            .try_collect::<Vec<_>>()
            .await?;
        session.expunge().await?.try_collect::<Vec<_>>().await?;
        Ok::<_, async_imap::error::Error>(())
    };
    timed("STORE and EXPUNGE", limit, work).await
}
