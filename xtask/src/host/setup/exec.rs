//! Running setup: print the plan, run its steps (what each [`Step`] prints and does), verify.

use std::{
    fmt, fs,
    path::Path,
    time::{Duration, Instant, SystemTime},
};

use anyhow::{anyhow, bail, ensure, Context, Result};
use xshell::Shell;

use super::{
    plan, Mode, PlanOpts, SetupArgs, Step, DEBIAN_MIRROR, DOCKERD_LOG, DOCKERD_PID,
    DOCKERD_WAIT_SECS as WAIT, WATCHED_PACKAGES,
};
use crate::{
    host::{
        binfmt_handler_paths,
        doctor::{self, Check, Status},
        probe, registry, BinfmtEntry, BINFMT_DIR as DIR,
    },
    plan::{shell_quote, Cmd},
    project::{Platform, PlatformList},
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
            Step::Write(path, text) => {
                let path = shell_quote(&path.display().to_string());
                write!(f, "printf '%s' {} > {path}", shell_quote(text))
            }
            Step::BinfmtRegister(_, entry, conf) => write!(
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
        for e in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
            let (e, newer) = (e?, |t| best.as_ref().is_none_or(|(bt, _)| t > *bt));
            let (name, t) =
                (e.file_name().to_string_lossy().into_owned(), e.metadata()?.modified()?);
            if name.starts_with(&*stem) && name.ends_with(suffix) && newer(t) {
                best = Some((t, e.path().display().to_string()));
            }
        }
        *a = best.with_context(|| format!("no {a} after `apt-get download`"))?.1;
    }
    Ok(out)
}

/// From the `binfmt.d` file (binfmt-misc.rst: `-1` to an existing entry, then the line to
/// `register`), else binfmt-support's `update-binfmts`; then checks it is usable.
fn register_binfmt(sh: &Shell, machine: &str) -> Result<()> {
    let name = match probe::binfmt_handler(machine).transpose()? {
        Some((path, h)) => {
            let entry = Path::new(DIR).join(&h.name);
            if entry.exists() {
                eprintln!("+ echo -1 > {}", entry.display());
                let unregister = fs::write(&entry, "-1");
                unregister.with_context(|| format!("unregistering {}", entry.display()))?;
            }
            eprintln!("+ cat {path} > {DIR}/register");
            let register = fs::write(Path::new(DIR).join("register"), format!("{}\n", h.line));
            register.with_context(|| format!("registering {path} (is binfmt_misc mounted?)"))?;
            h.name
        }
        None => {
            let name = format!("qemu-{machine}");
            if !Path::new("/usr/share/binfmts").join(&name).exists() {
                let paths = binfmt_handler_paths(machine).join(", ");
                bail!("no binfmt handler for {machine}: none of {paths} exists (is qemu-user-binfmt installed?)");
            }
            Cmd::new("update-binfmts").args(["--enable", &name]).run(sh)?;
            name
        }
    };
    let text = fs::read_to_string(Path::new(DIR).join(&name)).unwrap_or_default();
    let e = BinfmtEntry::parse(&text);
    ensure!(e.usable(), "{name} is registered but not usable in containers: {text}");
    eprintln!("    {name}: {} (flags {})", e.interpreter, e.flags);
    Ok(())
}

/// On timeout the error carries the tail of [`DOCKERD_LOG`].
fn wait_docker(sh: &Shell) -> Result<()> {
    let mut last = Err(String::new());
    probe::wait_for(WAIT, 1000, || {
        last = probe::docker_info(sh, None);
        last.is_ok()
    });
    let i = last.map_err(|e| {
        let tail = probe::log_tail(Path::new(DOCKERD_LOG), 30);
        anyhow!(
            "dockerd did not answer within {WAIT} s ({e}); last lines of {DOCKERD_LOG}:\n{tail}"
        )
    })?;
    eprintln!("    engine {} answers ({:?})", i.server_version, i.store());
    Ok(())
}

/// The pid in [`DOCKERD_PID`] when that process is a live dockerd.
fn dockerd_pid() -> Result<u32> {
    let pid = fs::read_to_string(DOCKERD_PID).ok().and_then(|s| s.trim().parse().ok());
    let no =
        || format!("no running dockerd in {DOCKERD_PID}: stop the engine yourself, then rerun");
    pid.filter(|pid| probe::runs(*pid, "dockerd")).with_context(no)
}

