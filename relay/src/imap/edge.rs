//! The tokio edge of one IMAP connection: sockets, TLS, timeouts, limits, and running the
//! session's store requests.
use std::net::IpAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tracing::Instrument;

use super::session::{Action, LoginResult, Reply, Request, Session, SessionConfig};
use crate::context::{unix_now, RelayContext};
use crate::metrics::{Protocol, Rejection};

/// RFC 2177: a client in IDLE must be allowed at least 29 minutes; we allow 30.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// How long sessions may take to say goodbye once the relay shuts down.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Bytes read at once while waiting in IDLE (the client sends only `DONE`).
const IDLE_READ_BYTES: usize = 64;

/// Bytes read at once otherwise.
const COMMAND_READ_BYTES: usize = 4096;

/// How a connection's I/O loop ended.
enum Exit {
    Closed,
    StartTls,
}

/// One connection's edge state: who is logged in and what wakes their IDLE.
struct Connection {
    ctx: RelayContext,
    ip: IpAddr,
    address: Option<String>,
    watch: Option<watch::Receiver<u64>>,
}

/// Serves one accepted TCP connection to the end.
pub(super) async fn handle(
    tcp: TcpStream,
    ip: IpAddr,
    ctx: RelayContext,
    implicit_tls: bool,
    id: u64,
) {
    let span = tracing::debug_span!("imap", conn = id);
    async move {
        ctx.metrics.connection_opened(Protocol::Imap);
        // Sessions hear of a shutdown while they wait for input; one stuck in a handshake or
        // a write gets a short grace period and is then dropped.
        let grace = async {
            ctx.shutdown.cancelled().await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        };
        let outcome = tokio::select! {
            outcome = run(tcp, ip, ctx.clone(), implicit_tls) => outcome,
            () = grace => Ok(()),
        };
        ctx.metrics.connection_closed(Protocol::Imap);
        match outcome {
            Ok(()) => tracing::debug!("connection closed"),
            Err(error) => tracing::debug!(%error, "connection ended with an error"),
        }
    }
    .instrument(span)
    .await
}

async fn run(
    mut tcp: TcpStream,
    ip: IpAddr,
    ctx: RelayContext,
    implicit_tls: bool,
) -> std::io::Result<()> {
    let _ = tcp.set_nodelay(true);
    let slot = ctx.limiter.try_connect(ip);
    let mut session = if slot.is_some() {
        Session::new(SessionConfig {
            is_tls: implicit_tls,
            offers_starttls: !implicit_tls,
            allows_plaintext_auth: ctx.config.listen.allow_plaintext_on_loopback
                && ip.is_loopback(),
        })
    } else {
        ctx.metrics.rejected(Rejection::TooManyConnections);
        Session::refusing("Too many connections from your address")
    };
    let mut conn = Connection {
        ctx,
        ip,
        address: None,
        watch: None,
    };
    if implicit_tls {
        let mut tls = conn.accept_tls(tcp).await?;
        drive(&mut tls, &mut session, &mut conn).await?;
        return Ok(());
    }
    match drive(&mut tcp, &mut session, &mut conn).await? {
        Exit::Closed => Ok(()),
        Exit::StartTls => {
            let mut tls = conn.accept_tls(tcp).await?;
            session.tls_started();
            drive(&mut tls, &mut session, &mut conn).await?;
            Ok(())
        }
    }
}

/// Runs the session's actions until it closes or asks for TLS.
async fn drive<S>(
    stream: &mut S,
    session: &mut Session,
    conn: &mut Connection,
) -> std::io::Result<Exit>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    loop {
        let action = session.next_action();
        for _ in 0..session.take_rejected_commands() {
            conn.ctx.metrics.rejected(Rejection::BadCommand);
        }
        match action {
            Action::Send(bytes) => conn.write(stream, &bytes).await?,
            Action::Store(request) => {
                let reply = conn.execute(request).await;
                session.complete(reply);
            }
            Action::NeedInput => {
                if conn.read(stream, session, false).await? {
                    return Ok(Exit::Closed);
                }
            }
            Action::Idle => {
                if conn.read(stream, session, true).await? {
                    return Ok(Exit::Closed);
                }
            }
            Action::StartTls => return Ok(Exit::StartTls),
            Action::Close => {
                let _ = tokio::time::timeout(Duration::from_secs(5), stream.shutdown()).await;
                return Ok(Exit::Closed);
            }
        }
    }
}

impl Connection {
    fn command_timeout(&self) -> Duration {
        Duration::from_secs(self.ctx.config.limits.idle_timeout_secs.max(1))
    }

