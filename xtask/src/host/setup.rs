//! `cargo xtask setup` and [`ensure`] (every build command's host part): [`plan`] each area from
//! the [`Observed`] host, print it, run the steps. Issue 3: Docker >= 24 with the containerd store,
//! buildx, QEMU binfmt handlers, tools, dockerd, the loopback registry. Issue 11: only `setup`
//! (never [`Mode::Build`]) restarts a running engine, saying so first, with `--yes` when
//! containers run or without systemd.

use std::path::{Path, PathBuf};

use clap::Args;

use super::{
    debian_version, engine_source, merge_daemon_json, probe::BinfmtStatus, registry, Distro,
    DockerInfo, EngineSource as Source, ImageStore, Version, BINFMT_DIR, MIN_BOOKWORM_QEMU,
    MIN_BUILDX, MIN_ENGINE,
};
mod exec;

pub use exec::{ensure, run};

pub use super::probe::Observed;
use crate::{
    plan::Cmd,
    project::{parse_platform_list, PlatformList},
};
use State::{Done, Skipped, Todo};

#[derive(Debug, Default, Args)]
pub struct SetupArgs {
    /// Platforms to provision for (comma-separated, or `all`); default: all.
    #[arg(long, value_parser = parse_platform_list)]
    pub platform: Option<PlatformList>,
    /// Print what would be done, change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Start the loopback registry even in GitHub Actions (default: only outside it).
    #[arg(long, conflicts_with = "no_local_registry")]
    pub local_registry: bool,
    /// Do not start the loopback registry.
    #[arg(long)]
    pub no_local_registry: bool,
    /// Restart a running engine even when containers run (they stop) or it was started without systemd.
    #[arg(long)]
    pub yes: bool,
    /// Set by [`ensure`]: a build command asks ([`Mode::Build`]).
    #[arg(skip)]
    pub build: bool,
}

/// Setup's machine-level cache: private apt directories, downloaded .debs.
pub const CACHE_DIR: &str = "/var/cache/brokkr-setup";
/// Output of a dockerd started without systemd.
pub const DOCKERD_LOG: &str = "/var/log/brokkr-dockerd.log";
const DOCKERD_PID: &str = "/var/run/docker.pid";
/// `BROKKR_DEBIAN_MIRROR` overrides it.
pub const DEBIAN_MIRROR: &str = "http://deb.debian.org/debian";
/// What `docker/setup-qemu-action` runs; used on GitHub runners (registries reachable).
pub const BINFMT_IMAGE: &str = "docker.io/tonistiigi/binfmt:latest";
/// Seconds to wait for a started dockerd to answer, or a stopped one to exit.
pub const DOCKERD_WAIT_SECS: u64 = 60;
const WATCHED_PACKAGES: &str = "docker.io containerd docker-buildx runc tini iptables qemu-user \
    qemu-user-binfmt qemu-user-static binfmt-support debootstrap docker-registry apache2-utils";
/// Off GitHub: base-image bootstrapping, the loopback registry, htpasswd for its `--auth`.
const TOOLS: &[&str] = &["debootstrap", "docker-registry", "apache2-utils"];

/// One thing setup does; `Display` prints the shell command that does the
/// same, so `--dry-run` and the not-root path print a script a person can run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Arguments with a `*` are .deb globs, resolved to the newest file at run time.
    Run(Cmd),
    /// The file and its text.
    Write(PathBuf, String),
    /// `(machine, entry, conf)`: unregisters `entry` (`qemu-aarch64`), then registers the
    /// `binfmt.d` file `conf`.
    BinfmtRegister(String, String, String),
    /// `systemctl start docker` or `setsid dockerd`; skipped when the engine answers by then.
    StartDockerd(Cmd),
    /// SIGTERM to the dockerd of [`DOCKERD_PID`], then waits for its exit.
    StopDockerd,
    WaitDocker,
    StartRegistry,
}

impl Step {
    /// Everything but waiting, the registry and `docker run` needs root.
    pub fn root(&self) -> bool {
        !matches!(self, Step::WaitDocker | Step::StartRegistry)
            && !matches!(self, Step::Run(c) if c.program == "docker")
    }
}

/// Printed as `done`, `todo`, `skip`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Done,
    Todo,
    Skipped,
}

/// `engine`, `daemon.json`, `qemu`, `binfmt linux/arm64`, ...
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Area {
    pub name: String,
    pub state: State,
    pub detail: String,
}

