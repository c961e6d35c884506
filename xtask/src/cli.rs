//! The command line: every command and flag has a doc line, which is its help text.

use clap::{Args, Parser, Subcommand};

pub use crate::workflow::run::WorkflowCommand;
pub use crate::workflow::validate::ValidateWorkflowArgs;
use crate::{
    base_images::Bases,
    project::{parse_platform_list, PlatformList},
};

pub use crate::{
    build_image::BuildImageArgs, ci::CiArgs, images::ImagesArgs, manifest::ManifestArgs,
    push::PushArgs, smoke::SmokeArgs, tags::TagsArgs,
};

/// brokkr's build-and-release automation: multi-arch images with docker buildx.
#[derive(Debug, Parser)]
#[command(name = "xtask", bin_name = "cargo xtask", version)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build one component's image for one or more platforms with docker buildx.
    BuildImage(BuildImageArgs),
    /// Build every component (or those given) for the given platforms and print a table.
    Images(ImagesArgs),
    /// Push a locally built image under its unique per-platform reference (never a final tag).
    Push(PushArgs),
    /// Run each built image on its platform (QEMU for foreign ones) and check broker and agent talk.
    Smoke(SmokeArgs),
    /// Create the multi-platform index of one component under every final tag, and verify it.
    Manifest(ManifestArgs),
    /// Build the local base images (Rust builder, runtime) from Debian's archive, when missing.
    BaseImages(BaseImagesArgs),
    /// Print the image references (one per line) and OCI labels for the current
    /// context: GitHub Actions when GITHUB_ACTIONS=true, else the local git checkout.
    Tags(TagsArgs),
    /// Measure build times, cache effect, cross versus emulation and image sizes on this machine.
    Bench(BenchArgs),
    /// Run what CI runs: format, lints, tests, then host setup, workflow checks and end-to-end tests.
    Ci(CiArgs),
    /// Check GitHub workflow files against this xtask (CLI, components,
    /// platforms, image inputs), then with actionlint and zizmor when they are installed.
    ValidateWorkflow(ValidateWorkflowArgs),
    /// Work with the GitHub workflow locally.
    #[command(subcommand)]
    Workflow(WorkflowCommand),
    /// Check this host for building images: one line per check with the command that fixes it.
    Doctor(DoctorArgs),
    /// Provision this Debian/Ubuntu host as root (engine, buildx, QEMU, registry); idempotent.
    Setup(SetupArgs),
    /// Run the loopback registry (localhost:5000; --auth: a password-protected one on localhost:5001).
    Registry(RegistryArgs),
}

/// Options of `base-images`.
#[derive(Debug, Args)]
pub struct BaseImagesArgs {
    /// Also build a Rust builder that runs on each of these target platforms, as
    /// `--strategy emulate` needs with local bases (slow: packages are configured under QEMU).
    #[arg(long, value_parser = parse_platform_list, value_name = "PLATFORMS")]
    pub emulate: Option<PlatformList>,
    /// CA bundle for cargo inside the build (see `build-image --help`).
    #[arg(long, env = "BROKKR_CA_BUNDLE", value_name = "PATH|none")]
    pub ca_bundle: Option<String>,
    /// Print the commands that would run, and run nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// Options of `bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Skip the slow measurement (the arm64 image compiled under emulation).
    #[arg(long)]
    pub quick: bool,
    /// Print the results as JSON instead of a Markdown table.
    #[arg(long)]
    pub json: bool,
    /// Base images (see `build-image --help`).
    #[arg(long, value_enum, default_value_t = Bases::Auto)]
    pub bases: Bases,
    /// CA bundle for cargo inside the build (see `build-image --help`).
    #[arg(long, env = "BROKKR_CA_BUNDLE", value_name = "PATH|none")]
    pub ca_bundle: Option<String>,
    /// Do not install or start missing host pieces.
    #[arg(long)]
    pub no_setup: bool,
}

pub use crate::host::{doctor::DoctorArgs, registry::RegistryArgs, setup::SetupArgs};
