//! Read-only look-ups of the host's state: quiet commands (`docker info`,
//! `docker buildx inspect`, `dpkg-query`, `df`) and file reads (`/proc`,
//! `/etc`, `/sys`). Nothing here changes the machine. Parsing is in [`super`].

use std::{
    collections::BTreeMap,
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    path::{Path, PathBuf},
    time::Duration,
};

use xshell::Shell;

use super::{
    binfmt_handler_paths, binfmt_status, parse_buildx_version, parse_df_avail,
    parse_dockerd_version, parse_dpkg_query, parse_http_status, BinfmtEntry, BinfmtHandler,
    BinfmtStatus, BridgeOptions, Builder, DockerInfo, OsRelease, Version, BINFMT_DIR,
};
use crate::{plan::Cmd, project::Platform};

/// Runs `program args` quietly: stdout when it exits 0, else its stderr.
fn stdout(sh: &Shell, program: &str, args: &[&str]) -> Result<String, String> {
    let out = Cmd::new(program)
        .args(args.iter().copied())
        .capture(sh)
        .map_err(|e| format!("{e:#}"))?;
    match out.ok {
        true => Ok(out.stdout),
        false => Err(out.stderr.trim().to_owned()),
    }
}

pub fn docker_cli() -> Option<PathBuf> {
    which::which("docker").ok()
}

pub fn docker_client_version(sh: &Shell) -> Option<String> {
    let v = stdout(
        sh,
        "docker",
        &["version", "--format", "{{.Client.Version}}"],
    );
    v.ok()
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// `docker info` as parsed data, or why the engine did not answer (the
/// client's first error line).
pub fn docker_info(sh: &Shell) -> Result<DockerInfo, String> {
    let out = Cmd::new("docker")
        .args(["info", "--format", "{{json .}}"])
        .capture(sh)
        .map_err(|e| format!("{e:#}"))?;
    match DockerInfo::parse(&out.stdout).ok() {
        Some(i) if out.ok && i.answered() => Ok(i),
        other => {
            let from_json = other.and_then(|i| i.server_errors?.into_iter().next());
            let first = out.stderr.lines().map(str::trim).find(|l| !l.is_empty());
            let first = first.map(str::to_owned);
            Err(from_json
                .or(first)
                .unwrap_or_else(|| "the engine did not answer".to_owned()))
        }
    }
}

/// `$DOCKER_HOST` when it names an engine other than the local socket
/// (`tcp://...`, `ssh://...`, another `unix://` path): setup never starts a
/// local engine for it, and a silent one is reported as that address.
pub fn docker_host() -> Option<String> {
    let local = ["", "unix:///var/run/docker.sock", "unix:///run/docker.sock"];
    std::env::var("DOCKER_HOST")
        .ok()
        .filter(|h| !local.contains(&h.as_str()))
}

/// The host interface of the engine's default bridge network: `Ok(None)`
/// when the engine runs without one (`--bridge none`).
pub fn default_bridge(sh: &Shell) -> Result<Option<String>, String> {
    let args = [
        "network",
        "inspect",
        "bridge",
        "--format",
        "{{json .Options}}",
    ];
    match stdout(sh, "docker", &args) {
        Ok(json) => BridgeOptions::interface(&json)
            .map(Some)
            .map_err(|e| format!("{e:#}")),
        Err(e) if e.contains("not found") => Ok(None),
        Err(e) => Err(e),
    }
}

/// Whether the network interface `name` exists here (`/sys/class/net/<name>`).
pub fn interface_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

/// The installed `dockerd`'s version (`dockerd --version`), whether or not it runs.
pub fn dockerd_version(sh: &Shell) -> Option<Version> {
    let path = which::which("dockerd").ok().or_else(|| {
        let known = ["/usr/sbin/dockerd", "/usr/bin/dockerd"];
        known.iter().map(PathBuf::from).find(|p| p.exists())
    })?;
    parse_dockerd_version(&stdout(sh, &path.display().to_string(), &["--version"]).ok()?)
}

/// `None` when the plugin is missing.
pub fn buildx_version(sh: &Shell) -> Option<Version> {
    parse_buildx_version(&stdout(sh, "docker", &["buildx", "version"]).ok()?)
}

/// The current builder (`docker buildx inspect`), or the error buildx printed.
pub fn builder(sh: &Shell) -> Result<Builder, String> {
    Builder::parse(&stdout(sh, "docker", &["buildx", "inspect"])?).map_err(|e| format!("{e:#}"))
}

/// What the host has for emulating one foreign platform: whether
/// binfmt_misc is mounted, the first handler file found
/// ([`binfmt_handler_paths`]) with its definition, the entry name (the
/// handler's, else `qemu-<machine>`) and the registered entry.
#[derive(Clone, Debug)]
pub struct BinfmtProbe {
    pub platform: &'static Platform,
    pub mounted: bool,
    pub handler: Option<(String, BinfmtHandler)>,
    pub entry_name: String,
    pub entry: Option<BinfmtEntry>,
}

impl BinfmtProbe {
    pub fn status(&self) -> BinfmtStatus {
        binfmt_status(self.entry.as_ref(), self.handler.as_ref().map(|(_, h)| h))
    }
}

/// Looks at the handler files and the kernel's table for `p`. A malformed
/// handler file counts as absent.
pub fn binfmt(p: &'static Platform) -> BinfmtProbe {
    let handler = binfmt_handler_paths(p.machine)
        .into_iter()
        .find_map(|path| {
            let h = BinfmtHandler::parse(&std::fs::read_to_string(&path).ok()?).ok()?;
            Some((path, h))
        });
    let default = format!("qemu-{}", p.machine);
    let read = |name: &str| {
        let text = std::fs::read_to_string(Path::new(BINFMT_DIR).join(name)).ok()?;
        Some(BinfmtEntry::parse(&text))
    };
    let mut entry_name = handler
        .as_ref()
        .map_or_else(|| default.clone(), |(_, h)| h.name.clone());
    let mut entry = read(&entry_name);
    if entry.is_none() && entry_name != default {
        entry = read(&default);
        if entry.is_some() {
            entry_name = default;
        }
    }
    let mounted = Path::new(BINFMT_DIR).join("register").exists();
    BinfmtProbe {
        platform: p,
        mounted,
        handler,
        entry_name,
        entry,
    }
}

/// Whether an enabled handler with the `F` flag is registered for `p`
/// (usable for builds, even when stale: see [`BinfmtStatus`]).
pub fn binfmt_usable(p: &'static Platform) -> bool {
    binfmt(p).entry.is_some_and(|e| e.usable())
}

/// `/etc/os-release` (or `/usr/lib/os-release`), parsed; empty when neither exists.
pub fn os_release() -> OsRelease {
    ["/etc/os-release", "/usr/lib/os-release"]
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())
        .map(|t| OsRelease::parse(&t))
        .unwrap_or_default()
}

