//! `cargo xtask setup`: idempotent provisioning of a Debian or Ubuntu build
//! host as root. It observes the host ([`Observed`]), computes a [`Plan`]
//! with pure code ([`plan`]), prints every area as done or to do, and runs
//! the steps in order, each printed before it runs. A second run finds
//! everything done and only verifies.
//!
//! Provisioned (issue 3): a Docker engine >= 24 with the containerd image
//! store and buildx (on Debian 12 from trixie's .debs, fetched through a
//! private apt directory under [`CACHE_DIR`] so the system's sources stay
//! untouched), QEMU with binfmt handlers for the foreign platforms (on
//! Debian 12 from bookworm-backports), `debootstrap`, Debian's
//! `docker-registry` and `apache2-utils` (htpasswd); then dockerd and the
//! loopback registry are started and awaited.
//!
//! Never half-installs: all packages go in one `apt-get install` after every
//! download succeeded, and a host that setup cannot fix (unsupported
//! release, a running engine it may not restart) is reported before any
//! change.

use std::{
    collections::BTreeMap,
    fmt,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};
use xshell::Shell;

use super::{
    binfmt_handler_paths, doctor, engine_source, foreign, merge_daemon_json, private_apt_sources,
    probe, process, registry, BinfmtHandler, BinfmtStatus, Distro, EngineSource, ImageStore,
    OsRelease, Version, BINFMT_DIR, MIN_BOOKWORM_QEMU, MIN_BUILDX, MIN_ENGINE,
};
use crate::{
    plan::{shell_quote, Cmd},
    project::Platform,
};

/// Machine-level cache of setup (not the workspace): the private apt
/// directories and the downloaded .debs.
pub const CACHE_DIR: &str = "/var/cache/brokkr-setup";

/// Where a dockerd started by setup (without systemd) writes its output.
pub const DOCKERD_LOG: &str = "/var/log/brokkr-dockerd.log";

/// Debian mirror of the private apt sources; `BROKKR_DEBIAN_MIRROR` overrides it.
pub const DEBIAN_MIRROR: &str = "http://deb.debian.org/debian";

/// The image GitHub's `docker/setup-qemu-action` runs to register QEMU
/// handlers; used on GitHub runners, where registries are reachable.
pub const BINFMT_IMAGE: &str = "docker.io/tonistiigi/binfmt:latest";

/// Seconds setup waits for a started dockerd to answer `docker info`.
pub const DOCKERD_WAIT_SECS: u64 = 60;

/// Packages whose state setup reads with `dpkg-query`.
const WATCHED_PACKAGES: &[&str] = &[
    "docker.io",
    "containerd",
    "docker-buildx",
    "runc",
    "tini",
    "iptables",
    "qemu-user",
    "qemu-user-binfmt",
    "qemu-user-static",
    "binfmt-support",
    "debootstrap",
    "docker-registry",
    "apache2-utils",
];

/// Tools every (non-CI) build host gets: base-image bootstrapping, the
/// loopback registry, and htpasswd for its `--auth` variant.
const TOOLS: &[&str] = &["debootstrap", "docker-registry", "apache2-utils"];

/// Tools a GitHub runner needs for the loopback registry, when asked for.
const REGISTRY_TOOLS: &[&str] = &["docker-registry", "apache2-utils"];

/// The running engine, as `docker info` showed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Engine {
    /// Its version (`None` if unparsable).
    pub version: Option<Version>,
    /// Its version as printed.
    pub version_text: String,
    /// Its image store.
    pub store: ImageStore,
}

/// Everything setup decides on, read once from the host ([`observe`]).
#[derive(Clone, Debug)]
pub struct Observed {
    /// `/etc/os-release`.
    pub os: OsRelease,
    /// Running as root.
    pub root: bool,
    /// Not root, but password-less `sudo` works and this is GitHub Actions:
    /// privileged commands are prefixed with `sudo -n`.
    pub sudo: bool,
    /// `GITHUB_ACTIONS=true`.
    pub github_actions: bool,
    /// systemd is PID 1.
    pub systemd: bool,
    /// The host's platform.
    pub host: &'static Platform,
    /// The docker CLI is on PATH.
    pub docker_cli: bool,
    /// `dockerd --version`, whether running or not.
    pub dockerd: Option<Version>,
    /// `docker buildx version`.
    pub buildx: Option<Version>,
    /// The running engine; `None` when `docker info` does not answer.
    pub engine: Option<Engine>,
    /// Why `docker info` did not answer (the client's error), for the printout.
    pub engine_error: String,
    /// `/etc/docker/daemon.json`, when it exists.
    pub daemon_json: Option<String>,
    /// Installed packages among the watched ones -> version.
    pub packages: BTreeMap<String, String>,
    /// `/proc/sys/fs/binfmt_misc` is mounted.
    pub binfmt_mounted: bool,
    /// One probe per requested foreign platform.
    pub binfmt: Vec<probe::BinfmtProbe>,
    /// The loopback registry answers.
    pub registry_up: bool,
}

