//! One delivery attempt: find the remote relay, hand the message over with lettre.
use std::sync::Arc;
use std::time::Duration;

use lettre::address::{Address, Envelope};
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use tokio::sync::OnceCell;

use crate::context::RelayContext;
use crate::store::QueueItem;

/// SMTP port of relays found by MX lookup.
const SMTP_PORT: u16 = 25;
/// Time allowed for each step of one SMTP conversation.
const SMTP_TIMEOUT: Duration = Duration::from_secs(60);

/// How one attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The remote relay accepted the message.
    Delivered,
    /// The remote relay refused it permanently (5xx): drop it.
    Refused,
    /// A temporary failure (connection, TLS, 4xx, DNS): try again later.
    Failed,
}

/// Where to deliver a domain's mail.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Target {
    host: String,
    port: u16,
    /// Accept a self-signed certificate (static routes with `insecure_static_routes`).
    is_insecure: bool,
}

/// A DNS resolver made on first use and shared by every delivery.
#[derive(Clone, Default)]
pub(crate) struct Resolver {
    inner: Arc<OnceCell<Option<hickory_resolver::TokioResolver>>>,
}

impl Resolver {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Mail exchangers of `domain`, most preferred first; the domain itself if it has none.
    async fn mail_hosts(&self, domain: &str) -> Vec<String> {
        let resolver = self
            .inner
            .get_or_init(|| async {
                match hickory_resolver::TokioResolver::builder_tokio() {
                    Ok(builder) => Some(builder.build()),
                    Err(error) => {
                        tracing::warn!(%error, "cannot read the system DNS configuration");
                        None
                    }
                }
            })
            .await;
        let Some(resolver) = resolver else {
            return Vec::new();
        };
        match resolver.mx_lookup(format!("{domain}.")).await {
            Ok(lookup) => {
                let mut records: Vec<(u16, String)> = lookup
                    .iter()
                    .map(|mx| {
                        let host = mx.exchange().to_utf8();
                        (mx.preference(), host.trim_end_matches('.').to_owned())
                    })
                    .filter(|(_, host)| !host.is_empty())
                    .collect();
                records.sort();
                records.into_iter().map(|(_, host)| host).collect()
            }
            Err(error) if error.is_no_records_found() => vec![domain.to_owned()],
            Err(error) => {
                tracing::info!(%error, "MX lookup failed");
                Vec::new()
            }
        }
    }
}

/// Tries to deliver `item` once.
pub(crate) async fn deliver(item: &QueueItem, ctx: &RelayContext, resolver: &Resolver) -> Outcome {
    let Some(envelope) = envelope(item) else {
        tracing::warn!(
            queue_id = item.id,
            "queued addresses are not valid addresses"
        );
        return Outcome::Refused;
    };
    let targets = targets(item, ctx, resolver).await;
    if targets.is_empty() {
        return Outcome::Failed;
    }
    let mut outcome = Outcome::Failed;
    for target in targets {
        outcome = attempt(&target, &envelope, &item.body, &ctx.config.domain).await;
        if outcome != Outcome::Failed {
            break;
        }
    }
    outcome
}

async fn targets(item: &QueueItem, ctx: &RelayContext, resolver: &Resolver) -> Vec<Target> {
    let federation = &ctx.config.federation;
    let domain = item.domain.to_ascii_lowercase();
    if let Some(route) = federation.routes.get(&domain) {
        return parse_route(route, federation.insecure_static_routes)
            .into_iter()
            .collect();
    }
    resolver
        .mail_hosts(&domain)
        .await
        .into_iter()
        .map(|host| Target {
            host,
            port: SMTP_PORT,
            is_insecure: false,
        })
        .collect()
}

/// Parses a static route, `host:port` (or `host` for port 25).
fn parse_route(route: &str, is_insecure: bool) -> Option<Target> {
    let (host, port) = match route.rsplit_once(':') {
        Some((host, port)) => (host, port.parse().ok()?),
        None => (route, SMTP_PORT),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    (!host.is_empty()).then(|| Target {
        host: host.to_owned(),
        port,
        is_insecure,
    })
}

fn envelope(item: &QueueItem) -> Option<Envelope> {
    let sender = if item.sender.is_empty() {
        None
    } else {
        Some(item.sender.parse::<Address>().ok()?)
    };
    let recipients = item
        .recipients
        .iter()
        .map(|r| r.parse::<Address>())
        .collect::<Result<Vec<_>, _>>()
        .ok()?;
    Envelope::new(sender, recipients).ok()
}

async fn attempt(target: &Target, envelope: &Envelope, body: &[u8], our_domain: &str) -> Outcome {
    let tls = match TlsParameters::builder(target.host.clone())
        .dangerous_accept_invalid_certs(target.is_insecure)
        .dangerous_accept_invalid_hostnames(target.is_insecure)
        .build_rustls()
    {
        Ok(parameters) => Tls::Required(parameters),
        Err(error) => {
            tracing::warn!(%error, "cannot set up TLS for delivery");
            return Outcome::Failed;
        }
    };
    let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(target.host.clone())
        .port(target.port)
        .tls(tls)
        .hello_name(ClientId::Domain(our_domain.to_owned()))
        .timeout(Some(SMTP_TIMEOUT))
        .build();
    match transport.send_raw(envelope, body).await {
        Ok(_) => Outcome::Delivered,
        Err(error) if error.is_permanent() => {
            tracing::warn!(code = ?error.status(), "remote relay refused the message");
            Outcome::Refused
        }
        Err(error) if error.status().is_none() => {
            // Not a reply from the remote (which could quote addresses): safe to log.
            tracing::info!(%error, "delivery attempt failed");
            Outcome::Failed
        }
        Err(error) => {
            tracing::info!(
                code = ?error.status(),
                is_timeout = error.is_timeout(),
                is_tls = error.is_tls(),
                "delivery attempt failed"
            );
            Outcome::Failed
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_routes_parse() {
        assert_eq!(
            parse_route("127.0.0.1:2526", true),
            Some(Target {
                host: "127.0.0.1".into(),
                port: 2526,
                is_insecure: true
            })
        );
        assert_eq!(parse_route("mx.b.test", false).unwrap().port, 25);
        assert_eq!(parse_route("[::1]:25", false).unwrap().host, "::1");
        assert_eq!(parse_route("host:notaport", false), None);
        assert_eq!(parse_route(":25", false), None);
    }
}
