//! `cargo xtask`: brokkr's build-and-release automation.
//!
//! This file is the table of contents: the modules, the CLI parse, one
//! [`Shell`] rooted at the workspace root, and one exhaustive `match`.

mod cli;
mod plan;
mod project;
mod validate_workflow;
mod workflow;
mod workflow_run;

use anyhow::Result;
use clap::Parser;
use xshell::Shell;

use cli::{Cli, Command, WorkflowCommand};

fn main() -> Result<()> {
    let cli = Cli::parse();
    let sh = Shell::new()?;
    sh.change_dir(project_root());
    match cli.command {
        Command::Ci(_) => todo!(),
        Command::ValidateWorkflow(args) => validate_workflow::run(&sh, &args),
        Command::Workflow(WorkflowCommand::Run(args)) => workflow_run::run(&sh, &args),
    }
}

/// The workspace root: the parent of this crate's manifest directory.
fn project_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(std::path::Path::to_path_buf)
        .unwrap_or_default()
}
