//! `cargo xtask registry start|stop|status [--auth]`: Debian's `docker-registry serve CONFIG` on
//! loopback, open on `localhost:5000` (the default push target outside CI), or `--auth` on
//! `localhost:5001` with htpasswd; state per machine ([`state_dir`]), shared by every checkout.

use std::{
    fmt, fs,
    io::{Read, Write},
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
};

use anyhow::{bail, ensure, Context, Result};
use clap::{Args, Subcommand};
use serde::{Deserialize, Serialize};
use xshell::Shell;

use super::probe;
use crate::{
    plan::Cmd,
    project::{AUTH_PORT, LOCAL_REGISTRY},
};

#[derive(Debug, Args)]
pub struct RegistryArgs {
    #[command(subcommand)]
    pub action: RegistryAction,
    /// The htpasswd-protected registry (user brokkr, password file printed) instead of the open one.
    #[arg(long, global = true)]
    pub auth: bool,
}

#[derive(Debug, Clone, Copy, Subcommand)]
pub enum RegistryAction {
    /// Start it (detached) unless it already answers; wait until it does.
    Start,
    /// Stop the one started by `start`, from any checkout (data is kept).
    Stop,
    /// Say whether it answers and who started it; exit 1 when it does not answer.
    Status,
}

pub const USER: &str = "brokkr";
const START_WAIT_SECS: u64 = 15;

/// `Open` answers `GET /v2/` with 200, `Auth` with 401.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Open,
    Auth,
}

impl Kind {
    /// Directory under [`state_dir`], `GET /v2/` status when healthy, flag.
    fn row(self) -> (&'static str, u16, &'static str) {
        [("local", 200, ""), ("auth", 401, " --auth")][self as usize]
    }

    pub fn port(self) -> u16 {
        let open = LOCAL_REGISTRY.rsplit_once(':').and_then(|(_, p)| p.parse().ok());
        [open.unwrap_or(5000), AUTH_PORT][self as usize]
    }

    /// `localhost:5000`, as in image references.
    pub fn host(self) -> String {
        format!("localhost:{}", self.port())
    }
}

/// `$BROKKR_STATE_DIR/registry` when set, else `/var/lib/brokkr/registry` for root, else
/// `$XDG_STATE_HOME/brokkr/registry` (default `~/.local/state`). `env` looks up a variable.
pub fn state_dir(root: bool, env: impl Fn(&str) -> Option<String>) -> PathBuf {
    let env = |k: &str| env(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    let home = || env("HOME").unwrap_or_else(|| "/tmp".into());
    let user =
        || env("XDG_STATE_HOME").unwrap_or_else(|| home().join(".local/state")).join("brokkr");
    let root = root.then(|| PathBuf::from("/var/lib/brokkr"));
    env("BROKKR_STATE_DIR").or(root).unwrap_or_else(user).join("registry")
}

/// The files of one registry under `<state>/<kind>`; `config.yml` is written on every start,
/// `htpasswd` and `password` (the password alone, for `--password-stdin`) are 0600.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Paths {
    pub config: PathBuf,
    pub data: PathBuf,
    pub log: PathBuf,
    pub owner: PathBuf,
    pub htpasswd: PathBuf,
    pub password: PathBuf,
}

pub fn paths(state: &Path, kind: Kind) -> Paths {
    let f = |name: &str| state.join(kind.row().0).join(name);
    let (config, data, log, owner) =
        (f("config.yml"), f("data"), f("registry.log"), f("owner.json"));
    Paths { config, data, log, owner, htpasswd: f("htpasswd"), password: f("password") }
}

/// `owner.json`: who started a registry (`checkout`: where `registry start` ran).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    pub checkout: PathBuf,
    pub pid: u32,
    pub port: u16,
    pub data: PathBuf,
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (pid, port, from, data) =
            (self.pid, self.port, self.checkout.display(), self.data.display());
        write!(f, "pid {pid}, port {port}, started from {from}, data {data}")
    }
}

