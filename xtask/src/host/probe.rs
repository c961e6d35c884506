//! Read-only look-ups of the host's state (quiet commands, `/proc`, `/etc`, `/sys`), gathered
//! for setup in [`Observed`]; parsing is in [`super`]. Also the services xtask starts (dockerd,
//! the registry): spawned detached so they outlive it, found again through `/proc`.

use std::{
    collections::BTreeMap,
    fs::{self, OpenOptions},
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Stdio},
    time::{Duration, Instant},
};

use anyhow::{ensure, Context, Result};
use xshell::Shell;

use super::{
    binfmt_handler_paths, bridge_interface, parse_buildx_version, parse_dockerd_version,
    parse_dpkg_query, parse_http_status, registry, BinfmtEntry, BinfmtHandler, Builder, DockerInfo,
    OsRelease, Version, BINFMT_DIR,
};
use crate::{plan::Cmd, project::Platform};

/// Runs `program args` quietly: stdout when it exits 0, else its stderr.
pub fn stdout(sh: &Shell, program: &str, args: &[&str]) -> Result<String, String> {
    let out =
        Cmd::new(program).args(args.iter().copied()).capture(sh).map_err(|e| format!("{e:#}"))?;
    out.ok.then(|| out.stdout.clone()).ok_or_else(|| out.stderr.trim().to_owned())
}

/// `docker [--context NAME] info`, or why the engine did not answer (the client's first error).
pub fn docker_info(sh: &Shell, context: Option<&str>) -> Result<DockerInfo, String> {
    let cmd =
        Cmd::new("docker").opts("--context", context).args(["info", "--format", "{{json .}}"]);
    let out = cmd.capture(sh).map_err(|e| format!("{e:#}"))?;
    match DockerInfo::parse(&out.stdout).ok() {
        Some(i) if out.ok && !i.server_version.is_empty() => Ok(i),
        other => {
            let from_json = other.and_then(|i| i.server_errors?.into_iter().next());
            let first = out.stderr.lines().map(str::trim).find(|l| !l.is_empty());
            let why = from_json.or(first.map(str::to_owned));
            Err(why.unwrap_or_else(|| "the engine did not answer".to_owned()))
        }
    }
}

/// The docker CLI, the engine and buildx as doctor's preflight and setup's [`observe`] see them.
#[derive(Clone, Debug)]
pub struct Docker {
    pub cli: Option<PathBuf>,
    /// `docker version --format {{.Client.Version}}`.
    pub client: Option<String>,
    /// The running engine, else why `docker info` did not answer.
    pub info: Result<DockerInfo, String>,
    pub buildx: Option<Version>,
    /// The default bridge's host interface and whether it exists here (`None`: `--bridge none`).
    pub bridge: Result<Option<(String, bool)>, String>,
    /// `$DOCKER_HOST` when it names an engine other than the local socket.
    pub host: Option<String>,
}

pub fn docker(sh: &Shell) -> Docker {
    let cli = which::which("docker").ok();
    let docker =
        |args: &[&str]| cli.as_ref().ok_or(String::new()).and_then(|_| stdout(sh, "docker", args));
    let info = if cli.is_some() { docker_info(sh, None) } else { Err("no docker CLI".into()) };
    let args = ["network", "inspect", "bridge", "--format", "{{json .Options}}"];
    let bridge = match info.as_ref().map(|_| docker(&args)) {
        Err(_) => Err("the engine is not reachable".to_owned()),
        Ok(Ok(json)) => bridge_interface(&json).map_err(|e| format!("{e:#}")).map(|b| {
            let up = Path::new("/sys/class/net").join(&b).exists();
            Some((b, up))
        }),
        Ok(Err(e)) if e.contains("not found") => Ok(None),
        Ok(Err(e)) => Err(e),
    };
    let local = ["", "unix:///var/run/docker.sock", "unix:///run/docker.sock"];
    let client = docker(&["version", "--format", "{{.Client.Version}}"]).ok();
    Docker {
        client: client.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()),
        buildx: docker(&["buildx", "version"]).ok().and_then(|v| parse_buildx_version(&v)),
        host: std::env::var("DOCKER_HOST").ok().filter(|h| !local.contains(&h.as_str())),
        bridge,
        info,
        cli,
    }
}

/// `docker buildx inspect [NAME]` (no name: `$BUILDX_BUILDER`, else the current builder).
pub fn builder(sh: &Shell, name: Option<&str>) -> Result<Builder, String> {
    let args: Vec<&str> = ["buildx", "inspect"].into_iter().chain(name).collect();
    Builder::parse(&stdout(sh, "docker", &args)?).map_err(|e| format!("{e:#}"))
}

