//! The tokio edge of the SMTP session: sockets, TLS, timeouts, and the store calls the
//! session asks for. No protocol logic lives here.
use std::io;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_util::task::TaskTracker;
use tracing::Instrument as _;

use super::reply::Reply;
use super::session::{Action, ListenerKind, LoginResult, Session, SessionConfig};
use crate::context::{unix_now, RelayContext};
use crate::limits::ConnectionSlot;
use crate::metrics::{Protocol, Rejection};
use crate::store::LoginOutcome;

/// Read buffer size per connection.
const READ_CHUNK: usize = 16 * 1024;

static NEXT_CONNECTION_ID: AtomicU64 = AtomicU64::new(1);

/// What the connection does after the session paused.
enum Next {
    Closed,
    StartTls,
}

/// Accepts SMTP connections on `listener` until shutdown; each runs in a task on `tracker`.
pub(crate) async fn serve(
    listener: TcpListener,
    kind: ListenerKind,
    ctx: RelayContext,
    tracker: TaskTracker,
) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = ctx.shutdown.cancelled() => break,
        };
        let (tcp, peer) = match accepted {
            Ok(pair) => pair,
            Err(error) => {
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let ip = peer.ip();
        let Some(slot) = ctx.limiter.try_connect(ip) else {
            ctx.metrics.rejected(Rejection::TooManyConnections);
            tracker.spawn(refuse(tcp, kind));
            continue;
        };
        let id = NEXT_CONNECTION_ID.fetch_add(1, Ordering::Relaxed);
        let span = if ctx.config.logging.log_ip_addresses {
            tracing::info_span!("smtp", id, listener = ?kind, peer = %ip)
        } else {
            tracing::info_span!("smtp", id, listener = ?kind)
        };
        let ctx = ctx.clone();
        tracker.spawn(connection(tcp, ip, kind, ctx, slot).instrument(span));
    }
    tracing::debug!(listener = ?kind, "listener stopped");
}

/// Too many connections from one address: say so (on plain listeners) and close.
async fn refuse(mut tcp: TcpStream, kind: ListenerKind) {
    if kind != ListenerKind::Submissions {
        let mut out = Vec::new();
        Reply::TOO_MANY_CONNECTIONS.write_to(&mut out);
        let _ = tokio::time::timeout(Duration::from_secs(5), tcp.write_all(&out)).await;
    }
}

async fn connection(
    tcp: TcpStream,
    ip: IpAddr,
    kind: ListenerKind,
    ctx: RelayContext,
    _slot: ConnectionSlot,
) {
    ctx.metrics.connection_opened(Protocol::Smtp);
    tracing::debug!("connection opened");
    if let Err(error) = run(tcp, ip, kind, &ctx).await {
        tracing::debug!(kind = ?error.kind(), "connection ended with an error");
    }
    ctx.metrics.connection_closed(Protocol::Smtp);
    tracing::debug!("connection closed");
}

fn session_config(ip: IpAddr, kind: ListenerKind, ctx: &RelayContext) -> SessionConfig {
    let config = &ctx.config;
    SessionConfig {
        kind,
        domain: config.domain.clone(),
        max_message_bytes: config.limits.max_message_bytes,
        max_recipients: config.limits.max_recipients,
        is_tls: kind == ListenerKind::Submissions,
        can_start_tls: kind != ListenerKind::Submissions,
        allow_plaintext_auth: config.listen.allow_plaintext_on_loopback && ip.is_loopback(),
    }
}

async fn run(tcp: TcpStream, ip: IpAddr, kind: ListenerKind, ctx: &RelayContext) -> io::Result<()> {
    let _ = tcp.set_nodelay(true);
    let acceptor = TlsAcceptor::from(ctx.tls.clone());
    let timeout = Duration::from_secs(ctx.config.limits.idle_timeout_secs);
    let mut session = Session::new(
        session_config(ip, kind, ctx),
        ctx.limiter.clone(),
        ctx.metrics.clone(),
        ip,
    );
    if kind == ListenerKind::Submissions {
        let mut tls = with_timeout(timeout, acceptor.accept(tcp)).await?;
        drive(&mut session, &mut tls, ctx).await?;
        return Ok(());
    }
    let mut tcp = tcp;
    if let Next::StartTls = drive(&mut session, &mut tcp, ctx).await? {
        let mut tls = with_timeout(timeout, acceptor.accept(tcp)).await?;
        session.tls_established();
        drive(&mut session, &mut tls, ctx).await?;
    }
    Ok(())
}

