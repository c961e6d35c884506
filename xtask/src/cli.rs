//! The command line: every command and flag has a doc line, which is its help text.

use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand};

use crate::{
    base_images::Bases,
    buildx::{CacheKind, Progress, Strategy},
    project::{
        parse_component, parse_component_list, parse_platform_list, Component, ComponentList,
        PlatformList, LOCAL_REGISTRY,
    },
    workflow_run::Event,
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

/// Subcommands of `workflow`.
#[derive(Debug, Subcommand)]
pub enum WorkflowCommand {
    /// Run the workflow's `cargo xtask` steps here, in order, with GitHub's
    /// environment, against the loopback registry.
    Run(WorkflowRunArgs),
}

/// Options shared by the commands that build images.
#[derive(Clone, Debug, Args)]
pub struct BuildOpts {
    /// Where rustc runs: `cross` compiles on the build platform for the target; `emulate` under QEMU.
    #[arg(long, value_enum, default_value_t = Strategy::Cross)]
    pub strategy: Strategy,
    /// Registry prefix of image names (`localhost:5000`, `ghcr.io/OWNER`); default:
    /// `ghcr.io/<owner>` in GitHub Actions, `localhost:5000` outside it.
    #[arg(long, env = "BROKKR_REGISTRY")]
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

/// Options of `build-image`.
#[derive(Debug, Args)]
pub struct BuildImageArgs {
    /// The component to build (`broker` or `agent`).
    #[arg(long, value_parser = parse_component)]
    pub component: &'static Component,
    /// Target platforms (`arm64`, `linux/amd64,linux/arm64`, `all`); default: the host's.
    #[arg(long, value_parser = parse_platform_list)]
    pub platform: Option<PlatformList>,
    /// Load the image into the local engine (the default).
    #[arg(long, conflicts_with = "push")]
    pub load: bool,
    /// Push the image to the registry under its per-platform reference instead of loading it.
    #[arg(long)]
    pub push: bool,
    /// Extra local tag for a loaded image (repeatable), next to the per-platform reference;
    /// several platforms with a tag make one multi-platform image under the tags only. Not
    /// with --push: final tags are written by `cargo xtask manifest --tag`.
    #[arg(long, conflicts_with = "push")]
    pub tag: Vec<String>,
    /// Options shared with `images`.
    #[command(flatten)]
    pub build: BuildOpts,
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

/// Options of `images`.
#[derive(Debug, Args)]
pub struct ImagesArgs {
    /// Components and platforms to build.
    #[command(flatten)]
    pub select: Selection,
    /// Push each image under its per-platform reference instead of loading it.
    #[arg(long)]
    pub push: bool,
    /// Options shared with `build-image`.
    #[command(flatten)]
    pub build: BuildOpts,
}

/// Options of `push`.
#[derive(Debug, Args)]
pub struct PushArgs {
    /// Components and platforms to push.
    #[command(flatten)]
    pub select: Selection,
    /// Registry prefix; default as for `build-image`.
    #[arg(long, env = "BROKKR_REGISTRY")]
    pub registry: Option<String>,
    /// Print the commands that would run, and run nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// Options of `smoke`.
#[derive(Debug, Args)]
pub struct SmokeArgs {
    /// Components and platforms to test.
    #[command(flatten)]
    pub select: Selection,
    /// Registry prefix of the references to run; default as for `build-image`.
    #[arg(long, env = "BROKKR_REGISTRY")]
    pub registry: Option<String>,
    /// Run images by this tag instead of the per-platform references (e.g. a final tag like `main`).
    #[arg(long)]
    pub tag: Option<String>,
}

/// Options of `manifest`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ManifestArgs {
    /// `verify`: check an existing index instead of creating one.
    #[command(subcommand)]
    pub command: Option<ManifestCommand>,
    /// The component whose per-platform images are combined (`broker` or `agent`).
    #[arg(long, value_parser = parse_component)]
    pub component: Option<&'static Component>,
    /// Platforms the index must hold; default: all supported platforms.
    #[arg(long, value_parser = parse_platform_list)]
    pub platform: Option<PlatformList>,
    /// Registry prefix; default as for `build-image`.
    #[arg(long, env = "BROKKR_REGISTRY")]
    pub registry: Option<String>,
    /// Extra final tag (repeatable), added to the computed ones; must match Docker's tag grammar.
    #[arg(long)]
    pub tag: Vec<String>,
    /// Print the `imagetools create` command that would run, and write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the result as JSON: tags, index digest, platforms with digest and size.
    #[arg(long)]
    pub json: bool,
}

/// Subcommands of `manifest`.
#[derive(Debug, Subcommand)]
pub enum ManifestCommand {
    /// Verify an index: exactly the expected platforms, attestations ignored, no duplicates.
    Verify(VerifyArgs),
}

/// Options of `manifest verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The reference to read from its registry (`localhost:5000/brokkr-broker:main`).
    #[arg(required_unless_present = "from_file")]
    pub reference: Option<String>,
    /// Read a saved index (`docker buildx imagetools inspect --raw` output) instead.
    #[arg(long, conflicts_with = "reference", value_parser = absolute_path)]
    pub from_file: Option<PathBuf>,
    /// Platforms the index must hold; default: all supported platforms.
    #[arg(long, value_parser = parse_platform_list)]
    pub platform: Option<PlatformList>,
}

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

/// Options of `validate-workflow`.
#[derive(Debug, Args)]
pub struct ValidateWorkflowArgs {
    /// Workflow files to check; default: every `.yml`/`.yaml` file in `.github/workflows`.
    #[arg(value_name = "PATH", value_parser = absolute_path)]
    pub paths: Vec<PathBuf>,
}

/// Options of `workflow run`.
#[derive(Debug, Args)]
pub struct WorkflowRunArgs {
    /// The event to simulate.
    #[arg(long, value_enum)]
    pub event: Event,
    /// The ref: `main`, `refs/heads/main`, `refs/tags/v1.0.0`; for pull
    /// requests `refs/pull/7/merge` or the head branch.
    #[arg(long = "ref", value_name = "REF")]
    pub git_ref: String,
    /// Run only this job (by id or name), without the jobs it needs.
    #[arg(long, value_name = "NAME")]
    pub job: Option<String>,
    /// The workflow file; default: `.github/workflows/build-images.yml` in the workspace.
    #[arg(long, value_parser = absolute_path)]
    pub file: Option<PathBuf>,
    /// The loopback registry pushes go to instead of `ghcr.io/<owner>`.
    #[arg(long, default_value = LOCAL_REGISTRY)]
    pub registry: String,
    /// Print the plan without running it.
    #[arg(long)]
    pub dry_run: bool,
}

/// Options of `ci`.
#[derive(Debug, Args)]
pub struct CiArgs {
    /// Skip the end-to-end stages that need Docker (format, lints and unit tests only).
    #[arg(long)]
    pub no_docker: bool,
}

/// Options of `doctor`.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Platforms to check for (comma-separated, or `all`); default: the host's.
    #[arg(long, value_parser = parse_platform_list)]
    pub platform: Option<PlatformList>,
    /// Print a JSON array of {name, status, detail, remedy} instead of lines.
    #[arg(long)]
    pub json: bool,
}

/// Options of `setup`.
#[derive(Debug, Args)]
pub struct SetupArgs {
    /// Platforms to provision for (comma-separated, or `all`); default: all.
    #[arg(long, value_parser = parse_platform_list)]
    pub platform: Option<PlatformList>,
    /// Print what would be done, change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Start the loopback registry even in GitHub Actions (default: only outside it).
    #[arg(long, conflicts_with = "no_local_registry")]
    pub local_registry: bool,
    /// Do not start the loopback registry.
    #[arg(long)]
    pub no_local_registry: bool,
}

/// Options of `registry`.
#[derive(Debug, Args)]
pub struct RegistryArgs {
    /// What to do with it.
    #[command(subcommand)]
    pub action: RegistryAction,
    /// The htpasswd-protected registry (user brokkr, password file printed) instead of the open one.
    #[arg(long, global = true)]
    pub auth: bool,
}

/// `registry` actions.
#[derive(Debug, Clone, Copy, Subcommand)]
pub enum RegistryAction {
    /// Start it (detached) unless it already answers; wait until it does.
    Start,
    /// Stop the one started by `start` (data is kept).
    Stop,
    /// Say whether it answers; exit 1 when not.
    Status,
}

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
fn absolute_path(s: &str) -> Result<PathBuf, String> {
    Ok(absolute(Path::new(s)))
}
