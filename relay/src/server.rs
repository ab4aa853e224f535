//! Runs a relay: binds every configured listener and the background tasks (queue runner,
//! expiry, metrics), and shuts down gracefully when `RelayContext::shutdown` is cancelled.
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::task::TaskTracker;

use crate::context::{unix_now, RelayContext};
use crate::errors::ServerError;
use crate::smtp::ListenerKind;

/// How long open sessions may take to finish after shutdown is requested.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// How often expired messages are deleted.
const EXPIRY_INTERVAL: Duration = Duration::from_secs(3600);

/// Binds every configured listener, serves until `ctx.shutdown` is cancelled, then stops
/// accepting, lets open sessions finish (for at most ten seconds) and returns.
pub async fn run(ctx: RelayContext) -> Result<(), ServerError> {
    let listen = ctx.config.listen.clone();
    let smtp_listeners = [
        ("submissions", listen.submissions, ListenerKind::Submissions),
        ("submission", listen.submission, ListenerKind::Submission),
        ("smtp", listen.smtp, ListenerKind::Inbound),
    ];
    let mut smtp = Vec::new();
    for (name, address, kind) in smtp_listeners {
        if let Some(address) = address {
            smtp.push((bind(name, address).await?, kind));
        }
    }
    let mut imap = Vec::new();
    for (name, address, implicit_tls) in
        [("imaps", listen.imaps, true), ("imap", listen.imap, false)]
    {
        if let Some(address) = address {
            imap.push((bind(name, address).await?, implicit_tls));
        }
    }
    let metrics = match listen.metrics {
        Some(address) => Some(bind("metrics", address).await?),
        None => None,
    };

    let sessions = TaskTracker::new();
    let background = TaskTracker::new();
    for (listener, kind) in smtp {
        background.spawn(crate::smtp::edge::serve(
            listener,
            kind,
            ctx.clone(),
            sessions.clone(),
        ));
    }

    for (listener, implicit_tls) in imap {
        // The IMAP server tracks (and on shutdown waits for) its own sessions.
        let ctx = ctx.clone();
        sessions.spawn(async move {
            if let Err(error) = crate::imap::serve(listener, ctx, implicit_tls).await {
                tracing::error!(%error, "IMAP listener failed");
            }
        });
    }

    if let Some(listener) = metrics {
        background.spawn(crate::http::serve(listener, ctx.clone()));
    }
    background.spawn(crate::federation::run_queue(ctx.clone()));
    background.spawn(expire_periodically(ctx.clone()));
    tracing::info!(domain = %ctx.config.domain, "relay running");

    ctx.shutdown.cancelled().await;
    tracing::info!("shutting down: no new connections; waiting for open sessions");
    background.close();
    sessions.close();
    if tokio::time::timeout(SHUTDOWN_GRACE, sessions.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            open = sessions.len(),
            "sessions still open after the grace period; closing them"
        );
    }
    let _ = tokio::time::timeout(Duration::from_secs(2), background.wait()).await;
    tracing::info!("relay stopped");
    Ok(())
}

async fn bind(listener: &'static str, address: SocketAddr) -> Result<TcpListener, ServerError> {
    let bound = TcpListener::bind(address)
        .await
        .map_err(|source| ServerError::Bind {
            listener,
            address,
            source,
        })?;
    tracing::info!(listener, %address, "listening");
    Ok(bound)
}

/// Deletes expired messages now and then every hour, until shutdown.
async fn expire_periodically(ctx: RelayContext) {
    let mut interval = tokio::time::interval(EXPIRY_INTERVAL);
    loop {
        tokio::select! {
            () = ctx.shutdown.cancelled() => break,
            _ = interval.tick() => {}
        }
        match ctx.store.expire(unix_now()).await {
            Ok(0) => {}
            Ok(deleted) => tracing::info!(deleted, "expired messages deleted"),
            Err(error) => tracing::warn!(%error, "expiry failed"),
        }
    }
}
