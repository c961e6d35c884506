//! The command line: every command and flag has a doc line, which is its help text.

use clap::{Args, Parser, Subcommand};

/// brokkr's build-and-release automation: multi-arch images with docker buildx.
#[derive(Debug, Parser)]
#[command(name = "xtask", bin_name = "cargo xtask", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run what CI runs: format check, lints, tests; one line per stage.
    Ci(CiArgs),
    /// Check GitHub workflow files against this xtask (CLI, components,
    /// platforms, image inputs), then with actionlint when it is installed.
    ValidateWorkflow(crate::validate_workflow::ValidateWorkflowArgs),
    /// Work with the GitHub workflow locally.
    #[command(subcommand)]
    Workflow(WorkflowCommand),
}

/// Subcommands of `workflow`.
#[derive(Debug, Subcommand)]
pub enum WorkflowCommand {
    /// Run the workflow's `cargo xtask` steps here, in order, with GitHub's
    /// environment, against the loopback registry.
    Run(crate::workflow_run::WorkflowRunArgs),
}

/// Options of `ci`.
#[derive(Debug, Args)]
pub struct CiArgs {}
