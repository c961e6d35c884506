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
}

/// Options of `ci`.
#[derive(Debug, Args)]
pub struct CiArgs {}