async fn with_timeout<T>(
    limit: Duration,
    work: impl std::future::Future<Output = io::Result<T>>,
) -> io::Result<T> {
    tokio::time::timeout(limit, work)
        .await
        .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))?
}

/// Runs the session over `stream` until it closes or asks for TLS.
async fn drive<S>(session: &mut Session, stream: &mut S, ctx: &RelayContext) -> io::Result<Next>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let timeout = Duration::from_secs(ctx.config.limits.idle_timeout_secs);
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        while let Some(action) = session.poll(Instant::now()) {
            flush(session, stream).await?;
            match action {
                Action::StartTls => return Ok(Next::StartTls),
                Action::Close => return close(stream).await,
                action => perform(session, action, ctx).await,
            }
        }
        flush(session, stream).await?;
        let read = tokio::select! {
            read = tokio::time::timeout(timeout, stream.read(&mut buf)) => read,
            () = ctx.shutdown.cancelled(), if !session.is_busy() => {
                return say_and_close(stream, Reply::SHUTTING_DOWN).await;
            }
        };
        match read {
            Err(_elapsed) => return say_and_close(stream, Reply::TIMEOUT).await,
            Ok(Ok(0)) => return Ok(Next::Closed),
            Ok(Ok(n)) => session.receive(&buf[..n]),
            Ok(Err(error)) => return Err(error),
        }
    }
}

/// Carries out a store action and reports the result to the session.
async fn perform(session: &mut Session, action: Action, ctx: &RelayContext) {
    match action {
        Action::Login { address, password } => {
            let outcome = ctx
                .store
                .login(&address, &password, &ctx.account_policy(), unix_now())
                .await;
            let result = match outcome {
                Ok(LoginOutcome::LoggedIn) => LoginResult::Authenticated,
                Ok(LoginOutcome::Created) => {
                    tracing::info!("account created");
                    LoginResult::Authenticated
                }
                Ok(_) => LoginResult::Refused,
                Err(error) => {
                    tracing::warn!(%error, "login check failed");
                    LoginResult::Unavailable
                }
            };
            session.login_result(result, Instant::now());
        }
        Action::CheckRecipient { address } => {
            let exists = ctx.store.account_exists(&address).await;
            session.recipient_result(exists.ok());
        }
        Action::Deliver(accepted) => {
            let has_remote = !accepted.remote.is_empty();
            let started = Instant::now();
            let stored = ctx.store.accept(accepted, unix_now()).await;
            ctx.metrics.observe_store_latency(started.elapsed());
            match &stored {
                Ok(report) => {
                    tracing::debug!(
                        delivered = report.delivered,
                        duplicates = report.duplicates,
                        queued = report.queued,
                        "message stored"
                    );
                    if has_remote {
                        ctx.outbound.notify_one();
                    }
                }
                Err(error) => tracing::warn!(%error, "storing a message failed"),
            }
            session.delivery_result(stored.map(|_| ()));
        }
        Action::StartTls | Action::Close => {}
    }
}

async fn flush<S: AsyncWrite + Unpin>(session: &mut Session, stream: &mut S) -> io::Result<()> {
    let out = session.take_output();
    if !out.is_empty() {
        stream.write_all(&out).await?;
        stream.flush().await?;
    }
    Ok(())
}

async fn say_and_close<S: AsyncWrite + Unpin>(
    stream: &mut S,
    reply: Reply<'_>,
) -> io::Result<Next> {
    let mut out = Vec::new();
    reply.write_to(&mut out);
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.write_all(&out)).await;
    close(stream).await
}

async fn close<S: AsyncWrite + Unpin>(stream: &mut S) -> io::Result<Next> {
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.shutdown()).await;
    Ok(Next::Closed)
}