/// Emulation of one foreign platform: the first handler file of [`binfmt_handler_paths`], the
/// entry name (the handler's, else `qemu-<machine>`) and the registered entry.
#[derive(Clone, Debug)]
pub struct BinfmtProbe {
    pub platform: &'static Platform,
    pub mounted: bool,
    pub handler: Option<(String, BinfmtHandler)>,
    pub entry_name: String,
    pub entry: Option<BinfmtEntry>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BinfmtStatus {
    /// Usable, and as the installed handler file says (if any: `tonistiigi/binfmt` has none).
    Ready,
    /// Usable, but not the installed file's: registered and installed `interpreter (flags)`.
    Stale(String, String),
    Unusable(String),
    Missing,
}

impl BinfmtProbe {
    /// Flags in any order: the file says `OPF`, the kernel prints `POF`.
    pub fn status(&self) -> BinfmtStatus {
        let Some(e) = &self.entry else { return BinfmtStatus::Missing };
        let (i, f) = (&e.interpreter, &e.flags);
        match &self.handler {
            _ if !e.enabled => BinfmtStatus::Unusable(format!("{i} is registered but disabled")),
            _ if !f.contains('F') => BinfmtStatus::Unusable(format!(
                "{i} is registered with flags `{f}`, without F (fix-binary): it fails inside containers"
            )),
            Some((_, h)) if h.interpreter != *i || !h.flags.chars().all(|c| f.contains(c)) => {
                BinfmtStatus::Stale(format!("{i} ({f})"), format!("{} ({})", h.interpreter, h.flags))
            }
            _ => BinfmtStatus::Ready,
        }
    }

