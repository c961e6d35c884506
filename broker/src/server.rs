//! The broker's HTTP server: routes, build information and graceful shutdown.

use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Context;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use tokio::signal::unix::{signal, SignalKind};

/// What this binary is and what it was compiled for; the body of `GET /version`.
#[derive(Debug, Serialize)]
pub struct BuildInfo {
    /// Cargo package name, `brokkr-broker`.
    pub name: &'static str,
    /// Cargo package version, e.g. `0.1.0`.
    pub version: &'static str,
    /// `BROKKR_GIT_COMMIT` at compile time; `None` (JSON `null`) when unset or empty.
    pub commit: Option<&'static str>,
    /// Target triple compiled for (Cargo's `TARGET`), e.g. `aarch64-unknown-linux-gnu`.
    pub target: &'static str,
    /// Target architecture (`CARGO_CFG_TARGET_ARCH`, as `uname -m`): `x86_64`, `aarch64`.
    pub arch: &'static str,
}

/// This binary's build information (see `build.rs`).
pub const BUILD: BuildInfo = BuildInfo {
    name: env!("CARGO_PKG_NAME"),
    version: env!("CARGO_PKG_VERSION"),
    commit: match option_env!("BROKKR_GIT_COMMIT") {
        Some(c) if !c.is_empty() => Some(c),
        _ => None,
    },
    target: env!("BROKKR_TARGET"),
    arch: env!("BROKKR_ARCH"),
};

impl fmt::Display for BuildInfo {
    /// `<version> (target <triple>, arch <arch>[, commit <sha>])`: clap prefixes the name.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (target {}, arch {}", self.version, self.target, self.arch)?;
        if let Some(commit) = self.commit {
            write!(f, ", commit {commit}")?;
        }
        f.write_str(")")
    }
}

/// The routes. `ready` is true while serving and false once shutdown has begun,
/// which `/readyz` reports as 503.
pub fn router(ready: Arc<AtomicBool>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/version", get(|| async { Json(BUILD) }))
        .with_state(ready)
}

async fn readyz(State(ready): State<Arc<AtomicBool>>) -> (StatusCode, &'static str) {
    if ready.load(Ordering::SeqCst) {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "shutting down")
    }
}

/// Serves on `addr` until SIGTERM or SIGINT, then stops accepting, lets open requests
/// finish and returns. Errors: the signal handlers or the bind failed (port in use,
/// address not on this host), or the accept loop died.
#[tokio::main]
pub async fn run(addr: SocketAddr) -> anyhow::Result<()> {
    // Handlers go in before the bind so that a signal never hits the default action.
    let mut term = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing SIGINT handler")?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}: is the port free and the address local?"))?;
    let ready = Arc::new(AtomicBool::new(true));
    tracing::info!(%addr, build = %BUILD, "brokkr-broker listening");
    let flag = Arc::clone(&ready);
    let shutdown = async move {
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        flag.store(false, Ordering::SeqCst);
        tracing::info!(signal = name, "shutting down gracefully");
    };
    axum::serve(listener, router(ready))
        .with_graceful_shutdown(shutdown)
        .await
        .context("serving HTTP")?;
    tracing::info!("stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_line_formats() {
        let cases = [
            (None, "0.1.0 (target T, arch A)"),
            (Some("abc1234"), "0.1.0 (target T, arch A, commit abc1234)"),
        ];
        for (commit, want) in cases {
            let shown = BuildInfo { version: "0.1.0", target: "T", arch: "A", commit, ..BUILD };
            assert_eq!(shown.to_string(), want);
        }
    }

    #[test]
    fn readiness_follows_the_flag() {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let cases = [
            (true, StatusCode::OK, "ready"),
            (false, StatusCode::SERVICE_UNAVAILABLE, "shutting down"),
        ];
        for (ready, status, body) in cases {
            let flag = State(Arc::new(AtomicBool::new(ready)));
            assert_eq!(runtime.block_on(readyz(flag)), (status, body), "ready {ready}");
        }
    }

    #[test]
    fn build_is_for_this_target() {
        assert_eq!(BUILD.arch, std::env::consts::ARCH);
        assert!(BUILD.target.starts_with(BUILD.arch), "{}", BUILD.target);
    }
}