pub fn is_root(sh: &Shell) -> bool {
    stdout(sh, "id", &["-u"]).is_ok_and(|s| s.trim() == "0")
}

/// Whether `sudo -n true` works (password-less sudo, as on GitHub's runners).
pub fn sudo_works(sh: &Shell) -> bool {
    stdout(sh, "sudo", &["-n", "true"]).is_ok()
}

/// Whether this runs in GitHub Actions (`GITHUB_ACTIONS=true`, set on every runner).
///
/// `cargo xtask workflow run` sets `GITHUB_ACTIONS=true` for the steps it
/// replays, and `BROKKR_WORKFLOW_RUN=1` so that host setup still treats
/// this machine as what it is.
pub fn github_actions() -> bool {
    std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true")
        && std::env::var_os("BROKKR_WORKFLOW_RUN").is_none()
}

/// Whether systemd is the init system (sd_booted(3): `/run/systemd/system` exists).
pub fn systemd() -> bool {
    Path::new("/run/systemd/system").is_dir()
}

/// Installed package -> version for the given names (`dpkg-query`); empty
/// when dpkg is missing. Unknown names are simply absent (dpkg-query then
/// exits 1 but still prints the known ones).
pub fn dpkg_packages(sh: &Shell, names: &[&str]) -> BTreeMap<String, String> {
    Cmd::new("dpkg-query")
        .args(["-W", "-f", "${Package}\t${db:Status-Status}\t${Version}\n"])
        .args(names.iter().copied())
        .capture(sh)
        .map(|c| parse_dpkg_query(&c.stdout))
        .unwrap_or_default()
}

/// Free bytes on the filesystem holding `path` (`df -B1 --output=avail`).
pub fn df_avail(sh: &Shell, path: &Path) -> Option<u64> {
    let path = path.display().to_string();
    parse_df_avail(&stdout(sh, "df", &["-B1", "--output=avail", &path]).ok()?)
}

/// The HTTP status of `GET /v2/` on `127.0.0.1:port` (the registry API's
/// version check: 200 when open, 401 when it wants credentials); `None`
/// when nothing answers HTTP within 2 s.
pub fn registry_api_status(port: u16) -> Option<u16> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let timeout = Some(Duration::from_secs(2));
    let mut s = TcpStream::connect_timeout(&addr, timeout?).ok()?;
    s.set_read_timeout(timeout).ok()?;
    s.set_write_timeout(timeout).ok()?;
    let request =
        format!("GET /v2/ HTTP/1.0\r\nHost: localhost:{port}\r\nConnection: close\r\n\r\n");
    s.write_all(request.as_bytes()).ok()?;
    let (mut buf, mut got) = ([0u8; 256], Vec::new());
    while !got.contains(&b'\n') && got.len() < 4096 {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    parse_http_status(&String::from_utf8_lossy(&got))
}

/// Local images whose repository starts with `prefix`, as `repository:tag`
/// (`docker image ls --format '{{.Repository}}:{{.Tag}}' 'PREFIX*'`).
pub fn images_with_prefix(sh: &Shell, prefix: &str) -> Result<Vec<String>, String> {
    let pattern = format!("{prefix}*");
    let out = stdout(
        sh,
        "docker",
        &[
            "image",
            "ls",
            "--format",
            "{{.Repository}}:{{.Tag}}",
            &pattern,
        ],
    )?;
    Ok(out
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect())
}
