//! The `kith-relay` binary: `init` writes a config and a self-signed certificate; `serve`
//! runs the relay until SIGTERM or SIGINT.
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use clap::{Parser, Subcommand};
use kith_relay::config::Config;
use kith_relay::context::RelayContext;

#[derive(Parser)]
#[command(
    name = "kith-relay",
    version,
    about = "Kith's zero-knowledge chatmail-style relay"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write relay.toml (every field, commented) and a self-signed certificate.
    Init {
        /// Directory to write into (created if needed).
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// The relay's mail domain.
        #[arg(long, default_value = "localhost")]
        domain: String,
    },
    /// Run the relay.
    Serve {
        /// The configuration file.
        #[arg(long, default_value = "relay.toml")]
        config: PathBuf,
    },
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = match Cli::parse().command {
        Command::Init { dir, domain } => init(&dir, domain),
        Command::Serve { config } => serve(&config),
    };
    if let Err(error) = result {
        eprintln!("kith-relay: {error:#}");
        std::process::exit(1);
    }
}

fn init(dir: &Path, domain: String) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join("relay.toml");
    if path.exists() {
        bail!("{} exists already; not overwriting it", path.display());
    }
    let config = Config {
        domain,
        ..Config::default()
    };
    config.validate()?;
    kith_relay::tls::write_self_signed(
        std::slice::from_ref(&config.domain),
        &dir.join(&config.tls.cert),
        &dir.join(&config.tls.key),
    )?;
    std::fs::write(&path, config.to_commented_toml())
        .with_context(|| format!("cannot write {}", path.display()))?;
    println!(
        "wrote {} and a self-signed certificate for {}; start with: kith-relay serve --config {}",
        path.display(),
        config.domain,
        path.display()
    );
    Ok(())
}

fn serve(path: &Path) -> anyhow::Result<()> {
    let config = Config::load(path)?;
    let tls = kith_relay::tls::load_server_config(&config.tls.cert, &config.tls.key)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let ctx = RelayContext::new(config, tls)?;
        let shutdown = ctx.shutdown.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            shutdown.cancel();
        });
        kith_relay::server::run(ctx).await?;
        Ok(())
    })
}

/// Waits for SIGTERM or SIGINT.
async fn wait_for_signal() {
    let mut terminate =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        Some(()) = async { terminate.as_mut()?.recv().await } => {}
    }
    tracing::info!("signal received");
}
