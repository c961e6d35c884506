//! `cargo xtask ci`: what CI runs, in order, one result line per stage and a total. Every stage is
//! a command a developer can run on its own; this only strings them together.

use std::{
    path::{Path, PathBuf},
    time::Instant,
};

use anyhow::{anyhow, ensure, Context, Result};
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
    let exe = std::env::current_exe().context("locating the xtask binary")?;
    let xtask = Cmd::new(exe.display().to_string());
    let cargo_args = |a: &'static str| cargo.clone().args(a.split(' '));
    let tools = crate::target_dir().join("ci-tools"); // a venv with the PYTHON_TOOLS
    let bin = |name: &str| Cmd::new(tools.join("bin").join(name).display().to_string());
    let path =
        format!("{}:{}", tools.join("bin").display(), std::env::var("PATH").unwrap_or_default());
    let mut s = vec![
        ("format", cargo_args("fmt --all -- --check")),
        ("lints", cargo_args("clippy --workspace --all-targets --locked -- -D warnings")),
        ("tests", cargo_args("test --workspace --locked")),
    ];
    if args.no_docker {
        return Ok(s);
    }
    let e2e = "test --package xtask --test e2e --locked -- --ignored --test-threads=1";
    let schema = "--builtin-schema vendor.github-workflows .github/workflows/build-images.yml";
    s.extend([
        ("setup", xtask.clone().args(["setup", "--platform", "all"])),
        ("registry", xtask.clone().args(["registry", "start"])),
        ("tools", Cmd::new("python3").args(["-m", "venv", &tools.display().to_string()])),
        ("tools", bin("pip").args(["install", "--quiet"]).args(PYTHON_TOOLS.iter().copied())),
        ("workflow", xtask.arg("validate-workflow").env("PATH", &path)),
        ("workflow", bin("check-jsonschema").args(schema.split(' '))),
        ("e2e", cargo_args(e2e)),
    ]);
    Ok(s)
}

/// Free space the Docker stages need on the Docker data root and the target directory (CI has run
/// out mid-suite with less).
const MIN_FREE_BYTES: u64 = 20 << 30;

/// Fails when `free` bytes at `path` are below [`MIN_FREE_BYTES`], saying how to make room.
fn check_space(path: &Path, free: u64) -> Result<()> {
    let (gib, path, needed) =
        (free as f64 / f64::from(1 << 30), path.display(), MIN_FREE_BYTES >> 30);
    ensure!(
        free >= MIN_FREE_BYTES,
        "ci: only {gib:.1} GiB free on the filesystem holding {path} ({needed} GiB needed for the \
         Docker stages): free space with `docker builder prune` and `docker image prune`, remove \
         old target directories, or run `cargo xtask ci --no-docker`"
    );
    Ok(())
}

/// Runs `cargo xtask ci`: stops at the first failing stage; prints `ci: <stage> ok|FAILED
/// (<seconds>s)` lines and the total, also to `$GITHUB_STEP_SUMMARY` on GitHub.
pub fn run(sh: &Shell, args: &CiArgs) -> Result<()> {
    let started = Instant::now();
    // The Docker data root (or its nearest existing parent) and the target directory.
    let dirs = [PathBuf::from("/var/lib/docker"), crate::target_dir()];
    for dir in dirs.iter().filter(|_| !args.no_docker) {
        let dir = dir.ancestors().find(|d| d.exists()).unwrap_or(Path::new("/"));
        check_space(dir, fs4::available_space(dir).context("reading free disk space")?)?;
    }
    let (mut rows, mut done) = (Vec::new(), Ok(()));
    for (name, cmd) in stages(args)? {
        gha::group(name);
        let t = Instant::now();
        let r = cmd.run(sh);
        gha::end_group();
        let (status, secs) = (if r.is_ok() { "ok" } else { "FAILED" }, t.elapsed().as_secs_f64());
        rows.push(vec![name.to_owned(), status.to_owned(), format!("{secs:.0}s")]);
        done = r.map_err(|e| anyhow!("ci: stage `{name}` failed: {e:#}"));
        if done.is_err() {
            break;
        }
    }
    rows.iter().for_each(|r| println!("ci: {:<10} {} ({})", r[0], r[1], r[2]));
    println!("ci: total      {:.0}s", started.elapsed().as_secs_f64());
    gha::summary(&gha::markdown_table(&["stage", "result", "time"], &rows))?;
    done
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_stages_need_20_gib_free() {
        let at = Path::new("/var/lib/docker");
        assert!(check_space(at, 20 << 30).is_ok());
        assert!(check_space(at, (20 << 30) - 1).is_err());
        let err = check_space(at, (5 << 30) + (1 << 29)).unwrap_err().to_string();
        for w in ["only 5.5 GiB free", "holding /var/lib/docker", "20 GiB", "docker builder prune"]
        {
            assert!(err.contains(w), "{err} lacks {w}");
        }
    }
}