/// This machine's paths, the recorded owner when its process is a live registry, and the
/// status `GET /v2/` answers with: what `start`, `stop` and `status` decide on.
fn look(sh: &Shell, kind: Kind) -> (Paths, Option<Owner>, Option<u16>) {
    let p = paths(&state_dir(probe::is_root(sh), |k| std::env::var(k).ok()), kind);
    let text = fs::read_to_string(&p.owner).unwrap_or_default();
    let o =
        serde_json::from_str::<Owner>(&text).ok().filter(|o| probe::runs(o.pid, "docker-registry"));
    (p, o, probe::registry_api_status(kind.port()))
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    let f = fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path);
    f.and_then(|mut f| f.write_all(bytes)).with_context(|| format!("writing {}", path.display()))
}

const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// A `len`-character alphanumeric password from random bytes, without modulo
/// bias (bytes >= 248 are skipped). `None` when `bytes` runs out first.
pub fn password_from_bytes(bytes: &[u8], len: usize) -> Option<String> {
    let limit = (256 / ALNUM.len() * ALNUM.len()) as u8;
    let chars = bytes.iter().filter(|b| **b < limit).take(len);
    let s: String = chars.map(|b| ALNUM[usize::from(*b) % ALNUM.len()] as char).collect();
    (s.len() == len).then_some(s)
}

/// The YAML configuration of CNCF distribution 2.8 (its configuration.md):
/// data under `root` with deletes allowed, basic auth given an htpasswd file.
pub fn registry_config(addr: &str, root: &Path, htpasswd: Option<&Path>) -> Result<String> {
    let mut cfg = serde_json::json!({
        "version": "0.1",
        "log": { "level": "info", "fields": { "service": "registry" } },
        "storage": { "filesystem": { "rootdirectory": root }, "delete": { "enabled": true } },
        "http": { "addr": addr, "headers": { "X-Content-Type-Options": ["nosniff"] } },
    });
    if let Some(h) = htpasswd {
        cfg["auth"] = serde_json::json!({ "htpasswd": { "realm": "brokkr-registry", "path": h } });
    }
    Ok(serde_yaml::to_string(&cfg)?)
}

/// For the `--auth` registry: the login command with the password file, or, when that file is
/// missing, that this registry was not started from the shared state and how to replace it.
pub fn login_hint(kind: Kind, p: &Paths, password_exists: bool) -> Option<String> {
    let (host, pw) = (kind.host(), p.password.display());
    Some(match (kind, password_exists) {
        (Kind::Open, _) => return None,
        (_, true) => format!(
            "user {USER}, password in {pw} (mode 0600); log in with:\n  docker login {host} -u {USER} --password-stdin < {pw}"
        ),
        (_, false) => format!(
            "no password file {pw}: the registry on {host} was not started by `cargo xtask registry start --auth` \
             with this machine's state; stop it (`cargo xtask registry stop --auth`, or by its pid), then start it again"
        ),
    })
}

