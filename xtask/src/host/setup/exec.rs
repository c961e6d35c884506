//! Running setup's steps: what each [`Step`] prints and does.

use std::{
    fmt,
    path::Path,
    time::{Duration, Instant, SystemTime},
};

use anyhow::{bail, Context, Result};
use xshell::Shell;

use super::{Step, DOCKERD_LOG, DOCKERD_PID, DOCKERD_WAIT_SECS as WAIT};
use crate::{
    host::{binfmt_handler_paths, probe, registry, BinfmtEntry, BinfmtHandler, BINFMT_DIR as DIR},
    plan::{shell_quote, Cmd},
};

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Run(c) => {
                // .deb globs print unquoted, so the printed line expands them like setup does
                let mut line = c.to_string();
                for a in c.args.iter().filter(|a| a.contains('*')) {
                    let bare = a.replace('*', "");
                    if shell_quote(&bare) == bare {
                        line = line.replace(&shell_quote(a), a);
                    }
                }
                f.write_str(&line)
            }
            Step::Mkdir(d) => write!(f, "mkdir -p {}", shell_quote(&d.display().to_string())),
            Step::Write { path, text } => {
                let (text, path) = (shell_quote(text), shell_quote(&path.display().to_string()));
                write!(f, "printf '%s' {text} > {path}")
            }
            Step::BinfmtRegister { entry, conf, .. } => write!(
                f,
                "{{ [ ! -e {DIR}/{entry} ] || echo -1 > {DIR}/{entry}; }} && cat {conf} > {DIR}/register"
            ),
            Step::StartDockerd(cmd) if cmd.program == "systemctl" => write!(f, "{cmd}"),
            Step::StartDockerd(cmd) => write!(f, "{cmd} >> {DOCKERD_LOG} 2>&1 < /dev/null &"),
            Step::StopDockerd => write!(
                f,
                "kill -TERM $(cat {DOCKERD_PID}) && timeout {WAIT} sh -c 'while [ -e {DOCKERD_PID} ]; do sleep 1; done'"
            ),
            Step::WaitDocker => write!(f, "timeout {WAIT} sh -c 'until docker info >/dev/null 2>&1; do sleep 1; done'"),
            Step::StartRegistry => f.write_str("cargo xtask registry start"),
        }
    }
}

/// Replaces each `DIR/NAME_*.deb` argument with the newest matching file.
fn resolve_debs(cmd: &Cmd) -> Result<Cmd> {
    let mut out = cmd.clone();
    for a in out.args.iter_mut().filter(|a| a.contains('*')) {
        let (prefix, suffix) = a.split_once('*').unwrap_or_default();
        let (prefix, mut best) = (Path::new(prefix), None::<(SystemTime, String)>);
        let dir = prefix.parent().context("deb glob without a directory")?;
        let stem = prefix.file_name().unwrap_or_default().to_string_lossy();
        for e in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
            let e = e?;
            let name = e.file_name().to_string_lossy().into_owned();
            let t = e.metadata()?.modified()?;
            if name.starts_with(&*stem)
                && name.ends_with(suffix)
                && best.as_ref().is_none_or(|(bt, _)| t > *bt)
            {
                best = Some((t, e.path().display().to_string()));
            }
        }
        *a = best
            .with_context(|| format!("no {a} after `apt-get download`"))?
            .1;
    }
    Ok(out)
}

