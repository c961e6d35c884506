//! `cargo xtask smoke`: runs each built image on its platform (QEMU for foreign ones), checks
//! that `--version` reports the image's own architecture, then that an agent reaches a broker
//! on one docker network (`brokkr-agent check`).

use std::{thread::sleep, time::Duration};

use anyhow::{bail, ensure, Context as _, Result};
use clap::Args;
use xshell::Shell;

use crate::{
    diagnose, metadata,
    options::Selection,
    plan::Cmd,
    project::{component, parse_registry, Component, Platform},
    record, tags,
};

#[derive(Debug, Args)]
pub struct SmokeArgs {
    #[command(flatten)]
    pub select: Selection,
    /// Registry prefix of the references to run; default as for `build-image`.
    #[arg(long, env = "BROKKR_REGISTRY", value_parser = parse_registry)]
    pub registry: Option<String>,
    /// Run images by this tag instead of the per-platform references (e.g. a final tag like `main`).
    #[arg(long, value_parser = |s: &str| metadata::check_explicit_tag(s).map(|()| s.to_owned()))]
    pub tag: Option<String>,
    /// Do not install or start missing host pieces (QEMU for foreign platforms); fail with the remedy instead.
    #[arg(long)]
    pub no_setup: bool,
}

/// Whether a `--version` line reports the architecture `machine`
/// (`brokkr-broker 0.1.0 (target aarch64-unknown-linux-gnu, arch aarch64)`).
pub fn version_reports_arch(line: &str, machine: &str) -> bool {
    line.contains(&format!("arch {machine})")) || line.contains(&format!("arch {machine},"))
}

pub fn run(sh: &Shell, args: &SmokeArgs) -> Result<()> {
    let (platforms, components) = (args.select.platforms()?, args.select.components());
    // Foreign platforms run through QEMU: register it when missing.
    crate::host::setup::ensure(sh, &platforms, args.no_setup, None)?;
    let ctx = tags::detect(sh)?;
    let registry = metadata::resolve_registry(&ctx, args.registry.as_deref())?;
    let dirty = record::tree_dirty(sh)?;
    let reference = |c: &Component, p: &Platform| match &args.tag {
        Some(t) => format!("{}:{t}", metadata::image_repository(&registry, c)),
        None => record::reference(&registry, c, &ctx, p, dirty),
    };
    // In the local store or the registry.
    let available = |r: &str| {
        let local = Cmd::new("docker").args(["image", "inspect", "--format", "{{.Id}}", r]);
        let remote = Cmd::new("docker").args(["buildx", "imagetools", "inspect", r]);
        [local, remote].iter().any(|c| c.capture(sh).is_ok_and(|o| o.ok))
    };
    let mut failures = Vec::new();
    for p in &platforms {
        let refs: Vec<String> = components.iter().map(|c| reference(c, p)).collect();
        let missing: Vec<_> = refs.iter().filter(|r| !available(r)).cloned().collect();
        if !missing.is_empty() {
            let arch = p.arch;
            let build = match &args.tag {
                Some(_) => format!("push and `cargo xtask manifest` for {p} first"),
                None => format!(
                    "build them first: cargo xtask images --platform {arch} --registry {registry}"
                ),
            };
            let missing = missing.join(", ");
            println!("FAIL  {p}: not in the local store nor the registry: {missing}; {build}");
            failures.push(format!("{p}: missing {missing}"));
            continue;
        }
        for r in &refs {
            let what = format!("{r} ({p})");
            let version = check_version(sh, r, p).map(|line| format!("{what}: {line}"));
            failures.extend(outcome(version, &what, r));
        }
        if components.len() == crate::project::COMPONENTS.len() {
            let (broker, agent) =
                (reference(component("broker")?, p), reference(component("agent")?, p));
            let what = format!("agent reaches broker ({p})");
            let ok = format!("agent reaches broker on one network ({p})");
            let network = check_network(sh, &broker, &agent, p).map(|()| ok);
            failures.extend(outcome(network, &what, &format!("network {p}")));
        }
    }
    if !failures.is_empty() {
        bail!("{} smoke check(s) failed:\n{}", failures.len(), failures.join("\n"));
    }
    Ok(())
}

