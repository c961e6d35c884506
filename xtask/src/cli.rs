//! The command line: every command and flag has a doc line, which is its help text.

use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand};

pub use crate::workflow::run::WorkflowCommand;
pub use crate::workflow::validate::ValidateWorkflowArgs;
use crate::{
    base_images::Bases,
    buildx::{CacheKind, Progress, Strategy},
    project::{parse_component_list, parse_platform_list, Component, ComponentList, PlatformList},
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
    /// platforms, image inputs), then with actionlint when it is installed.
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

/// Options shared by the commands that build images.
#[derive(Clone, Debug, Args)]
pub struct BuildOpts {
    /// Where rustc runs: `cross` compiles on the build platform for the target; `emulate` under QEMU.
    #[arg(long, value_enum, default_value_t = Strategy::Cross)]
    pub strategy: Strategy,
    /// Registry prefix of image names (`localhost:5000`, `ghcr.io/OWNER`); default:
    /// `ghcr.io/<owner>` in GitHub Actions, `localhost:5000` outside it.
    #[arg(long, env = "BROKKR_REGISTRY", value_parser = crate::project::parse_registry)]
    pub registry: Option<String>,
    /// Build cache to import and export, one scope per component and platform.
    #[arg(long, value_enum, default_value_t = CacheKind::None)]
    pub cache: CacheKind,
    /// buildx progress output; `plain` lets xtask count cached steps.
    #[arg(long, value_enum, default_value_t = Progress::Plain)]
    pub progress: Progress,
    /// Base images: upstream (`rust:*-slim-bookworm`, distroless) or local substitutes from Debian's archive.
    #[arg(long, value_enum, default_value_t = Bases::Auto)]
    pub bases: Bases,
    /// CA bundle (PEM) that cargo trusts inside the build, for TLS-intercepting proxies; `none` for
    /// none. Default: $SSL_CERT_FILE, else the host's /etc/ssl/certs/ca-certificates.crt. Passed as a
    /// build secret, never stored in an image.
    #[arg(long, env = "BROKKR_CA_BUNDLE", value_name = "PATH|none")]
    pub ca_bundle: Option<String>,
    /// Any new value rebuilds every compile stage (the `BROKKR_CACHE_EPOCH` build argument): a
    /// cold build without pruning the builder's cache.
    #[arg(long, value_name = "STRING")]
    pub cache_epoch: Option<String>,
    /// Do not install or start missing host pieces (engine, buildx, QEMU); fail with the remedy instead.
    #[arg(long)]
    pub no_setup: bool,
    /// Print the commands that would run, and run nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// Which images a command works on: components times platforms.
#[derive(Clone, Debug, Args)]
pub struct Selection {
    /// Components (`broker`, `agent`, a comma-separated list or `all`); default: all.
    #[arg(long, value_parser = parse_component_list)]
    pub component: Option<ComponentList>,
    /// Platforms (`arm64`, `linux/amd64,linux/arm64`, `all`); default: the host's.
    #[arg(long, value_parser = parse_platform_list)]
    pub platform: Option<PlatformList>,
}

impl Selection {
    /// The selected components (all when none were given).
    pub fn components(&self) -> Vec<&'static Component> {
        ComponentList::or_all(self.component.clone())
    }

    /// The selected platforms (the host's when none were given).
    pub fn platforms(&self) -> anyhow::Result<Vec<&'static crate::project::Platform>> {
        PlatformList::or_host(self.platform.clone())
    }
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

/// The CA bundle to pass to builds: `--ca-bundle` / `BROKKR_CA_BUNDLE`, else
/// `$SSL_CERT_FILE`, else the host's Debian/Ubuntu bundle when it exists;
/// `none` (or an empty value) turns it off. Relative paths are taken from
/// the directory xtask was started in. A `$SSL_CERT_FILE` that is no file is
/// reported and skipped.
pub fn ca_bundle(flag: Option<&str>) -> Option<PathBuf> {
    const HOST_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";
    match flag {
        Some(v) if v.eq_ignore_ascii_case("none") || v.is_empty() => None,
        Some(v) => Some(absolute(Path::new(v))),
        None => {
            if let Some(f) = std::env::var_os("SSL_CERT_FILE").filter(|f| !f.is_empty()) {
                let f = absolute(Path::new(&f));
                if f.is_file() {
                    return Some(f);
                }
                eprintln!(
                    "warning: SSL_CERT_FILE={} is not a file; using {HOST_BUNDLE} if present (--ca-bundle sets one)",
                    f.display()
                );
            }
            Some(PathBuf::from(HOST_BUNDLE)).filter(|p| p.is_file())
        }
    }
}

/// `path` made absolute against the directory xtask was started in (the
/// process's; commands run from the workspace root).
pub fn absolute(path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().map_or_else(|_| path.to_path_buf(), |d| d.join(path))
    }
}

/// clap value parser for file arguments: [`absolute`].
pub fn absolute_path(s: &str) -> Result<PathBuf, String> {
    Ok(absolute(Path::new(s)))
}
