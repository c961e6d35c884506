//! The package steps of setup: .debs fetched through a private apt
//! directory (Debian 12), then one `apt-get install` for everything.

use std::path::Path;

use super::{Observed, Plan, PlanOpts, Step, CACHE_DIR};
use crate::plan::Cmd;

/// Packages to install: `.deb`s from setup's private sources as
/// `(package, suite)`, and names from the system's sources.
#[derive(Default)]
pub(super) struct Packages {
    pub(super) debs: Vec<(&'static str, &'static str)>,
    pub(super) names: Vec<&'static str>,
}

/// `apt-get` with setup's private directories: no system sources
/// (`Dir::Etc::SourceList=/dev/null`), [`CACHE_DIR`]'s sources, lists and cache.
fn private_apt(cache: &Path) -> Cmd {
    let d = |p: &str| cache.join(p).display().to_string();
    Cmd::new("apt-get")
        .opt("-o", "Dir::Etc::SourceList=/dev/null")
        .opt(
            "-o",
            format!("Dir::Etc::SourceParts={}", d("apt/sources.list.d")),
        )
        .opt("-o", format!("Dir::State::Lists={}", d("apt/lists")))
        .opt("-o", format!("Dir::Cache={}", d("apt/cache")))
}

/// The deb822 sources file of setup's private apt directory (Debian 12
/// hosts only): trixie main (engine, buildx) and bookworm-backports main
/// (QEMU 10), for the host's Debian architecture. The system's own sources
/// are never changed.
pub fn private_apt_sources(mirror: &str, arch: &str) -> String {
    ["trixie", "bookworm-backports"]
        .map(|suite| {
            format!("Types: deb\nURIs: {mirror}\nSuites: {suite}\nComponents: main\nArchitectures: {arch}\n")
        })
        .join("\n")
}

/// A root command, prefixed with `sudo -n` when setup runs through sudo.
pub(super) fn privileged(cmd: Cmd, sudo: bool) -> Cmd {
    if !sudo {
        return cmd;
    }
    let env = cmd.env.iter().map(|(k, v)| format!("{k}={v}"));
    Cmd::new("sudo")
        .arg("-n")
        .args(env)
        .arg(cmd.program)
        .args(cmd.args)
}

/// Fetching (.debs from the private sources) and one `apt-get install` for everything.
pub(super) fn package_steps(p: &mut Plan, o: &Observed, opts: &PlanOpts, pkgs: &Packages) {
    let cache = Path::new(CACHE_DIR);
    let debs_dir = cache.join("debs");
    if !pkgs.debs.is_empty() {
        for d in [
            "apt/sources.list.d",
            "apt/lists/partial",
            "apt/cache/archives/partial",
            "debs",
        ] {
            p.step("packages", Step::Mkdir(cache.join(d)));
        }
        let path = cache.join("apt/sources.list.d/brokkr.sources");
        p.step(
            "packages",
            Step::Write {
                path,
                text: private_apt_sources(&opts.mirror, o.host.arch),
            },
        );
        p.step("packages", Step::Run(private_apt(cache).arg("update")));
        let names = pkgs
            .debs
            .iter()
            .map(|(name, suite)| format!("{name}/{suite}"));
        p.step(
            "packages",
            Step::Run(
                private_apt(cache)
                    .arg("download")
                    .args(names)
                    .dir(&debs_dir),
            ),
        );
    }
    if pkgs.debs.is_empty() && pkgs.names.is_empty() {
        return;
    }
    let lock = ["-o", "DPkg::Lock::Timeout=300"];
    p.step(
        "packages",
        Step::Run(privileged(
            Cmd::new("apt-get").args(lock).arg("update"),
            o.sudo,
        )),
    );
    let mut names: Vec<String> = pkgs
        .debs
        .iter()
        .map(|(n, _)| debs_dir.join(format!("{n}_*.deb")).display().to_string())
        .collect();
    for n in &pkgs.names {
        if !names.iter().any(|x| x == n) {
            names.push((*n).to_owned());
        }
    }
    let install = Cmd::new("apt-get")
        .env("DEBIAN_FRONTEND", "noninteractive")
        .args(lock)
        .args([
            "-o",
            "Dpkg::Options::=--force-confold",
            "install",
            "-y",
            "--no-install-recommends",
        ])
        .args(names);
    p.step("packages", Step::Run(privileged(install, o.sudo)));
    if pkgs.names.contains(&"docker-registry") {
        // The package's own service (config /etc/docker/registry/config.yml) listens on
        // :5000, where `cargo xtask registry start` serves: stop it and keep it off.
        let stop = if o.systemd {
            Cmd::new("systemctl").args(["disable", "--now", "docker-registry"])
        } else {
            Cmd::new("start-stop-daemon").args([
                "--stop",
                "--oknodo",
                "--pidfile",
                "/var/run/docker-registry.pid",
            ])
        };
        p.step("packages", Step::Run(privileged(stop, o.sudo)));
    }
}
