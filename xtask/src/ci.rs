//! `cargo xtask ci`: what CI runs, in order, one result line per stage and
//! a total. Every stage is a command a developer can run on its own; this
//! only strings them together.

use std::{path::PathBuf, time::Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use xshell::Shell;

use crate::{gha, plan::Cmd, workflow::validate::PYTHON_TOOLS};

#[derive(Debug, Args)]
pub struct CiArgs {
    /// Skip the end-to-end stages that need Docker (format, lints and unit tests only).
    #[arg(long)]
    pub no_docker: bool,
}

/// The stages in order, each a name and the command it runs.
fn stages(args: &CiArgs) -> Result<Vec<(&'static str, Cmd)>> {
    let cargo = Cmd::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()));
    let xtask = Cmd::new(
        std::env::current_exe().context("locating the xtask binary")?.display().to_string(),
    );
    let tools = tools_dir();
    let bin = |name: &str| Cmd::new(tools.join("bin").join(name).display().to_string());
    let path =
        format!("{}:{}", tools.join("bin").display(), std::env::var("PATH").unwrap_or_default());
    let mut s = vec![
        ("format", cargo.clone().args(["fmt", "--all", "--", "--check"])),
        (
            "lints",
            cargo.clone().args([
                "clippy",
                "--workspace",
                "--all-targets",
                "--locked",
                "--",
                "-D",
                "warnings",
            ]),
        ),
        ("tests", cargo.clone().args(["test", "--workspace", "--locked"])),
    ];
    if args.no_docker {
        return Ok(s);
    }
    s.extend([
        ("setup", xtask.clone().args(["setup", "--platform", "all"])),
        ("registry", xtask.clone().args(["registry", "start"])),
        ("tools", Cmd::new("python3").args(["-m", "venv", &tools.display().to_string()])),
        ("tools", bin("pip").args(["install", "--quiet"]).args(PYTHON_TOOLS.iter().copied())),
        ("workflow", xtask.arg("validate-workflow").env("PATH", &path)),
        (
            "workflow",
            bin("check-jsonschema").args([
                "--builtin-schema",
                "vendor.github-workflows",
                ".github/workflows/build-images.yml",
            ]),
        ),
        (
            "e2e",
            cargo.args([
                "test",
                "--package",
                "xtask",
                "--test",
                "e2e",
                "--locked",
                "--",
                "--ignored",
                "--test-threads=1",
            ]),
        ),
    ]);
    Ok(s)
}

/// Where `ci` installs its Python tools ([`PYTHON_TOOLS`]): `target/ci-tools`.
fn tools_dir() -> PathBuf {
    crate::target_dir().join("ci-tools")
}

/// Runs `cargo xtask ci`: stops at the first failing stage; prints
/// `ci: <stage> ok|FAILED (<seconds>s)` lines and the total, also to
/// `$GITHUB_STEP_SUMMARY` on GitHub.
pub fn run(sh: &Shell, args: &CiArgs) -> Result<()> {
    let started = Instant::now();
    let mut results: Vec<(&str, bool, f64)> = Vec::new();
    for (name, cmd) in stages(args)? {
        gha::group(name);
        let t = Instant::now();
        let r = cmd.run(sh);
        gha::end_group();
        results.push((name, r.is_ok(), t.elapsed().as_secs_f64()));
        if let Err(e) = r {
            print_results(&results, started)?;
            bail!("ci: stage `{name}` failed: {e:#}");
        }
    }
    print_results(&results, started)
}

fn print_results(results: &[(&str, bool, f64)], started: Instant) -> Result<()> {
    let mut rows = Vec::new();
    for (name, ok, secs) in results {
        let status = if *ok { "ok" } else { "FAILED" };
        println!("ci: {name:<10} {status} ({secs:.0}s)");
        rows.push(vec![name.to_string(), status.to_owned(), format!("{secs:.0}s")]);
    }
    let total = started.elapsed().as_secs_f64();
    println!("ci: total      {total:.0}s");
    gha::summary(&gha::markdown_table(&["stage", "result", "time"], &rows))
}