/// The areas in a stable order, the steps in the order they run, reasons it
/// cannot proceed at all (nothing is changed then), and notes on what was left as it is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub areas: Vec<Area>,
    pub steps: Vec<(&'static str, Step)>,
    pub blocked: Vec<String>,
    pub notes: Vec<String>,
}

impl Plan {
    fn area(&mut self, name: impl Into<String>, state: State, detail: impl Into<String>) {
        self.areas.push(Area { name: name.into(), state, detail: detail.into() });
    }
    fn step(&mut self, area: &'static str, step: Step) {
        self.steps.push((area, step));
    }
    /// What only `cargo xtask setup` may do.
    pub fn restarts_engine(&self) -> bool {
        let restart =
            |s: &Step| matches!(s, Step::Run(c) if c.to_string() == "systemctl restart docker");
        self.steps.iter().any(|(_, s)| *s == Step::StopDockerd || restart(s))
    }
}

/// Who asks: a build command, or `cargo xtask setup` (with `--yes`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Build,
    Setup { yes: bool },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanOpts {
    pub local_registry: bool,
    pub mirror: String,
    pub mode: Mode,
}

/// Packages in install order: `name/suite` from setup's private sources, `name` from the system's.
type Pkgs = Vec<&'static str>;

fn show(v: Option<&Version>) -> String {
    v.map_or_else(|| "missing".to_owned(), Version::to_string)
}

/// Steps run in this order: daemon.json (before any engine package, so a postinst-started
/// dockerd uses it), packages, binfmt, dockerd, registry.
pub fn plan(o: &Observed, opts: &PlanOpts) -> Plan {
    let (mut p, mut pkgs) = (Plan::default(), Pkgs::new());
    let source = engine_source(&o.os);
    engine_area(&mut p, o, &source, opts.mode, &mut pkgs);
    image_store_area(&mut p, o, opts.mode);
    qemu_area(&mut p, o, &source, &mut pkgs);
    // packages for the engine or QEMU are installed now (not on GitHub, where QEMU is an image)
    let now = |n| !o.github_actions && p.areas.iter().any(|a| a.name == n && a.state == Todo);
    let (engine_now, qemu_now) = (now("engine"), now("qemu"));
    tools_area(&mut p, o, opts, &mut pkgs);
    package_steps(&mut p, o, opts, &pkgs);
    binfmt_area(&mut p, o, qemu_now);
    dockerd_area(&mut p, o, opts.mode);
    registry_area(&mut p, o, opts);
    let other = o.os.distro() == Distro::Other && p.steps.iter().any(|(_, s)| s.root());
    if let (true, Source::Unsupported(why)) = (engine_now || qemu_now || other, &source) {
        p.blocked.push(why.clone());
    }
    p
}

/// A docker CLI, engine >= [`MIN_ENGINE`] and buildx >= [`MIN_BUILDX`], else packages (never
/// for a running engine in a build command).
fn engine_area(p: &mut Plan, o: &Observed, src: &Source, mode: Mode, pkgs: &mut Pkgs) {
    if o.github_actions {
        return p.area("engine", Skipped, "the GitHub runner provides docker and buildx");
    }
    let (d, running) = (&o.docker, o.docker.info.as_ref().ok().and_then(DockerInfo::version));
    let engine_ok = d.cli.is_some() && o.dockerd.iter().chain(&running).any(|v| *v >= MIN_ENGINE);
    let buildx_ok = d.buildx.as_ref().is_some_and(|v| *v >= MIN_BUILDX);
    let buildx = show(d.buildx.as_ref());
    if engine_ok && buildx_ok {
        let v = show(o.dockerd.as_ref().or(running.as_ref()));
        return p.area("engine", Done, format!("dockerd {v}, buildx {buildx}"));
    }
    let cli = [", and the docker CLI", ""][d.cli.is_some() as usize];
    let dockerd = format!("dockerd {} (need >= {MIN_ENGINE}{cli})", show(o.dockerd.as_ref()));
    p.area("engine", Todo, format!("{dockerd}, buildx {buildx} (need >= {MIN_BUILDX})"));
    if matches!(src, Source::Unsupported(_)) {
        return;
    }
    let trixie = *src == Source::Bookworm;
    // A running engine that is too old is replaced by `setup` only (see dockerd_area).
    // Bookworm: trixie's .debs with bookworm's own runc, tini, iptables.
    if !engine_ok && (mode != Mode::Build || d.info.is_err()) {
        let engine = ["docker.io", "docker.io/trixie containerd/trixie runc tini iptables"];
        pkgs.extend(engine[trixie as usize].split(' '));
    }
    // Debian 13 split the client into docker-cli; Ubuntu's docker.io still has it.
    if d.cli.is_none() && (trixie || o.os.id == "debian") {
        pkgs.push(["docker-cli", "docker-cli/trixie"][trixie as usize]);
    }
    if !buildx_ok {
        pkgs.push(["docker-buildx", "docker-buildx/trixie"][trixie as usize]);
    }
}

