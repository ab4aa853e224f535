//! Real `kith-relay` processes on loopback: each with its own domain, data directory,
//! certificate (valid for its domain and for `localhost`, which clients connect to) and
//! free ports; static federation routes between them.
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use kith_core::transport::{RelayEndpoint, Security, ServerEndpoint, TrustAnchor};
use kith_relay::config::Config;
use kith_relay::loopback::free_addr;

use crate::PATIENCE;

/// A relay process (stopped until [`RelayProcess::spawn`]).
pub struct RelayProcess {
    /// Its mail domain.
    pub domain: String,
    /// Its configuration as written to `relay.toml`.
    pub config: Config,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl RelayProcess {
    /// Writes a relay's directory with `kith-relay init`, on free loopback ports, with quick
    /// federation retries; `adjust` may change the config before it is written.
    pub fn prepare(domain: &str, adjust: impl FnOnce(&mut Config)) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let status = Command::new(relay_binary()?)
            .args(["init", "--dir"])
            .arg(dir.path())
            .args(["--domain", domain])
            .stdout(Stdio::null())
            .status()
            .context("running kith-relay init")?;
        if !status.success() {
            bail!("kith-relay init failed: {status}");
        }
        // A certificate clients can check when they connect to "localhost".
        kith_relay::tls::write_self_signed(
            &[domain.to_owned(), "localhost".to_owned()],
            &dir.path().join("cert.pem"),
            &dir.path().join("key.pem"),
        )?;
        let mut config = Config::load(&dir.path().join("relay.toml"))?;
        config.listen.submissions = Some(free_addr());
        config.listen.submission = None;
        config.listen.smtp = Some(free_addr());
        config.listen.imaps = Some(free_addr());
        config.listen.imap = None;
        config.listen.metrics = None;
        config.accounts.min_free_disk_mib = 0;
        config.federation.insecure_static_routes = true;
        config.federation.retry_initial_secs = 1;
        config.federation.retry_max_secs = 2;
        adjust(&mut config);
        std::fs::write(dir.path().join("relay.toml"), config.to_toml())?;
        Ok(Self {
            domain: domain.to_owned(),
            config,
            dir,
            child: None,
        })
    }

    /// Routes mail for `other`'s domain to its inbound SMTP port (takes effect at the next
    /// [`RelayProcess::spawn`]).
    pub fn route_to(&mut self, other: &RelayProcess) -> Result<()> {
        let port = other
            .config
            .listen
            .smtp
            .context("the other relay has no SMTP")?;
        self.config
            .federation
            .routes
            .insert(other.domain.clone(), port.to_string());
        std::fs::write(self.dir.path().join("relay.toml"), self.config.to_toml())?;
        Ok(())
    }

    /// Starts the process and waits until its IMAP and SMTP ports accept connections.
    pub fn spawn(&mut self) -> Result<()> {
        if self.child.is_some() {
            bail!("{} is already running", self.domain);
        }
        let child = Command::new(relay_binary()?)
            .args(["serve", "--config"])
            .arg(self.dir.path().join("relay.toml"))
            .env(
                "RUST_LOG",
                std::env::var("KITH_TEST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .spawn()
            .context("starting kith-relay serve")?;
        self.child = Some(child);
        let started = Instant::now();
        for addr in [self.config.listen.imaps, self.config.listen.submissions]
            .into_iter()
            .flatten()
        {
            while TcpStream::connect(addr).is_err() {
                if started.elapsed() > PATIENCE {
                    bail!("{} did not start listening", self.domain);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        Ok(())
    }

    /// Stops the process with SIGTERM and requires a clean exit.
    pub fn stop(&mut self) -> Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()?;
        if !status.success() {
            bail!("kill -TERM failed");
        }
        let status = child.wait()?;
        if !status.success() {
            bail!("{} exited with {status}", self.domain);
        }
        Ok(())
    }

    /// How a client reaches this relay: implicit TLS on localhost, trusting exactly its
    /// certificate.
    pub fn endpoint(&self) -> Result<RelayEndpoint> {
        let server = |addr: Option<SocketAddr>| -> Result<ServerEndpoint> {
            Ok(ServerEndpoint {
                host: "localhost".into(),
                port: addr.context("listener disabled")?.port(),
                security: Security::ImplicitTls,
            })
        };
        Ok(RelayEndpoint {
            domain: self.domain.clone(),
            imap: server(self.config.listen.imaps)?,
            smtp: server(self.config.listen.submissions)?,
            trust: TrustAnchor::PemFile(self.dir.path().join("cert.pem")),
        })
    }

    /// The relay's directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for RelayProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The `kith-relay` binary of this build: next to the test's own `deps/` directory. If it
/// is not built yet (a test run limited to this package), it is built with the same cargo
/// and target directory.
pub fn relay_binary() -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .context("the test binary has no profile directory")?;
    let binary = profile_dir.join("kith-relay");
    if !binary.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "-p", "kith-relay", "--bin", "kith-relay"])
            .status()
            .context("building kith-relay")?;
        if !status.success() || !binary.exists() {
            bail!("could not build {}", binary.display());
        }
    }
    Ok(binary)
}