/// Prints `ok    <ok line>`, or `FAIL  <what>: <error>` and gives `<key>: <error>` for the summary.
fn outcome(r: Result<String>, what: &str, key: &str) -> Option<String> {
    let e = r.map(|ok| println!("ok    {ok}")).err()?;
    println!("FAIL  {what}: {e:#}");
    Some(format!("{key}: {e:#}"))
}

fn check_version(sh: &Shell, reference: &str, p: &Platform) -> Result<String> {
    // `--version` needs no network: a check that passes offline too.
    let cmd = Cmd::new("docker").args(["run", "--rm", "--network", "none", "--platform", p.name]);
    let cmd = cmd.args([reference, "--version"]);
    cmd.echo();
    let out = cmd.capture(sh)?;
    let hint = diagnose::explain(&out.stderr).map(|h| format!("\n{h}")).unwrap_or_default();
    ensure!(out.ok, "`--version` failed: {}{hint}", out.stderr.trim());
    let line = out.stdout.trim().to_owned();
    if !version_reports_arch(&line, p.machine) {
        bail!("`--version` says `{line}`, expected `arch {}` for {p}", p.machine);
    }
    Ok(line)
}

/// Starts the broker on a fresh network, then `brokkr-agent check --broker-url http://broker:3000`
/// until it passes (30 tries, 1 s apart: emulated start-up is slow). Cleans up either way.
fn check_network(sh: &Shell, broker: &str, agent: &str, p: &Platform) -> Result<()> {
    let id = format!("brokkr-smoke-{}-{}", p.arch, std::process::id());
    let (name, url) =
        (format!("{id}-broker"), format!("http://broker:{}", component("broker")?.port));
    let docker = |args: &[&str]| Cmd::new("docker").args(args.iter().copied());
    docker(&["network", "create", &id]).read(sh).context("creating the smoke network")?;
    let result = (|| -> Result<()> {
        let start = ["run", "-d", "--rm", "--name", &name, "--network", &id, "--network-alias"];
        let start = docker(&start).args(["broker", "--platform", p.name, broker]);
        start.read(sh).context("starting the broker")?;
        let check = docker(&["run", "--rm", "--network", &id, "--platform", p.name, agent]);
        let check = check.args(["check", "--broker-url", &url]);
        check.echo();
        let mut last = String::new();
        for _ in 0..30 {
            let out = check.capture(sh)?;
            if out.ok {
                return Ok(());
            }
            last = format!("{}{}", out.stdout, out.stderr);
            sleep(Duration::from_secs(1));
        }
        bail!("the agent never reached the broker: {}", last.trim())
    })();
    let logs = docker(&["logs", &name]).capture(sh);
    let _ = docker(&["rm", "-f", &name]).capture(sh);
    let _ = docker(&["network", "rm", &id]).capture(sh);
    if let (Err(_), Ok(l)) = (&result, logs) {
        eprintln!("broker logs:\n{}{}", l.stdout, l.stderr);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_lines() {
        let cases = [
            (
                "brokkr-broker 0.1.0 (target aarch64-unknown-linux-gnu, arch aarch64)",
                "aarch64",
                true,
            ),
            (
                "brokkr-broker 0.1.0 (target aarch64-unknown-linux-gnu, arch aarch64, commit abc)",
                "aarch64",
                true,
            ),
            (
                "brokkr-broker 0.1.0 (target x86_64-unknown-linux-gnu, arch x86_64)",
                "aarch64",
                false,
            ),
            ("brokkr-agent 0.1.0 (target x86_64-unknown-linux-gnu, arch x86_64)", "x86_64", true),
        ];
        for (line, machine, want) in cases {
            assert_eq!(version_reports_arch(line, machine), want, "{line}");
        }
    }

    #[test]
    fn tag_is_checked_against_docker_grammar() {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            smoke: SmokeArgs,
        }
        let parse = |tag| <Cli as clap::Parser>::try_parse_from(["smoke", "--tag", tag]);
        assert_eq!(parse("main").unwrap().smoke.tag.as_deref(), Some("main"));
        let err = parse("bad tag").err().unwrap().to_string();
        assert!(err.contains("invalid --tag `bad tag`"), "{err}");
    }
}
