//! `cargo xtask base-images`: the images the Dockerfiles build FROM, made
//! from Debian's archive when no container registry can be reached, and the
//! choice between them and the upstream images (`--bases auto|upstream|local`).
//!
//! Local images are named `brokkr.local/base/<name>:<tag>`: `.local` is a
//! reserved domain, so they cannot be mistaken for (or pulled as) upstream
//! images. Their tags carry a hash of their inputs, so they are rebuilt only
//! when an input changes.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, ValueEnum};
use xshell::Shell;

use crate::{
    buildx::Strategy,
    plan::Cmd,
    project::{parse_platform_list, Platform, PlatformList, PLATFORMS},
};

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

/// Upstream Rust builder image (Debian 12 based; pairs with distroless `cc-debian12`).
/// Must equal the `RUST_IMAGE` default in the Dockerfiles (checked by `ci`'s tidy test).
pub const UPSTREAM_RUST_IMAGE: &str = "docker.io/library/rust:1.85-slim-bookworm";
/// Upstream runtime image: distroless `cc`, non-root. Must equal the Dockerfiles' `RUNTIME_IMAGE` default.
pub const UPSTREAM_RUNTIME_IMAGE: &str = "gcr.io/distroless/cc-debian12:nonroot";
pub use crate::project::LOCAL_BASE_PREFIX as LOCAL_PREFIX;
/// cargo-chef version every builder installs (`--locked`): the newest whose
/// dependencies build with the builder's rustc 1.85 (0.1.76+ need 1.86+).
pub const CARGO_CHEF_VERSION: &str = "0.1.75";
/// Debian suite of the local bases: its rustc (1.85) matches `rust-version`,
/// and builder and runtime share its glibc (2.41).
pub const DEBIAN_SUITE: &str = "trixie";

/// Which base images the Dockerfiles use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Bases {
    /// Upstream images when their registry answers, the local substitutes otherwise.
    #[default]
    Auto,
    /// Always the upstream images (`rust:*-slim-bookworm`, distroless `cc`).
    Upstream,
    /// Always the local substitutes, built from Debian's archive when missing.
    Local,
}

/// The base images chosen for a build.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedBases {
    /// Value of the `RUST_IMAGE` build argument.
    pub rust_image: String,
    /// Value of the `RUNTIME_IMAGE` build argument.
    pub runtime_image: String,
    /// Value of the `EMULATE_RUST_IMAGE` build argument per target
    /// architecture (`arm64`), for `--strategy emulate` with local bases;
    /// empty otherwise (the Dockerfiles then use `RUST_IMAGE`).
    pub emulate_rust_images: BTreeMap<&'static str, String>,
    /// Whether these are the local substitutes.
    pub local: bool,
}