/// Reads the host's state for `platforms` (quiet, read-only, about a second).
pub fn observe(sh: &Shell, platforms: &[&'static Platform]) -> Result<Observed> {
    let host = Platform::host()?;
    let root = probe::is_root(sh);
    let github_actions = probe::github_actions();
    let docker_cli = probe::docker_cli().is_some();
    let info = if docker_cli {
        probe::docker_info(sh)
    } else {
        Err("no docker CLI".to_owned())
    };
    let engine_error = info.as_ref().err().cloned().unwrap_or_default();
    let engine = info.ok().map(|i| Engine {
        version: i.version(),
        version_text: i.server_version.clone(),
        store: i.store(),
    });
    Ok(Observed {
        os: probe::os_release(),
        root,
        sudo: !root && github_actions && probe::sudo_works(sh),
        github_actions,
        systemd: probe::systemd(),
        host,
        docker_cli,
        dockerd: probe::dockerd_version(sh),
        buildx: if docker_cli {
            probe::buildx_version(sh)
        } else {
            None
        },
        engine,
        engine_error,
        daemon_json: std::fs::read_to_string("/etc/docker/daemon.json").ok(),
        packages: probe::dpkg_packages(sh, WATCHED_PACKAGES),
        binfmt_mounted: Path::new(BINFMT_DIR).join("register").exists(),
        binfmt: foreign(host, platforms)
            .into_iter()
            .map(probe::binfmt)
            .collect(),
        registry_up: registry::answers(registry::Kind::Open),
    })
}

/// One thing setup does. Each prints as the shell command that does the
/// same ([`fmt::Display`]), so `--dry-run` and the not-root path print a
/// script a person can run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// An external command, run through the plan layer. Arguments with a
    /// `*` are .deb globs resolved to the newest matching file at run time.
    Run(Cmd),
    /// `mkdir -p DIR`.
    Mkdir(PathBuf),
    /// Writes a file (`printf '%s' TEXT > PATH`).
    Write {
        /// Target file.
        path: PathBuf,
        /// Its new content.
        text: String,
    },
    /// Registers the binfmt handler of an emulated machine from its
    /// `binfmt.d` file, first unregistering (`-1`) an entry of that name.
    BinfmtRegister {
        /// `aarch64`.
        machine: String,
        /// The entry name expected (`qemu-aarch64`), for the printout.
        entry: String,
        /// The handler file expected (`/usr/lib/binfmt.d/qemu-aarch64.conf`), for the printout.
        conf: String,
    },
    /// Starts dockerd with `systemctl start docker`, or detached with
    /// `setsid dockerd` (output appended to [`DOCKERD_LOG`]); skipped when
    /// the engine answers by then (a package's postinst may start it).
    StartDockerd(Cmd),
    /// Polls `docker info` until it answers or [`DOCKERD_WAIT_SECS`] pass.
    WaitDocker,
    /// `cargo xtask registry start`.
    StartRegistry,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let q = |p: &Path| shell_quote(&p.display().to_string());
        match self {
            Step::Run(c) => {
                // .deb globs print unquoted, so the printed line expands them like setup does
                let mut line = c.to_string();
                for a in &c.args {
                    let bare = a.replace('*', "");
                    if a.contains('*') && shell_quote(&bare) == bare {
                        line = line.replace(&shell_quote(a), a);
                    }
                }
                f.write_str(&line)
            }
            Step::Mkdir(d) => write!(f, "mkdir -p {}", q(d)),
            Step::Write { path, text } => write!(f, "printf '%s' {} > {}", shell_quote(text), q(path)),
            Step::BinfmtRegister { entry, conf, .. } => write!(
                f,
                "{{ [ ! -e {BINFMT_DIR}/{entry} ] || echo -1 > {BINFMT_DIR}/{entry}; }} && cat {conf} > {BINFMT_DIR}/register"
            ),
            Step::StartDockerd(cmd) if cmd.program == "systemctl" => write!(f, "{cmd}"),
            Step::StartDockerd(cmd) => write!(f, "{cmd} >> {DOCKERD_LOG} 2>&1 < /dev/null &"),
            Step::WaitDocker => write!(
                f,
                "timeout {DOCKERD_WAIT_SECS} sh -c 'until docker info >/dev/null 2>&1; do sleep 1; done'"
            ),
            Step::StartRegistry => f.write_str("cargo xtask registry start"),
        }
    }
}

/// A step with what it belongs to and whether it needs root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Action {
    /// The area ([`Area::name`]) it serves.
    pub area: &'static str,
    /// The step.
    pub step: Step,
    /// Needs root (package installs, /etc, /proc, starting dockerd).
    pub root: bool,
}

/// Whether an area is already in place.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum State {
    /// In place: what was found.
    Done(String),
    /// To do: what is missing.
    Todo(String),
    /// Does not apply here: why.
    Skipped(String),
}

/// One provisioned area (`engine`, `daemon.json`, `qemu`, `binfmt linux/arm64`, ...).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Area {
    /// Short name.
    pub name: String,
    /// Its state.
    pub state: State,
}

/// What setup will do.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Every area with its state, in a stable order.
    pub areas: Vec<Area>,
    /// The steps, in the order they run.
    pub actions: Vec<Action>,
    /// Reasons setup cannot proceed at all (nothing is changed then).
    pub blocked: Vec<String>,
}

impl Plan {
    fn area(&mut self, name: impl Into<String>, state: State) {
        self.areas.push(Area {
            name: name.into(),
            state,
        });
    }
    fn act(&mut self, area: &'static str, step: Step, root: bool) {
        self.actions.push(Action { area, step, root });
    }
}

/// Options of [`plan`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanOpts {
    /// Start the loopback registry (default: outside GitHub Actions).
    pub local_registry: bool,
    /// The Debian mirror for the private sources ([`DEBIAN_MIRROR`]).
    pub mirror: String,
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

/// A root command, prefixed with `sudo -n` when setup runs through sudo.
fn privileged(cmd: Cmd, sudo: bool) -> Cmd {
    if !sudo {
        return cmd;
    }
    let mut s = Cmd::new("sudo").arg("-n");
    for (k, v) in &cmd.env {
        s = s.arg(format!("{k}={v}"));
    }
    s = s.arg(cmd.program.clone());
    s.args.extend(cmd.args);
    s
}

fn installed_version(o: &Observed, pkg: &str) -> Option<Version> {
    o.packages.get(pkg).and_then(|v| Version::from_debian(v))
}

fn show(v: Option<Version>) -> String {
    v.map_or_else(|| "missing".to_owned(), |v| v.to_string())
}

