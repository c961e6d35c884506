//! `cargo xtask`: brokkr's build-and-release automation.
//!
//! This file is the table of contents: the modules, the CLI parse, one
//! [`Shell`] rooted at the workspace root, and one exhaustive `match`.

// Commands, one file each.
mod base_images;
mod bench;
mod build_image;
mod ci;
mod images;
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
mod plan;
mod preflight;
mod record;
#[cfg(test)]
mod tidy;

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::Parser;
use xshell::Shell;

use cli::{Cli, Command, WorkflowCommand};

fn main() -> Result<()> {
    let cli = Cli::parse();
    let sh = Shell::new()?;
    sh.change_dir(project_root());
    match cli.command {
        Command::BuildImage(args) => build_image::run(&sh, &args),
        Command::Images(args) => images::run(&sh, &args),
        Command::Push(args) => push::run(&sh, &args),
        Command::Manifest(args) => manifest::run(&sh, &args),
        Command::Smoke(args) => smoke::run(&sh, &args),
        Command::BaseImages(args) => base_images::run(
            &sh,
            &base_images::BaseOptions {
                ca_bundle: cli::ca_bundle(args.ca_bundle.as_deref()),
                dry_run: args.dry_run,
            },
            &args.emulate.map(|l| l.0).unwrap_or_default(),
        ),
        Command::Tags(args) => tags::run(&sh, &args),
        Command::Bench(args) => bench::run(&sh, &args),
        Command::Ci(args) => ci::run(&sh, &args),
        Command::ValidateWorkflow(args) => {
            workflow::validate::run(&sh, &args, &<Cli as clap::CommandFactory>::command())
        }
        Command::Workflow(WorkflowCommand::Run(args)) => workflow::run::run(&sh, &args),
        Command::Doctor(args) => host::doctor::run(
            &sh,
            &project::PlatformList::or_host(args.platform)?,
            args.json,
        ),
        Command::Setup(args) => host::setup::run(&sh, &host::setup::SetupOpts::from_args(&args)),
        Command::Registry(args) => host::registry::run(&sh, &args),
    }
}

/// The workspace root: `$BROKKR_WORKSPACE` when set (another checkout of
/// this workspace, used by tests and `bench`), else the parent of this
/// crate's manifest directory.
pub fn project_root() -> PathBuf {
    match std::env::var_os("BROKKR_WORKSPACE") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default(),
    }
}

/// Cargo's target directory (`$CARGO_TARGET_DIR`, else `<root>/target`):
/// records, caches and scratch files live under it.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| project_root().join("target"), PathBuf::from)
}
