//! `brokkr-agent`: watches the brokkr broker.
//!
//! Polls the broker's `/healthz` and logs its state changes, while serving its own
//! `GET /healthz` (200 `ok` while the agent runs, whatever the broker's state, so a
//! broker outage does not get agents restarted). Exits 0 on SIGTERM or SIGINT.
//! `check` probes the broker once; `healthcheck` is the image's Docker `HEALTHCHECK`.

mod probe;
mod watch;

use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::sync::LazyLock;
use std::time::Duration;

use anyhow::Context;
use axum::routing::get;
use clap::{Parser, Subcommand};
use hyper::Uri;
use tokio::signal::unix::{signal, SignalKind};
use tracing_subscriber::{filter::Targets, prelude::*};

/// The `--version` text after the binary name:
/// `0.1.0 (target <triple>, arch <arch>[, commit <sha>])`, triple and arch being
/// what the binary was compiled for (see `build.rs`); the commit is `BROKKR_GIT_COMMIT`
/// at compile time, left out when unset or empty.
static VERSION: LazyLock<String> = LazyLock::new(|| {
    let commit = option_env!("BROKKR_GIT_COMMIT").filter(|c| !c.is_empty());
    let commit = commit.map(|c| format!(", commit {c}")).unwrap_or_default();
    let (target, arch) = (env!("BROKKR_TARGET"), env!("BROKKR_ARCH"));
    format!("{} (target {target}, arch {arch}{commit})", env!("CARGO_PKG_VERSION"))
});

/// Command line; options also read the environment variables shown in `--help`.
#[derive(Parser)]
#[command(version = VERSION.as_str(), about)]
struct Cli {
    /// Broker base URL, plain HTTP; `/healthz` is appended.
    #[arg(long, global = true, env = "BROKKR_AGENT_BROKER_URL")]
    #[arg(default_value = "http://127.0.0.1:3000", value_parser = probe::healthz_url)]
    broker_url: Uri,
    /// Time between broker probes: seconds (`10`) or `500ms`, `2s`, `1m`.
    #[arg(long, env = "BROKKR_AGENT_INTERVAL", default_value = "10")]
    #[arg(value_parser = watch::parse_interval)]
    interval: Duration,
    /// TCP port of the agent's own `/healthz` (and the port `healthcheck` probes by default).
    #[arg(long, env = "BROKKR_AGENT_PORT", default_value_t = 8080)]
    port: u16,
    /// IP address to bind: `0.0.0.0` for all IPv4 interfaces, `::` for IPv6.
    #[arg(long, env = "BROKKR_AGENT_BIND", default_value = "0.0.0.0")]
    bind: IpAddr,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Probe the broker's /healthz once: exit 0 on HTTP 200, else 1 with the reason.
    Check,
    /// Probe this agent once: exit 0 on HTTP 200, else 1 with the reason (2 s timeout).
    Healthcheck {
        /// URL to GET [default: http://127.0.0.1:<port>/healthz].
        #[arg(long, value_parser = probe::http_url)]
        url: Option<Uri>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Check) => probe::once("broker", &cli.broker_url),
        Some(Command::Healthcheck { url }) => {
            let own = || format!("http://127.0.0.1:{}/healthz", cli.port).parse();
            probe::once("agent", &url.unwrap_or_else(|| own().expect("valid URL")))
        }
        None => {
            init_logging();
            let addr = SocketAddr::new(cli.bind, cli.port);
            if let Err(err) = run(addr, cli.broker_url, cli.interval) {
                tracing::error!("{err:#}");
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
    }
}

/// Serves `/healthz` on `addr` and watches `broker` every `interval` until SIGTERM
/// or SIGINT. Errors: the signal handlers or the bind failed, or serving died.
#[tokio::main]
async fn run(addr: SocketAddr, broker: Uri, interval: Duration) -> anyhow::Result<()> {
    let signals = [SignalKind::terminate(), SignalKind::interrupt()].map(signal);
    let [Ok(mut term), Ok(mut int)] = signals else {
        anyhow::bail!("cannot install the SIGTERM/SIGINT handlers");
    };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}: is the port free and the address local?"))?;
    tracing::info!(%addr, %broker, ?interval, version = %*VERSION, "brokkr-agent listening");
    let watcher = tokio::spawn(watch::watch(probe::Prober::new(), broker, interval));
    let app = axum::Router::new().route("/healthz", get(|| async { "ok" }));
    let stop = async move {
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        tracing::info!(signal = name, "shutting down gracefully");
    };
    let served = axum::serve(listener, app).with_graceful_shutdown(stop).await;
    watcher.abort();
    served.context("serving HTTP")?;
    tracing::info!("stopped");
    Ok(())
}

/// Logs to stderr; `RUST_LOG` holds `target=level` directives and a bare default
/// level (`debug`, `brokkr_agent=debug,hyper_util=warn`). Unset, empty or
/// unparsable, it is `info`.
fn init_logging() {
    let directives = std::env::var("RUST_LOG").unwrap_or_default();
    let parsed = Some(directives.trim()).filter(|d| !d.is_empty()).map(str::parse::<Targets>);
    let filter = match parsed {
        Some(Ok(targets)) => targets,
        _ => Targets::new().with_default(tracing::Level::INFO),
    };
    let layer = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    tracing_subscriber::registry().with(filter).with(layer).init();
}