/// `features.containerd-snapshotter` merged in; not for a running engine by a build command (it
/// would need a restart: [`dockerd_area`] says so), nor when the running engine uses it already.
fn image_store_area(p: &mut Plan, o: &Observed, mode: Mode) {
    const AREA: &str = "daemon.json";
    let store = o.docker.info.as_ref().ok().map(DockerInfo::store);
    if o.github_actions {
        return p.area(AREA, Skipped, "the GitHub runner's engine is used as it is");
    }
    match merge_daemon_json(o.daemon_json.as_deref()) {
        Ok(None) => p.area(AREA, Done, "containerd-snapshotter is on"),
        _ if matches!(store, Some(ImageStore::Containerd(_))) => {
            p.area(AREA, Done, "the running engine uses the containerd image store")
        }
        _ if mode == Mode::Build && store.is_some() => {
            p.area(AREA, Skipped, "not changed for a running engine by a build command")
        }
        Ok(Some(text)) => {
            p.area(AREA, Todo, "turn on the containerd image store");
            p.step(AREA, mkdir(Path::new("/etc/docker")));
            p.step(AREA, Step::Write("/etc/docker/daemon.json".into(), text));
        }
        Err(e) => p.blocked.push(format!("{e:#}")),
    }
}

/// Debian 12 needs bookworm-backports' QEMU >= [`MIN_BOOKWORM_QEMU`], elsewhere a ready handler
/// or the archive's; GitHub runners use [`BINFMT_IMAGE`].
fn qemu_area(p: &mut Plan, o: &Observed, src: &Source, pkgs: &mut Pkgs) {
    if o.binfmt.is_empty() {
        return p.area("qemu", Skipped, "no foreign platform requested");
    }
    let not_ready = o.binfmt.iter().filter(|b| b.status() != BinfmtStatus::Ready);
    let not_ready: Vec<&str> = not_ready.map(|b| b.platform.arch).collect();
    if o.github_actions {
        let arches = not_ready.join(",");
        if arches.is_empty() {
            return p.area("qemu", Done, "binfmt handlers registered");
        }
        p.area("qemu", Todo, format!("register QEMU for {arches} with {BINFMT_IMAGE}"));
        let docker = Cmd::new("docker").args(["run", "--privileged", "--rm", BINFMT_IMAGE]);
        return p.step("qemu", Step::Run(docker.args(["--install", &arches])));
    }
    let qemu = ["qemu-user-binfmt", "qemu-user-static"];
    let (ok, have) = if *src == Source::Bookworm {
        let v = o.packages.get("qemu-user-binfmt").and_then(|v| debian_version(v));
        let new = v.as_ref().is_some_and(|v| *v >= MIN_BOOKWORM_QEMU);
        let v = show(v.as_ref());
        let have =
            format!("qemu-user-binfmt {v} (need >= {MIN_BOOKWORM_QEMU} from bookworm-backports)");
        (new && o.packages.contains_key("qemu-user"), have)
    } else {
        let any = qemu.iter().any(|k| o.packages.contains_key(*k));
        (any || not_ready.is_empty(), "no qemu-user-binfmt or qemu-user-static".to_owned())
    };
    if ok {
        let v = qemu.iter().find_map(|k| o.packages.get(*k).and_then(|v| debian_version(v)));
        let v = v.map_or_else(|| "handlers registered".to_owned(), |v| format!("QEMU {v}"));
        return p.area("qemu", Done, v);
    }
    p.area("qemu", Todo, have);
    pkgs.extend(match (src, o.os.distro()) {
        (Source::Bookworm, _) => {
            ["qemu-user/bookworm-backports", "qemu-user-binfmt/bookworm-backports"]
        }
        (_, Distro::Ubuntu) => ["qemu-user-static", "binfmt-support"],
        _ => ["qemu-user", "qemu-user-binfmt"],
    });
}

/// [`TOOLS`] off GitHub; there only the registry's (all but debootstrap), when it is asked for.
fn tools_area(p: &mut Plan, o: &Observed, opts: &PlanOpts, pkgs: &mut Pkgs) {
    if o.github_actions && !opts.local_registry {
        return p.area("tools", Skipped, "no local registry asked for on the GitHub runner");
    }
    let tools = &TOOLS[o.github_actions as usize..];
    let missing: Vec<&str> =
        tools.iter().copied().filter(|t| !o.packages.contains_key(*t)).collect();
    if missing.is_empty() {
        return p.area("tools", Done, tools.join(", "));
    }
    p.area("tools", Todo, format!("install {}", missing.join(", ")));
    pkgs.extend(missing);
}