/// `registry start`, idempotent: writes the config (`--auth`: and the password's htpasswd),
/// spawns `setsid docker-registry serve CONFIG`, records its [`Owner`], waits for `GET /v2/`.
pub fn start(sh: &Shell, kind: Kind) -> Result<()> {
    let ((p, owner, got), host, (_, expected, flag)) = (look(sh, kind), kind.host(), kind.row());
    let (log, port) = (p.log.display(), kind.port());
    match (got, owner) {
        (Some(code), o) if code == expected => {
            let owner = p.owner.display();
            match o {
                Some(o) => eprintln!("registry {host} is already running ({o})"),
                None => eprintln!("a registry already answers on {host} (not started by xtask: no live owner in {owner})"),
            }
            login_hint(kind, &p, p.password.is_file()).inspect(|h| eprintln!("{h}"));
            return Ok(());
        }
        (Some(code), _) => bail!(
            "{host} is taken: GET /v2/ there answers {code}, not {expected}. Debian's docker-registry package runs its \
             own service on :5000: `systemctl disable --now docker-registry` (systemd) or \
             `start-stop-daemon --stop --pidfile /var/run/docker-registry.pid`"
        ),
        (None, Some(o)) => bail!(
            "the registry ({o}) runs but {host} does not answer GET /v2/ with {expected}; \
             see {log} or run `cargo xtask registry stop{flag}` first"
        ),
        (None, None) => {}
    }
    let installed = Some(PathBuf::from("/usr/bin/docker-registry")).filter(|p| p.exists());
    let program = which::which("docker-registry").ok().or(installed).context(
        "`docker-registry` is not installed: run `cargo xtask setup` (it installs Debian's docker-registry)",
    )?;
    fs::create_dir_all(&p.data).with_context(|| format!("creating {}", p.data.display()))?;
    let htpasswd = (kind == Kind::Auth).then(|| write_htpasswd(sh, &p)).transpose()?;
    let addr = format!("127.0.0.1:{port}");
    eprintln!("+ write {}", p.config.display());
    let config = registry_config(&addr, &p.data, htpasswd)?;
    fs::write(&p.config, config).with_context(|| format!("writing {}", p.config.display()))?;
    let serve = [program.as_path(), Path::new("serve"), &p.config].map(|a| a.display().to_string());
    let mut child = probe::spawn_detached(sh, &Cmd::new("setsid").args(serve), &p.log)?;
    let pid = child.id();
    let owner = Owner { checkout: sh.current_dir(), pid, port, data: p.data.clone() };
    let json = serde_json::to_string_pretty(&owner)?;
    fs::write(&p.owner, json).with_context(|| format!("writing {}", p.owner.display()))?;
    let (mut exited, mut got) = (None, None);
    let up = probe::wait_for(START_WAIT_SECS, 200, || {
        exited = child.try_wait().transpose();
        got = probe::registry_api_status(port);
        exited.is_some() || got == Some(expected)
    });
    if let Some(status) = exited {
        let _ = fs::remove_file(&p.owner);
        let (status, tail) = (status?, probe::log_tail(&p.log, 20));
        bail!("the registry exited at once ({status}); last lines of {log}:\n{tail}");
    }
    ensure!(
        up,
        "the registry (pid {pid}) did not answer GET http://{addr}/v2/ with {expected} within {START_WAIT_SECS} s \
         (got {got:?}); last lines of {log}:\n{}",
        probe::log_tail(&p.log, 20)
    );
    eprintln!("registry {host} running ({owner}), log {log}");
    login_hint(kind, &p, p.password.is_file()).inspect(|h| eprintln!("{h}"));
    Ok(())
}

/// The `--auth` registry's htpasswd (bcrypt, `htpasswd -niB`) from its password: kept from an
/// earlier start, else 32 letters and digits from `/dev/urandom`, stored 0600.
fn write_htpasswd<'a>(sh: &Shell, p: &'a Paths) -> Result<&'a Path> {
    let mut pw = fs::read_to_string(&p.password).unwrap_or_default().trim().to_owned();
    if pw.is_empty() {
        let mut bytes = [0u8; 128];
        let random = fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes));
        random.context("reading /dev/urandom")?;
        pw = password_from_bytes(&bytes, 32).context("not enough random bytes")?;
        write_private(&p.password, pw.as_bytes())?;
    }
    let cmd = Cmd::new("htpasswd").args(["-niB", USER]).stdin(format!("{pw}\n"));
    let hint = "htpasswd is in apache2-utils: run `cargo xtask setup`";
    let out = cmd.read(sh).with_context(|| format!("creating the htpasswd file ({hint})"))?;
    let line = out.lines().find(|l| l.starts_with(&format!("{USER}:$2")));
    let line =
        line.with_context(|| format!("`htpasswd -niB` printed no bcrypt entry for {USER}"))?;
    write_private(&p.htpasswd, format!("{line}\n").as_bytes())?;
    Ok(&p.htpasswd)
}

