//! `cargo xtask smoke`: runs each built image on its platform (QEMU through
//! binfmt for foreign ones), checks that `--version` reports the image's own
//! architecture, then starts broker and agent on one docker network and
//! checks the agent reaches the broker (`brokkr-agent check`).

use std::{thread::sleep, time::Duration};

use anyhow::{bail, Context as _, Result};
use clap::Args;
use xshell::Shell;

use crate::{
    diagnose, metadata,
    options::Selection,
    plan::Cmd,
    project::{component, parse_registry, Platform},
    record, tags,
};

/// Options of `smoke`.
#[derive(Debug, Args)]
pub struct SmokeArgs {
    #[command(flatten)]
    pub select: Selection,
    /// Registry prefix of the references to run; default as for `build-image`.
    #[arg(long, env = "BROKKR_REGISTRY", value_parser = parse_registry)]
    pub registry: Option<String>,
    /// Run images by this tag instead of the per-platform references (e.g. a final tag like `main`).
    #[arg(long, value_parser = parse_tag)]
    pub tag: Option<String>,
    /// Do not install or start missing host pieces (QEMU for foreign platforms); fail with the remedy instead.
    #[arg(long)]
    pub no_setup: bool,
}

fn parse_tag(s: &str) -> Result<String, String> {
    metadata::check_explicit_tag(s).map_err(|e| e.to_string())?;
    Ok(s.to_owned())
}

/// Whether a `--version` line reports the architecture `machine`
/// (`brokkr-broker 0.1.0 (target aarch64-unknown-linux-gnu, arch aarch64)`).
pub fn version_reports_arch(line: &str, machine: &str) -> bool {
    line.contains(&format!("arch {machine})")) || line.contains(&format!("arch {machine},"))
}

pub fn run(sh: &Shell, args: &SmokeArgs) -> Result<()> {
    let platforms = args.select.platforms()?;
    // Foreign platforms run through QEMU: register it when missing.
    crate::host::setup::ensure(sh, &platforms, args.no_setup, None)?;
    let components = args.select.components();
    let ctx = tags::detect(sh)?;
    let registry = metadata::resolve_registry(&ctx, args.registry.as_deref())?;
    let dirty = record::tree_dirty(sh)?;
    let reference = |c: &crate::project::Component, p: &Platform| match &args.tag {
        Some(t) => format!("{}:{t}", metadata::image_repository(&registry, c)),
        None => record::reference(&registry, c, &ctx, p, dirty),
    };
    let mut failures = Vec::new();
    for p in &platforms {
        let missing: Vec<String> = components
            .iter()
            .map(|c| reference(c, p))
            .filter(|r| !image_available(sh, r))
            .collect();
        if !missing.is_empty() {
            let build = match &args.tag {
                Some(_) => format!("push and `cargo xtask manifest` for {p} first"),
                None => format!(
                    "build them first: cargo xtask images --platform {} --registry {registry}",
                    p.arch
                ),
            };
            println!(
                "FAIL  {p}: not in the local store nor the registry: {}; {build}",
                missing.join(", ")
            );
            failures.push(format!("{p}: missing {}", missing.join(", ")));
            continue;
        }
        for c in &components {
            let r = reference(c, p);
            match check_version(sh, &r, p) {
                Ok(line) => println!("ok    {r} ({p}): {line}"),
                Err(e) => {
                    println!("FAIL  {r} ({p}): {e:#}");
                    failures.push(format!("{r}: {e:#}"));
                }
            }
        }
        if components.len() == crate::project::COMPONENTS.len() {
            let broker = reference(component("broker")?, p);
            let agent = reference(component("agent")?, p);
            match check_network(sh, &broker, &agent, p) {
                Ok(()) => println!("ok    agent reaches broker on one network ({p})"),
                Err(e) => {
                    println!("FAIL  agent reaches broker ({p}): {e:#}");
                    failures.push(format!("network {p}: {e:#}"));
                }
            }
        }
    }
    if !failures.is_empty() {
        bail!("{} smoke check(s) failed:\n{}", failures.len(), failures.join("\n"));
    }
    Ok(())
}

fn image_available(sh: &Shell, reference: &str) -> bool {
    let local = Cmd::new("docker").args(["image", "inspect", "--format", "{{.Id}}", reference]);
    let remote = Cmd::new("docker").args(["buildx", "imagetools", "inspect", reference]);
    [local, remote].iter().any(|c| c.capture(sh).is_ok_and(|o| o.ok))
}

fn check_version(sh: &Shell, reference: &str, p: &Platform) -> Result<String> {
    // `--version` needs no network: a check that passes offline too.
    let cmd = Cmd::new("docker")
        .args(["run", "--rm", "--network", "none", "--platform", p.name])
        .args([reference, "--version"]);
    cmd.echo();
    let out = cmd.capture(sh)?;
    if !out.ok {
        let hint = diagnose::explain(&out.stderr).map(|h| format!("\n{h}")).unwrap_or_default();
        bail!("`--version` failed: {}{hint}", out.stderr.trim());
    }
    let line = out.stdout.trim().to_owned();
    if !version_reports_arch(&line, p.machine) {
        bail!("`--version` says `{line}`, expected `arch {}` for {p}", p.machine);
    }
    Ok(line)
}

/// Starts the broker on a fresh network, then runs `brokkr-agent check
/// --broker-url http://broker:3000` in a second container until it passes
/// (30 tries, 1 s apart: emulated start-up is slow). Cleans up either way.
fn check_network(sh: &Shell, broker: &str, agent: &str, p: &Platform) -> Result<()> {
    let id = format!("brokkr-smoke-{}-{}", p.arch, std::process::id());
    let broker_port = component("broker")?.port;
    Cmd::new("docker")
        .args(["network", "create", &id])
        .read(sh)
        .context("creating the smoke network")?;
    let result = (|| -> Result<()> {
        Cmd::new("docker")
            .args(["run", "-d", "--rm", "--name", &format!("{id}-broker"), "--network", &id])
            .args(["--network-alias", "broker", "--platform", p.name, broker])
            .read(sh)
            .context("starting the broker")?;
        let check = Cmd::new("docker")
            .args(["run", "--rm", "--network", &id, "--platform", p.name, agent])
            .args(["check", "--broker-url", &format!("http://broker:{broker_port}")]);
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
    let logs = Cmd::new("docker").args(["logs", &format!("{id}-broker")]).capture(sh);
    let _ = Cmd::new("docker").args(["rm", "-f", &format!("{id}-broker")]).capture(sh);
    let _ = Cmd::new("docker").args(["network", "rm", &id]).capture(sh);
    if result.is_err() {
        if let Ok(l) = logs {
            eprintln!("broker logs:\n{}{}", l.stdout, l.stderr);
        }
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
        assert_eq!(parse_tag("main").unwrap(), "main");
        let err = parse_tag("bad tag").unwrap_err();
        assert!(err.contains("invalid --tag `bad tag`"), "{err}");
    }
}