fn mkdir(dir: &Path) -> Step {
    Step::Run(Cmd::new("mkdir").args(["-p".into(), dir.display().to_string()]))
}

/// `sudo -n` first when setup runs through sudo.
fn privileged(cmd: Cmd, sudo: bool) -> Cmd {
    if !sudo {
        return cmd;
    }
    let env = cmd.env.iter().map(|(k, v)| format!("{k}={v}"));
    Cmd::new("sudo").arg("-n").args(env).arg(cmd.program).args(cmd.args)
}

/// .debs fetched by `apt-get` with setup's private directories under [`CACHE_DIR`] and no
/// system sources, then one `apt-get install` for everything.
fn package_steps(p: &mut Plan, o: &Observed, opts: &PlanOpts, pkgs: &Pkgs) {
    let cache = Path::new(CACHE_DIR);
    let d = |p: &str| cache.join(p).display().to_string();
    let debs: Vec<(&str, &str)> = pkgs.iter().filter_map(|w| w.split_once('/')).collect();
    let names: Vec<&str> = pkgs.iter().copied().filter(|w| !w.contains('/')).collect();
    if !debs.is_empty() {
        let dirs =
            ["apt/sources.list.d", "apt/lists/partial", "apt/cache/archives/partial", "debs"];
        let private = [
            "Dir::Etc::SourceList=/dev/null".to_owned(),
            format!("Dir::Etc::SourceParts={}", d(dirs[0])),
            format!("Dir::State::Lists={}", d("apt/lists")),
            format!("Dir::Cache={}", d("apt/cache")),
        ];
        let apt = || Cmd::new("apt-get").args(private.iter().flat_map(|o| ["-o", o]));
        for dir in dirs {
            p.step("packages", mkdir(&cache.join(dir)));
        }
        let path = cache.join(dirs[0]).join("brokkr.sources");
        // deb822: trixie (engine, buildx) and bookworm-backports (QEMU 10), for the host's arch
        let (mirror, arch) = (&opts.mirror, o.host.arch);
        let source = |suite| {
            format!("Types: deb\nURIs: {mirror}\nSuites: {suite}\nComponents: main\nArchitectures: {arch}\n")
        };
        let text = ["trixie", "bookworm-backports"].map(source).join("\n");
        p.step("packages", Step::Write(path, text));
        p.step("packages", Step::Run(apt().arg("update")));
        let names = debs.iter().map(|(name, suite)| format!("{name}/{suite}"));
        p.step("packages", Step::Run(apt().arg("download").args(names).dir(d("debs"))));
    }
    let globs = debs.iter().map(|(n, _)| format!("{}/{n}_*.deb", d("debs")));
    let all: Vec<String> = globs.chain(names.iter().map(|n| n.to_string())).collect();
    if all.is_empty() {
        return;
    }
    let apt = || Cmd::new("apt-get").args(["-o", "DPkg::Lock::Timeout=300"]);
    p.step("packages", Step::Run(privileged(apt().arg("update"), o.sudo)));
    let install = apt().env("DEBIAN_FRONTEND", "noninteractive");
    let install = install.args(["-o", "Dpkg::Options::=--force-confold", "install", "-y"]);
    let install = install.arg("--no-install-recommends").args(all);
    p.step("packages", Step::Run(privileged(install, o.sudo)));
    if names.contains(&"docker-registry") {
        // The package's own service (config /etc/docker/registry/config.yml) listens on
        // :5000, where `cargo xtask registry start` serves: stop it and keep it off.
        let stop = match o.systemd {
            true => "systemctl disable --now docker-registry",
            false => "start-stop-daemon --stop --oknodo --pidfile /var/run/docker-registry.pid",
        };
        let mut words = stop.split(' ');
        let stop = Cmd::new(words.next().unwrap_or_default()).args(words);
        p.step("packages", Step::Run(privileged(stop, o.sudo)));
    }
}