/// SIGTERM to the recorded owner, from any checkout; not running is no error.
pub fn stop(sh: &Shell, kind: Kind) -> Result<()> {
    let ((p, o, got), host) = (look(sh, kind), kind.host());
    let Some(o) = o else {
        let _ = fs::remove_file(&p.owner);
        ensure!(
            got != Some(kind.row().1),
            "a registry answers on {host} but was not started by xtask (no live owner in {}): \
             stop it yourself (`ss -ltnp 'sport = :{}'` shows its pid)",
            p.owner.display(),
            kind.port()
        );
        eprintln!("registry {host} is not running");
        return Ok(());
    };
    probe::terminate(sh, o.pid, 10, "registry")?;
    fs::remove_file(&p.owner).with_context(|| format!("removing {}", p.owner.display()))?;
    eprintln!("registry {host} stopped ({o}; data kept)");
    Ok(())
}

/// `cargo xtask registry start|stop|status [--auth]`.
pub fn run(sh: &Shell, args: &RegistryArgs) -> Result<()> {
    let kind = if args.auth { Kind::Auth } else { Kind::Open };
    match args.action {
        RegistryAction::Start => start(sh, kind),
        RegistryAction::Stop => stop(sh, kind),
        RegistryAction::Status => {
            let (p, o, got) = look(sh, kind);
            let (up, line) = status_line(kind, got, o.as_ref(), &p);
            println!("{line}");
            if !up {
                std::process::exit(1)
            }
            login_hint(kind, &p, p.password.is_file()).inspect(|h| eprintln!("{h}"));
            Ok(())
        }
    }
}