/// Computes what setup does for `platforms` on the observed host: pure, so
/// every branch is unit-tested. The rules:
/// - engine: a docker CLI and an engine >= [`MIN_ENGINE`] (running or
///   installed) and buildx >= [`MIN_BUILDX`], else packages from
///   [`engine_source`]; skipped on GitHub runners (they have both);
/// - daemon.json: `features.containerd-snapshotter` merged in, written
///   before any engine package so a postinst-started dockerd uses it;
/// - qemu (foreign platforms only): Debian 12 needs bookworm-backports'
///   qemu-user and qemu-user-binfmt >= [`MIN_BOOKWORM_QEMU`]; elsewhere a
///   ready handler suffices, else the archive's QEMU; GitHub runners use
///   [`BINFMT_IMAGE`];
/// - binfmt: mount binfmt_misc, then register each foreign handler that is
///   not ready, or every one when QEMU is (re)installed now (the `F` flag
///   pins the old interpreter binary);
/// - dockerd: started when it does not answer (systemctl with systemd,
///   else `setsid dockerd`); a running engine that is too old or on the
///   classic store is restarted with systemd, and blocks setup without it;
/// - registry: started when asked and not answering.
pub fn plan(o: &Observed, opts: &PlanOpts) -> Plan {
    let mut p = Plan::default();
    let gh = o.github_actions;
    let source = engine_source(&o.os);
    let cache = Path::new(CACHE_DIR);
    let mut debs: Vec<(&str, &str)> = Vec::new(); // (package, suite) from the private sources
    let mut pkgs: Vec<&str> = Vec::new(); // from the system's sources
    let need_source = |p: &mut Plan| {
        if let EngineSource::Unsupported(why) = &source {
            if !p.blocked.contains(why) {
                p.blocked.push(why.clone());
            }
        }
    };

    // engine + buildx
    let running = o.engine.as_ref().and_then(|e| e.version);
    let engine_ok = o.docker_cli
        && (o.dockerd.is_some_and(|v| v >= MIN_ENGINE) || running.is_some_and(|v| v >= MIN_ENGINE));
    let buildx_ok = o.buildx.is_some_and(|v| v >= MIN_BUILDX);
    if gh {
        p.area(
            "engine",
            State::Skipped("the GitHub runner provides docker and buildx".into()),
        );
    } else if engine_ok && buildx_ok {
        p.area(
            "engine",
            State::Done(format!(
                "dockerd {}, buildx {}",
                show(o.dockerd.or(running)),
                show(o.buildx)
            )),
        );
    } else {
        p.area(
            "engine",
            State::Todo(format!(
                "dockerd {} (need >= {MIN_ENGINE}{}), buildx {} (need >= {MIN_BUILDX})",
                show(o.dockerd),
                if o.docker_cli {
                    ""
                } else {
                    ", and the docker CLI"
                },
                show(o.buildx)
            )),
        );
        need_source(&mut p);
        match source {
            EngineSource::Bookworm => {
                if !engine_ok {
                    debs.extend([("docker.io", "trixie"), ("containerd", "trixie")]);
                    pkgs.extend(["runc", "tini", "iptables"]);
                }
                // Debian 13's docker.io ships only the daemon; the client is docker-cli.
                if !o.docker_cli {
                    debs.push(("docker-cli", "trixie"));
                }
                if !buildx_ok {
                    debs.push(("docker-buildx", "trixie"));
                }
            }
            EngineSource::Archive => {
                if !engine_ok {
                    pkgs.push("docker.io");
                }
                // Debian 13 split the client into docker-cli; Ubuntu's docker.io still has it.
                if !o.docker_cli && o.os.id == "debian" {
                    pkgs.push("docker-cli");
                }
                if !buildx_ok {
                    pkgs.push("docker-buildx");
                }
            }
            EngineSource::Unsupported(_) => {}
        }
    }

    // daemon.json: its actions run first
    if gh {
        p.area(
            "daemon.json",
            State::Skipped("the GitHub runner's engine is used as it is".into()),
        );
    } else {
        match merge_daemon_json(o.daemon_json.as_deref()) {
            Ok(None) => p.area(
                "daemon.json",
                State::Done("containerd-snapshotter is on".into()),
            ),
            Ok(Some(text)) => {
                p.area(
                    "daemon.json",
                    State::Todo("turn on the containerd image store".into()),
                );
                p.act("daemon.json", Step::Mkdir("/etc/docker".into()), true);
                p.act(
                    "daemon.json",
                    Step::Write {
                        path: "/etc/docker/daemon.json".into(),
                        text,
                    },
                    true,
                );
            }
            Err(e) => p.blocked.push(format!("{e:#}")),
        }
    }

    // qemu packages
    let not_ready: Vec<&probe::BinfmtProbe> = o
        .binfmt
        .iter()
        .filter(|b| b.status() != BinfmtStatus::Ready)
        .collect();
    let mut qemu_now = false;
    if o.binfmt.is_empty() {
        p.area(
            "qemu",
            State::Skipped("no foreign platform requested".into()),
        );
    } else if gh {
        if not_ready.is_empty() {
            p.area("qemu", State::Done("binfmt handlers registered".into()));
        } else {
            let arches: Vec<&str> = not_ready.iter().map(|b| b.platform.arch).collect();
            p.area(
                "qemu",
                State::Todo(format!(
                    "register QEMU for {} with {BINFMT_IMAGE}",
                    arches.join(",")
                )),
            );
            let cmd = Cmd::new("docker")
                .args(["run", "--privileged", "--rm", BINFMT_IMAGE, "--install"])
                .arg(arches.join(","));
            p.act("qemu", Step::Run(cmd), false);
        }
    } else {
        let (ok, have) = match source {
            EngineSource::Bookworm => {
                let v = installed_version(o, "qemu-user-binfmt");
                let ok = v.is_some_and(|v| v >= MIN_BOOKWORM_QEMU)
                    && o.packages.contains_key("qemu-user");
                (
                    ok,
                    format!(
                        "qemu-user-binfmt {} (need >= {MIN_BOOKWORM_QEMU} from bookworm-backports)",
                        show(v)
                    ),
                )
            }
            _ => {
                let any = ["qemu-user-binfmt", "qemu-user-static"]
                    .iter()
                    .any(|k| o.packages.contains_key(*k));
                (
                    any || not_ready.is_empty(),
                    "no qemu-user-binfmt or qemu-user-static".to_owned(),
                )
            }
        };
        if ok {
            let v = ["qemu-user-binfmt", "qemu-user-static"]
                .iter()
                .find_map(|k| installed_version(o, k));
            p.area(
                "qemu",
                State::Done(
                    v.map_or_else(|| "handlers registered".to_owned(), |v| format!("QEMU {v}")),
                ),
            );
        } else {
            p.area("qemu", State::Todo(have));
            need_source(&mut p);
            qemu_now = true;
            match (&source, o.os.distro()) {
                (EngineSource::Bookworm, _) => {
                    debs.extend([
                        ("qemu-user", "bookworm-backports"),
                        ("qemu-user-binfmt", "bookworm-backports"),
                    ]);
                }
                (_, Distro::Ubuntu) => pkgs.extend(["qemu-user-static", "binfmt-support"]),
                _ => pkgs.extend(["qemu-user", "qemu-user-binfmt"]),
            }
        }
    }

    // tools
    let tools: &[&str] = if !gh {
        TOOLS
    } else if opts.local_registry {
        REGISTRY_TOOLS
    } else {
        &[]
    };
    let missing: Vec<&str> = tools
        .iter()
        .copied()
        .filter(|t| !o.packages.contains_key(*t))
        .collect();
    if tools.is_empty() {
        p.area(
            "tools",
            State::Skipped("no local registry asked for on the GitHub runner".into()),
        );
    } else if missing.is_empty() {
        p.area("tools", State::Done(tools.join(", ")));
    } else {
        p.area(
            "tools",
            State::Todo(format!("install {}", missing.join(", "))),
        );
        pkgs.extend(missing);
    }

    // fetch and install: one apt-get install for everything
    let debs_dir = cache.join("debs");
    if !debs.is_empty() {
        for d in [
            "apt/sources.list.d",
            "apt/lists/partial",
            "apt/cache/archives/partial",
            "debs",
        ] {
            p.act("packages", Step::Mkdir(cache.join(d)), true);
        }
        p.act(
            "packages",
            Step::Write {
                path: cache.join("apt/sources.list.d/brokkr.sources"),
                text: private_apt_sources(&opts.mirror, o.host.arch),
            },
            true,
        );
        p.act(
            "packages",
            Step::Run(private_apt(cache).arg("update")),
            true,
        );
        let download = private_apt(cache)
            .arg("download")
            .args(debs.iter().map(|(name, suite)| format!("{name}/{suite}")))
            .dir(&debs_dir);
        p.act("packages", Step::Run(download), true);
    }
    if !debs.is_empty() || !pkgs.is_empty() {
        let lock = ["-o", "DPkg::Lock::Timeout=300"];
        p.act(
            "packages",
            Step::Run(privileged(
                Cmd::new("apt-get").args(lock).arg("update"),
                o.sudo,
            )),
            true,
        );
        let mut names: Vec<String> = debs
            .iter()
            .map(|(n, _)| debs_dir.join(format!("{n}_*.deb")).display().to_string())
            .collect();
        for n in &pkgs {
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
        p.act("packages", Step::Run(privileged(install, o.sudo)), true);
        if pkgs.contains(&"docker-registry") {
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
            p.act("packages", Step::Run(privileged(stop, o.sudo)), true);
        }
    }

    // binfmt_misc and the handlers (not on GitHub: done by BINFMT_IMAGE)
    if !o.binfmt.is_empty() && !gh {
        if o.binfmt_mounted {
            p.area(
                "binfmt_misc",
                State::Done(format!("{BINFMT_DIR} is mounted")),
            );
        } else {
            p.area("binfmt_misc", State::Todo(format!("mount {BINFMT_DIR}")));
            let mount = Cmd::new("mount").args(["-t", "binfmt_misc", "binfmt_misc", BINFMT_DIR]);
            p.act("binfmt_misc", Step::Run(mount), true);
        }
        for b in &o.binfmt {
            let name = format!("binfmt {}", b.platform.name);
            let status = b.status();
            if status == BinfmtStatus::Ready && !qemu_now {
                let e = b.entry.clone().unwrap_or_default();
                p.area(
                    name,
                    State::Done(format!("{} (flags {})", e.interpreter, e.flags)),
                );
                continue;
            }
            let why = match status {
                BinfmtStatus::Ready => "re-register after installing QEMU".to_owned(),
                BinfmtStatus::Stale {
                    registered,
                    installed,
                } => format!("{registered} registered, {installed} installed"),
                BinfmtStatus::Unusable(why) => why,
                BinfmtStatus::Missing => "not registered".to_owned(),
            };
            p.area(name, State::Todo(why));
            let conf = b.handler.as_ref().map_or_else(
                || format!("/usr/lib/binfmt.d/qemu-{}.conf", b.platform.machine),
                |(path, _)| path.clone(),
            );
            let step = Step::BinfmtRegister {
                machine: b.platform.machine.to_owned(),
                entry: b.entry_name.clone(),
                conf,
            };
            p.act("binfmt", step, true);
        }
    }

    // dockerd
    if gh {
        p.area(
            "dockerd",
            State::Skipped("the GitHub runner's engine runs already".into()),
        );
    } else {
        let restart_or_block = |p: &mut Plan, why: String| {
            if o.systemd {
                p.area("dockerd", State::Todo(format!("{why}: restart it")));
                p.act(
                    "dockerd",
                    Step::Run(Cmd::new("systemctl").args(["restart", "docker"])),
                    true,
                );
                p.act("dockerd", Step::WaitDocker, false);
            } else {
                p.area("dockerd", State::Todo(why.clone()));
                p.blocked.push(format!(
                    "{why}; without systemd setup does not restart it: stop it \
                     (kill $(cat /var/run/docker.pid)), then rerun `cargo xtask setup`"
                ));
            }
        };
        match &o.engine {
            None if o
                .engine_error
                .to_ascii_lowercase()
                .contains("permission denied") =>
            {
                p.area(
                    "dockerd",
                    State::Todo(format!("not reachable: {}", o.engine_error)),
                );
                p.blocked.push(
                    "the engine runs but this user may not use its socket (/var/run/docker.sock): run as root, \
                     or add the user to the `docker` group (usermod -aG docker $USER, then log in again)"
                        .to_owned(),
                );
            }
            None => {
                p.area(
                    "dockerd",
                    State::Todo(format!("not answering ({}): start it", o.engine_error)),
                );
                let cmd = if o.systemd {
                    Cmd::new("systemctl").args(["start", "docker"])
                } else {
                    Cmd::new("setsid").arg("dockerd")
                };
                p.act("dockerd", Step::StartDockerd(cmd), true);
                p.act("dockerd", Step::WaitDocker, false);
            }
            Some(e) if e.version < Some(MIN_ENGINE) => {
                restart_or_block(
                    &mut p,
                    format!(
                        "the running engine is {}, older than {MIN_ENGINE}",
                        e.version_text
                    ),
                );
            }
            Some(Engine {
                store: ImageStore::Classic(d),
                version_text,
                ..
            }) => {
                restart_or_block(
                    &mut p,
                    format!("the running engine {version_text} uses the classic store ({d})"),
                );
            }
            Some(e) => p.area(
                "dockerd",
                State::Done(format!(
                    "{} answers, containerd image store",
                    e.version_text
                )),
            ),
        }
    }

    // the loopback registry
    let host = registry::Kind::Open.host();
    if !opts.local_registry {
        p.area(
            "registry",
            State::Skipped("not asked for (--local-registry starts it)".into()),
        );
    } else if o.registry_up {
        p.area("registry", State::Done(format!("{host} answers")));
    } else {
        p.area("registry", State::Todo(format!("start {host}")));
        p.act("registry", Step::StartRegistry, false);
    }

    if o.os.distro() == Distro::Other && p.actions.iter().any(|a| a.root) {
        need_source(&mut p);
    }
    p
}

/// Options of `cargo xtask setup` and [`ensure`].
#[derive(Clone, Debug)]
pub struct SetupOpts {
    /// Platforms to provision for (foreign ones get QEMU and binfmt).
    pub platforms: Vec<&'static Platform>,
    /// Print the plan, change nothing.
    pub dry_run: bool,
    /// Start the loopback registry; `None`: yes outside GitHub Actions.
    pub local_registry: Option<bool>,
}

impl SetupOpts {
    /// From `cargo xtask setup`'s flags: every platform unless `--platform`;
    /// the registry per `--local-registry` / `--no-local-registry`.
    pub fn from_args(a: &crate::cli::SetupArgs) -> SetupOpts {
        let local_registry = if a.local_registry {
            Some(true)
        } else if a.no_local_registry {
            Some(false)
        } else {
            None
        };
        SetupOpts {
            platforms: a.platform.as_ref().map_or_else(
                || crate::project::PLATFORMS.iter().collect(),
                |l| l.0.clone(),
            ),
            dry_run: a.dry_run,
            local_registry,
        }
    }
}

fn print_plan(p: &Plan) {
    let width = p.areas.iter().map(|a| a.name.len()).max().unwrap_or(0);
    for a in &p.areas {
        let (label, detail) = match &a.state {
            State::Done(d) => ("done", d),
            State::Todo(d) => ("todo", d),
            State::Skipped(d) => ("skip", d),
        };
        eprintln!("{label:<4}  {:<width$}  {detail}", a.name);
    }
}

fn print_script(p: &Plan) {
    for a in &p.actions {
        println!("{}", a.step);
    }
}

/// `cargo xtask setup`: observe, plan, print, run, verify. Not root (and no
/// `sudo -n` on GitHub Actions), or not Debian/Ubuntu: prints the commands
/// and fails. Errors name the step that failed.
pub fn run(sh: &Shell, opts: &SetupOpts) -> Result<()> {
    let started = Instant::now();
    let o = observe(sh, &opts.platforms)?;
    let local_registry = opts.local_registry.unwrap_or(!o.github_actions);
    let mirror = std::env::var("BROKKR_DEBIAN_MIRROR").unwrap_or_else(|_| DEBIAN_MIRROR.to_owned());
    let p = plan(
        &o,
        &PlanOpts {
            local_registry,
            mirror,
        },
    );
    let os = if o.os.pretty_name.is_empty() {
        "unknown OS".to_owned()
    } else {
        o.os.pretty_name.clone()
    };
    eprintln!(
        "setup for {} on {os} ({}{})",
        opts.platforms
            .iter()
            .map(|p| p.name)
            .collect::<Vec<_>>()
            .join(", "),
        o.host.name,
        if o.github_actions {
            ", GitHub Actions"
        } else {
            ""
        }
    );
    print_plan(&p);
    if !p.blocked.is_empty() {
        if !p.actions.is_empty() {
            eprintln!("\nthe commands setup would run on a supported host, as root:");
            print_script(&p);
        }
        bail!(
            "setup cannot proceed, nothing was changed:\n  {}",
            p.blocked.join("\n  ")
        );
    }
    if opts.dry_run {
        if p.actions.is_empty() {
            eprintln!("\nnothing to do");
        } else {
            eprintln!("\n--dry-run: the steps, in order:");
            print_script(&p);
        }
        return Ok(());
    }
    if p.actions.iter().any(|a| a.root) && !o.root && !o.sudo {
        eprintln!("\nsetup needs root for these steps; run them as root, or run `cargo xtask setup` as root:");
        print_script(&p);
        bail!("not root: nothing was changed");
    }
    let n = p.actions.len();
    for (i, a) in p.actions.iter().enumerate() {
        eprintln!("==> [{}/{n}] {}", i + 1, a.area);
        execute(sh, &a.step).with_context(|| {
            format!(
                "setup failed at step {}/{n} ({}): {}",
                i + 1,
                a.area,
                a.step
            )
        })?;
    }
    if n == 0 {
        eprintln!("everything is in place");
    }
    let mut checks = doctor::preflight(sh, &opts.platforms)?;
    if o.github_actions {
        relax_for_runner(&mut checks);
    }
    if local_registry {
        checks.push(doctor::check_registry(
            probe::registry_api_status(registry::Kind::Open.port()),
            false,
        ));
    }
    eprint!("{}", doctor::render(&checks));
    if !doctor::passed(&checks) {
        bail!(
            "setup ran, but these checks still fail:\n{}",
            doctor::failures(&checks)
        );
    }
    eprintln!("setup: done in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// On a GitHub runner the engine is used as it is: a classic image store
/// only warns (builds there use a docker-container builder, e.g. from
/// docker/setup-buildx-action, which does not need the containerd store).
fn relax_for_runner(checks: &mut [doctor::Check]) {
    for c in checks.iter_mut() {
        if c.name == "image-store" && c.status == doctor::Status::Fail {
            c.status = doctor::Status::Warn;
            c.remedy = Some("docker buildx create --use --driver docker-container".to_owned());
        }
    }
}

/// Makes sure the host can build for `platforms` before an image command
/// runs: the [`doctor::preflight`] checks, quiet when they pass. Otherwise,
/// unless `no_setup` (`--no-setup`), runs setup for `platforms` (without the registry)
/// and checks again. Errors list the failing checks and their fixes.
pub fn ensure(sh: &Shell, platforms: &[&'static Platform], no_setup: bool) -> Result<()> {
    let checks = doctor::preflight(sh, platforms)?;
    if doctor::passed(&checks) {
        return Ok(());
    }
    eprint!("{}", doctor::render(&checks));
    if no_setup {
        bail!(
            "the host is not ready for {} (--no-setup):\n{}",
            platforms
                .iter()
                .map(|p| p.name)
                .collect::<Vec<_>>()
                .join(", "),
            doctor::failures(&checks)
        );
    }
    let setup = SetupOpts {
        platforms: platforms.to_vec(),
        dry_run: false,
        local_registry: Some(false),
    };
    run(sh, &setup).context("provisioning the host (pass --no-setup to only check)")
}

/// Replaces each `DIR/NAME_*.deb` argument with the newest matching file.
fn resolve_debs(cmd: &Cmd) -> Result<Cmd> {
    let mut out = cmd.clone();
    for a in &mut out.args {
        let s = a;
        let Some((prefix, suffix)) = s.split_once('*') else {
            continue;
        };
        let prefix = Path::new(prefix);
        let dir = prefix.parent().context("deb glob without a directory")?;
        let stem = prefix
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut best: Option<(std::time::SystemTime, PathBuf)> = None;
        for e in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
            let e = e?;
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(&stem) && name.ends_with(suffix) {
                let t = e.metadata()?.modified()?;
                let newer = match &best {
                    None => true,
                    Some((bt, _)) => t > *bt,
                };
                if newer {
                    best = Some((t, e.path()));
                }
            }
        }
        let (_, path) = best.with_context(|| format!("no {s} after `apt-get download`"))?;
        *s = path.display().to_string();
    }
    Ok(out)
}

/// Registers the binfmt handler for `machine` from its `binfmt.d` file
/// (binfmt-misc.rst: one write of the definition line to `register`, after
/// `-1` to an existing entry of that name), or with `update-binfmts` when
/// only binfmt-support's definition exists. Checks the result is usable.
fn register_binfmt(sh: &Shell, machine: &str) -> Result<()> {
    let found = binfmt_handler_paths(machine).into_iter().find_map(|path| {
        let text = std::fs::read_to_string(&path).ok()?;
        Some((path, text))
    });
    let register = Path::new(BINFMT_DIR).join("register");
    let name = match found {
        Some((path, text)) => {
            let h = BinfmtHandler::parse(&text).with_context(|| format!("reading {path}"))?;
            let entry = Path::new(BINFMT_DIR).join(&h.name);
            if entry.exists() {
                eprintln!("+ echo -1 > {}", entry.display());
                std::fs::write(&entry, "-1")
                    .with_context(|| format!("unregistering {}", entry.display()))?;
            }
            eprintln!("+ cat {path} > {}", register.display());
            std::fs::write(&register, format!("{}\n", h.line))
                .with_context(|| format!("registering {path} (is binfmt_misc mounted?)"))?;
            h.name
        }
        None => {
            let name = format!("qemu-{machine}");
            if !Path::new("/usr/share/binfmts").join(&name).exists() {
                bail!(
                    "no binfmt handler for {machine}: none of {} exists (is qemu-user-binfmt installed?)",
                    binfmt_handler_paths(machine).join(", ")
                );
            }
            Cmd::new("update-binfmts")
                .args(["--enable", &name])
                .run(sh)?;
            name
        }
    };
    let text = std::fs::read_to_string(Path::new(BINFMT_DIR).join(&name)).unwrap_or_default();
    let e = super::BinfmtEntry::parse(&text);
    if !e.usable() {
        bail!("{name} is registered but not usable in containers: {text}");
    }
    eprintln!("    {name}: {} (flags {})", e.interpreter, e.flags);
    Ok(())
}

/// Polls `docker info` every second for [`DOCKERD_WAIT_SECS`]; on timeout
/// the error carries the tail of [`DOCKERD_LOG`].
fn wait_docker(sh: &Shell) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(DOCKERD_WAIT_SECS);
    loop {
        match probe::docker_info(sh) {
            Ok(i) => {
                eprintln!("    engine {} answers ({:?})", i.server_version, i.store());
                return Ok(());
            }
            Err(e) if Instant::now() >= deadline => bail!(
                "dockerd did not answer within {DOCKERD_WAIT_SECS} s ({e}); last lines of {DOCKERD_LOG}:\n{}",
                process::log_tail(Path::new(DOCKERD_LOG), 30)
            ),
            Err(_) => std::thread::sleep(Duration::from_secs(1)),
        }
    }
}

fn execute(sh: &Shell, step: &Step) -> Result<()> {
    match step {
        Step::Run(cmd) => resolve_debs(cmd)?.run(sh),
        Step::Mkdir(d) => {
            eprintln!("+ {step}");
            std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))
        }
        Step::Write { path, text } => {
            eprintln!("+ {step}");
            std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
        }
        Step::BinfmtRegister { machine, .. } => register_binfmt(sh, machine),
        Step::StartDockerd(cmd) => {
            if let Ok(i) = probe::docker_info(sh) {
                eprintln!(
                    "    engine {} answers already (started by its package)",
                    i.server_version
                );
                return Ok(());
            }
            if cmd.program == "systemctl" {
                return cmd.run(sh);
            }
            // Started by its package's install script but not answering yet:
            // a second dockerd would stop at once on the pid file; wait instead.
            let pid = std::fs::read_to_string("/var/run/docker.pid").unwrap_or_default();
            let comm =
                std::fs::read_to_string(format!("/proc/{}/comm", pid.trim())).unwrap_or_default();
            if !pid.trim().is_empty() && comm.trim() == "dockerd" {
                eprintln!(
                    "    dockerd (pid {}) is starting already; waiting for it",
                    pid.trim()
                );
                return Ok(());
            }
            let log = Path::new(DOCKERD_LOG);
            let mut child = process::spawn_detached(sh, cmd, log)?;
            std::thread::sleep(Duration::from_millis(500));
            if let Some(status) = child.try_wait()? {
                bail!(
                    "`{cmd}` exited at once ({status}); last lines of {DOCKERD_LOG}:\n{}",
                    process::log_tail(log, 30)
                );
            }
            eprintln!("    pid {}", child.id());
            Ok(())
        }
        Step::WaitDocker => wait_docker(sh),
        Step::StartRegistry => registry::start(sh, registry::Kind::Open),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::{probe::BinfmtProbe, BinfmtEntry};

    fn arm() -> &'static Platform {
        Platform::parse("arm64").unwrap()
    }
    fn amd() -> &'static Platform {
        Platform::parse("amd64").unwrap()
    }

    fn h10() -> BinfmtHandler {
        BinfmtHandler::parse(include_str!("fixtures/binfmt-d-qemu-aarch64-10.conf")).unwrap()
    }

    /// This machine as recorded: bookworm, trixie engine with the containerd
    /// store, backports QEMU registered, registry up.
    fn provisioned() -> Observed {
        let pkgs = [
            ("docker.io", "26.1.5+dfsg1-9+deb13u1+b1"),
            ("containerd", "1.7.24~ds1-6+deb13u1"),
            ("docker-buildx", "0.13.1+ds1-3"),
            ("qemu-user", "1:10.0.2+ds-2+deb13u1~bpo12+1"),
            ("qemu-user-binfmt", "1:10.0.2+ds-2+deb13u1~bpo12+1"),
            ("debootstrap", "1.0.128+nmu2+deb12u2"),
            ("docker-registry", "2.8.2+ds1-1"),
            ("apache2-utils", "2.4.71-1~deb12u1"),
        ];
        Observed {
            os: OsRelease::parse(include_str!("fixtures/os-release-bookworm")),
            root: true,
            sudo: false,
            github_actions: false,
            systemd: false,
            host: amd(),
            docker_cli: true,
            dockerd: Some(Version::new(26, 1, 5)),
            buildx: Some(Version::new(0, 13, 1)),
            engine: Some(Engine {
                version: Some(Version::new(26, 1, 5)),
                version_text: "26.1.5+dfsg1".into(),
                store: ImageStore::Containerd("overlayfs".into()),
            }),
            engine_error: String::new(),
            daemon_json: Some(r#"{"features":{"containerd-snapshotter":true}}"#.into()),
            packages: pkgs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            binfmt_mounted: true,
            binfmt: vec![BinfmtProbe {
                platform: arm(),
                mounted: true,
                handler: Some(("/usr/lib/binfmt.d/qemu-aarch64.conf".into(), h10())),
                entry_name: "qemu-aarch64".into(),
                entry: Some(BinfmtEntry::parse(include_str!(
                    "fixtures/binfmt-qemu-aarch64-10.txt"
                ))),
            }],
            registry_up: true,
        }
    }

    /// A fresh Debian 12 machine as the environment notes describe it: root,
    /// only a docker CLI 28, no engine, nothing mounted, no systemd.
    fn fresh_bookworm() -> Observed {
        Observed {
            dockerd: None,
            buildx: None,
            engine: None,
            daemon_json: None,
            packages: BTreeMap::new(),
            binfmt_mounted: false,
            binfmt: vec![BinfmtProbe {
                platform: arm(),
                mounted: false,
                handler: None,
                entry_name: "qemu-aarch64".into(),
                entry: None,
            }],
            registry_up: false,
            ..provisioned()
        }
    }

    const FRESH_TODO: &[&str] = &[
        "engine",
        "daemon.json",
        "qemu",
        "tools",
        "binfmt_misc",
        "binfmt linux/arm64",
        "dockerd",
        "registry",
    ];

    fn opts() -> PlanOpts {
        PlanOpts {
            local_registry: true,
            mirror: DEBIAN_MIRROR.into(),
        }
    }

    fn script(p: &Plan) -> Vec<String> {
        p.actions.iter().map(|a| a.step.to_string()).collect()
    }

    fn todo(p: &Plan) -> Vec<&str> {
        p.areas
            .iter()
            .filter(|a| matches!(a.state, State::Todo(_)))
            .map(|a| a.name.as_str())
            .collect()
    }

    #[test]
    fn host_setup_second_run_does_nothing() {
        let p = plan(&provisioned(), &opts());
        assert!(p.actions.is_empty(), "{:#?}", p.actions);
        assert!(p.blocked.is_empty());
        assert!(todo(&p).is_empty());
        let names: Vec<&str> = p.areas.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "engine",
                "daemon.json",
                "qemu",
                "tools",
                "binfmt_misc",
                "binfmt linux/arm64",
                "dockerd",
                "registry"
            ]
        );
    }

    #[test]
    fn host_setup_fresh_bookworm_script() {
        let p = plan(&fresh_bookworm(), &opts());
        assert!(p.blocked.is_empty(), "{:?}", p.blocked);
        let c = "/var/cache/brokkr-setup";
        let apt = format!(
            "apt-get -o Dir::Etc::SourceList=/dev/null -o Dir::Etc::SourceParts={c}/apt/sources.list.d \
             -o Dir::State::Lists={c}/apt/lists -o Dir::Cache={c}/apt/cache"
        );
        let want = vec![
            "mkdir -p /etc/docker".to_owned(),
            "printf '%s' '{\n  \"features\": {\n    \"containerd-snapshotter\": true\n  }\n}\n' > /etc/docker/daemon.json".to_owned(),
            format!("mkdir -p {c}/apt/sources.list.d"),
            format!("mkdir -p {c}/apt/lists/partial"),
            format!("mkdir -p {c}/apt/cache/archives/partial"),
            format!("mkdir -p {c}/debs"),
            format!(
                "printf '%s' 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: trixie\nComponents: main\nArchitectures: amd64\n\n\
                 Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm-backports\nComponents: main\nArchitectures: amd64\n' \
                 > {c}/apt/sources.list.d/brokkr.sources"
            ),
            format!("{apt} update"),
            format!(
                "cd {c}/debs && {apt} download docker.io/trixie containerd/trixie docker-buildx/trixie \
                 qemu-user/bookworm-backports qemu-user-binfmt/bookworm-backports"
            ),
            "apt-get -o DPkg::Lock::Timeout=300 update".to_owned(),
            format!(
                "DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 -o Dpkg::Options::=--force-confold \
                 install -y --no-install-recommends {c}/debs/docker.io_*.deb {c}/debs/containerd_*.deb \
                 {c}/debs/docker-buildx_*.deb {c}/debs/qemu-user_*.deb {c}/debs/qemu-user-binfmt_*.deb \
                 runc tini iptables debootstrap docker-registry apache2-utils"
            ),
            "start-stop-daemon --stop --oknodo --pidfile /var/run/docker-registry.pid".to_owned(),
            "mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc".to_owned(),
            "{ [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || echo -1 > /proc/sys/fs/binfmt_misc/qemu-aarch64; } \
             && cat /usr/lib/binfmt.d/qemu-aarch64.conf > /proc/sys/fs/binfmt_misc/register"
                .to_owned(),
            "setsid dockerd >> /var/log/brokkr-dockerd.log 2>&1 < /dev/null &".to_owned(),
            "timeout 60 sh -c 'until docker info >/dev/null 2>&1; do sleep 1; done'".to_owned(),
            "cargo xtask registry start".to_owned(),
        ];
        assert_eq!(script(&p), want);
        assert!(p
            .actions
            .iter()
            .filter(|a| a.step == Step::StartRegistry || a.step == Step::WaitDocker)
            .all(|a| !a.root));
    }

    #[test]
    fn host_setup_partial_states() {
        struct Case {
            name: &'static str,
            o: Observed,
            todo: &'static [&'static str],
            contains: &'static [&'static str],
            absent: &'static [&'static str],
            blocked: bool,
        }
        let base = provisioned;
        let cases = vec![
            Case {
                name: "only apache2-utils missing",
                o: Observed { packages: { let mut p = base().packages; p.remove("apache2-utils"); p }, ..base() },
                todo: &["tools"],
                contains: &["--no-install-recommends apache2-utils", "apt-get -o DPkg::Lock::Timeout=300 update"],
                absent: &["download", "dockerd", "binfmt_misc"],
                blocked: false,
            },
            Case {
                name: "bookworm 7.2 qemu registered without F",
                o: Observed {
                    packages: {
                        let mut p = base().packages;
                        p.insert("qemu-user-binfmt".into(), "1:7.2+dfsg-7+deb12u18+b3".into());
                        p
                    },
                    binfmt: vec![BinfmtProbe {
                        entry: Some(BinfmtEntry { flags: "PO".into(), ..base().binfmt[0].entry.clone().unwrap() }),
                        ..base().binfmt[0].clone()
                    }],
                    ..base()
                },
                todo: &["qemu", "binfmt linux/arm64"],
                contains: &["download qemu-user/bookworm-backports qemu-user-binfmt/bookworm-backports", "echo -1 >"],
                absent: &["docker.io/trixie", "mount -t"],
                blocked: false,
            },
            Case {
                name: "packages fine, binfmt not mounted after a reboot",
                o: Observed {
                    binfmt_mounted: false,
                    binfmt: vec![BinfmtProbe { mounted: false, entry: None, ..base().binfmt[0].clone() }],
                    engine: None,
                    registry_up: false,
                    ..base()
                },
                todo: &["binfmt_misc", "binfmt linux/arm64", "dockerd", "registry"],
                contains: &["mount -t binfmt_misc", "cat /usr/lib/binfmt.d/qemu-aarch64.conf", "setsid dockerd"],
                absent: &["apt-get"],
                blocked: false,
            },
            Case {
                name: "amd64 only: no qemu, no binfmt",
                o: Observed { binfmt: vec![], binfmt_mounted: false, packages: BTreeMap::new(), ..base() },
                todo: &["tools"],
                contains: &["debootstrap docker-registry apache2-utils"],
                absent: &["qemu", "mount"],
                blocked: false,
            },
            Case {
                name: "bookworm's own docker.io 20.10 running, no systemd",
                o: Observed {
                    dockerd: Some(Version::new(20, 10, 24)),
                    buildx: None,
                    engine: Some(Engine {
                        version: Some(Version::new(20, 10, 24)),
                        version_text: "20.10.24+dfsg1".into(),
                        store: ImageStore::Classic("overlay2".into()),
                    }),
                    ..base()
                },
                todo: &["engine", "dockerd"],
                contains: &["docker.io/trixie"],
                absent: &[],
                blocked: true,
            },
            Case {
                name: "classic store running under systemd: restart",
                o: Observed {
                    systemd: true,
                    daemon_json: None,
                    engine: Some(Engine {
                        version: Some(Version::new(26, 1, 5)),
                        version_text: "26.1.5".into(),
                        store: ImageStore::Classic("overlay2".into()),
                    }),
                    ..base()
                },
                todo: &["daemon.json", "dockerd"],
                contains: &["systemctl restart docker", "/etc/docker/daemon.json"],
                absent: &["apt-get"],
                blocked: false,
            },
            Case {
                name: "fresh with systemd: systemctl start",
                o: Observed { systemd: true, ..fresh_bookworm() },
                todo: FRESH_TODO,
                contains: &["systemctl start docker"],
                absent: &["setsid"],
                blocked: false,
            },
            Case {
                name: "noble: archive packages",
                o: Observed {
                    os: OsRelease::parse("ID=ubuntu\nID_LIKE=debian\nVERSION_ID=\"24.04\"\nPRETTY_NAME=\"Ubuntu 24.04 LTS\""),
                    ..fresh_bookworm()
                },
                todo: FRESH_TODO,
                contains: &["no-install-recommends docker.io docker-buildx qemu-user-static binfmt-support debootstrap"],
                absent: &["trixie", "brokkr.sources"],
                blocked: false,
            },
            Case {
                name: "trixie: archive qemu",
                o: Observed { os: OsRelease::parse("ID=debian\nVERSION_ID=\"13\"\nVERSION_CODENAME=trixie"), ..fresh_bookworm() },
                todo: FRESH_TODO,
                contains: &["docker.io docker-buildx qemu-user qemu-user-binfmt debootstrap"],
                absent: &["download"],
                blocked: false,
            },
            Case {
                name: "bullseye: blocked",
                o: Observed { os: OsRelease::parse("ID=debian\nVERSION_ID=\"11\""), ..fresh_bookworm() },
                todo: FRESH_TODO,
                contains: &[],
                absent: &[],
                blocked: true,
            },
            Case {
                name: "fedora with docker ready: only the registry",
                o: Observed { os: OsRelease::parse("ID=fedora\nVERSION_ID=40"), registry_up: false, ..base() },
                todo: &["registry"],
                contains: &["cargo xtask registry start"],
                absent: &["apt-get"],
                blocked: false,
            },
            Case {
                name: "fedora, missing tools: blocked",
                o: Observed { os: OsRelease::parse("ID=fedora\nVERSION_ID=40"), packages: BTreeMap::new(), ..base() },
                todo: &["tools"],
                contains: &[],
                absent: &[],
                blocked: true,
            },
            Case {
                name: "docker-ce 27 from Docker's repo on jammy: engine done",
                o: Observed {
                    os: OsRelease::parse("ID=ubuntu\nID_LIKE=debian\nVERSION_ID=\"22.04\""),
                    dockerd: Some(Version::new(27, 3, 1)),
                    buildx: Some(Version::new(0, 17, 1)),
                    ..base()
                },
                todo: &[],
                contains: &[],
                absent: &["docker.io"],
                blocked: false,
            },
        ];
        for c in cases {
            let p = plan(&c.o, &opts());
            let s = script(&p).join("\n");
            let mut t = todo(&p);
            t.sort_unstable();
            let mut want: Vec<&str> = c.todo.to_vec();
            want.sort_unstable();
            assert_eq!(t, want, "{}: areas to do\n{s}", c.name);
            for needle in c.contains {
                assert!(s.contains(needle), "{}: no {needle:?} in\n{s}", c.name);
            }
            for needle in c.absent {
                assert!(
                    !s.contains(needle),
                    "{}: unexpected {needle:?} in\n{s}",
                    c.name
                );
            }
            assert_eq!(
                !p.blocked.is_empty(),
                c.blocked,
                "{}: blocked {:?}",
                c.name,
                p.blocked
            );
        }
    }

    #[test]
    fn host_setup_github_actions() {
        let runner = Observed {
            os: OsRelease::parse("ID=ubuntu\nID_LIKE=debian\nVERSION_ID=\"24.04\""),
            root: false,
            sudo: true,
            github_actions: true,
            systemd: true,
            daemon_json: None,
            engine: Some(Engine {
                version: Some(Version::new(28, 0, 4)),
                version_text: "28.0.4".into(),
                store: ImageStore::Classic("overlay2".into()),
            }),
            dockerd: Some(Version::new(28, 0, 4)),
            buildx: Some(Version::new(0, 22, 0)),
            packages: BTreeMap::new(),
            binfmt: vec![BinfmtProbe {
                handler: None,
                entry: None,
                ..provisioned().binfmt[0].clone()
            }],
            registry_up: false,
            ..provisioned()
        };
        let no_registry = PlanOpts {
            local_registry: false,
            ..opts()
        };
        let p = plan(&runner, &no_registry);
        assert_eq!(
            script(&p),
            ["docker run --privileged --rm docker.io/tonistiigi/binfmt:latest --install arm64"]
        );
        assert!(p.actions.iter().all(|a| !a.root));

        let p = plan(&runner, &opts());
        let s = script(&p);
        assert_eq!(
            s,
            [
                "docker run --privileged --rm docker.io/tonistiigi/binfmt:latest --install arm64",
                "sudo -n apt-get -o DPkg::Lock::Timeout=300 update",
                "sudo -n DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 -o Dpkg::Options::=--force-confold \
                 install -y --no-install-recommends docker-registry apache2-utils",
                "sudo -n systemctl disable --now docker-registry",
                "cargo xtask registry start",
            ]
        );

        let ready = Observed {
            binfmt: provisioned().binfmt,
            ..runner
        };
        assert!(plan(&ready, &no_registry).actions.is_empty());
    }

    #[test]
    fn host_setup_resolves_newest_deb() -> Result<()> {
        let dir = std::env::temp_dir().join(format!("xtask-host-debs-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        for f in [
            "qemu-user_1%3a10.0.2_amd64.deb",
            "qemu-user-binfmt_1%3a10.0.2_amd64.deb",
            "docker.io_26.1.4_amd64.deb",
        ] {
            std::fs::write(dir.join(f), "")?;
        }
        std::thread::sleep(Duration::from_millis(20));
        std::fs::write(dir.join("docker.io_26.1.5_amd64.deb"), "")?;
        let glob = |n: &str| dir.join(format!("{n}_*.deb")).display().to_string();
        let cmd =
            Cmd::new("apt-get").args(["install", &glob("docker.io"), &glob("qemu-user"), "runc"]);
        let got = resolve_debs(&cmd)?.to_string();
        let d = dir.display();
        assert_eq!(got, format!("apt-get install {d}/docker.io_26.1.5_amd64.deb {d}/qemu-user_1%3a10.0.2_amd64.deb runc"));
        let missing = Cmd::new("apt-get").arg(glob("containerd"));
        assert!(resolve_debs(&missing)
            .unwrap_err()
            .to_string()
            .contains("containerd_*.deb"));
        std::fs::remove_dir_all(&dir)?;
        Ok(())
    }
}
