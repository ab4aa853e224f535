//! Starts the IMAP listener in-process on a free loopback port with a temporary data
//! directory, and connects TLS clients that accept its self-signed certificate.
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use kith_relay::config::Config;
use kith_relay::context::{unix_now, RelayContext};
use kith_relay::store::Accepted;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::client::TlsStream;

pub const DOMAIN: &str = "relay.test";

/// A running IMAP listener.
pub struct Relay {
    pub ctx: RelayContext,
    pub addr: SocketAddr,
    _dir: tempfile::TempDir,
    task: tokio::task::JoinHandle<Result<(), kith_relay::imap::ImapError>>,
}

impl Relay {
    /// Starts a relay with implicit TLS (`configure` may change the config first).
    pub async fn start(configure: impl FnOnce(&mut Config)) -> Self {
        Self::start_with(true, configure).await
    }

    /// Starts a relay; `implicit_tls: false` gives the STARTTLS listener.
    pub async fn start_with(implicit_tls: bool, configure: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        kith_relay::tls::write_self_signed(&["localhost".into()], &cert, &key).unwrap();
        let tls = kith_relay::tls::load_server_config(&cert, &key).unwrap();
        let mut config = Config {
            domain: DOMAIN.into(),
            data_dir: dir.path().join("data"),
            ..Config::default()
        };
        config.accounts.min_free_disk_mib = 0;
        configure(&mut config);
        let ctx = RelayContext::new(config, tls).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(kith_relay::imap::serve(listener, ctx.clone(), implicit_tls));
        Self {
            ctx,
            addr,
            _dir: dir,
            task,
        }
    }

    /// Puts a message into local mailboxes, as SMTP would after its checks.
    pub async fn deliver(&self, to: &[&str], body: &[u8]) {
        let accepted = Accepted {
            sender: format!("sender@{DOMAIN}"),
            local: to.iter().map(|s| s.to_string()).collect(),
            remote: Vec::new(),
            msgid: None,
            body: Bytes::copy_from_slice(body),
        };
        let report = self.ctx.store.accept(accepted, unix_now()).await.unwrap();
        assert_eq!(report.delivered, to.len(), "{report:?}");
    }

    /// Opens a TLS connection to the listener.
    pub async fn tls(&self) -> TlsStream<TcpStream> {
        let tcp = TcpStream::connect(self.addr).await.unwrap();
        tls_over(tcp).await
    }

    /// Opens an async-imap client over TLS and reads the greeting.
    pub async fn client(&self) -> async_imap::Client<TlsStream<TcpStream>> {
        let mut client = async_imap::Client::new(self.tls().await);
        let greeting = client.read_response().await.unwrap().unwrap();
        assert!(
            matches!(
                greeting.parsed(),
                async_imap::imap_proto::Response::Data {
                    status: async_imap::imap_proto::Status::Ok,
                    ..
                }
            ),
            "{greeting:?}"
        );
        client
    }

    /// Logs in (creating the account on first use) and selects INBOX.
    pub async fn session(&self, address: &str) -> async_imap::Session<TlsStream<TcpStream>> {
        let mut session = self
            .client()
            .await
            .login(address, PASSWORD)
            .await
            .map_err(|(e, _)| e)
            .unwrap();
        session.select("INBOX").await.unwrap();
        session
    }

    /// Stops the listener and waits for it.
    pub async fn stop(self) {
        self.ctx.shutdown.cancel();
        self.task.await.unwrap().unwrap();
    }
}

pub const PASSWORD: &str = "correct horse battery";

/// A fresh address of this relay (9 random-looking characters).
pub fn address(n: u32) -> String {
    format!("user{n:05}@{DOMAIN}")
}

/// TLS over `tcp`, accepting any certificate (the relay's is self-signed).
pub async fn tls_over(tcp: TcpStream) -> TlsStream<TcpStream> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate))
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap()
}

/// A line-oriented raw IMAP connection, for what async-imap will not send.
pub struct Raw<S> {
    stream: BufReader<S>,
}

impl<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin> Raw<S> {
    pub fn new(stream: S) -> Self {
        Self {
            stream: BufReader::new(stream),
        }
    }

    pub async fn send(&mut self, line: &str) {
        self.stream
            .get_mut()
            .write_all(line.as_bytes())
            .await
            .unwrap();
        self.stream.get_mut().flush().await.unwrap();
    }

    /// The next line, without CRLF; empty at end of stream.
    pub async fn line(&mut self) -> String {
        let mut line = String::new();
        self.stream.read_line(&mut line).await.unwrap();
        line.trim_end().to_owned()
    }

    /// Lines up to and including the one starting with `tag `.
    pub async fn until_tagged(&mut self, tag: &str) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            let line = self.line().await;
            assert!(!line.is_empty(), "connection closed; got {lines:?}");
            let done = line.starts_with(&format!("{tag} "));
            lines.push(line);
            if done {
                return lines;
            }
        }
    }

    pub fn into_inner(self) -> S {
        self.stream.into_inner()
    }
}

#[derive(Debug)]
struct AcceptAnyCertificate;

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        rustls::crypto::ring::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}
