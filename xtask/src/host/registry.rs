//! `cargo xtask registry start|stop|status [--auth]`: a CNCF distribution
//! registry (Debian's `docker-registry` package, `docker-registry serve
//! CONFIG`) on loopback, the default push target outside CI. Its config,
//! data, log and pid file live under `<target dir>/registry/<name>/`.
//!
//! The open one listens on [`LOCAL_REGISTRY`] (`localhost:5000`); the
//! `--auth` one on `localhost:5001` with htpasswd (bcrypt) basic auth, for
//! `docker login` tests: user [`USER`], a random password kept in a 0600
//! file whose path is printed, never the password. dockerd and buildx
//! treat `localhost:PORT` as plain HTTP without configuration.

use std::{
    fs::OpenOptions,
    io::{Read, Write},
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};
use xshell::Shell;

use super::{password_from_bytes, probe, process, registry_config};
use crate::{plan::Cmd, project::LOCAL_REGISTRY};

/// The user name of the `--auth` registry.
pub const USER: &str = "brokkr";

/// Port of the `--auth` registry.
pub const AUTH_PORT: u16 = 5001;

/// Seconds `start` waits for the registry to answer.
const START_WAIT_SECS: u64 = 15;

/// Which loopback registry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// No auth, on [`LOCAL_REGISTRY`]: answers `GET /v2/` with 200.
    Open,
    /// htpasswd auth on [`AUTH_PORT`]: answers `GET /v2/` with 401.
    Auth,
}

impl Kind {
    /// Directory name under `<target>/registry/`: `local` or `auth`.
    pub fn dir_name(self) -> &'static str {
        match self {
            Kind::Open => "local",
            Kind::Auth => "auth",
        }
    }

    /// TCP port on 127.0.0.1 (the open one's comes from [`LOCAL_REGISTRY`]).
    pub fn port(self) -> u16 {
        match self {
            Kind::Open => LOCAL_REGISTRY
                .rsplit_once(':')
                .and_then(|(_, p)| p.parse().ok())
                .unwrap_or(5000),
            Kind::Auth => AUTH_PORT,
        }
    }

    /// The registry host in image references: `localhost:5000`.
    pub fn host(self) -> String {
        format!("localhost:{}", self.port())
    }

    /// The `GET /v2/` status of a healthy registry of this kind.
    pub fn expected_status(self) -> u16 {
        match self {
            Kind::Open => 200,
            Kind::Auth => 401,
        }
    }
}

/// Whether a registry of this kind answers on its port.
pub fn answers(kind: Kind) -> bool {
    probe::registry_api_status(kind.port()) == Some(kind.expected_status())
}

/// The files of one registry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Paths {
    /// `<target>/registry/<name>`.
    pub dir: PathBuf,
    /// `config.yml`, written on every start.
    pub config: PathBuf,
    /// `data/`: the storage root.
    pub data: PathBuf,
    /// `registry.log`: stdout and stderr.
    pub log: PathBuf,
    /// `registry.pid`.
    pub pid: PathBuf,
    /// `htpasswd` (auth only, 0600).
    pub htpasswd: PathBuf,
    /// `password` (auth only, 0600): the password alone, for `--password-stdin`.
    pub password: PathBuf,
}

/// The workspace's target dir ([`crate::target_dir`]), absolute.
fn target_dir(sh: &Shell) -> PathBuf {
    sh.current_dir().join(crate::target_dir())
}

/// The files of the `kind` registry under `target`.
pub fn paths(target: &Path, kind: Kind) -> Paths {
    let dir = target.join("registry").join(kind.dir_name());
    Paths {
        config: dir.join("config.yml"),
        data: dir.join("data"),
        log: dir.join("registry.log"),
        pid: dir.join("registry.pid"),
        htpasswd: dir.join("htpasswd"),
        password: dir.join("password"),
        dir,
    }
}

fn read_pid(p: &Paths) -> Option<u32> {
    std::fs::read_to_string(&p.pid).ok()?.trim().parse().ok()
}

/// The pid from the pid file, when that process is alive and is a registry.
fn our_pid(p: &Paths) -> Option<u32> {
    read_pid(p)
        .filter(|pid| process::alive(*pid) && process::cmdline(*pid).contains("docker-registry"))
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(bytes)?;
    Ok(())
}

