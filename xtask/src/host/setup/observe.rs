//! What setup decides on, read once from the host.

use std::{collections::BTreeMap, path::Path};

use anyhow::Result;
use xshell::Shell;

use super::WATCHED_PACKAGES;
use crate::{
    host::{foreign, probe, registry, ImageStore, OsRelease, Version, BINFMT_DIR},
    project::Platform,
};

/// The running engine, as `docker info` showed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Engine {
    pub version: Option<Version>,
    pub version_text: String,
    pub store: ImageStore,
    pub containers_running: u64,
}

/// Everything setup decides on, read once from the host ([`observe`]).
#[derive(Clone, Debug)]
pub struct Observed {
    pub os: OsRelease,
    pub root: bool,
    /// Not root, but password-less `sudo` works and this is GitHub Actions:
    /// privileged commands are prefixed with `sudo -n`.
    pub sudo: bool,
    pub github_actions: bool,
    pub systemd: bool,
    pub host: &'static Platform,
    pub docker_cli: bool,
    /// `dockerd --version`, whether running or not.
    pub dockerd: Option<Version>,
    pub buildx: Option<Version>,
    pub engine: Option<Engine>,
    /// Why `docker info` did not answer (the client's error), for the printout.
    pub engine_error: String,
    /// [`probe::docker_host`]: an engine elsewhere, never started here.
    pub docker_host: Option<String>,
    /// The running engine's default bridge interface, when it is missing.
    pub bridge_missing: Option<String>,
    pub daemon_json: Option<String>,
    pub packages: BTreeMap<String, String>,
    pub binfmt_mounted: bool,
    pub binfmt: Vec<probe::BinfmtProbe>,
    pub registry_up: bool,
}

/// Reads the host's state for `platforms` (quiet, read-only, about a second).
pub fn observe(sh: &Shell, platforms: &[&'static Platform]) -> Result<Observed> {
    let host = Platform::host()?;
    let root = probe::is_root(sh);
    let github_actions = probe::github_actions();
    let docker_cli = probe::docker_cli().is_some();
    let info = match docker_cli {
        true => probe::docker_info(sh),
        false => Err("no docker CLI".to_owned()),
    };
    let docker_host = probe::docker_host();
    let bridge_missing = match (&info, &docker_host) {
        (Ok(_), None) => probe::default_bridge(sh)
            .ok()
            .flatten()
            .filter(|b| !probe::interface_exists(b)),
        _ => None,
    };
    Ok(Observed {
        os: probe::os_release(),
        root,
        sudo: !root && github_actions && probe::sudo_works(sh),
        github_actions,
        systemd: probe::systemd(),
        host,
        docker_cli,
        dockerd: probe::dockerd_version(sh),
        buildx: docker_cli.then(|| probe::buildx_version(sh)).flatten(),
        engine_error: info.as_ref().err().cloned().unwrap_or_default(),
        engine: info.ok().map(|i| Engine {
            version: i.version(),
            version_text: i.server_version.clone(),
            store: i.store(),
            containers_running: i.containers_running,
        }),
        docker_host,
        bridge_missing,
        daemon_json: std::fs::read_to_string("/etc/docker/daemon.json").ok(),
        packages: probe::dpkg_packages(
            sh,
            &WATCHED_PACKAGES.split_whitespace().collect::<Vec<_>>(),
        ),
        binfmt_mounted: Path::new(BINFMT_DIR).join("register").exists(),
        binfmt: foreign(host, platforms)
            .into_iter()
            .map(probe::binfmt)
            .collect(),
        registry_up: registry::answers(registry::Kind::Open),
    })
}
