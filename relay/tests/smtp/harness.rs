//! Starts real `kith-relay` processes on free loopback ports with temporary data
//! directories, and talks to them with lettre, async-imap and a raw SMTP client.
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kith_relay::config::Config;
pub use kith_relay::loopback::free_addr;
use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

pub const PASSWORD: &str = "correct-horse-battery";
/// How long a test waits for something that must happen (not a timing assertion).
pub const PATIENCE: Duration = Duration::from_secs(60);

/// A relay process with its own data directory and loopback ports.
pub struct Relay {
    pub dir: PathBuf,
    _temp: Option<tempfile::TempDir>,
    pub config: Config,
    child: Option<Child>,
}

impl Relay {
    /// Writes a config (via `kith-relay init`, then adjusted) without starting the relay.
    pub fn prepare(domain: &str, adjust: impl FnOnce(&mut Config)) -> Relay {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path().to_owned();
        let status = Command::new(env!("CARGO_BIN_EXE_kith-relay"))
            .args(["init", "--dir"])
            .arg(&dir)
            .args(["--domain", domain])
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
        let written = Config::load(&dir.join("relay.toml")).unwrap();
        assert_eq!(written.domain, domain);
        let mut config = Config {
            domain: domain.into(),
            data_dir: "data".into(),
            ..Config::default()
        };
        config.listen.submissions = Some(free_addr());
        config.listen.submission = Some(free_addr());
        config.listen.smtp = Some(free_addr());
        config.listen.metrics = Some(free_addr());
        config.listen.imaps = None;
        config.listen.imap = None;
        config.accounts.min_free_disk_mib = 0;
        config.federation.insecure_static_routes = true;
        config.federation.retry_initial_secs = 1;
        config.federation.retry_max_secs = 1;
        adjust(&mut config);
        std::fs::write(dir.join("relay.toml"), config.to_toml()).unwrap();
        Relay {
            dir,
            _temp: Some(temp),
            config,
            child: None,
        }
    }

    pub fn start(domain: &str, adjust: impl FnOnce(&mut Config)) -> Relay {
        let mut relay = Relay::prepare(domain, adjust);
        relay.spawn();
        relay
    }

