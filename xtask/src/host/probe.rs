//! Read-only look-ups of the host's state: quiet commands (`docker info`,
//! `docker buildx inspect`, `dpkg-query`, `df`) and file reads (`/proc`,
//! `/etc`). Nothing here changes the machine. Parsing is in [`super`].

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

/// The `docker` CLI's path, from `PATH`.
pub fn docker_cli() -> Option<PathBuf> {
    which::which("docker").ok()
}

/// The client's version (`docker version --format '{{.Client.Version}}'`).
pub fn docker_client_version(sh: &Shell) -> Option<String> {
    Cmd::new("docker")
        .args(["version", "--format", "{{.Client.Version}}"])
        .capture(sh)
        .ok()
        .map(|c| c.stdout.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// `docker info` as parsed data, or why the engine did not answer (the
/// client's first error line).
pub fn docker_info(sh: &Shell) -> Result<DockerInfo, String> {
    let out = Cmd::new("docker")
        .args(["info", "--format", "{{json .}}"])
        .capture(sh)
        .map_err(|e| format!("{e:#}"))?;
    let info = DockerInfo::parse(&out.stdout).ok();
    match info {
        Some(i) if out.ok && i.answered() => Ok(i),
        other => {
            let from_json = other
                .and_then(|i| i.server_errors)
                .and_then(|e| e.into_iter().next());
            let first = out.stderr.lines().map(str::trim).find(|l| !l.is_empty());
            Err(from_json
                .or_else(|| first.map(str::to_owned))
                .unwrap_or_else(|| "the engine did not answer".to_owned()))
        }
    }
}

/// `$DOCKER_HOST` when it names an engine other than the local socket
/// (`tcp://...`, `ssh://...`, another `unix://` path): setup never starts a
/// local engine for it, and a silent one is reported as that address.
pub fn docker_host() -> Option<String> {
    std::env::var("DOCKER_HOST").ok().filter(|h| {
        !h.is_empty() && h != "unix:///var/run/docker.sock" && h != "unix:///run/docker.sock"
    })
}

/// The host interface of the engine's default bridge network, when the
/// engine has one (`docker network inspect bridge`): `Ok(None)` when it
/// runs without (`--bridge none`), `Err` when the engine did not answer.
pub fn default_bridge(sh: &Shell) -> Result<Option<String>, String> {
    let out = Cmd::new("docker")
        .args([
            "network",
            "inspect",
            "bridge",
            "--format",
            "{{json .Options}}",
        ])
        .capture(sh)
        .map_err(|e| format!("{e:#}"))?;
    if !out.ok {
        return if out.stderr.contains("not found") {
            Ok(None)
        } else {
            Err(out.stderr.trim().to_owned())
        };
    }
    BridgeOptions::interface(&out.stdout)
        .map(Some)
        .map_err(|e| format!("{e:#}"))
}

/// Whether the network interface `name` exists on this host (`/sys/class/net/<name>`).
pub fn interface_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

/// The installed `dockerd`'s version (`dockerd --version`), whether or not it runs.
pub fn dockerd_version(sh: &Shell) -> Option<Version> {
    let path = which::which("dockerd").ok().or_else(|| {
        ["/usr/sbin/dockerd", "/usr/bin/dockerd"]
            .iter()
            .map(PathBuf::from)
            .find(|p| p.exists())
    })?;
    let out = Cmd::new(path.display().to_string())
        .arg("--version")
        .capture(sh)
        .ok()?;
    parse_dockerd_version(&out.stdout)
}

/// buildx's version (`docker buildx version`); `None` when the plugin is missing.
pub fn buildx_version(sh: &Shell) -> Option<Version> {
    let out = Cmd::new("docker")
        .args(["buildx", "version"])
        .capture(sh)
        .ok()?;
    if !out.ok {
        return None;
    }
    parse_buildx_version(&out.stdout)
}

/// The current builder (`docker buildx inspect`), or the error buildx printed.
pub fn builder(sh: &Shell) -> Result<Builder, String> {
    let out = Cmd::new("docker")
        .args(["buildx", "inspect"])
        .capture(sh)
        .map_err(|e| format!("{e:#}"))?;
    if !out.ok {
        return Err(out.stderr.trim().to_owned());
    }
    Builder::parse(&out.stdout).map_err(|e| format!("{e:#}"))
}

/// What the host has for emulating one foreign platform.
#[derive(Clone, Debug)]
pub struct BinfmtProbe {
    /// The emulated platform.
    pub platform: &'static Platform,
    /// Whether `/proc/sys/fs/binfmt_misc` is mounted (its `register` file exists).
    pub mounted: bool,
    /// The first handler file found ([`binfmt_handler_paths`]) and its definition.
    pub handler: Option<(String, BinfmtHandler)>,
    /// The entry name: the handler's, else `qemu-<machine>`.
    pub entry_name: String,
    /// The registered entry, if any.
    pub entry: Option<BinfmtEntry>,
}

impl BinfmtProbe {
    /// Ready, stale, unusable or missing ([`binfmt_status`]).
    pub fn status(&self) -> BinfmtStatus {
        binfmt_status(self.entry.as_ref(), self.handler.as_ref().map(|(_, h)| h))
    }
}

/// Looks at the handler files and the kernel's table for `p`. A malformed
/// handler file counts as absent.
pub fn binfmt(p: &'static Platform) -> BinfmtProbe {
    let (handler, entry_name, entry) = binfmt_parts(p);
    BinfmtProbe {
        platform: p,
        mounted: Path::new(BINFMT_DIR).join("register").exists(),
        handler,
        entry_name,
        entry,
    }
}

/// Whether an enabled handler with the `F` flag is registered for `p`
/// (usable for builds, even when stale: see [`BinfmtStatus`]).
pub fn binfmt_usable(p: &Platform) -> bool {
    binfmt_parts(p).2.is_some_and(|e| e.usable())
}

/// The first handler file, the entry name (the handler's, else
/// `qemu-<machine>`) and the registered entry.
fn binfmt_parts(p: &Platform) -> (Option<(String, BinfmtHandler)>, String, Option<BinfmtEntry>) {
    let handler = binfmt_handler_paths(p.machine)
        .into_iter()
        .find_map(|path| {
            let text = std::fs::read_to_string(&path).ok()?;
            BinfmtHandler::parse(&text).ok().map(|h| (path, h))
        });
    let default = format!("qemu-{}", p.machine);
    let mut entry_name = handler
        .as_ref()
        .map_or_else(|| default.clone(), |(_, h)| h.name.clone());
    let read = |name: &str| {
        std::fs::read_to_string(Path::new(BINFMT_DIR).join(name))
            .ok()
            .map(|t| BinfmtEntry::parse(&t))
    };
    let mut entry = read(&entry_name);
    if entry.is_none() && entry_name != default {
        entry = read(&default);
        if entry.is_some() {
            entry_name = default;
        }
    }
    (handler, entry_name, entry)
}

/// `/etc/os-release` (or `/usr/lib/os-release`), parsed; empty when neither exists.
pub fn os_release() -> OsRelease {
    ["/etc/os-release", "/usr/lib/os-release"]
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())
        .map(|t| OsRelease::parse(&t))
        .unwrap_or_default()
}

/// Whether this process runs as root (`id -u` prints 0).
pub fn is_root(sh: &Shell) -> bool {
    Cmd::new("id")
        .arg("-u")
        .read_quiet(sh)
        .is_ok_and(|s| s == "0")
}

/// Whether `sudo -n true` works (password-less sudo, as on GitHub's runners).
pub fn sudo_works(sh: &Shell) -> bool {
    Cmd::new("sudo")
        .args(["-n", "true"])
        .capture(sh)
        .is_ok_and(|c| c.ok)
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
/// when dpkg is missing. Unknown names are simply absent.
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
    let out = Cmd::new("df")
        .args(["-B1", "--output=avail"])
        .arg(path.display().to_string())
        .capture(sh)
        .ok()?;
    parse_df_avail(&out.stdout)
}

/// The HTTP status of `GET /v2/` on `127.0.0.1:port` (the registry API's
/// version check: 200 when open, 401 when it wants credentials); `None`
/// when nothing answers HTTP within 2 s.
pub fn registry_api_status(port: u16) -> Option<u16> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let timeout = Duration::from_secs(2);
    let mut s = TcpStream::connect_timeout(&addr, timeout).ok()?;
    s.set_read_timeout(Some(timeout)).ok()?;
    s.set_write_timeout(Some(timeout)).ok()?;
    write!(
        s,
        "GET /v2/ HTTP/1.0\r\nHost: localhost:{port}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = [0u8; 256];
    let mut got = Vec::new();
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
    let out = Cmd::new("docker")
        .args(["image", "ls", "--format", "{{.Repository}}:{{.Tag}}"])
        .arg(format!("{prefix}*"))
        .capture(sh)
        .map_err(|e| format!("{e:#}"))?;
    if !out.ok {
        return Err(out.stderr.trim().to_owned());
    }
    Ok(out
        .stdout
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect())
}