/// The `--auth` registry's password: kept from an earlier start, else 32
/// letters and digits from `/dev/urandom`, stored 0600.
fn ensure_password(p: &Paths) -> Result<String> {
    if let Ok(s) = std::fs::read_to_string(&p.password) {
        let s = s.trim().to_owned();
        if !s.is_empty() {
            return Ok(s);
        }
    }
    let mut bytes = [0u8; 128];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .context("reading /dev/urandom")?;
    let pw = password_from_bytes(&bytes, 32).context("not enough random bytes")?;
    write_private(&p.password, pw.as_bytes())?;
    Ok(pw)
}

/// `registry start`: idempotent; when the registry already answers it says
/// so and leaves it. Otherwise writes the config (and for `--auth` the
/// password and bcrypt htpasswd via `htpasswd -niB`), spawns
/// `setsid docker-registry serve CONFIG` detached, records its pid, and
/// waits until `GET /v2/` gives the expected status. Errors show the log's tail.
pub fn start(sh: &Shell, kind: Kind) -> Result<()> {
    let p = paths(&target_dir(sh), kind);
    let host = kind.host();
    if answers(kind) {
        match our_pid(&p) {
            Some(pid) => eprintln!(
                "registry {host} is already running (pid {pid}), data {}",
                p.data.display()
            ),
            None => eprintln!(
                "a registry already answers on {host} (not started by xtask: no live pid in {})",
                p.pid.display()
            ),
        }
        print_login_hint(kind, &p);
        return Ok(());
    }
    if let Some(code) = probe::registry_api_status(kind.port()) {
        bail!(
            "{host} is taken: GET /v2/ there answers {code}, not {}. Debian's docker-registry package runs its \
             own service on :5000: `systemctl disable --now docker-registry` (systemd) or \
             `start-stop-daemon --stop --pidfile /var/run/docker-registry.pid`",
            kind.expected_status(),
        );
    }
    if let Some(pid) = our_pid(&p) {
        bail!(
            "registry pid {pid} (from {}) runs but {host} does not answer GET /v2/ with {}; \
             see {} or run `cargo xtask registry stop{}` first",
            p.pid.display(),
            kind.expected_status(),
            p.log.display(),
            if kind == Kind::Auth { " --auth" } else { "" }
        );
    }
    let program = which::which("docker-registry")
        .ok()
        .or_else(|| Some(PathBuf::from("/usr/bin/docker-registry")).filter(|p| p.exists()))
        .context("`docker-registry` is not installed: run `cargo xtask setup` (it installs Debian's docker-registry)")?;
    std::fs::create_dir_all(&p.data).with_context(|| format!("creating {}", p.data.display()))?;
    let htpasswd = if kind == Kind::Auth {
        let pw = ensure_password(&p)?;
        let cmd = Cmd::new("htpasswd")
            .args(["-niB", USER])
            .stdin(format!("{pw}\n"));
        cmd.echo();
        let out = cmd.read_quiet(sh).context(
            "creating the htpasswd file (htpasswd is in apache2-utils: run `cargo xtask setup`)",
        )?;
        let line = out
            .lines()
            .find(|l| l.starts_with(&format!("{USER}:$2")))
            .with_context(|| format!("`htpasswd -niB` printed no bcrypt entry for {USER}"))?;
        write_private(&p.htpasswd, format!("{line}\n").as_bytes())?;
        Some(p.htpasswd.as_path())
    } else {
        None
    };
    let addr = format!("127.0.0.1:{}", kind.port());
    let config = registry_config(&addr, &p.data, htpasswd)?;
    eprintln!("+ write {}", p.config.display());
    std::fs::write(&p.config, config).with_context(|| format!("writing {}", p.config.display()))?;

    let cmd = Cmd::new("setsid")
        .arg(program.display().to_string())
        .arg("serve")
        .arg(p.config.display().to_string());
    let mut child = process::spawn_detached(sh, &cmd, &p.log)?;
    let pid = child.id();
    std::fs::write(&p.pid, format!("{pid}\n"))
        .with_context(|| format!("writing {}", p.pid.display()))?;
    let deadline = Instant::now() + Duration::from_secs(START_WAIT_SECS);
    loop {
        if let Some(status) = child.try_wait()? {
            let _ = std::fs::remove_file(&p.pid);
            bail!(
                "the registry exited at once ({status}); last lines of {}:\n{}",
                p.log.display(),
                process::log_tail(&p.log, 20)
            );
        }
        let got = probe::registry_api_status(kind.port());
        if got == Some(kind.expected_status()) {
            break;
        }
        if Instant::now() >= deadline {
            bail!(
                "the registry (pid {pid}) did not answer GET http://{addr}/v2/ with {} within {START_WAIT_SECS} s \
                 (got {got:?}); last lines of {}:\n{}",
                kind.expected_status(),
                p.log.display(),
                process::log_tail(&p.log, 20)
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    eprintln!(
        "registry {host} running (pid {pid}): data {}, log {}",
        p.data.display(),
        p.log.display()
    );
    print_login_hint(kind, &p);
    Ok(())
}

fn print_login_hint(kind: Kind, p: &Paths) {
    if kind == Kind::Auth {
        eprintln!(
            "user {USER}, password in {} (mode 0600); log in with:\n  docker login {} -u {USER} --password-stdin < {}",
            p.password.display(),
            kind.host(),
            p.password.display()
        );
    }
}

/// `registry stop`: sends SIGTERM to the pid in the pid file (only if that
/// process is a `docker-registry`) and waits up to 10 s for it to end.
/// Data is kept. Not running is not an error.
pub fn stop(sh: &Shell, kind: Kind) -> Result<()> {
    let p = paths(&target_dir(sh), kind);
    let host = kind.host();
    let Some(pid) = our_pid(&p) else {
        let _ = std::fs::remove_file(&p.pid);
        if answers(kind) {
            bail!("a registry answers on {host} but was not started by xtask (no live pid in {}): stop it yourself", p.pid.display());
        }
        eprintln!("registry {host} is not running");
        return Ok(());
    };
    Cmd::new("kill").args(["-TERM", &pid.to_string()]).run(sh)?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while process::alive(pid) {
        if Instant::now() >= deadline {
            bail!("registry pid {pid} did not stop within 10 s after SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    std::fs::remove_file(&p.pid).with_context(|| format!("removing {}", p.pid.display()))?;
    eprintln!(
        "registry {host} stopped (data kept in {})",
        p.data.display()
    );
    Ok(())
}

/// `cargo xtask registry start|stop|status [--auth]`; `status` exits 1
/// when the registry does not answer.
pub fn run(sh: &Shell, args: &crate::cli::RegistryArgs) -> Result<()> {
    use crate::cli::RegistryAction;
    let kind = if args.auth { Kind::Auth } else { Kind::Open };
    match args.action {
        RegistryAction::Start => start(sh, kind),
        RegistryAction::Stop => stop(sh, kind),
        RegistryAction::Status => {
            if !status(sh, kind)? {
                std::process::exit(1);
            }
            Ok(())
        }
    }
}

/// `registry status`: prints whether it answers; `Ok(false)` when not (the
/// CLI exits 1 then).
pub fn status(sh: &Shell, kind: Kind) -> Result<bool> {
    let p = paths(&target_dir(sh), kind);
    let host = kind.host();
    let got = probe::registry_api_status(kind.port());
    if got == Some(kind.expected_status()) {
        let pid = our_pid(&p).map_or_else(
            || "not started by xtask".to_owned(),
            |pid| format!("pid {pid}"),
        );
        println!(
            "running: {host} ({pid}), GET /v2/ -> {}, data {}",
            kind.expected_status(),
            p.data.display()
        );
        print_login_hint(kind, &p);
        return Ok(true);
    }
    let flag = if kind == Kind::Auth { " --auth" } else { "" };
    match got {
        Some(code) => println!(
            "not a {} registry: {host} answers GET /v2/ with {code}",
            if kind == Kind::Auth {
                "password-protected"
            } else {
                "open"
            }
        ),
        None => println!(
            "not running: nothing answers on {host}; start it: cargo xtask registry start{flag}"
        ),
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_registry_kinds_and_paths() {
        assert_eq!(Kind::Open.host(), "localhost:5000");
        assert_eq!(Kind::Open.host(), LOCAL_REGISTRY);
        assert_eq!(Kind::Auth.host(), "localhost:5001");
        assert_eq!(
            (Kind::Open.expected_status(), Kind::Auth.expected_status()),
            (200, 401)
        );
        let p = paths(Path::new("/w/target"), Kind::Auth);
        assert_eq!(p.config, Path::new("/w/target/registry/auth/config.yml"));
        assert_eq!(p.data, Path::new("/w/target/registry/auth/data"));
        assert_eq!(p.password, Path::new("/w/target/registry/auth/password"));
        assert_eq!(
            paths(Path::new("/t"), Kind::Open).pid,
            Path::new("/t/registry/local/registry.pid")
        );
    }
}