/// Registers the binfmt handler for `machine` from its `binfmt.d` file
/// (binfmt-misc.rst: one write of the definition line to `register`, after
/// `-1` to an existing entry of that name), or with `update-binfmts` when
/// only binfmt-support's definition exists. Checks the result is usable.
fn register_binfmt(sh: &Shell, machine: &str) -> Result<()> {
    let paths = binfmt_handler_paths(machine);
    let found = paths
        .iter()
        .find_map(|path| Some((std::fs::read_to_string(path).ok()?, path)));
    let name = match found {
        Some((text, path)) => {
            let h = BinfmtHandler::parse(&text).with_context(|| format!("reading {path}"))?;
            let entry = Path::new(DIR).join(&h.name);
            if entry.exists() {
                eprintln!("+ echo -1 > {}", entry.display());
                std::fs::write(&entry, "-1")
                    .with_context(|| format!("unregistering {}", entry.display()))?;
            }
            eprintln!("+ cat {path} > {DIR}/register");
            let register = std::fs::write(Path::new(DIR).join("register"), format!("{}\n", h.line));
            register.with_context(|| format!("registering {path} (is binfmt_misc mounted?)"))?;
            h.name
        }
        None => {
            let name = format!("qemu-{machine}");
            if !Path::new("/usr/share/binfmts").join(&name).exists() {
                let paths = paths.join(", ");
                bail!("no binfmt handler for {machine}: none of {paths} exists (is qemu-user-binfmt installed?)");
            }
            Cmd::new("update-binfmts")
                .args(["--enable", &name])
                .run(sh)?;
            name
        }
    };
    let text = std::fs::read_to_string(Path::new(DIR).join(&name)).unwrap_or_default();
    let e = BinfmtEntry::parse(&text);
    if !e.usable() {
        bail!("{name} is registered but not usable in containers: {text}");
    }
    eprintln!("    {name}: {} (flags {})", e.interpreter, e.flags);
    Ok(())
}

/// Polls `docker info` every second for [`WAIT`] seconds; on timeout the
/// error carries the tail of [`DOCKERD_LOG`].
fn wait_docker(sh: &Shell) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(WAIT);
    loop {
        match probe::docker_info(sh, None) {
            Ok(i) => {
                eprintln!("    engine {} answers ({:?})", i.server_version, i.store());
                return Ok(());
            }
            Err(e) if Instant::now() >= deadline => bail!(
                "dockerd did not answer within {WAIT} s ({e}); last lines of {DOCKERD_LOG}:\n{}",
                probe::log_tail(Path::new(DOCKERD_LOG), 30)
            ),
            Err(_) => std::thread::sleep(Duration::from_secs(1)),
        }
    }
}

/// The pid of [`DOCKERD_PID`] when that process is a live dockerd.
fn dockerd_pid() -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(DOCKERD_PID)
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    (comm.trim() == "dockerd" && probe::alive(pid)).then_some(pid)
}

/// [`Step::StopDockerd`]: SIGTERM, then waits up to [`WAIT`] seconds for the exit.
fn stop_dockerd(sh: &Shell) -> Result<()> {
    let no_pid =
        || format!("no running dockerd in {DOCKERD_PID}: stop the engine yourself, then rerun");
    let pid = dockerd_pid().with_context(no_pid)?;
    Cmd::new("kill").args(["-TERM", &pid.to_string()]).run(sh)?;
    let deadline = Instant::now() + Duration::from_secs(WAIT);
    while probe::alive(pid) {
        if Instant::now() >= deadline {
            bail!("dockerd (pid {pid}) did not stop within {WAIT} s after SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(())
}

/// [`Step::StartDockerd`]: nothing when the engine answers or a dockerd is
/// starting already (a second one would stop at once on the pid file).
fn start_dockerd(sh: &Shell, cmd: &Cmd) -> Result<()> {
    if let Ok(i) = probe::docker_info(sh, None) {
        eprintln!(
            "    engine {} answers already (started by its package)",
            i.server_version
        );
        return Ok(());
    }
    if cmd.program == "systemctl" {
        return cmd.run(sh);
    }
    if let Some(pid) = dockerd_pid() {
        eprintln!("    dockerd (pid {pid}) is starting already; waiting for it");
        return Ok(());
    }
    let log = Path::new(DOCKERD_LOG);
    let mut child = probe::spawn_detached(sh, cmd, log)?;
    std::thread::sleep(Duration::from_millis(500));
    if let Some(status) = child.try_wait()? {
        let tail = probe::log_tail(log, 30);
        bail!("`{cmd}` exited at once ({status}); last lines of {DOCKERD_LOG}:\n{tail}");
    }
    eprintln!("    pid {}", child.id());
    Ok(())
}

pub(super) fn execute(sh: &Shell, step: &Step) -> Result<()> {
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
        Step::StartDockerd(cmd) => start_dockerd(sh, cmd),
        Step::StopDockerd => stop_dockerd(sh),
        Step::WaitDocker => wait_docker(sh),
        Step::StartRegistry => registry::start(sh, registry::Kind::Open),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
