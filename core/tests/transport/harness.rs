//! A real kith-relay (SMTP submission and IMAP, both with TLS) in process on loopback ports,
//! with a self-signed certificate the clients trust through `TrustAnchor::PemFile`, and
//! GnuPG-made envelopes from crypto-audit's fixtures.
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use kith_core::events::Event;
use kith_core::transport::{RelayEndpoint, Security, ServerEndpoint, TrustAnchor};
use kith_relay::config::Config;
use kith_relay::context::RelayContext;
use kith_relay::loopback::free_addr;
use tokio::sync::broadcast;

pub const DOMAIN: &str = "relay.test";
/// How long a test waits for something that must happen (a bound, not a timing assertion).
pub const PATIENCE: Duration = Duration::from_secs(60);

/// A relay: its directory and ports outlive restarts.
pub struct Relay {
    _dir: tempfile::TempDir,
    config: Config,
    running: Option<Running>,
}

struct Running {
    ctx: RelayContext,
    task: tokio::task::JoinHandle<()>,
}

impl Relay {
    /// Writes the certificate and configuration; does not start the relay.
    pub fn prepare() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        kith_relay::tls::write_self_signed(&["localhost".into()], &cert, &key).unwrap();
        let mut config = Config {
            domain: DOMAIN.into(),
            data_dir: dir.path().join("data"),
            ..Config::default()
        };
        config.listen.submissions = Some(free_addr());
        config.listen.submission = Some(free_addr());
        config.listen.imaps = Some(free_addr());
        config.listen.imap = Some(free_addr());
        config.listen.smtp = None;
        config.listen.metrics = None;
        config.accounts.min_free_disk_mib = 0;
        config.tls.cert = cert;
        config.tls.key = key;
        Self {
            _dir: dir,
            config,
            running: None,
        }
    }

    pub async fn start() -> Self {
        let mut relay = Self::prepare();
        relay.spawn().await;
        relay
    }

    /// Starts (or restarts) the relay on its ports and waits until IMAP accepts.
    pub async fn spawn(&mut self) {
        assert!(self.running.is_none());
        let tls = kith_relay::tls::load_server_config(&self.config.tls.cert, &self.config.tls.key)
            .unwrap();
        let ctx = RelayContext::new(self.config.clone(), tls).unwrap();
        let task = tokio::spawn({
            let ctx = ctx.clone();
            async move { kith_relay::server::run(ctx).await.unwrap() }
        });
        let addr = self.config.listen.imaps.unwrap();
        let waited = tokio::time::timeout(PATIENCE, async {
            while tokio::net::TcpStream::connect(addr).await.is_err() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        waited.await.expect("relay did not start");
        self.running = Some(Running { ctx, task });
    }

    /// Shuts the relay down gracefully and waits for it.
    pub async fn stop(&mut self) {
        let running = self.running.take().expect("running");
        running.ctx.shutdown.cancel();
        running.task.await.unwrap();
    }

    /// The endpoint a client uses: host `localhost` (the certificate's name), trusting
    /// exactly the relay's certificate.
    pub fn endpoint(&self, security: Security) -> RelayEndpoint {
        let listen = &self.config.listen;
        let (imap, smtp) = match security {
            Security::ImplicitTls => (listen.imaps, listen.submissions),
            _ => (listen.imap, listen.submission),
        };
        let server = |addr: Option<SocketAddr>| ServerEndpoint {
            host: "localhost".into(),
            port: addr.unwrap().port(),
            security,
        };
        RelayEndpoint {
            domain: DOMAIN.into(),
            imap: server(imap),
            smtp: server(smtp),
            trust: TrustAnchor::PemFile(self.config.tls.cert.clone()),
        }
    }

    fn ctx(&self) -> &RelayContext {
        &self.running.as_ref().expect("running").ctx
    }

    /// Messages in `address`'s mailbox on the relay.
    pub async fn mailbox_len(&self, address: &str) -> usize {
        self.ctx().store.list_messages(address).await.unwrap().len()
    }

    /// Stores `body` in `address`'s mailbox directly (as SMTP would after its checks),
    /// without the relay's Message-ID de-duplication.
    pub async fn deliver(&self, address: &str, body: &[u8]) {
        let accepted = kith_relay::store::Accepted {
            sender: format!("sender@{DOMAIN}"),
            local: vec![address.to_owned()],
            remote: Vec::new(),
            msgid: None,
            body: bytes::Bytes::copy_from_slice(body),
        };
        let report = self
            .ctx()
            .store
            .accept(accepted, kith_relay::context::unix_now())
            .await
            .unwrap();
        assert_eq!(report.delivered, 1, "{report:?}");
    }

    /// Waits until `address`'s mailbox holds `len` messages.
    pub async fn wait_for_mailbox_len(&self, address: &str, len: usize) {
        let waited = tokio::time::timeout(PATIENCE, async {
            while self.mailbox_len(address).await != len {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        waited
            .await
            .unwrap_or_else(|_| panic!("mailbox never reached {len} messages"));
    }
}

/// A GnuPG-made PGP/MIME envelope (crypto-audit's fixture) with `from` as its From header
/// (the relay requires it to be the login) and a fresh Message-ID. Returns it and the id.
pub fn envelope(from: &str) -> (Vec<u8>, String) {
    static NEXT: AtomicU32 = AtomicU32::new(1);
    let fixture = include_str!("../../../crypto-audit/tests/fixtures/accept-gpg-pkesk.eml");
    let msgid = format!(
        "{}.{}@{DOMAIN}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let text = fixture
        .replace("From: sender@relay.example", &format!("From: {from}"))
        .replace(
            "Message-ID: <fixture@relay.example>",
            &format!("Message-ID: <{msgid}>"),
        );
    assert!(
        text.contains(&msgid) && text.contains(from),
        "fixture changed"
    );
    (text.into_bytes(), msgid)
}

/// The armored OpenPGP block of an envelope, which the relay must pass on unchanged.
pub fn pgp_block(envelope: &[u8]) -> String {
    let text = String::from_utf8_lossy(envelope);
    let start = text.find("-----BEGIN PGP MESSAGE-----").unwrap();
    let end = text.find("-----END PGP MESSAGE-----").unwrap();
    text[start..end].replace("\r\n", "\n")
}

/// Waits for the first event `wanted` accepts.
pub async fn wait_for_event(
    events: &mut broadcast::Receiver<Event>,
    wanted: impl Fn(&Event) -> bool,
) -> Event {
    tokio::time::timeout(PATIENCE, async {
        loop {
            match events.recv().await {
                Ok(event) if wanted(&event) => return event,
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => panic!("event stream closed"),
            }
        }
    })
    .await
    .expect("the event never came")
}

/// A data directory for an account.
pub fn account_dir(parent: &tempfile::TempDir, name: &str) -> PathBuf {
    parent.path().join(name)
}