/// `registry status`'s line, and whether the registry answers as it should.
pub fn status_line(kind: Kind, got: Option<u16>, o: Option<&Owner>, p: &Paths) -> (bool, String) {
    let (host, (_, expected, flag)) = (kind.host(), kind.row());
    let line = match got {
        Some(code) if code == expected => {
            let nobody = || format!("not started by xtask: no live owner in {}", p.owner.display());
            let who = o.map_or_else(nobody, Owner::to_string);
            return (true, format!("running: {host} ({who}), GET /v2/ -> {code}"));
        }
        Some(code) => {
            let what = ["open", "password-protected"][kind as usize];
            format!("not a {what} registry: {host} answers GET /v2/ with {code}")
        }
        None => format!(
            "not running: nothing answers on {host}; start it: cargo xtask registry start{flag}"
        ),
    };
    (false, line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_registry_kinds_and_paths() {
        assert_eq!(Kind::Open.host(), "localhost:5000");
        assert_eq!(Kind::Open.host(), LOCAL_REGISTRY);
        assert_eq!(Kind::Auth.host(), "localhost:5001");
        assert_eq!((Kind::Open.row().1, Kind::Auth.row().1), (200, 401));
        let p = paths(Path::new("/var/lib/brokkr/registry"), Kind::Auth);
        assert_eq!(p.config, Path::new("/var/lib/brokkr/registry/auth/config.yml"));
        assert_eq!(p.data, Path::new("/var/lib/brokkr/registry/auth/data"));
        assert_eq!(p.password, Path::new("/var/lib/brokkr/registry/auth/password"));
        assert_eq!(paths(Path::new("/t"), Kind::Open).owner, Path::new("/t/local/owner.json"));
    }

    #[test]
    fn host_registry_state_is_per_machine() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
        };
        type Vars = &'static [(&'static str, &'static str)];
        let cases: &[(&str, bool, Vars, &str)] = &[
            ("root", true, &[("HOME", "/root")], "/var/lib/brokkr/registry"),
            ("root ignores XDG", true, &[("XDG_STATE_HOME", "/x")], "/var/lib/brokkr/registry"),
            (
                "user with XDG_STATE_HOME",
                false,
                &[("XDG_STATE_HOME", "/home/u/.st"), ("HOME", "/home/u")],
                "/home/u/.st/brokkr/registry",
            ),
            (
                "user, XDG default",
                false,
                &[("HOME", "/home/u")],
                "/home/u/.local/state/brokkr/registry",
            ),
            (
                "empty XDG is unset",
                false,
                &[("XDG_STATE_HOME", ""), ("HOME", "/home/u")],
                "/home/u/.local/state/brokkr/registry",
            ),
            ("override", true, &[("BROKKR_STATE_DIR", "/srv/b")], "/srv/b/registry"),
        ];
        for (name, root, vars, want) in cases {
            assert_eq!(state_dir(*root, env(vars)), Path::new(want), "{name}");
        }
        // Two checkouts, one machine: the same files, whatever the checkout.
        let a = paths(&state_dir(true, env(&[])), Kind::Auth);
        let b = paths(&state_dir(true, env(&[("PWD", "/other/checkout")])), Kind::Auth);
        assert_eq!(a, b);
    }

    #[test]
    fn host_registry_status_and_hints() {
        let p = paths(Path::new("/var/lib/brokkr/registry"), Kind::Auth);
        let owner =
            Owner { checkout: "/work/a".into(), pid: 4242, port: 5001, data: p.data.clone() };
        let json = serde_json::to_string(&owner).unwrap();
        assert_eq!(serde_json::from_str::<Owner>(&json).unwrap(), owner);
        let (up, line) = status_line(Kind::Auth, Some(401), Some(&owner), &p);
        assert!(up);
        assert_eq!(
            line,
            "running: localhost:5001 (pid 4242, port 5001, started from /work/a, \
             data /var/lib/brokkr/registry/auth/data), GET /v2/ -> 401"
        );
        let (up, line) = status_line(Kind::Auth, Some(401), None, &p);
        assert!(up && line.contains("not started by xtask"), "{line}");
        let (up, line) = status_line(Kind::Auth, Some(200), None, &p);
        assert!(!up && line.contains("not a password-protected registry"), "{line}");
        let (up, line) = status_line(Kind::Open, None, None, &p);
        assert!(!up && line.ends_with("cargo xtask registry start"), "{line}");
        let (_, line) = status_line(Kind::Auth, None, None, &p);
        assert!(line.ends_with("cargo xtask registry start --auth"), "{line}");

        let hint = login_hint(Kind::Auth, &p, true).unwrap();
        assert!(
            hint.contains("--password-stdin < /var/lib/brokkr/registry/auth/password"),
            "{hint}"
        );
        // issue 15 item 7: never point to a password file that does not exist
        let hint = login_hint(Kind::Auth, &p, false).unwrap();
        assert!(
            hint.starts_with("no password file /var/lib/brokkr/registry/auth/password"),
            "{hint}"
        );
        assert!(hint.contains("registry stop --auth"), "{hint}");
        assert_eq!(login_hint(Kind::Open, &p, true), None);
    }

    #[test]
    fn host_password_and_config() {
        let bytes: Vec<u8> = (0..=255).collect();
        let pw = password_from_bytes(&bytes, 40).unwrap();
        assert_eq!(pw.len(), 40);
        assert!(pw.chars().all(|c| c.is_ascii_alphanumeric()));
        assert!(pw.starts_with("ABCDEFGHIJ"));
        // 248..=255 would bias the alphabet: they are skipped, not wrapped.
        assert_eq!(password_from_bytes(&[248, 255, 0, 61], 2).as_deref(), Some("A9"));
        assert_eq!(password_from_bytes(&[250, 1], 2), None);
    }

    #[test]
    fn host_registry_config() {
        let root = Path::new("/w/target/registry/local/data");
        let open = registry_config("127.0.0.1:5000", root, None).unwrap();
        let v: serde_yaml::Value = serde_yaml::from_str(&open).unwrap();
        assert_eq!(v["version"].as_str(), Some("0.1"));
        assert_eq!(v["http"]["addr"].as_str(), Some("127.0.0.1:5000"));
        assert_eq!(
            v["storage"]["filesystem"]["rootdirectory"].as_str(),
            Some("/w/target/registry/local/data")
        );
        assert_eq!(v["storage"]["delete"]["enabled"].as_bool(), Some(true));
        assert!(v.get("auth").is_none());

        let auth = registry_config("127.0.0.1:5001", root, Some(Path::new("/w/htpasswd"))).unwrap();
        let v: serde_yaml::Value = serde_yaml::from_str(&auth).unwrap();
        assert_eq!(v["auth"]["htpasswd"]["path"].as_str(), Some("/w/htpasswd"));
        assert_eq!(v["auth"]["htpasswd"]["realm"].as_str(), Some("brokkr-registry"));
    }
}
