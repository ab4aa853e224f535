//! The real `kith-relay` binary on loopback, driven by lettre and raw sockets: submission
//! over implicit TLS and STARTTLS, federation with a static route and queue retry,
//! rejections, graceful shutdown, and a SIGKILL crash test.
use std::collections::HashMap;
use std::net::TcpListener as StdListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kith_relay::config::Config;
use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const PASSWORD: &str = "correct-horse-battery";
/// How long a test waits for something that must happen (not a timing assertion).
const PATIENCE: Duration = Duration::from_secs(60);

/// A relay process with its own data directory and loopback ports.
struct Relay {
    dir: PathBuf,
    _temp: Option<tempfile::TempDir>,
    config: Config,
    child: Option<Child>,
}

fn free_port() -> std::net::SocketAddr {
    let listener = StdListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

impl Relay {
    /// Writes a config (via `kith-relay init`, then adjusted) without starting the relay.
    fn prepare(domain: &str, adjust: impl FnOnce(&mut Config)) -> Relay {
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
        config.listen.submissions = Some(free_port());
        config.listen.submission = Some(free_port());
        config.listen.smtp = Some(free_port());
        config.listen.metrics = Some(free_port());
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

    fn start(domain: &str, adjust: impl FnOnce(&mut Config)) -> Relay {
        let mut relay = Relay::prepare(domain, adjust);
        relay.spawn();
        relay
    }

    /// Starts (or restarts) the process and waits until it accepts connections.
    fn spawn(&mut self) {
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
            assert!(started.elapsed() < PATIENCE, "relay did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, and the process must exit 0.
    fn stop(&mut self) {
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
    fn kill(&mut self) {
        let mut child = self.child.take().expect("running");
        child.kill().unwrap();
        let _ = child.wait();
    }

    fn db(&self) -> rusqlite::Connection {
        let conn = rusqlite::Connection::open_with_flags(
            self.dir.join("data").join("relay.db"),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .unwrap();
        conn.busy_timeout(Duration::from_secs(10)).unwrap();
        conn
    }

    /// Copies of `msgid` in `address`'s mailbox.
    fn copies(&self, address: &str, msgid: &str) -> i64 {
        self.db()
            .query_row(
                "SELECT count(*) FROM mailbox WHERE address = ?1 AND msgid = ?2",
                [address, msgid],
                |r| r.get(0),
            )
            .unwrap()
    }

    fn queue_attempts(&self) -> Vec<i64> {
        let conn = self.db();
        let mut stmt = conn.prepare("SELECT attempts FROM queue").unwrap();
        let rows = stmt.query_map([], |r| r.get(0)).unwrap();
        rows.collect::<Result<_, _>>().unwrap()
    }

    fn address(&self, local: &str) -> String {
        format!("{local}@{}", self.config.domain)
    }

    fn client(&self, user: &str, password: &str, implicit_tls: bool) -> Transport {
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

type Transport = AsyncSmtpTransport<Tokio1Executor>;

/// An encrypted envelope (PGP/MIME around a gpg-made SKESK + SEIPD message).
fn envelope_message(from: &str, msgid: &str) -> Vec<u8> {
    let armored = include_str!("fixtures/symmetric-2.asc").replace('\n', "\r\n");
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

async fn send(
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
fn code(error: lettre::transport::smtp::Error) -> String {
    error
        .status()
        .map(|c| c.to_string())
        .unwrap_or_else(|| format!("no status: {error}"))
}

/// Creates an account by sending it a message from itself; returns its address.
async fn account(relay: &Relay, local: &str) -> String {
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

async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let started = Instant::now();
    while !condition() {
        assert!(started.elapsed() < PATIENCE, "gave up waiting: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn metrics(relay: &Relay) -> String {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submission_over_implicit_tls_and_starttls_lands_in_the_mailbox() {
    let mut relay = Relay::start("a.test", |_| {});
    let alice = account(&relay, "alice0001").await;
    let bob = account(&relay, "bob000001").await;
    let implicit = relay.client(&alice, PASSWORD, true);
    send(
        &implicit,
        &alice,
        &[&bob],
        &envelope_message(&alice, "m1@a.test"),
    )
    .await
    .unwrap();
    let starttls = relay.client(&bob, PASSWORD, false);
    send(
        &starttls,
        &bob,
        &[&alice, &bob],
        &envelope_message(&bob, "m2@a.test"),
    )
    .await
    .unwrap();
    // The same Message-ID again is acknowledged but not stored twice.
    send(
        &starttls,
        &bob,
        &[&alice],
        &envelope_message(&bob, "m2@a.test"),
    )
    .await
    .unwrap();
    assert_eq!(relay.copies(&bob, "m1@a.test"), 1);
    assert_eq!(relay.copies(&alice, "m2@a.test"), 1);
    assert_eq!(relay.copies(&bob, "m2@a.test"), 1);
    assert_eq!(relay.copies(&alice, "m1@a.test"), 0);
    let body: Vec<u8> = relay
        .db()
        .query_row(
            "SELECT m.body FROM mailbox b JOIN messages m ON m.id = b.message_id
             WHERE b.address = ?1 AND b.msgid = 'm1@a.test'",
            [&bob],
            |r| r.get(0),
        )
        .unwrap();
    let body = String::from_utf8(body).unwrap();
    assert!(!body.contains("X-Mailer"), "trace header stored");
    assert!(body.contains("-----END PGP MESSAGE-----"));
    let text = metrics(&relay).await;
    assert!(text.contains("kith_relay_messages_in_total 5"), "{text}");
    assert!(text.contains("kith_relay_queue_depth 0"), "{text}");
    relay.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn federation_over_a_static_route_survives_the_remote_being_down() {
    // Relay B first, to create the recipient's account; then it goes down.
    let mut b = Relay::prepare("b.test", |_| {});
    b.spawn();
    let carol = account(&b, "carol0001").await;
    b.stop();
    let route = b.config.listen.smtp.unwrap().to_string();
    let mut a = Relay::start("a.test", |c| {
        c.federation.routes.insert("b.test".into(), route);
    });
    let alice = account(&a, "alice0001").await;
    let local_too = account(&a, "dave00001").await;
    let client = a.client(&alice, PASSWORD, true);
    send(
        &client,
        &alice,
        &[&carol, &local_too],
        &envelope_message(&alice, "fed1@a.test"),
    )
    .await
    .unwrap();
    assert_eq!(a.copies(&local_too, "fed1@a.test"), 1);
    // B is down: the queue entry is retried.
    wait_until("a failed delivery attempt", || {
        a.queue_attempts().first().is_some_and(|n| *n >= 2)
    })
    .await;
    b.spawn();
    wait_until("the message reaches B", || {
        b.copies(&carol, "fed1@a.test") == 1
    })
    .await;
    wait_until("A's queue empties", || a.queue_attempts().is_empty()).await;
    let text = metrics(&a).await;
    assert!(text.contains("kith_relay_messages_out_total 1"), "{text}");
    // B accepts nothing for other domains, and nothing unencrypted, from relays.
    let mut smtp = RawSmtp::connect(b.config.listen.smtp.unwrap()).await;
    smtp.expect("EHLO a.test", "250").await;
    smtp.expect("MAIL FROM:<x@a.test>", "250").await;
    smtp.expect("RCPT TO:<y@c.test>", "550").await;
    smtp.expect(&format!("RCPT TO:<{carol}>"), "250").await;
    smtp.expect("DATA", "354").await;
    smtp.expect("From: <x@a.test>\r\n\r\nplain text\r\n.", "523")
        .await;
    a.stop();
    b.stop();
    assert_eq!(b.copies(&carol, "fed1@a.test"), 1);
}

/// A line-by-line SMTP client for what lettre will not send.
struct RawSmtp {
    reader: BufReader<tokio::io::ReadHalf<TcpStream>>,
    writer: tokio::io::WriteHalf<TcpStream>,
}

impl RawSmtp {
    async fn connect(addr: std::net::SocketAddr) -> RawSmtp {
        let tcp = TcpStream::connect(addr).await.unwrap();
        let (read, writer) = tokio::io::split(tcp);
        let mut smtp = RawSmtp {
            reader: BufReader::new(read),
            writer,
        };
        assert_eq!(smtp.reply().await, "220");
        smtp
    }

    /// Reads one (possibly multi-line) reply; returns its code.
    async fn reply(&mut self) -> String {
        loop {
            let mut line = String::new();
            self.reader.read_line(&mut line).await.unwrap();
            assert!(line.len() >= 4, "short reply {line:?}");
            if line.as_bytes()[3] == b' ' {
                return line[..3].to_owned();
            }
        }
    }

    async fn expect(&mut self, command: &str, code: &str) {
        self.writer
            .write_all(format!("{command}\r\n").as_bytes())
            .await
            .unwrap();
        assert_eq!(self.reply().await, code, "after {command:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejections_leave_the_relay_working() {
    let mut relay = Relay::start("r.test", |c| {
        c.limits.max_message_bytes = 64 * 1024;
        c.limits.send_per_minute = 6;
    });
    let alice = account(&relay, "alice0001").await;
    let bob = account(&relay, "bob000001").await;
    let client = relay.client(&alice, PASSWORD, true);
    let ok = |n: u32| envelope_message(&alice, &format!("ok{n}@r.test"));

    let plaintext = format!("From: <{alice}>\r\nMessage-ID: <p@r.test>\r\n\r\nhello\r\n");
    let refused = send(&client, &alice, &[&bob], plaintext.as_bytes()).await;
    assert_eq!(code(refused.unwrap_err()), "523");
    send(&client, &alice, &[&bob], &ok(1)).await.unwrap();

    let wrong_sender = send(&client, &bob, &[&bob], &ok(2)).await;
    assert_eq!(code(wrong_sender.unwrap_err()), "553");
    let wrong_from = envelope_message(&bob, "wf@r.test");
    assert_eq!(
        code(
            send(&client, &alice, &[&bob], &wrong_from)
                .await
                .unwrap_err()
        ),
        "550"
    );

    let mut huge = envelope_message(&alice, "big@r.test");
    huge.extend(std::iter::repeat_n(b'A', 100 * 1024));
    assert_eq!(
        code(send(&client, &alice, &[&bob], &huge).await.unwrap_err()),
        "552"
    );
    let unknown = relay.address("nobody123");
    assert_eq!(
        code(
            send(&client, &alice, &[&unknown], &ok(3))
                .await
                .unwrap_err()
        ),
        "550"
    );

    let bad_password = relay.client(&alice, "wrong-password-1", false);
    assert_eq!(
        code(
            send(&bad_password, &alice, &[&bob], &ok(4))
                .await
                .unwrap_err()
        ),
        "535"
    );

    // Six MAIL commands a minute: the rest of this minute's budget, then 450.
    let mut sent = 0;
    let refusal = loop {
        match send(&client, &alice, &[&bob], &ok(10 + sent)).await {
            Ok(()) => sent += 1,
            Err(error) => break code(error),
        }
        assert!(sent < 10, "no rate limit");
    };
    assert_eq!(refusal, "450");
    // Bob is not limited by Alice's rate.
    let bob_client = relay.client(&bob, PASSWORD, false);
    send(
        &bob_client,
        &bob,
        &[&alice],
        &envelope_message(&bob, "b1@r.test"),
    )
    .await
    .unwrap();
    assert_eq!(relay.copies(&bob, "ok1@r.test"), 1);
    assert_eq!(relay.copies(&bob, "big@r.test"), 0);
    assert_eq!(relay.copies(&bob, "p@r.test"), 0);

    // Malformed commands on one connection; it keeps working.
    let mut smtp = RawSmtp::connect(relay.config.listen.smtp.unwrap()).await;
    smtp.expect("HELLO there", "500").await;
    smtp.expect("MAIL FROM:<x@other.test>", "503").await;
    smtp.expect("EHLO other.test", "250").await;
    smtp.expect("MAIL FROM:no-brackets", "501").await;
    smtp.expect("RCPT TO:<bob000001@r.test>", "503").await;
    smtp.expect("DATA", "503").await;
    smtp.expect(&format!("NOOP {}", "x".repeat(9000)), "500")
        .await;
    smtp.expect("MAIL FROM:<x@other.test>", "250").await;
    smtp.expect(&format!("RCPT TO:<{bob}>"), "250").await;
    smtp.expect("QUIT", "221").await;
    let text = metrics(&relay).await;
    for reason in [
        "not_encrypted",
        "sender_mismatch",
        "too_large",
        "rate_limited",
        "bad_login",
    ] {
        assert!(
            !text.contains(&format!("reason=\"{reason}\"}} 0")),
            "{reason} not counted:\n{text}"
        );
    }
    relay.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_relay_keeps_every_acknowledged_message_exactly_once() {
    const MESSAGES: usize = 2000;
    const SENDERS: usize = 24;
    let mut relay = Relay::start("k.test", |c| {
        c.limits.send_per_minute = 1_000_000;
        c.limits.connections_per_ip = 1000;
    });
    let alice = account(&relay, "alice0001").await;
    let bob = account(&relay, "bob000001").await;
    let acked = Arc::new(Mutex::new(Vec::new()));
    let next = Arc::new(AtomicUsize::new(0));
    let mut senders = Vec::new();
    for _ in 0..SENDERS {
        let client = relay.client(&alice, PASSWORD, true);
        let (alice, bob, acked, next) = (alice.clone(), bob.clone(), acked.clone(), next.clone());
        senders.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= MESSAGES {
                    return;
                }
                let msgid = format!("crash{n}@k.test");
                let message = envelope_message(&alice, &msgid);
                match send(&client, &alice, &[&bob], &message).await {
                    Ok(()) => acked.lock().unwrap().push(msgid),
                    Err(_) => return,
                }
            }
        }));
    }
    wait_until("some messages are acknowledged", || {
        acked.lock().unwrap().len() >= MESSAGES / 4
    })
    .await;
    relay.kill();
    for sender in senders {
        sender.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() < MESSAGES,
        "the kill came too late to test anything"
    );

    relay.spawn();
    let counts: HashMap<String, i64> = {
        let conn = relay.db();
        let mut stmt = conn
            .prepare("SELECT msgid, count(*) FROM mailbox WHERE address = ?1 GROUP BY msgid")
            .unwrap();
        let rows = stmt
            .query_map([&bob], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap();
        rows.collect::<Result<_, _>>().unwrap()
    };
    for msgid in &acked {
        assert_eq!(
            counts.get(msgid),
            Some(&1),
            "{msgid} acknowledged but not stored once"
        );
    }
    assert!(
        counts.values().all(|n| *n == 1),
        "a message was stored twice"
    );

    // Clients retry whatever was not acknowledged (and some that was): each is stored once.
    let client = relay.client(&alice, PASSWORD, true);
    for n in (0..MESSAGES).step_by(7) {
        let msgid = format!("crash{n}@k.test");
        send(&client, &alice, &[&bob], &envelope_message(&alice, &msgid))
            .await
            .unwrap();
        assert_eq!(relay.copies(&bob, &msgid), 1);
    }
    relay.stop();
    eprintln!(
        "crash test: {} of {MESSAGES} acknowledged before SIGKILL, all stored exactly once",
        acked.len()
    );
}
