//! The Prometheus endpoint: `GET /metrics` over plain HTTP/1 (hyper). Keep it on loopback.
use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::context::RelayContext;

/// Time a metrics client may take for one request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `/metrics` on `listener` until shutdown.
pub(crate) async fn serve(listener: TcpListener, ctx: RelayContext) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = ctx.shutdown.cancelled() => break,
        };
        let Ok((tcp, _)) = accepted else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let ctx = ctx.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let ctx = ctx.clone();
                async move { respond(request, &ctx).await }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tcp), service);
            let _ = tokio::time::timeout(REQUEST_TIMEOUT, connection).await;
        });
    }
}

async fn respond(
    request: Request<Incoming>,
    ctx: &RelayContext,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if request.method() != Method::GET || request.uri().path() != "/metrics" {
        return Ok(plain(
            StatusCode::NOT_FOUND,
            "not found; try GET /metrics\n".into(),
        ));
    }
    let queue_depth = ctx.store.queue_depth().await.unwrap_or(0);
    Ok(plain(StatusCode::OK, ctx.metrics.render(queue_depth)))
}

fn plain(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    response
}
