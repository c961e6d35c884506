//! `cargo xtask base-images`: the images the Dockerfiles build FROM, made from Debian's archive
//! when no registry can be reached, and the choice of them or upstream (`--bases`). Local images
//! are `brokkr.local/base/<name>:<tag>` (`.local` is reserved: never pulled as upstream); their
//! tags hash their inputs, so they are rebuilt only when one changes.

use std::{collections::BTreeMap, path::PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use xshell::Shell;

use crate::{
    buildx::Strategy,
    plan::Cmd,
    project::{parse_platform_list, Platform, PlatformList, PLATFORMS},
};

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

/// Debian 12 based; pairs with distroless `cc-debian12`. Must equal the
/// Dockerfiles' `RUST_IMAGE` default (as `RUNTIME_IMAGE` below; tested).
pub const UPSTREAM_RUST_IMAGE: &str = "docker.io/library/rust:1.85-slim-bookworm";
pub const UPSTREAM_RUNTIME_IMAGE: &str = "gcr.io/distroless/cc-debian12:nonroot";
pub use crate::{options::Bases, project::LOCAL_BASE_PREFIX as LOCAL_PREFIX};
/// Installed `--locked` by every builder: the newest whose dependencies build
/// with the builder's rustc 1.85 (0.1.76+ need 1.86+).
pub const CARGO_CHEF_VERSION: &str = "0.1.75";
/// Its rustc (1.85) matches `rust-version`; builder and runtime share its glibc (2.41).
pub const DEBIAN_SUITE: &str = "trixie";

/// The build arguments `RUST_IMAGE`, `RUNTIME_IMAGE` and, per target architecture (`arm64`)
/// for `--strategy emulate` with local bases, `EMULATE_RUST_IMAGE` (else `RUST_IMAGE`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedBases {
    pub rust_image: String,
    pub runtime_image: String,
    pub emulate_rust_images: BTreeMap<&'static str, String>,
    pub local: bool,
}