/// 64-bit FNV-1a: a stable hash of image inputs (std's hasher may change
/// between Rust releases, which would rebuild every base image).
pub fn fnv1a(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.bytes().chain(std::iter::once(0)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// Debian packages of the local Rust builder running on `build`: rustc,
/// cargo and gcc, plus for every other platform its C cross compiler, libc
/// headers and the Rust standard library (`libstd-rust-dev:<arch>`).
/// Returns (foreign Debian architectures, packages).
pub fn builder_packages(build: &Platform) -> (Vec<&'static str>, Vec<String>) {
    let mut packages: Vec<String> = ["rustc", "cargo", "gcc", "libc6-dev", "ca-certificates"]
        .map(String::from)
        .to_vec();
    let mut foreign = Vec::new();
    for p in PLATFORMS.iter().filter(|p| *p != build) {
        foreign.push(p.arch);
        packages.push(format!("gcc-{}", p.gnu_prefix.replace('_', "-")));
        packages.push(format!("libc6-dev-{}-cross", p.arch));
        packages.push(format!("libstd-rust-dev:{}", p.arch));
    }
    (foreign, packages)
}

/// Options shared by the commands that may build base images.
#[derive(Clone, Debug)]
pub struct BaseOptions {
    /// CA bundle passed as the `ca-bundle` build secret (for cargo behind a TLS proxy).
    pub ca_bundle: Option<PathBuf>,
    /// Print the commands instead of running them.
    pub dry_run: bool,
}

/// The local image names for the current inputs.
pub struct LocalNames {
    debian: String,
    builder: String,
    runtime: String,
}

fn local_names(sh: &Shell, build: &Platform) -> Result<LocalNames> {
    let builder_df = sh.read_file("docker/rust-builder.Dockerfile")?;
    let runtime_df = sh.read_file("docker/runtime-base.Dockerfile")?;
    let (foreign, packages) = builder_packages(build);
    let builder_hash = fnv1a(&[
        &builder_df,
        &foreign.join(" "),
        &packages.join(" "),
        CARGO_CHEF_VERSION,
    ]);
    let runtime_hash = fnv1a(&[
        &runtime_df,
        &PLATFORMS
            .iter()
            .map(|p| p.name)
            .collect::<Vec<_>>()
            .join(","),
    ]);
    Ok(LocalNames {
        debian: format!("{LOCAL_PREFIX}/debian:{DEBIAN_SUITE}"),
        builder: format!(
            "{LOCAL_PREFIX}/rust-builder:{DEBIAN_SUITE}-{}-{:08x}",
            build.arch, builder_hash as u32
        ),
        runtime: format!(
            "{LOCAL_PREFIX}/runtime:{DEBIAN_SUITE}-{:08x}",
            runtime_hash as u32
        ),
    })
}

/// Whether `image` is in the local image store.
pub fn image_exists(sh: &Shell, image: &str) -> bool {
    Cmd::new("docker")
        .args(["image", "inspect", "--format", "{{.Id}}", image])
        .capture(sh)
        .is_ok_and(|c| c.ok)
}

/// Whether the upstream images' registries answer (a manifest lookup with a
/// 20 s limit). False on machines with no registry access.
pub fn upstream_reachable(sh: &Shell) -> bool {
    [UPSTREAM_RUST_IMAGE, UPSTREAM_RUNTIME_IMAGE]
        .iter()
        .all(|img| {
            Cmd::new("timeout")
                .args(["20", "docker", "buildx", "imagetools", "inspect", img])
                .capture(sh)
                .is_ok_and(|c| c.ok)
        })
}

/// Chooses the base images for building `targets`, building the local
/// substitutes when they are chosen and missing. Prints the choice. With
/// `Strategy::Emulate` and local bases, each foreign target also gets a
/// Rust builder for its own platform ([`ensure_target_builder`]).
pub fn resolve(
    sh: &Shell,
    mode: Bases,
    strategy: Strategy,
    targets: &[&'static Platform],
    opts: &BaseOptions,
) -> Result<ResolvedBases> {
    let local = match mode {
        Bases::Upstream => false,
        Bases::Local => true,
        Bases::Auto => {
            let reachable = !opts.dry_run && upstream_reachable(sh);
            !reachable
        }
    };
    let resolved = if local {
        let build = Platform::host()?;
        let names = ensure_local(sh, build, opts)?;
        let mut emulate_rust_images = BTreeMap::new();
        if strategy == Strategy::Emulate {
            for t in targets {
                let image = if *t == build {
                    names.builder.clone()
                } else {
                    ensure_target_builder(sh, t, &names, opts)?
                };
                emulate_rust_images.insert(t.arch, image);
            }
        }
        ResolvedBases {
            rust_image: names.builder,
            runtime_image: names.runtime,
            emulate_rust_images,
            local: true,
        }
    } else {
        ResolvedBases {
            rust_image: UPSTREAM_RUST_IMAGE.to_owned(),
            runtime_image: UPSTREAM_RUNTIME_IMAGE.to_owned(),
            emulate_rust_images: BTreeMap::new(),
            local: false,
        }
    };
    eprintln!(
        "bases ({}): builder {}, runtime {}",
        match (mode, resolved.local) {
            (Bases::Auto, true) if opts.dry_run =>
                "auto, dry run: upstream not probed, showing the local substitutes",
            (Bases::Auto, true) => "auto: upstream registry unreachable, using local substitutes",
            (Bases::Auto, false) => "auto: upstream",
            (_, true) => "local",
            (_, false) => "upstream",
        },
        resolved.rust_image,
        resolved.runtime_image
    );
    Ok(resolved)
}

/// `cargo xtask base-images`: builds whatever local substitute is missing;
/// `emulate` lists target platforms that also get a Rust builder of their
/// own (for `--strategy emulate`).
pub fn run(sh: &Shell, opts: &BaseOptions, emulate: &[&'static Platform]) -> Result<()> {
    if let Some(ca) = opts.ca_bundle.as_ref().filter(|ca| !ca.is_file()) {
        bail!(
            "--ca-bundle {}: no such file; pass a PEM bundle, or `none`",
            ca.display()
        );
    }
    let build = Platform::host()?;
    let names = ensure_local(sh, build, opts)?;
    println!("rust builder ({build}): {}", names.builder);
    for t in emulate.iter().filter(|t| **t != build) {
        println!(
            "rust builder ({t}, for --strategy emulate): {}",
            ensure_target_builder(sh, t, &names, opts)?
        );
    }
    println!(
        "runtime ({}): {}",
        PLATFORMS
            .iter()
            .map(|p| p.name)
            .collect::<Vec<_>>()
            .join(", "),
        names.runtime
    );
    Ok(())
}

/// The Debian base, then the Rust builder and the runtime base at once (both
/// start from the Debian base only).
fn ensure_local(sh: &Shell, build: &Platform, opts: &BaseOptions) -> Result<LocalNames> {
    let names = local_names(sh, build)?;
    ensure_debian(sh, &names.debian, opts).context("making the Debian base image")?;
    let mut builds = Vec::new();
    if !image_exists(sh, &names.builder) {
        let (foreign, packages) = builder_packages(build);
        let c = Cmd::new("docker")
            .args(["buildx", "build", "--progress", "plain"])
            .opt("--platform", build.name)
            .opt("--file", "docker/rust-builder.Dockerfile")
            .opt("--build-arg", format!("DEBIAN_IMAGE={}", names.debian))
            .opt(
                "--build-arg",
                format!("FOREIGN_ARCHES={}", foreign.join(" ")),
            )
            .opt("--build-arg", format!("PACKAGES={}", packages.join(" ")))
            .opt(
                "--build-arg",
                format!("CARGO_CHEF_VERSION={CARGO_CHEF_VERSION}"),
            );
        builds.push((
            "the local Rust builder image",
            finish_local_build(c, &names.builder, opts),
        ));
    } else {
        eprintln!("rust builder {} is present", names.builder);
    }
    if !image_exists(sh, &names.runtime) {
        let all: Vec<&str> = PLATFORMS.iter().map(|p| p.name).collect();
        let c = Cmd::new("docker")
            .args(["buildx", "build", "--progress", "plain"])
            .opt("--platform", all.join(","))
            .opt("--file", "docker/runtime-base.Dockerfile")
            .opt("--build-arg", format!("DEBIAN_IMAGE={}", names.debian))
            .opt("--tag", &names.runtime)
            .arg("--load")
            .arg("docker");
        builds.push(("the local runtime base image", c));
    } else {
        eprintln!("runtime {} is present", names.runtime);
    }
    run_all(sh, &builds, opts.dry_run)?;
    Ok(names)
}

/// Runs `cmds` at once, a thread each, and waits for all; the first failure
/// (in order) is the error, naming what it built.
fn run_all(sh: &Shell, cmds: &[(&str, Cmd)], dry_run: bool) -> Result<()> {
    let dir = sh.current_dir();
    let run = |what: &str, c: &Cmd| -> Result<()> {
        let sh = Shell::new()?;
        sh.change_dir(&dir);
        run_or_print(&sh, c, dry_run).with_context(|| format!("building {what}"))
    };
    let run = &run;
    std::thread::scope(|s| {
        let running: Vec<_> = cmds
            .iter()
            .map(|(what, c)| s.spawn(move || run(what, c)))
            .collect();
        running.into_iter().try_for_each(|h| {
            h.join()
                .unwrap_or_else(|_| Err(anyhow!("a base image build panicked")))
        })
    })
}

/// The common tail of a local builder image build: the CA bundle secret,
/// the tag, and an uncompressed image in the local store (the image never
/// leaves this machine, and compressing its ~900 MB costs minutes), with
/// `docker/` as the context.
fn finish_local_build(c: Cmd, image: &str, opts: &BaseOptions) -> Cmd {
    let c = match &opts.ca_bundle {
        Some(ca) => c.opt("--secret", format!("id=ca-bundle,src={}", ca.display())),
        None => c,
    };
    c.opt("--tag", image)
        .opt("--output", "type=docker,compression=uncompressed")
        .arg("docker")
}

fn run_or_print(sh: &Shell, c: &Cmd, dry_run: bool) -> Result<()> {
    if dry_run {
        println!("{c}");
        Ok(())
    } else {
        c.run(sh)
    }
}

/// A Rust builder that runs ON `target` (for `--strategy emulate`), from
/// `docker/rust-builder-target.Dockerfile`: Debian's packages unpacked on
/// the build platform and configured under QEMU, plus cargo-chef
/// cross-compiled by the build-platform builder. Takes minutes (emulated
/// package configuration); built once per input hash.
pub fn ensure_target_builder(
    sh: &Shell,
    target: &Platform,
    names: &LocalNames,
    opts: &BaseOptions,
) -> Result<String> {
    let df = sh.read_file("docker/rust-builder-target.Dockerfile")?;
    let env = sh.read_file("docker/cargo-env.sh")?;
    let mirror = debian_mirror();
    let hash = fnv1a(&[
        &df,
        &env,
        &names.builder,
        &names.debian,
        CARGO_CHEF_VERSION,
        &mirror,
    ]);
    let image = format!(
        "{LOCAL_PREFIX}/rust-builder-target:{DEBIAN_SUITE}-{}-{:08x}",
        target.arch, hash as u32
    );
    if image_exists(sh, &image) {
        eprintln!("rust builder for {target} {image} is present");
        return Ok(image);
    }
    let c = Cmd::new("docker")
        .args(["buildx", "build", "--progress", "plain"])
        .opt("--platform", target.name)
        .opt("--file", "docker/rust-builder-target.Dockerfile")
        .opt("--build-arg", format!("DEBIAN_IMAGE={}", names.debian))
        .opt("--build-arg", format!("BUILDER_IMAGE={}", names.builder))
        .opt("--build-arg", format!("DEBIAN_SUITE={DEBIAN_SUITE}"))
        .opt("--build-arg", format!("DEBIAN_MIRROR={mirror}"))
        .opt(
            "--build-arg",
            format!("CARGO_CHEF_VERSION={CARGO_CHEF_VERSION}"),
        );
    let c = finish_local_build(c, &image, opts);
    run_or_print(sh, &c, opts.dry_run)
        .with_context(|| format!("building the Rust builder for {target}"))?;
    Ok(image)
}

/// The Debian mirror for debootstrap: `$BROKKR_DEBIAN_MIRROR`, else deb.debian.org.
fn debian_mirror() -> String {
    std::env::var("BROKKR_DEBIAN_MIRROR")
        .unwrap_or_else(|_| "http://deb.debian.org/debian".to_owned())
}

/// A minimal Debian root filesystem imported as an image (no registry
/// needed): `debootstrap --variant=minbase`, then `docker import`.
fn ensure_debian(sh: &Shell, image: &str, opts: &BaseOptions) -> Result<()> {
    if image_exists(sh, image) {
        eprintln!("debian base {image} is present");
        return Ok(());
    }
    let work = crate::target_dir().join("base-images");
    let rootfs = work.join(format!("{DEBIAN_SUITE}-rootfs"));
    let tarball = work.join(format!("{DEBIAN_SUITE}.tar"));
    let mirror = debian_mirror();
    let steps = [
        Cmd::new("rm").args(["-rf", &path(&rootfs), &path(&tarball)]),
        Cmd::new("mkdir").args(["-p", &path(&work)]),
        Cmd::new("debootstrap").args(["--variant=minbase", DEBIAN_SUITE, &path(&rootfs), &mirror]),
        Cmd::new("tar").args(["-C", &path(&rootfs), "-cf", &path(&tarball), "."]),
        Cmd::new("docker").args(["import", &path(&tarball), image]),
        Cmd::new("rm").args(["-rf", &path(&rootfs), &path(&tarball)]),
    ];
    if !opts.dry_run && which::which("debootstrap").is_err() {
        bail!("debootstrap is not installed; run `cargo xtask setup` (or `apt-get install debootstrap`)");
    }
    for s in &steps {
        run_or_print(sh, s, opts.dry_run)?;
    }
    Ok(())
}

fn path(p: &Path) -> String {
    p.display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_packages_cover_every_foreign_platform() {
        let amd64 = Platform::parse("amd64").unwrap();
        let (foreign, pkgs) = builder_packages(amd64);
        assert_eq!(foreign, vec!["arm64"]);
        for p in [
            "rustc",
            "cargo",
            "gcc",
            "gcc-aarch64-linux-gnu",
            "libc6-dev-arm64-cross",
            "libstd-rust-dev:arm64",
        ] {
            assert!(pkgs.contains(&p.to_owned()), "{p} missing from {pkgs:?}");
        }
        let arm64 = Platform::parse("arm64").unwrap();
        let (foreign, pkgs) = builder_packages(arm64);
        assert_eq!(foreign, vec!["amd64"]);
        assert!(
            pkgs.contains(&"gcc-x86-64-linux-gnu".to_owned()),
            "{pkgs:?}"
        );
        assert!(
            pkgs.contains(&"libstd-rust-dev:amd64".to_owned()),
            "{pkgs:?}"
        );
    }

    #[test]
    fn hash_is_stable_and_separates_parts() {
        assert_eq!(fnv1a(&[]), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(&["a"]), fnv1a(&["a"]));
        assert_ne!(fnv1a(&["ab", "c"]), fnv1a(&["a", "bc"]));
    }

    #[test]
    fn dockerfile_defaults_are_the_upstream_images() {
        for c in crate::project::COMPONENTS {
            let df = std::fs::read_to_string(crate::project_root().join(c.dockerfile)).unwrap();
            assert!(
                df.contains(&format!("ARG RUST_IMAGE={UPSTREAM_RUST_IMAGE}\n")),
                "{}",
                c.dockerfile
            );
            assert!(
                df.contains(&format!("ARG RUNTIME_IMAGE={UPSTREAM_RUNTIME_IMAGE}\n")),
                "{}",
                c.dockerfile
            );
            assert!(
                df.contains(&format!("ARG CARGO_CHEF_VERSION={CARGO_CHEF_VERSION}\n")),
                "{}",
                c.dockerfile
            );
        }
        let env =
            std::fs::read_to_string(crate::project_root().join("docker/cargo-env.sh")).unwrap();
        assert!(env.contains(&format!("CARGO_CHEF_VERSION:-{CARGO_CHEF_VERSION}")));
    }
}
