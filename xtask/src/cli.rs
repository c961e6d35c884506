//! The command line: every command and flag has a doc line, which is its help text.

use clap::{Args, Parser, Subcommand};

use crate::project::{parse_component_list, ComponentList};

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
    /// Print the image references (one per line) and OCI labels for the current
    /// context: GitHub Actions when GITHUB_ACTIONS=true, else the local git checkout.
    Tags(TagsArgs),
}

/// Options of `ci`.
#[derive(Debug, Args)]
pub struct CiArgs {}

/// Options of `tags`.
#[derive(Debug, Args)]
pub struct TagsArgs {
    /// Components to print (`broker`, `agent`, a comma-separated list or `all`); default: all.
    #[arg(long, value_parser = parse_component_list)]
    pub component: Option<ComponentList>,
    /// Registry prefix of the image names (`localhost:5000`, `ghcr.io/OWNER`); default:
    /// `ghcr.io/<owner>` in GitHub Actions, `localhost:5000` outside it.
    #[arg(long, env = "BROKKR_REGISTRY")]
    pub registry: Option<String>,
    /// Extra tag to add (repeatable), e.g. for release maintainers; must already match
    /// Docker's tag grammar `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
    #[arg(long)]
    pub tag: Vec<String>,
    /// Print `{"component", "tags": [...], "labels": {...}}` (an array for several components).
    #[arg(long)]
    pub json: bool,
}