/// Nothing when the engine answers or a dockerd is starting already (a second one would stop).
fn start_dockerd(sh: &Shell, cmd: &Cmd) -> Result<()> {
    if let Ok(i) = probe::docker_info(sh, None) {
        eprintln!("    engine {} answers already (started by its package)", i.server_version);
        return Ok(());
    }
    if cmd.program == "systemctl" {
        return cmd.run(sh);
    }
    if let Ok(pid) = dockerd_pid() {
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

/// `cargo xtask setup` and [`ensure`]'s provisioning. Not root (and no `sudo -n` on GitHub
/// Actions), or not Debian/Ubuntu: prints the commands and fails. Errors name the failed step.
pub fn run(sh: &Shell, args: &SetupArgs) -> Result<()> {
    let (started, platforms) = (Instant::now(), PlatformList::or_all(args.platform.clone()));
    let o = probe::observe(sh, &platforms, WATCHED_PACKAGES)?;
    let local_registry = args.local_registry || !(args.no_local_registry || o.github_actions);
    let mirror = std::env::var("BROKKR_DEBIAN_MIRROR").unwrap_or_else(|_| DEBIAN_MIRROR.to_owned());
    let mode = if args.build { Mode::Build } else { Mode::Setup { yes: args.yes } };
    let p = plan(&o, &PlanOpts { local_registry, mirror, mode });
    let names: Vec<&str> = platforms.iter().map(|p| p.name).collect();
    let os = Some(o.os.name()).filter(|n| !n.is_empty()).unwrap_or("unknown OS");
    let gh = if o.github_actions { ", GitHub Actions" } else { "" };
    eprintln!("setup for {} on {os} ({}{gh})", names.join(", "), o.host.name);
    let width = p.areas.iter().map(|a| a.name.len()).max().unwrap_or(0);
    for a in &p.areas {
        let label = ["done", "todo", "skip"][a.state as usize];
        eprintln!("{label:<4}  {:<width$}  {}", a.name, a.detail);
    }
    p.notes.iter().for_each(|n| eprintln!("note: {n}"));
    let script = |heading: &str| {
        eprintln!("\n{heading}");
        p.steps.iter().for_each(|(_, s)| println!("{s}"));
    };
    if !p.blocked.is_empty() {
        if !p.steps.is_empty() {
            script("the commands setup would run on a supported host, as root:");
        }
        bail!("setup cannot proceed, nothing was changed:\n  {}", p.blocked.join("\n  "));
    }
    if args.dry_run {
        script(["--dry-run: the steps, in order:", "nothing to do"][p.steps.is_empty() as usize]);
        return Ok(());
    }
    if p.steps.iter().any(|(_, s)| s.root()) && !o.root && !o.sudo {
        script("setup needs root for these steps; run them as root, or run `cargo xtask setup` as root:");
        bail!("not root: nothing was changed");
    }
    if p.restarts_engine() {
        eprintln!("\nsetup restarts the running engine now (see `dockerd` above)");
    }
    let n = p.steps.len();
    for (i, (area, step)) in p.steps.iter().enumerate() {
        eprintln!("==> [{}/{n}] {area}", i + 1);
        let done = match step {
            Step::Run(cmd) => resolve_debs(cmd).and_then(|c| c.run(sh)),
            Step::Write(path, text) => {
                eprintln!("+ {step}");
                fs::write(path, text).with_context(|| format!("writing {}", path.display()))
            }
            Step::BinfmtRegister(machine, ..) => register_binfmt(sh, machine),
            Step::StartDockerd(cmd) => start_dockerd(sh, cmd),
            Step::StopDockerd => {
                dockerd_pid().and_then(|p| probe::terminate(sh, p, WAIT, "dockerd"))
            }
            Step::WaitDocker => wait_docker(sh),
            Step::StartRegistry => registry::start(sh, registry::Kind::Open),
        };
        done.with_context(|| format!("setup failed at step {}/{n} ({area}): {step}", i + 1))?;
    }
    if n == 0 {
        eprintln!("everything is in place");
    }
    // verify: doctor::preflight (relaxed as in relax_store), plus the registry when asked for
    let mut checks = doctor::preflight(sh, &platforms, None)?.0;
    if o.github_actions {
        relax_store(&mut checks, "docker buildx create --use --driver docker-container");
    } else if mode == Mode::Build {
        relax_store(&mut checks, "cargo xtask setup");
    }
    if local_registry {
        let status = probe::registry_api_status(registry::Kind::Open.port());
        checks.push(doctor::check_registry(status, false));
    }
    eprint!("{}", doctor::render(&checks));
    if !doctor::passed(&checks) {
        bail!("setup ran, but these checks still fail:\n{}", doctor::failures(&checks));
    }
    eprintln!("setup: done in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// A classic image store only warns, with `remedy`: on a GitHub runner (builds use a
/// docker-container builder) and for build commands, which use a running engine as it is
/// (buildx refuses what needs the containerd store, case B1).
fn relax_store(checks: &mut [Check], remedy: &str) {
    for c in checks.iter_mut().filter(|c| c.name == "image-store" && c.status == Status::Fail) {
        c.status = Status::Warn;
        c.remedy = Some(remedy.to_owned());
    }
}

/// The host part of every build command: the [`doctor::preflight`] checks on `builder`, quiet
/// when they pass; else, unless `no_setup`, provisions what is absent ([`Mode::Build`]) and
/// checks again. Errors list what is missing and the command that fixes it.
pub fn ensure(
    sh: &Shell,
    platforms: &[&'static Platform],
    no_setup: bool,
    builder: Option<&str>,
) -> Result<()> {
    let mut checks = doctor::preflight(sh, platforms, builder)?.0;
    relax_store(&mut checks, &doctor::setup_remedy(platforms));
    if doctor::passed(&checks) {
        checks.retain(|c| c.name == "image-store" && c.status == Status::Warn);
        eprint!("{}", doctor::render(&checks));
        return Ok(());
    }
    eprint!("{}", doctor::render(&checks));
    if no_setup {
        let names: Vec<&str> = platforms.iter().map(|p| p.name).collect();
        let (names, failed) = (names.join(", "), doctor::failures(&checks));
        bail!("the host is not ready for {names} (--no-setup):\n{failed}");
    }
    let platform = Some(PlatformList(platforms.to_vec()));
    run(sh, &SetupArgs { platform, no_local_registry: true, build: true, ..Default::default() }).context(
        "preparing the host for the build (a build command installs what is missing but never changes a running \
         engine: `cargo xtask setup` does; pass --no-setup to only check)",
    )
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
        assert!(resolve_debs(&missing).unwrap_err().to_string().contains("containerd_*.deb"));
        std::fs::remove_dir_all(&dir)?;
        Ok(())
    }
}
