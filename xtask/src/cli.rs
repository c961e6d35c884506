//! The command line: every command and flag has a doc line, which is its help text.

use clap::{Parser, Subcommand};

pub use crate::workflow::run::WorkflowCommand;
use crate::{build_image, ci, host, manifest, push, smoke, tags, workflow};

/// brokkr's build-and-release automation: multi-arch images with docker buildx.
#[derive(Debug, Parser)]
#[command(name = "xtask", bin_name = "cargo xtask", version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build one component's image for one or more platforms with docker buildx.
    BuildImage(build_image::BuildImageArgs),
    /// Build every component (or those given) for the given platforms and print a table.
    Images(build_image::ImagesArgs),
    /// Push a locally built image under its unique per-platform reference (never a final tag).
    Push(push::PushArgs),
    /// Run each built image on its platform (QEMU for foreign ones) and check broker and agent talk.
    Smoke(smoke::SmokeArgs),
    /// Create the multi-platform index of one component under every final tag, and verify it.
    Manifest(manifest::ManifestArgs),
    /// Build the local base images (Rust builder, runtime) from Debian's archive, when missing.
    BaseImages(crate::base_images::BaseImagesArgs),
    /// Print the image references (one per line) and OCI labels for the current
    /// context: GitHub Actions when GITHUB_ACTIONS=true, else the local git checkout.
    Tags(tags::TagsArgs),
    /// Measure build times, cache effect, cross versus emulation and image sizes on this machine.
    Bench(crate::bench::BenchArgs),
    /// Run what CI runs: format, lints, tests, then host setup, workflow checks and end-to-end tests.
    Ci(ci::CiArgs),
    /// Check GitHub workflow files against this xtask (CLI, components,
    /// platforms, image inputs), then with actionlint and zizmor when they are installed.
    ValidateWorkflow(workflow::validate::ValidateWorkflowArgs),
    /// Work with the GitHub workflow locally.
    #[command(subcommand)]
    Workflow(WorkflowCommand),
    /// Check this host for building images: one line per check with the command that fixes it.
    Doctor(host::doctor::DoctorArgs),
    /// Provision this Debian/Ubuntu host as root (engine, buildx, QEMU, registry); idempotent.
    Setup(host::setup::SetupArgs),
    /// Run the loopback registry (localhost:5000; --auth: a password-protected one on localhost:5001).
    Registry(host::registry::RegistryArgs),
}
