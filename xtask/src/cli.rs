//! The command line: every command and flag has a doc line, which is its help text.

use clap::{Parser, Subcommand};

pub use crate::workflow::run::WorkflowCommand;
pub use crate::workflow::validate::ValidateWorkflowArgs;
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
    BaseImages(crate::base_images::BaseImagesArgs),
    /// Print the image references (one per line) and OCI labels for the current
    /// context: GitHub Actions when GITHUB_ACTIONS=true, else the local git checkout.
    Tags(TagsArgs),
    /// Measure build times, cache effect, cross versus emulation and image sizes on this machine.
    Bench(crate::bench::BenchArgs),
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

pub use crate::host::{doctor::DoctorArgs, registry::RegistryArgs, setup::SetupArgs};
