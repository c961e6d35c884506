//! `cargo xtask`: brokkr's build-and-release automation.
//!
//! This file is the table of contents: the modules, the CLI parse, one
//! [`Shell`] rooted at the workspace root, and one exhaustive `match`.

// Commands, one file each.
mod base_images;
mod bench;
mod build_image;
mod ci;
mod manifest;
mod push;
mod smoke;
mod tags;

// Pure logic, tested without Docker.
mod buildx;
mod diagnose;
mod index;
mod metadata;
mod project;
mod workflow;

// Shared plumbing.
mod cli;
mod gha;
mod host;
mod options;
mod plan;
mod preflight;
mod record;
#[cfg(test)]
mod tidy;

use std::{
    path::{Path, PathBuf},
    sync::OnceLock,
};

use anyhow::{Context, Result};
use clap::Parser;
use xshell::Shell;

use cli::{Cli, Command, WorkflowCommand};

fn main() -> Result<()> {
    let cli = Cli::parse();
    let sh = Shell::new()?;
    sh.change_dir(locate_root()?);
    match cli.command {
        Command::BuildImage(args) => build_image::run(&sh, &args),
        Command::Images(args) => build_image::images(&sh, &args),
        Command::Push(args) => push::run(&sh, &args),
        Command::Manifest(args) => manifest::run(&sh, &args),
        Command::Smoke(args) => smoke::run(&sh, &args),
        Command::BaseImages(args) => base_images::run(&sh, &args),
        Command::Tags(args) => tags::run(&sh, &args),
        Command::Bench(args) => bench::run(&sh, &args),
        Command::Ci(args) => ci::run(&sh, &args),
        Command::ValidateWorkflow(args) => {
            workflow::validate::run(&sh, &args, &<Cli as clap::CommandFactory>::command())
        }
        Command::Workflow(WorkflowCommand::Run(args)) => workflow::run::run(&sh, &args),
        Command::Doctor(args) => host::doctor::run(&sh, args),
        Command::Setup(args) => host::setup::run(&sh, &args),
        Command::Registry(args) => host::registry::run(&sh, &args),
    }
}

/// The workspace root: `$BROKKR_WORKSPACE` when set (another checkout,
/// used by tests and `bench`), else the checkout the command runs in
/// ([`find_workspace`] from the current directory), never the one this
/// binary was compiled in: a shared `CARGO_TARGET_DIR` serves several.
pub fn project_root() -> PathBuf {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| locate_root().unwrap_or_else(|_| PathBuf::from("."))).clone()
}

fn locate_root() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("BROKKR_WORKSPACE").filter(|d| !d.is_empty()) {
        return Ok(options::absolute(Path::new(&dir)));
    }
    let cwd = std::env::current_dir()?;
    find_workspace(&cwd).with_context(|| {
        format!(
            "no brokkr checkout at or above {}: run `cargo xtask` inside one (a Cargo.toml with \
             [workspace] next to xtask/), or set BROKKR_WORKSPACE to its root",
            cwd.display()
        )
    })
}

/// The nearest directory at or above `start` whose `Cargo.toml` has a
/// `[workspace]` table and that holds the `xtask` member.
pub fn find_workspace(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .find(|dir| {
            dir.join("xtask/Cargo.toml").is_file()
                && std::fs::read_to_string(dir.join("Cargo.toml"))
                    .is_ok_and(|t| t.lines().any(|l| l.trim() == "[workspace]"))
        })
        .map(Path::to_path_buf)
}

/// Cargo's target directory (`$CARGO_TARGET_DIR`, else `<root>/target`):
/// records, caches and scratch files live under it.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| project_root().join("target"), PathBuf::from)
}

#[cfg(test)]
mod tests {
    #[test]
    fn workspace_is_found_from_any_directory_inside_it() {
        let tmp = std::env::temp_dir().join(format!("xtask-root-{}", std::process::id()));
        let b = tmp.join("b");
        std::fs::create_dir_all(b.join("xtask/src")).unwrap();
        std::fs::create_dir_all(b.join("broker")).unwrap();
        std::fs::write(b.join("Cargo.toml"), "[workspace]\nmembers = [\"xtask\"]\n").unwrap();
        std::fs::write(b.join("xtask/Cargo.toml"), "[package]\nname = \"xtask\"\n").unwrap();
        for from in [b.clone(), b.join("xtask/src"), b.join("broker")] {
            assert_eq!(super::find_workspace(&from), Some(b.clone()), "{}", from.display());
        }
        assert_eq!(super::find_workspace(&tmp), None);
        std::fs::remove_dir_all(&tmp).unwrap();
    }
}