    /// `INTERPRETER (flags FLAGS)` of the registered entry.
    pub fn registered(&self) -> String {
        let e = self.entry.clone().unwrap_or_default();
        format!("{} (flags {})", e.interpreter, e.flags)
    }
}

/// The first existing file of [`binfmt_handler_paths`] for `machine` and its handler; errors name it.
pub fn binfmt_handler(machine: &str) -> Option<Result<(String, BinfmtHandler)>> {
    let read = |path: String| Some((fs::read_to_string(&path).ok()?, path));
    let (text, path) = binfmt_handler_paths(machine).into_iter().find_map(read)?;
    Some(BinfmtHandler::parse(&text).with_context(|| format!("reading {path}")).map(|h| (path, h)))
}

/// A malformed handler file counts as absent.
pub fn binfmt(platform: &'static Platform) -> BinfmtProbe {
    let handler = binfmt_handler(platform.machine).and_then(Result::ok);
    let read = |name: &str| {
        Some(BinfmtEntry::parse(&fs::read_to_string(Path::new(BINFMT_DIR).join(name)).ok()?))
    };
    let default = format!("qemu-{}", platform.machine);
    let mut entry_name = handler.as_ref().map_or(default.clone(), |(_, h)| h.name.clone());
    let mut entry = read(&entry_name);
    if entry.is_none() && entry_name != default && read(&default).is_some() {
        (entry, entry_name) = (read(&default), default);
    }
    let mounted = Path::new(BINFMT_DIR).join("register").exists();
    BinfmtProbe { platform, mounted, handler, entry_name, entry }
}

pub fn is_root(sh: &Shell) -> bool {
    stdout(sh, "id", &["-u"]).is_ok_and(|s| s.trim() == "0")
}

/// `GITHUB_ACTIONS=true`, unless `cargo xtask workflow run` set it for the
/// steps it replays (with `BROKKR_WORKFLOW_RUN=1`): setup sees the machine as it is.
pub fn github_actions() -> bool {
    crate::gha::active() && std::env::var_os("BROKKR_WORKFLOW_RUN").is_none()
}

/// The HTTP status of `GET /v2/` on `127.0.0.1:port` (the registry API's version check: 200
/// when open, 401 when it wants credentials); `None` when nothing answers HTTP within 2 s.
pub fn registry_api_status(port: u16) -> Option<u16> {
    let timeout = Some(Duration::from_secs(2));
    let mut s =
        TcpStream::connect_timeout(&SocketAddr::from(([127, 0, 0, 1], port)), timeout?).ok()?;
    s.set_read_timeout(timeout).ok()?;
    s.set_write_timeout(timeout).ok()?;
    let request =
        format!("GET /v2/ HTTP/1.0\r\nHost: localhost:{port}\r\nConnection: close\r\n\r\n");
    s.write_all(request.as_bytes()).ok()?;
    let mut got = Vec::new();
    let _ = s.take(4096).read_to_end(&mut got); // what came before an error or the timeout
    parse_http_status(&String::from_utf8_lossy(&got))
}

/// Everything setup decides on, read once from the host ([`observe`]).
#[derive(Clone, Debug)]
pub struct Observed {
    pub os: OsRelease,
    pub root: bool,
    /// Not root, but on GitHub Actions with password-less `sudo`: root commands get `sudo -n`.
    pub sudo: bool,
    pub github_actions: bool,
    pub systemd: bool,
    pub host: &'static Platform,
    pub docker: Docker,
    /// `dockerd --version`, whether running or not.
    pub dockerd: Option<Version>,
    pub daemon_json: Option<String>,
    pub packages: BTreeMap<String, String>,
    pub binfmt: Vec<BinfmtProbe>,
    pub registry_up: bool,
}

/// Reads the host's state for `platforms` (quiet, about a second), with `dpkg-query` that of
/// `packages` (space-separated; unknown names are absent; none without dpkg).
pub fn observe(sh: &Shell, platforms: &[&'static Platform], packages: &str) -> Result<Observed> {
    let host = Platform::host()?;
    let (root, github_actions) = (is_root(sh), github_actions());
    let os = ["/etc/os-release", "/usr/lib/os-release"].map(fs::read_to_string);
    let known = ["/usr/sbin/dockerd", "/usr/bin/dockerd"].map(PathBuf::from);
    let dockerd = which::which("dockerd").ok().or_else(|| known.into_iter().find(|p| p.exists()));
    let dockerd = dockerd.and_then(|d| stdout(sh, &d.display().to_string(), &["--version"]).ok());
    let format = "${Package}\t${db:Status-Status}\t${Version}\n";
    let dpkg = Cmd::new("dpkg-query").args(["-W", "-f", format]).args(packages.split_whitespace());
    Ok(Observed {
        os: OsRelease::parse(&os.into_iter().find_map(Result::ok).unwrap_or_default()),
        root,
        sudo: !root && github_actions && stdout(sh, "sudo", &["-n", "true"]).is_ok(),
        github_actions,
        // sd_booted(3)
        systemd: Path::new("/run/systemd/system").is_dir(),
        host,
        docker: docker(sh),
        dockerd: dockerd.and_then(|v| parse_dockerd_version(&v)),
        daemon_json: fs::read_to_string("/etc/docker/daemon.json").ok(),
        packages: dpkg.capture(sh).map(|c| parse_dpkg_query(&c.stdout)).unwrap_or_default(),
        binfmt: platforms.iter().copied().filter(|p| *p != host).map(binfmt).collect(),
        registry_up: registry_api_status(registry::Kind::Open.port()) == Some(200),
    })
}

/// Starts `cmd` (`setsid PROGRAM ...`, to survive xtask), stdin `/dev/null`, output appended to
/// `log`. The child is no process-group leader, so setsid(1) does not fork: its pid is the service's.
pub fn spawn_detached(sh: &Shell, cmd: &Cmd, log: &Path) -> Result<Child> {
    if let Some(dir) = log.parent() {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let out = OpenOptions::new().create(true).append(true).open(log);
    let out = out.with_context(|| format!("opening log {}", log.display()))?;
    let mut c = cmd.to_process(sh);
    c.stdin(Stdio::null()).stderr(out.try_clone()?).stdout(out);
    eprintln!("+ {cmd} >> {} 2>&1 < /dev/null &", log.display());
    let p = &cmd.program;
    c.spawn().with_context(|| format!("cannot start `{p}` (is it installed and on PATH?)"))
}

/// The state letter of `/proc/<pid>/stat` (proc(5): the field after the `(comm)`; `Z`: zombie).
pub fn proc_state(stat: &str) -> Option<char> {
    stat[stat.rfind(')')? + 1..].trim_start().chars().next()
}

/// A live (not zombie) process whose `/proc/<pid>/cmdline` contains `program`.
pub fn runs(pid: u32, program: &str) -> bool {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok();
    let live = stat.and_then(|s| proc_state(&s)).is_some_and(|c| c != 'Z' && c != 'X');
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    live && String::from_utf8_lossy(&cmdline).replace('\0', " ").contains(program)
}

/// Calls `done` every `poll_ms` until it says yes (true) or `secs` pass (false).
pub fn wait_for(secs: u64, poll_ms: u64, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !done() {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(poll_ms));
    }
    true
}

/// SIGTERM to `pid`, then up to `secs` for it to exit.
pub fn terminate(sh: &Shell, pid: u32, secs: u64, what: &str) -> Result<()> {
    Cmd::new("kill").args(["-TERM", &pid.to_string()]).run(sh)?;
    let stopped = wait_for(secs, 100, || !runs(pid, ""));
    ensure!(stopped, "{what} (pid {pid}) did not stop within {secs} s after SIGTERM");
    Ok(())
}

/// The last `n` lines of a log file, or a note that it cannot be read.
pub fn log_tail(path: &Path, n: usize) -> String {
    match fs::read(path) {
        Ok(b) => {
            let text = String::from_utf8_lossy(&b);
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(n)..].join("\n")
        }
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_proc_state() {
        let cases: &[(&str, Option<char>)] = &[
            ("2763 (dockerd) S 1 2763 2763 0 -1 4194560 ...", Some('S')),
            ("42 (docker-registry) R 1 42", Some('R')),
            ("7 (a (weird) name) Z 1 7", Some('Z')),
            ("garbage", None),
        ];
        for (stat, want) in cases {
            assert_eq!(proc_state(stat), *want, "{stat}");
        }
        assert!(runs(std::process::id(), "xtask"));
    }
}
