//! Harness for Kith's end-to-end tests and the demo: a real relay on loopback (TLS
//! listeners, SQLite store in a temporary directory) and minimal devices that talk to it
//! with real SMTP (lettre) and IMAP (async-imap) clients.
pub mod group;
pub mod process;
pub mod scenario;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use futures::StreamExt;
use kith_crypto::envelope::{self, DeviceKeypair, OpenKey};
use kith_relay::config::Config;
use kith_relay::context::RelayContext;
use kith_relay::loopback::free_addr;
use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use rand::distributions::{Alphanumeric, DistString};
use rand::Rng;
use rustls_pki_types::pem::PemObject;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// The relay's domain (and TLS name) in tests and the demo.
pub const DOMAIN: &str = "localhost";
/// How long any network step may take before the harness gives up.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// One device: its relay account and its envelope key.
pub struct Device {
    /// A name for printing.
    pub name: &'static str,
    /// Its relay address.
    pub address: String,
    /// Its relay password.
    pub password: String,
    /// Its envelope key pair.
    pub keys: DeviceKeypair,
}

impl Device {
    /// A new device with a random relay address and password (the chatmail way).
    pub fn new(name: &'static str) -> Self {
        let mut rng = rand::thread_rng();
        let local: String = (0..9)
            .map(|_| {
                let chars = b"abcdefghijklmnopqrstuvwxyz0123456789";
                chars[rng.gen_range(0..chars.len())] as char
            })
            .collect();
        Self {
            name,
            address: format!("{local}@{DOMAIN}"),
            password: Alphanumeric.sample_string(&mut rng, 24),
            keys: DeviceKeypair::generate(&mut rand::rngs::OsRng),
        }
    }
}

/// The relay, running in this process on free loopback ports.
pub struct LocalRelay {
    /// The running relay's shared state (store, shutdown token).
    pub ctx: RelayContext,
    /// SMTP submission with implicit TLS.
    pub submissions: SocketAddr,
    /// IMAP with implicit TLS.
    pub imaps: SocketAddr,
    /// The relay's self-signed certificate, which clients trust.
    pub cert_pem: Vec<u8>,
    /// The relay's directory (config, certificate, data).
    pub dir: tempfile::TempDir,
}

/// Starts a relay in this process on free loopback ports.
pub async fn start_relay() -> Result<LocalRelay> {
    start_relay_with(|_| {}).await
}

/// Starts a relay in this process whose configuration `adjust` may change first (limits
/// for a load test, say).
pub async fn start_relay_with(adjust: impl FnOnce(&mut Config)) -> Result<LocalRelay> {
    let dir = tempfile::tempdir()?;
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    kith_relay::tls::write_self_signed(&[DOMAIN.to_owned()], &cert, &key)?;
    let tls = kith_relay::tls::load_server_config(&cert, &key)?;
    let mut config = Config {
        domain: DOMAIN.into(),
        data_dir: dir.path().join("data"),
        ..Config::default()
    };
    let (submissions, imaps) = (free_addr(), free_addr());
    config.listen.submissions = Some(submissions);
    config.listen.imaps = Some(imaps);
    config.listen.submission = None;
    config.listen.smtp = None;
    config.listen.imap = None;
    config.listen.metrics = None;
    config.accounts.min_free_disk_mib = 0;
    adjust(&mut config);
    let ctx = RelayContext::new(config, tls)?;
    let server = ctx.clone();
    tokio::spawn(async move {
        if let Err(error) = kith_relay::server::run(server).await {
            eprintln!("relay stopped: {error}");
        }
    });
    let relay = LocalRelay {
        ctx,
        submissions,
        imaps,
        cert_pem: std::fs::read(&cert)?,
        dir,
    };
    wait_for_port(imaps).await?;
    wait_for_port(submissions).await?;
    Ok(relay)
}

async fn wait_for_port(addr: SocketAddr) -> Result<()> {
    let deadline = Instant::now() + PATIENCE;
    while TcpStream::connect(addr).await.is_err() {
        if Instant::now() > deadline {
            bail!("the relay did not open {addr}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// An IMAP session over TLS.
pub type Imap = async_imap::Session<TlsStream<TcpStream>>;

/// Logs a device in over IMAPS (which creates its relay account on first login).
pub async fn imap_login(relay: &LocalRelay, device: &Device) -> Result<Imap> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::CertificateDer::pem_slice_iter(&relay.cert_pem) {
        roots.add(cert?)?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = TcpStream::connect(relay.imaps).await?;
    let name = rustls_pki_types::ServerName::try_from(DOMAIN)?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await?;
    let mut client = async_imap::Client::new(tls);
    client.read_response().await?.context("no IMAP greeting")?;
    let mut session = client
        .login(&device.address, &device.password)
        .await
        .map_err(|(error, _)| error)?;
    session.select("INBOX").await?;
    Ok(session)
}

/// Submits raw message bytes from one device to another over SMTP submission (TLS, AUTH).
pub async fn submit(relay: &LocalRelay, from: &Device, to: &Device, mail: &[u8]) -> Result<()> {
    let tls = TlsParameters::builder(DOMAIN.to_owned())
        .add_root_certificate(Certificate::from_pem(&relay.cert_pem)?)
        .build_rustls()?;
    let smtp = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(relay.submissions.port())
        .tls(Tls::Wrapper(tls))
        .credentials(Credentials::new(
            from.address.clone(),
            from.password.clone(),
        ))
        .authentication(vec![Mechanism::Plain])
        .timeout(Some(PATIENCE))
        .build();
    let envelope = Envelope::new(Some(from.address.parse()?), vec![to.address.parse()?])?;
    smtp.send_raw(&envelope, mail).await?;
    Ok(())
}

/// Waits in IDLE until the inbox has a message, then fetches, opens and deletes it;
/// returns the session, the opened text and how long it waited.
pub async fn receive(mut imap: Imap, device: &Device) -> Result<(Imap, String, Duration)> {
    let started = Instant::now();
    loop {
        let uids = imap.uid_search("ALL").await?;
        if let Some(uid) = uids.into_iter().min() {
            let body = fetch_body(&mut imap, uid).await?;
            let frame = envelope::open(&body, OpenKey::Device(&device.keys))?;
            imap.uid_store(uid.to_string(), "+FLAGS (\\Deleted)")
                .await?
                .collect::<Vec<_>>()
                .await;
            imap.expunge().await?.collect::<Vec<_>>().await;
            let text = String::from_utf8(frame.payload).context("payload is not text")?;
            return Ok((imap, text, started.elapsed()));
        }
        let mut idle = imap.idle();
        idle.init().await?;
        let (wait, _stop) = idle.wait_with_timeout(PATIENCE);
        wait.await?;
        imap = idle.done().await?;
    }
}

async fn fetch_body(imap: &mut Imap, uid: u32) -> Result<Vec<u8>> {
    let fetches: Vec<_> = imap
        .uid_fetch(uid.to_string(), "BODY[]")
        .await?
        .collect()
        .await;
    for fetch in fetches {
        if let Some(body) = fetch?.body() {
            return Ok(body.to_vec());
        }
    }
    bail!("message {uid} has no body")
}