    async fn accept_tls(
        &self,
        tcp: TcpStream,
    ) -> std::io::Result<tokio_rustls::server::TlsStream<TcpStream>> {
        let acceptor = tokio_rustls::TlsAcceptor::from(self.ctx.tls.clone());
        tokio::time::timeout(self.command_timeout(), acceptor.accept(tcp))
            .await
            .map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::TimedOut, "TLS handshake timed out")
            })?
    }

    async fn write<S: AsyncWrite + Unpin>(
        &self,
        stream: &mut S,
        bytes: &[u8],
    ) -> std::io::Result<()> {
        let write = async {
            stream.write_all(bytes).await?;
            stream.flush().await
        };
        tokio::time::timeout(self.command_timeout(), write)
            .await
            .map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::TimedOut, "client does not read")
            })?
    }

    /// Waits for client bytes (and, in IDLE, for mailbox changes); `true` at end of stream.
    async fn read<S: AsyncRead + Unpin>(
        &mut self,
        stream: &mut S,
        session: &mut Session,
        idle: bool,
    ) -> std::io::Result<bool> {
        let (limit, size) = if idle {
            (IDLE_TIMEOUT, IDLE_READ_BYTES)
        } else {
            (self.command_timeout(), COMMAND_READ_BYTES)
        };
        let mut buffer = vec![0u8; size];
        let watch = self.watch.as_mut().filter(|_| idle);
        tokio::select! {
            _ = self.ctx.shutdown.cancelled() => session.shutting_down(),
            () = mailbox_changed(watch) => session.mailbox_changed(),
            read = tokio::time::timeout(limit, stream.read(&mut buffer)) => match read {
                Err(_) => session.timed_out(),
                Ok(Ok(0)) => return Ok(true),
                Ok(Ok(n)) => session.receive(&buffer[..n]),
                Ok(Err(error)) => return Err(error),
            },
        }
        Ok(false)
    }

    /// Runs one store request for the logged-in account.
    async fn execute(&mut self, request: Request) -> Reply {
        if let Request::Login { address, password } = request {
            return Reply::Login(self.login(address, &password).await);
        }
        let Some(address) = self.address.clone() else {
            return Reply::Failed;
        };
        let store = self.ctx.store.clone();
        let result = match request {
            Request::Login { .. } => unreachable!("handled above"),
            Request::Status => {
                self.mark_seen_changes();
                match store.mailbox_status(&address).await {
                    Ok(status) => store
                        .list_messages(&address)
                        .await
                        .map(|l| Reply::Status(status, l)),
                    Err(error) => Err(error),
                }
            }
            Request::List => {
                self.mark_seen_changes();
                store.list_messages(&address).await.map(Reply::List)
            }
            Request::Body(uid) => {
                let body = store.fetch_body(&address, uid).await;
                if matches!(body, Ok(Some(_))) {
                    self.ctx.metrics.message_fetched();
                }
                body.map(Reply::Body)
            }
            Request::SetFlags(uids, flags, mode) => store
                .set_flags(&address, uids, flags, mode)
                .await
                .map(Reply::Flags),
            Request::Expunge(uids) => store.expunge(&address, uids).await.map(Reply::Expunged),
        };
        result.unwrap_or_else(|error| {
            tracing::warn!(%error, "store request failed");
            Reply::Failed
        })
    }

    async fn login(&mut self, address: String, password: &str) -> LoginResult {
        let ctx = &self.ctx;
        if !ctx.limiter.may_try_login(self.ip, Instant::now()) {
            ctx.metrics.rejected(Rejection::LoginRateLimited);
            return LoginResult::RateLimited;
        }
        let outcome = ctx
            .store
            .login(&address, password, &ctx.account_policy(), unix_now())
            .await;
        match outcome {
            Ok(outcome) if outcome.is_authenticated() => {
                let address = address.to_ascii_lowercase();
                self.watch = Some(ctx.store.watch_mailbox(&address));
                self.address = Some(address);
                tracing::debug!(created = ?outcome, "logged in");
                LoginResult::Accepted
            }
            Ok(_) => {
                ctx.limiter.record_failed_login(self.ip, Instant::now());
                ctx.metrics.rejected(Rejection::BadLogin);
                LoginResult::Rejected
            }
            Err(error) => {
                tracing::warn!(%error, "login failed in the store");
                LoginResult::Rejected
            }
        }
    }

    /// Everything up to now is about to be read from the store: only later changes should
    /// wake an IDLE.
    fn mark_seen_changes(&mut self) {
        if let Some(watch) = self.watch.as_mut() {
            watch.borrow_and_update();
        }
    }
}

/// Resolves when the watched mailbox changes; never without a watch.
async fn mailbox_changed(watch: Option<&mut watch::Receiver<u64>>) {
    match watch {
        Some(watch) => {
            if watch.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending().await,
    }
}
