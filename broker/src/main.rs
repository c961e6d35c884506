//! `brokkr-broker`: the brokkr control-plane broker.
//!
//! Serves `GET /healthz`, `GET /readyz` and `GET /version` over plain HTTP/1.1
//! (see [`server`]) until SIGTERM or SIGINT, then drains and exits 0.
//! `brokkr-broker healthcheck` is the image's shell-less Docker `HEALTHCHECK`.

mod healthcheck;
mod server;

use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::sync::LazyLock;

use clap::{Parser, Subcommand};
use tracing_subscriber::{filter::Targets, prelude::*};

/// The `--version` text after the binary name:
/// `0.1.0 (target <triple>, arch <arch>[, commit <sha>])`, triple and arch being
/// what the binary was compiled for. Smoke tests match `arch aarch64` in it.
static VERSION: LazyLock<String> = LazyLock::new(|| server::BUILD.to_string());

/// Command line; every option also reads the environment variable shown in `--help`.
#[derive(Parser)]
#[command(version = VERSION.as_str(), about)]
struct Cli {
    /// TCP port to listen on (and the port `healthcheck` probes by default).
    #[arg(long, env = "BROKKR_BROKER_PORT", default_value_t = 3000)]
    port: u16,
    /// IP address to bind: `0.0.0.0` for all IPv4 interfaces, `::` for IPv6.
    #[arg(long, env = "BROKKR_BROKER_BIND", default_value = "0.0.0.0")]
    bind: IpAddr,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Probe a broker once: exit 0 on HTTP 200, else 1 with the reason (2 s timeout).
    Healthcheck {
        /// URL to GET [default: http://127.0.0.1:<port>/healthz].
        #[arg(long)]
        url: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Healthcheck { url }) = cli.command {
        let url = url.unwrap_or_else(|| format!("http://127.0.0.1:{}/healthz", cli.port));
        return healthcheck::run(&url);
    }
    init_logging();
    match server::run(SocketAddr::new(cli.bind, cli.port)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("{err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs to stderr. `RUST_LOG` takes `target=level` directives and a bare default level
/// (`info`, `brokkr_broker=debug,hyper=warn`); unset, empty or unparsable means `info`.
fn init_logging() {
    let filter = std::env::var("RUST_LOG").ok().filter(|v| !v.trim().is_empty());
    let filter = filter.and_then(|v| v.parse::<Targets>().ok());
    let filter = filter.unwrap_or_else(|| Targets::new().with_default(tracing::Level::INFO));
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    tracing_subscriber::registry().with(fmt).with(filter).init();
}