/// binfmt_misc mounted, then each foreign handler registered that is not ready, or all when QEMU
/// is installed now (the `F` flag pins the old interpreter binary). Not on GitHub.
fn binfmt_area(p: &mut Plan, o: &Observed, qemu_now: bool) {
    if o.binfmt.is_empty() || o.github_actions {
        return;
    }
    if o.binfmt.iter().all(|b| b.mounted) {
        p.area("binfmt_misc", Done, format!("{BINFMT_DIR} is mounted"));
    } else {
        p.area("binfmt_misc", Todo, format!("mount {BINFMT_DIR}"));
        let mount = Cmd::new("mount").args(["-t", "binfmt_misc", "binfmt_misc", BINFMT_DIR]);
        p.step("binfmt_misc", Step::Run(mount));
    }
    for b in &o.binfmt {
        let name = format!("binfmt {}", b.platform.name);
        let why = match b.status() {
            BinfmtStatus::Ready if !qemu_now => {
                p.area(name, Done, b.registered());
                continue;
            }
            BinfmtStatus::Ready => "re-register after installing QEMU".to_owned(),
            BinfmtStatus::Stale(r, i) => format!("{r} registered, {i} installed"),
            BinfmtStatus::Unusable(why) => why,
            BinfmtStatus::Missing => "not registered".to_owned(),
        };
        p.area(name, Todo, why);
        let (machine, entry) = (b.platform.machine.to_owned(), b.entry_name.clone());
        let default = format!("/usr/lib/binfmt.d/qemu-{machine}.conf");
        let conf = b.handler.as_ref().map_or(default, |(path, _)| path.clone());
        p.step("binfmt", Step::BinfmtRegister(machine, entry, conf));
    }
}

/// Started when it does not answer, never for an engine elsewhere (`DOCKER_HOST`). One needing a
/// restart (too old, bridge lost, classic store) is used as it is or blocks a build command;
/// `setup` restarts it, with `--yes` when containers run or it was started without systemd.
fn dockerd_area(p: &mut Plan, o: &Observed, mode: Mode) {
    if o.github_actions {
        return p.area("dockerd", Skipped, "the GitHub runner's engine runs already");
    }
    let e = match &o.docker.info {
        Ok(e) => e,
        Err(err) if err.to_ascii_lowercase().contains("permission denied") => {
            p.area("dockerd", Todo, format!("not reachable: {err}"));
            return p.blocked.push(
                "the engine runs but this user may not use its socket (/var/run/docker.sock): run as root, \
                 or add the user to the `docker` group (usermod -aG docker $USER, then log in again)"
                    .to_owned(),
            );
        }
        Err(err) => match &o.docker.host {
            Some(h) => {
                p.area("dockerd", Todo, format!("DOCKER_HOST={h} does not answer ({err})"));
                return p.blocked.push(format!(
                    "DOCKER_HOST={h} does not answer ({err}): start the engine there, or unset DOCKER_HOST to use this machine's"
                ));
            }
            None => {
                p.area("dockerd", Todo, format!("not answering ({err}): start it"));
                let cmd = match o.systemd {
                    true => Cmd::new("systemctl").args(["start", "docker"]),
                    false => Cmd::new("setsid").arg("dockerd"),
                };
                p.step("dockerd", Step::StartDockerd(cmd));
                return p.step("dockerd", Step::WaitDocker);
            }
        },
    };
    let v = &e.server_version;
    let lost = o.docker.bridge.as_ref().ok().and_then(Option::as_ref);
    let lost = lost.filter(|(_, up)| !up && o.docker.host.is_none()).map(|(b, _)| b);
    // why it needs a restart, and whether builds can use it meanwhile
    let (why, usable) = match (e.store(), lost) {
        _ if e.version().is_none_or(|x| x < MIN_ENGINE) => {
            (format!("is {v}, older than {MIN_ENGINE}"), false)
        }
        (_, Some(b)) => (format!("{v} lost its default bridge {b} (every RUN step fails)"), false),
        (ImageStore::Classic(d), None) => (format!("{v} uses the classic image store ({d})"), true),
        _ => return p.area("dockerd", Done, format!("{v} answers, containerd image store")),
    };
    let (why, n) = (format!("the running engine {why}"), e.containers_running);
    let restart = "`cargo xtask setup` changes it and restarts the engine";
    let blocked = match mode {
        Mode::Build if usable => {
            p.area("dockerd", Skipped, format!("{why}: used as it is"));
            return p.notes.push(format!(
                "{why}: builds use it as it is (one platform per --load, no cache export with the docker driver); \
                 {restart} ({n} container(s) running)"
            ));
        }
        Mode::Build => format!("{why}; a build command does not restart a running engine: {restart}"),
        Mode::Setup { yes: false } if n > 0 => format!(
            "{why}; setup restarts it, which stops its {n} running container(s): rerun with `cargo xtask setup --yes`"
        ),
        Mode::Setup { yes: false } if !o.systemd => format!(
            "{why}; it was started without systemd, so setup restarts it (kill $(cat {DOCKERD_PID}), then \
             setsid dockerd) only when asked: rerun with `cargo xtask setup --yes`"
        ),
        Mode::Setup { .. } => {
            p.area("dockerd", Todo, format!("{why}: setup restarts it ({n} container(s) running)"));
            if o.systemd {
                p.step("dockerd", Step::Run(Cmd::new("systemctl").args(["restart", "docker"])));
            } else {
                p.step("dockerd", Step::StopDockerd);
                p.step("dockerd", Step::StartDockerd(Cmd::new("setsid").arg("dockerd")));
            }
            return p.step("dockerd", Step::WaitDocker);
        }
    };
    let suffix = (mode != Mode::Build).then_some(": restart it");
    p.area("dockerd", Todo, format!("{why}{}", suffix.unwrap_or_default()));
    p.blocked.push(blocked);
}