/// 64-bit FNV-1a: a stable hash of image inputs (std's hasher may change
/// between Rust releases, which would rebuild every base image).
pub fn fnv1a(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in parts.iter().flat_map(|p| p.bytes().chain([0])) {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// (foreign Debian architectures, packages) of the local Rust builder running on `build`: rustc,
/// cargo, gcc, and for every other platform its C cross compiler, libc headers and Rust std.
pub fn builder_packages(build: &Platform) -> (Vec<&'static str>, Vec<String>) {
    let foreign: Vec<_> = PLATFORMS.iter().filter(|p| *p != build).collect();
    let cross = foreign.iter().flat_map(|p| {
        let gcc = format!("gcc-{}", p.gnu_prefix.replace('_', "-"));
        [gcc, format!("libc6-dev-{}-cross", p.arch), format!("libstd-rust-dev:{}", p.arch)]
    });
    let native = ["rustc", "cargo", "gcc", "libc6-dev", "ca-certificates"].map(String::from);
    (foreign.iter().map(|p| p.arch).collect(), native.into_iter().chain(cross).collect())
}

/// `ca_bundle`: the `ca-bundle` build secret (for cargo behind a TLS proxy).
#[derive(Clone, Debug)]
pub struct BaseOptions {
    pub ca_bundle: Option<PathBuf>,
    pub dry_run: bool,
}

/// Whether `image` is in the local store; says so when it is.
fn present(sh: &Shell, what: &str, image: &str) -> bool {
    let yes = crate::record::local_digest(sh, image, None).is_ok_and(|d| d.is_some());
    if yes {
        eprintln!("{what} {image} is present");
    }
    yes
}

/// Chooses the base images for `targets` and prints the choice, building missing local
/// substitutes when chosen (with `Strategy::Emulate`, a Rust builder per target platform).
pub fn resolve(
    sh: &Shell,
    mode: Bases,
    strategy: Strategy,
    targets: &[&'static Platform],
    opts: &BaseOptions,
) -> Result<ResolvedBases> {
    // Whether the upstream images' registries answer: a manifest lookup with a 20 s limit.
    let probe = ["20", "docker", "buildx", "imagetools", "inspect"];
    let reachable =
        |i: &&str| Cmd::new("timeout").args(probe).arg(*i).capture(sh).is_ok_and(|c| c.ok);
    let upstream = [UPSTREAM_RUST_IMAGE, UPSTREAM_RUNTIME_IMAGE];
    let local = match mode {
        Bases::Upstream => false,
        Bases::Local => true,
        Bases::Auto => opts.dry_run || !upstream.iter().all(reachable),
    };
    let (rust_image, runtime_image, emulate_rust_images) = match local {
        true => ensure_local(sh, if strategy == Strategy::Emulate { targets } else { &[] }, opts)?,
        false => (UPSTREAM_RUST_IMAGE.into(), UPSTREAM_RUNTIME_IMAGE.into(), BTreeMap::new()),
    };
    let why = match (mode, local) {
        (Bases::Auto, true) if opts.dry_run => {
            "auto, dry run: upstream not probed, showing the local substitutes"
        }
        (Bases::Auto, true) => "auto: upstream registry unreachable, using local substitutes",
        (Bases::Auto, false) => "auto: upstream",
        (_, true) => "local",
        (_, false) => "upstream",
    };
    eprintln!("bases ({why}): builder {rust_image}, runtime {runtime_image}");
    Ok(ResolvedBases { rust_image, runtime_image, emulate_rust_images, local })
}

/// `cargo xtask base-images`: builds whatever local substitute is missing.
pub fn run(sh: &Shell, args: &BaseImagesArgs) -> Result<()> {
    let ca_bundle = crate::options::ca_bundle(args.ca_bundle.as_deref())?;
    let (build, emulate) =
        (Platform::host()?, args.emulate.clone().map(|l| l.0).unwrap_or_default());
    let opts = BaseOptions { ca_bundle, dry_run: args.dry_run };
    let (builder, runtime, emulate_images) = ensure_local(sh, &emulate, &opts)?;
    println!("rust builder ({build}): {builder}");
    for t in emulate.iter().filter(|t| **t != build) {
        println!("rust builder ({t}, for --strategy emulate): {}", emulate_images[t.arch]);
    }
    println!("runtime ({}): {runtime}", crate::project::platform_names());
    Ok(())
}

/// The local images (their tags hash their inputs), building what is missing: the Debian base
/// (`debootstrap --variant=minbase`, `docker import`), then the Rust builder's apt stage
/// (`toolchain`, into the build cache) while the host's cargo compiles cargo-chef (else the
/// builder's `chef-compiled` stage does), then the Rust builder and the runtime base at once;
/// then for each of `emulate` but the build platform a Rust builder that runs ON it (Debian's
/// packages configured under QEMU, cargo-chef cross-compiled by the build-platform builder).
fn ensure_local(
    sh: &Shell,
    emulate: &[&'static Platform],
    opts: &BaseOptions,
) -> Result<(String, String, BTreeMap<&'static str, String>)> {
    let build = Platform::host()?;
    let all = PLATFORMS.iter().map(|p| p.name).collect::<Vec<_>>().join(",");
    let mirror = std::env::var("BROKKR_DEBIAN_MIRROR");
    let mirror = mirror.unwrap_or_else(|_| "http://deb.debian.org/debian".into());
    let (foreign, packages) = builder_packages(build);
    let (foreign, packages) = (foreign.join(" "), packages.join(" "));
    let builder_df = sh.read_file("docker/rust-builder.Dockerfile")?;
    let (arch, hash) = (build.arch, fnv1a(&[&builder_df, &foreign, &packages, CARGO_CHEF_VERSION]));
    let runtime_hash = fnv1a(&[&sh.read_file("docker/runtime-base.Dockerfile")?, &all]) as u32;
    let debian_image = format!("{LOCAL_PREFIX}/debian:{DEBIAN_SUITE}");
    let builder = format!("{LOCAL_PREFIX}/rust-builder:{DEBIAN_SUITE}-{arch}-{:08x}", hash as u32);
    let runtime = format!("{LOCAL_PREFIX}/runtime:{DEBIAN_SUITE}-{runtime_hash:08x}");
    let mut debian = Vec::new();
    if !present(sh, "debian base", &debian_image) {
        if !opts.dry_run && which::which("debootstrap").is_err() {
            bail!("debootstrap is not installed; run `cargo xtask setup` (or `apt-get install debootstrap`)");
        }
        let work = crate::target_dir().join("base-images");
        let rootfs = work.join(format!("{DEBIAN_SUITE}-rootfs")).display().to_string();
        let tarball = work.join(format!("{DEBIAN_SUITE}.tar")).display().to_string();
        let rm = Cmd::new("rm").args(["-rf", &rootfs, &tarball]);
        let debootstrap = ["--variant=minbase", DEBIAN_SUITE, &rootfs, &mirror];
        debian = vec![
            rm.clone(),
            Cmd::new("mkdir").arg("-p").arg(work.display().to_string()),
            Cmd::new("debootstrap").args(debootstrap),
            Cmd::new("tar").args(["-C", &rootfs, "-cf", &tarball, "."]),
            Cmd::new("docker").args(["import", &tarball, &debian_image]),
            rm,
        ];
    }
    let (mut first, mut then) = (Vec::new(), Vec::new());
    if !present(sh, "rust builder", &builder) {
        let mut c = buildx(build.name, "rust-builder", &debian_image)
            .opt("--build-arg", format!("FOREIGN_ARCHES={foreign}"))
            .opt("--build-arg", format!("PACKAGES={packages}"));
        if which::which("cargo").is_ok() {
            // `cargo install` as docker/rust-builder.Dockerfile's `chef` stage does (debug, no
            // debug info: a third of the release build's time). The host's glibc is older than
            // the builder's (Debian 12's 2.36, trixie's 2.41), so the binary runs there.
            let root = crate::target_dir().join("xtask/cargo-chef");
            let chef = Cmd::new("cargo").args("install cargo-chef --version".split(' '));
            let chef = chef.arg(CARGO_CHEF_VERSION).args(["--locked", "--debug", "--root"]);
            let chef = chef.arg(root.display().to_string()).env("CARGO_PROFILE_DEV_DEBUG", "0");
            let ca = opts.ca_bundle.iter().map(|ca| ca.display().to_string());
            let chef = ca.fold(chef, |c, ca| c.env("CARGO_HTTP_CAINFO", ca));
            first.push(("cargo-chef with the host's cargo", vec![chef]));
            let warm = "--target toolchain --output type=cacheonly docker".split(' ');
            debian.push(c.clone().args(warm));
            let chef = format!("host-cargo-chef={}", root.join("bin").display());
            c = c.opt("--build-arg", "CARGO_CHEF_FROM=host").opt("--build-context", chef);
        }
        let c = finish_local_build(c, &builder, opts);
        then.push(("the local Rust builder image", vec![c]));
    }
    if !present(sh, "runtime", &runtime) {
        let c = buildx(&all, "runtime-base", &debian_image);
        let c = c.opt("--tag", &runtime).args(["--load", "docker"]);
        then.push(("the local runtime base image", vec![c]));
    }
    first.push(("the Debian base image and the Rust builder's packages", debian));
    run_all(sh, &first, opts.dry_run)?;
    run_all(sh, &then, opts.dry_run)?;
    let target_df = sh.read_file("docker/rust-builder-target.Dockerfile")?;
    let env = sh.read_file("docker/cargo-env.sh")?;
    let inputs = [&*target_df, &env, &builder, &debian_image, CARGO_CHEF_VERSION, &mirror];
    let target = format!("{LOCAL_PREFIX}/rust-builder-target:{DEBIAN_SUITE}");
    let (target_hash, mut emulate_rust_images) = (fnv1a(&inputs) as u32, BTreeMap::new());
    for t in emulate {
        let image = match *t == build {
            true => builder.clone(),
            false => format!("{target}-{}-{target_hash:08x}", t.arch),
        };
        if *t != build && !present(sh, &format!("rust builder for {t}"), &image) {
            let c = buildx(t.name, "rust-builder-target", &debian_image)
                .opt("--build-arg", format!("BUILDER_IMAGE={builder}"))
                .opt("--build-arg", format!("DEBIAN_SUITE={DEBIAN_SUITE}"))
                .opt("--build-arg", format!("DEBIAN_MIRROR={mirror}"));
            let what = format!("the Rust builder for {t}");
            run_all(sh, &[(&what, vec![finish_local_build(c, &image, opts)])], opts.dry_run)?;
        }
        emulate_rust_images.insert(t.arch, image);
    }
    Ok((builder, runtime, emulate_rust_images))
}

/// `docker buildx build` of `docker/<file>.Dockerfile` FROM the Debian base.
fn buildx(platforms: &str, file: &str, debian: &str) -> Cmd {
    let c = Cmd::new("docker").args(["buildx", "build", "--progress", "plain", "--platform"]);
    let c = c.arg(platforms).opt("--file", format!("docker/{file}.Dockerfile"));
    c.opt("--build-arg", format!("DEBIAN_IMAGE={debian}"))
}

/// Runs each job's commands in order, the jobs at once (a thread each); the first failure
/// (in job order) is the error, naming its job.
fn run_all(sh: &Shell, jobs: &[(&str, Vec<Cmd>)], dry_run: bool) -> Result<()> {
    let dir = sh.current_dir();
    let run = |(what, cmds): &(&str, Vec<Cmd>)| -> Result<()> {
        let sh = Shell::new()?;
        sh.change_dir(&dir);
        for c in cmds {
            match dry_run {
                true => println!("{c}"),
                false => c.run(&sh).with_context(|| format!("building {what}"))?,
            }
        }
        Ok(())
    };
    std::thread::scope(|s| {
        let running: Vec<_> = jobs.iter().map(|job| s.spawn(move || run(job))).collect();
        let panicked = || Err(anyhow!("a base image build panicked"));
        running.into_iter().try_for_each(|h| h.join().unwrap_or_else(|_| panicked()))
    })
}

/// The common tail of a local builder image build: cargo-chef's version, the CA bundle secret,
/// the tag, and an uncompressed image in the local store (it never leaves this machine, and
/// compressing its ~900 MB costs minutes), with `docker/` as the context.
fn finish_local_build(c: Cmd, image: &str, opts: &BaseOptions) -> Cmd {
    let c = c.arg(format!("--build-arg=CARGO_CHEF_VERSION={CARGO_CHEF_VERSION}"));
    let secret = opts.ca_bundle.iter().map(|ca| format!("id=ca-bundle,src={}", ca.display()));
    let c = c.opts("--secret", secret).opt("--tag", image);
    c.opt("--output", "type=docker,compression=uncompressed").arg("docker")
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
        assert!(pkgs.contains(&"gcc-x86-64-linux-gnu".to_owned()), "{pkgs:?}");
        assert!(pkgs.contains(&"libstd-rust-dev:amd64".to_owned()), "{pkgs:?}");
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