    /// Starts (or restarts) the process and waits until it accepts connections.
    pub fn spawn(&mut self) {
        assert!(self.child.is_none());
        let child = Command::new(env!("CARGO_BIN_EXE_kith-relay"))
            .args(["serve", "--config"])
            .arg(self.dir.join("relay.toml"))
            .env(
                "RUST_LOG",
                std::env::var("KITH_TEST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .spawn()
            .unwrap();
        self.child = Some(child);
        let started = Instant::now();
        let addr = self.config.listen.smtp.unwrap();
        while std::net::TcpStream::connect(addr).is_err() {
            let exited = self.child.as_mut().and_then(|c| c.try_wait().unwrap());
            assert!(exited.is_none(), "relay exited at start: {exited:?}");
            assert!(started.elapsed() < PATIENCE, "relay did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, and the process must exit 0.
    pub fn stop(&mut self) {
        let mut child = self.child.take().expect("running");
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let status = child.wait().unwrap();
        assert!(status.success(), "relay exited with {status}");
    }

    /// SIGKILL.
    pub fn kill(&mut self) {
        let mut child = self.child.take().expect("running");
        child.kill().unwrap();
        let _ = child.wait();
    }

    pub fn db(&self) -> rusqlite::Connection {
        let conn = rusqlite::Connection::open_with_flags(
            self.dir.join("data").join("relay.db"),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .unwrap();
        conn.busy_timeout(Duration::from_secs(10)).unwrap();
        conn
    }

    /// Copies of `msgid` in `address`'s mailbox.
    pub fn copies(&self, address: &str, msgid: &str) -> i64 {
        self.db()
            .query_row(
                "SELECT count(*) FROM mailbox WHERE address = ?1 AND msgid = ?2",
                [address, msgid],
                |r| r.get(0),
            )
            .unwrap()
    }

    pub fn queue_attempts(&self) -> Vec<i64> {
        let conn = self.db();
        let mut stmt = conn.prepare("SELECT attempts FROM queue").unwrap();
        let rows = stmt.query_map([], |r| r.get(0)).unwrap();
        rows.collect::<Result<_, _>>().unwrap()
    }

    pub fn address(&self, local: &str) -> String {
        format!("{local}@{}", self.config.domain)
    }

    pub fn client(&self, user: &str, password: &str, implicit_tls: bool) -> Transport {
        let cert = std::fs::read(self.dir.join("cert.pem")).unwrap();
        let tls = TlsParameters::builder(self.config.domain.clone())
            .add_root_certificate(Certificate::from_pem(&cert).unwrap())
            .build_rustls()
            .unwrap();
        let (port, tls) = if implicit_tls {
            (self.config.listen.submissions, Tls::Wrapper(tls))
        } else {
            (self.config.listen.submission, Tls::Required(tls))
        };
        AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
            .port(port.unwrap().port())
            .tls(tls)
            .credentials(Credentials::new(user.into(), password.into()))
            .authentication(vec![Mechanism::Plain])
            .timeout(Some(PATIENCE))
            .build()
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub type Transport = AsyncSmtpTransport<Tokio1Executor>;

/// An encrypted envelope (PGP/MIME around a gpg-made SKESK + SEIPD message).
pub fn envelope_message(from: &str, msgid: &str) -> Vec<u8> {
    let armored = include_str!("../fixtures/symmetric-2.asc").replace('\n', "\r\n");
    format!(
        "From: <{from}>\r\nTo: hidden-recipients:;\r\nSubject: [...]\r\n\
         Message-ID: <{msgid}>\r\nX-Mailer: test-client 1.0\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\";\r\n \
         boundary=\"kith-5c7a0d7e\"\r\n\r\n\
         --kith-5c7a0d7e\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n\r\n\
         --kith-5c7a0d7e\r\nContent-Type: application/octet-stream; name=\"encrypted.asc\"\r\n\r\n\
         {armored}\r\n--kith-5c7a0d7e--\r\n"
    )
    .into_bytes()
}

pub async fn send(
    client: &Transport,
    from: &str,
    to: &[&str],
    message: &[u8],
) -> Result<(), lettre::transport::smtp::Error> {
    let envelope = Envelope::new(
        Some(from.parse().unwrap()),
        to.iter().map(|t| t.parse().unwrap()).collect(),
    )
    .unwrap();
    client.send_raw(&envelope, message).await.map(|_| ())
}

/// The reply code of a refusal.
pub fn code(error: lettre::transport::smtp::Error) -> String {
    error
        .status()
        .map(|c| c.to_string())
        .unwrap_or_else(|| format!("no status: {error}"))
}

/// Creates an account by sending it a message from itself; returns its address.
pub async fn account(relay: &Relay, local: &str) -> String {
    let address = relay.address(local);
    let client = relay.client(&address, PASSWORD, true);
    let msgid = format!("hello-{local}@test");
    send(
        &client,
        &address,
        &[&address],
        &envelope_message(&address, &msgid),
    )
    .await
    .unwrap();
    address
}

pub async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let started = Instant::now();
    while !condition() {
        assert!(started.elapsed() < PATIENCE, "gave up waiting: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub async fn metrics(relay: &Relay) -> String {
    let mut tcp = TcpStream::connect(relay.config.listen.metrics.unwrap())
        .await
        .unwrap();
    tcp.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut text = String::new();
    tcp.read_to_string(&mut text).await.unwrap();
    text
}

/// An IMAP client over implicit TLS that trusts the relay's self-signed certificate.
pub async fn imap_login(
    relay: &Relay,
    user: &str,
) -> async_imap::Session<tokio_rustls::client::TlsStream<TcpStream>> {
    let mut roots = rustls::RootCertStore::empty();
    let pem = std::fs::read(relay.dir.join("cert.pem")).unwrap();
    for cert in rustls_pemfile_certs(&pem) {
        roots.add(cert).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(relay.config.listen.imaps.unwrap())
        .await
        .unwrap();
    let name = rustls::pki_types::ServerName::try_from(relay.config.domain.clone()).unwrap();
    let tls = connector.connect(name, tcp).await.unwrap();
    let mut client = async_imap::Client::new(tls);
    client.read_response().await.unwrap().unwrap();
    client.login(user, PASSWORD).await.map_err(|e| e.0).unwrap()
}

pub fn rustls_pemfile_certs(pem: &[u8]) -> Vec<rustls::pki_types::CertificateDer<'static>> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .unwrap()
}

/// A line-by-line SMTP client for what lettre will not send.
pub struct RawSmtp {
    reader: BufReader<tokio::io::ReadHalf<TcpStream>>,
    writer: tokio::io::WriteHalf<TcpStream>,
}

impl RawSmtp {
    pub async fn connect(addr: std::net::SocketAddr) -> RawSmtp {
        let (smtp, greeting) = RawSmtp::open(addr).await;
        assert_eq!(greeting, "220");
        smtp
    }

    /// Connects and returns the greeting's code, whatever it is.
    pub async fn open(addr: std::net::SocketAddr) -> (RawSmtp, String) {
        let tcp = TcpStream::connect(addr).await.unwrap();
        let (read, writer) = tokio::io::split(tcp);
        let mut smtp = RawSmtp {
            reader: BufReader::new(read),
            writer,
        };
        let greeting = smtp.reply().await;
        (smtp, greeting)
    }

    /// Reads one (possibly multi-line) reply; returns its code.
    pub async fn reply(&mut self) -> String {
        loop {
            let mut line = String::new();
            self.reader.read_line(&mut line).await.unwrap();
            assert!(line.len() >= 4, "short reply {line:?}");
            if line.as_bytes()[3] == b' ' {
                return line[..3].to_owned();
            }
        }
    }

    pub async fn expect(&mut self, command: &str, code: &str) {
        self.writer
            .write_all(format!("{command}\r\n").as_bytes())
            .await
            .unwrap();
        assert_eq!(self.reply().await, code, "after {command:?}");
    }
}