fn registry_area(p: &mut Plan, o: &Observed, opts: &PlanOpts) {
    let host = registry::Kind::Open.host();
    if !opts.local_registry {
        p.area("registry", Skipped, "not asked for (--local-registry starts it)");
    } else if o.registry_up {
        p.area("registry", Done, format!("{host} answers"));
    } else {
        p.area("registry", Todo, format!("start {host}"));
        p.step("registry", Step::StartRegistry);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::{
        probe::{BinfmtProbe, Docker},
        BinfmtEntry,
    };
    use crate::host::{BinfmtHandler, OsRelease};
    use crate::project::Platform;
    use std::collections::BTreeMap;

    fn arm() -> &'static Platform {
        Platform::parse("arm64").unwrap()
    }
    fn amd() -> &'static Platform {
        Platform::parse("amd64").unwrap()
    }

    fn engine(version: &str, store: ImageStore, containers_running: u64) -> DockerInfo {
        let (driver, containerd) = match store {
            ImageStore::Containerd(d) => (d, true),
            ImageStore::Classic(d) => (d, false),
        };
        let kv = vec!["driver-type".to_owned(), "io.containerd.snapshotter.v1".to_owned()];
        let driver_status = containerd.then(|| vec![kv]);
        let server_version = version.into();
        DockerInfo {
            server_version,
            driver,
            driver_status,
            containers_running,
            ..Default::default()
        }
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
            docker: Docker {
                cli: Some("/usr/bin/docker".into()),
                client: Some("26.1.5+dfsg1".into()),
                info: Ok(engine("26.1.5+dfsg1", ImageStore::Containerd("overlayfs".into()), 0)),
                buildx: Some(Version::new(0, 13, 1)),
                bridge: Ok(Some(("docker0".into(), true))),
                host: None,
            },
            dockerd: Some(Version::new(26, 1, 5)),
            daemon_json: Some(r#"{"features":{"containerd-snapshotter":true}}"#.into()),
            packages: pkgs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
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
            docker: Docker { buildx: None, info: Err(String::new()), ..provisioned().docker },
            daemon_json: None,
            packages: BTreeMap::new(),
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
            mode: Mode::Setup { yes: false },
        }
    }

    fn script(p: &Plan) -> Vec<String> {
        p.steps.iter().map(|(_, s)| s.to_string()).collect()
    }

    fn todo(p: &Plan) -> Vec<&str> {
        p.areas.iter().filter(|a| a.state == State::Todo).map(|a| a.name.as_str()).collect()
    }

    #[test]
    fn host_setup_second_run_does_nothing() {
        let p = plan(&provisioned(), &opts());
        assert!(p.steps.is_empty(), "{:#?}", p.steps);
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
            .steps
            .iter()
            .filter(|(_, s)| *s == Step::StartRegistry || *s == Step::WaitDocker)
            .all(|(_, s)| !s.root()));
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
                            binfmt: vec![BinfmtProbe { mounted: false, entry: None, ..base().binfmt[0].clone() }],
                    docker: Docker { info: Err(String::new()), ..base().docker },
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
                o: Observed { binfmt: vec![], packages: BTreeMap::new(), ..base() },
                todo: &["tools"],
                contains: &["debootstrap docker-registry apache2-utils"],
                absent: &["qemu", "mount"],
                blocked: false,
            },
            Case {
                name: "bookworm's own docker.io 20.10 running, no systemd",
                o: Observed {
                    dockerd: Some(Version::new(20, 10, 24)),
                    docker: Docker {
                        buildx: None,
                        info: Ok(engine("20.10.24+dfsg1", ImageStore::Classic("overlay2".into()), 0)),
                        ..base().docker
                    },
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
                    docker: Docker { info: Ok(engine("26.1.5", ImageStore::Classic("overlay2".into()), 0)), ..base().docker },
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
                    docker: Docker { buildx: Some(Version::new(0, 17, 1)), ..base().docker },
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
                assert!(!s.contains(needle), "{}: unexpected {needle:?} in\n{s}", c.name);
            }
            assert_eq!(!p.blocked.is_empty(), c.blocked, "{}: blocked {:?}", c.name, p.blocked);
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
            docker: Docker {
                info: Ok(engine("28.0.4", ImageStore::Classic("overlay2".into()), 0)),
                buildx: Some(Version::new(0, 22, 0)),
                ..provisioned().docker
            },
            dockerd: Some(Version::new(28, 0, 4)),
            packages: BTreeMap::new(),
            binfmt: vec![BinfmtProbe {
                handler: None,
                entry: None,
                ..provisioned().binfmt[0].clone()
            }],
            registry_up: false,
            ..provisioned()
        };
        let no_registry = PlanOpts { local_registry: false, ..opts() };
        let p = plan(&runner, &no_registry);
        assert_eq!(
            script(&p),
            ["docker run --privileged --rm docker.io/tonistiigi/binfmt:latest --install arm64"]
        );
        assert!(p.steps.iter().all(|(_, s)| !s.root()));

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

        let ready = Observed { binfmt: provisioned().binfmt, ..runner };
        assert!(plan(&ready, &no_registry).steps.is_empty());
    }

    #[test]
    fn host_setup_private_apt_sources() {
        let p = plan(&fresh_bookworm(), &opts());
        let src = p.steps.iter().find_map(|(_, s)| match s {
            Step::Write(path, text) if path.ends_with("brokkr.sources") => Some(text.as_str()),
            _ => None,
        });
        let src = src.unwrap();
        assert_eq!(
            src,
            "Types: deb\nURIs: http://deb.debian.org/debian\nSuites: trixie\nComponents: main\nArchitectures: amd64\n\n\
             Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm-backports\nComponents: main\nArchitectures: amd64\n"
        );
    }

    fn running(store: ImageStore, systemd: bool, containers: u64) -> Observed {
        Observed {
            systemd,
            daemon_json: None,
            docker: Docker {
                info: Ok(engine("26.1.5", store, containers)),
                ..provisioned().docker
            },
            ..provisioned()
        }
    }

    fn mode(m: Mode) -> PlanOpts {
        PlanOpts { local_registry: false, mode: m, ..opts() }
    }

    fn writes_daemon_json(p: &Plan) -> bool {
        p.steps
            .iter()
            .any(|(_, s)| matches!(s, Step::Write(path, _) if path.ends_with("daemon.json")))
    }

    /// Issue 11: a build command never reconfigures or restarts a running
    /// engine; only `setup` does, and with containers running it needs --yes.
    #[test]
    fn host_setup_build_commands_leave_a_running_engine_alone() {
        let classic = || ImageStore::Classic("overlay2".into());
        let build = mode(Mode::Build);
        for systemd in [true, false] {
            for containers in [0, 3] {
                let name = format!("classic store, systemd {systemd}, {containers} containers");
                let p = plan(&running(classic(), systemd, containers), &build);
                assert!(!writes_daemon_json(&p), "{name}: {:?}", script(&p));
                assert!(!p.restarts_engine(), "{name}: {:?}", script(&p));
                assert!(p.steps.iter().all(|(_, s)| !matches!(s, Step::StartDockerd(_))), "{name}");
                assert!(
                    p.blocked.is_empty(),
                    "{name}: builds use the classic store as it is: {:?}",
                    p.blocked
                );
                assert!(
                    p.notes.iter().any(|n| n.contains("`cargo xtask setup`")),
                    "{name}: {:?}",
                    p.notes
                );
            }
        }
        // what a build cannot work with: stop, naming the command that changes it
        let old = Observed {
            dockerd: Some(Version::new(20, 10, 24)),
            docker: Docker {
                info: Ok(DockerInfo {
                    server_version: "20.10.24".into(),
                    ..running(classic(), true, 2).docker.info.unwrap()
                }),
                ..running(classic(), true, 2).docker
            },
            ..running(classic(), true, 2)
        };
        let lost = Docker { bridge: Ok(Some(("docker0".into(), false))), ..provisioned().docker };
        let no_bridge = Observed { docker: lost, ..provisioned() };
        for (name, o) in [("engine 20.10 running", old), ("docker0 missing", no_bridge)] {
            let p = plan(&o, &build);
            let s = script(&p).join("\n");
            assert!(!writes_daemon_json(&p) && !p.restarts_engine(), "{name}: {s}");
            assert!(
                !s.contains("docker.io"),
                "{name}: a build never upgrades a running engine: {s}"
            );
            assert!(
                p.blocked.iter().any(|b| b.contains("`cargo xtask setup`")),
                "{name}: {:?}",
                p.blocked
            );
        }
        let remote = Observed {
            docker: Docker {
                info: Err("Cannot connect to the Docker daemon at tcp://10.9.9.9:2375".into()),
                host: Some("tcp://10.9.9.9:2375".into()),
                ..provisioned().docker
            },
            ..provisioned()
        };
        let p = plan(&remote, &build);
        assert!(p.steps.is_empty(), "{:?}", script(&p));
        assert!(
            p.blocked[0].starts_with("DOCKER_HOST=tcp://10.9.9.9:2375 does not answer"),
            "{:?}",
            p.blocked
        );

        // a fresh machine (no engine) gets the full install plan from a build command
        let p = plan(&fresh_bookworm(), &build);
        assert!(p.blocked.is_empty(), "{:?}", p.blocked);
        let mut t = todo(&p);
        t.sort_unstable();
        let mut want: Vec<&str> = FRESH_TODO.iter().copied().filter(|a| *a != "registry").collect();
        want.sort_unstable();
        assert_eq!(t, want);
        let s = script(&p).join("\n");
        for needle in [
            "/etc/docker/daemon.json",
            "download docker.io/trixie",
            "setsid dockerd",
            "cat /usr/lib/binfmt.d/qemu-aarch64.conf",
        ] {
            assert!(s.contains(needle), "no {needle:?} in\n{s}");
        }
        assert!(!p.restarts_engine());
    }

    #[test]
    fn host_setup_restarts_only_when_told() {
        let classic = || ImageStore::Classic("overlay2".into());
        struct Case {
            name: &'static str,
            o: Observed,
            yes: bool,
            blocked: &'static [&'static str],
            contains: &'static [&'static str],
        }
        let cases = [
            Case {
                name: "containers running, no --yes",
                o: running(classic(), true, 3),
                yes: false,
                blocked: &["stops its 3 running container(s)", "`cargo xtask setup --yes`"],
                contains: &[],
            },
            Case {
                name: "containers running, --yes",
                o: running(classic(), true, 3),
                yes: true,
                blocked: &[],
                contains: &[
                    "/etc/docker/daemon.json",
                    "systemctl restart docker",
                    "until docker info",
                ],
            },
            Case {
                name: "no containers, systemd",
                o: running(classic(), true, 0),
                yes: false,
                blocked: &[],
                contains: &["systemctl restart docker"],
            },
            Case {
                name: "no systemd, no --yes",
                o: running(classic(), false, 0),
                yes: false,
                blocked: &["without systemd", "--yes"],
                contains: &[],
            },
            Case {
                name: "no systemd, --yes",
                o: running(classic(), false, 0),
                yes: true,
                blocked: &[],
                contains: &["kill -TERM $(cat /var/run/docker.pid)", "setsid dockerd"],
            },
            Case {
                name: "docker0 missing, containerd store",
                o: Observed {
                    docker: Docker {
                        bridge: Ok(Some(("docker0".into(), false))),
                        ..provisioned().docker
                    },
                    systemd: true,
                    ..provisioned()
                },
                yes: false,
                blocked: &[],
                contains: &["systemctl restart docker"],
            },
        ];
        for c in cases {
            let p = plan(&c.o, &mode(Mode::Setup { yes: c.yes }));
            let s = script(&p).join("\n");
            let blocked = p.blocked.join("\n");
            assert_eq!(p.blocked.is_empty(), c.blocked.is_empty(), "{}: {blocked}", c.name);
            for b in c.blocked {
                assert!(blocked.contains(b), "{}: no {b:?} in {blocked}", c.name);
            }
            for needle in c.contains {
                assert!(s.contains(needle), "{}: no {needle:?} in\n{s}", c.name);
            }
            // setup says what it restarts before it does
            let dockerd = p.areas.iter().find(|a| a.name == "dockerd").unwrap();
            assert!(
                dockerd.state == State::Todo && dockerd.detail.contains("the running engine"),
                "{}: {dockerd:?}",
                c.name
            );
            assert_eq!(p.restarts_engine(), p.blocked.is_empty(), "{}", c.name);
        }
    }
}
