//! `cargo xtask bench`: what a build through BuildKit costs against what the
//! compiler itself costs, measured in one run on this machine. The baseline is
//! the builder image's own `cargo build --release --target <triple>` of both
//! packages in a plain `docker run` (the workspace mounted, a fresh target
//! directory), cold and after the same one-file change; each BuildKit figure is
//! printed as a ratio to it, beside its target. Timings are reported, never
//! asserted. Images go to `localhost:5000/brokkr-bench`, cold builds use a
//! fresh `BROKKR_CACHE_EPOCH`, and everything is built from a clone under
//! `target/bench-workspace`, so the user's images and build cache are left alone.

use std::{
    path::PathBuf,
    time::{Instant, SystemTime, UNIX_EPOCH},
};

use anyhow::{Context as _, Result};
use clap::Args;
use serde::Serialize;
use xshell::Shell;

use crate::{
    base_images::Bases,
    build_image::{self, Prepared},
    buildx::{CacheKind, Progress, Strategy},
    cli::BuildOpts,
    index, metadata,
    plan::Cmd,
    project::{component, Component, Platform, COMPONENTS, PLATFORMS},
    push, record, tags,
};

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

/// Registry prefix of the benchmark's images (`cargo xtask registry start` serves it).
pub const BENCH_REGISTRY: &str = "localhost:5000/brokkr-bench";

/// What a figure is held to (issue 14's targets).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Target {
    /// At most `factor` times the baseline plus `plus` seconds.
    Ratio {
        /// Multiple of the baseline.
        factor: f64,
        /// Seconds allowed on top.
        plus: f64,
    },
    /// Under this many seconds.
    Under(f64),
}

/// A cold leg: at most 1.1x the cold baseline.
pub const COLD: Target = Target::Ratio {
    factor: 1.1,
    plus: 0.0,
};
/// A one-file change: at most 1.5x its baseline plus 2 s.
pub const CHANGE: Target = Target::Ratio {
    factor: 1.5,
    plus: 2.0,
};
/// A no-op rebuild: under 1.5 s.
pub const NOOP: Target = Target::Under(1.5);
/// A fresh machine to the first arm64 images: under 240 s.
pub const FRESH_MACHINE: Target = Target::Under(240.0);

impl Target {
    /// Whether `seconds` meets the target; `None` when it needs a baseline and has none.
    pub fn met(self, seconds: f64, baseline: Option<f64>) -> Option<bool> {
        match self {
            Target::Ratio { factor, plus } => baseline.map(|b| seconds <= factor * b + plus),
            Target::Under(limit) => Some(seconds < limit),
        }
    }

    /// The target as the table prints it.
    pub fn describe(self) -> String {
        match self {
            Target::Ratio { factor, plus } if plus > 0.0 => {
                format!("<= {factor}x baseline + {plus} s")
            }
            Target::Ratio { factor, .. } => format!("<= {factor}x baseline"),
            Target::Under(limit) => format!("< {limit} s"),
        }
    }
}

/// One BuildKit build (`cargo xtask build-image`).
#[derive(Clone, Debug, Serialize)]
pub struct Leg {
    /// Component name.
    pub component: String,
    /// OCI platform.
    pub platform: String,
    /// Wall time of `docker buildx build`, seconds.
    pub seconds: f64,
    /// Build steps buildx reported `CACHED`.
    pub cached_steps: usize,
    /// The crates cargo compiled, from its `Compiling` lines ([`compiled_crates`]).
    pub compiled: Vec<String>,
}

/// cargo outside BuildKit for one target triple.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Baseline {
    /// OCI platform.
    pub platform: String,
    /// Fresh target directory, seconds (cargo's own `Finished ... in` figure).
    pub cold: Option<f64>,
    /// After the one-file change, seconds.
    pub change: Option<f64>,
    /// Crates compiled after the change.
    pub change_compiled: Vec<String>,
    /// Why a figure is missing.
    pub note: Option<String>,
}

/// An image's size.
#[derive(Clone, Debug, Serialize)]
pub struct Size {
    /// Component name.
    pub component: String,
    /// OCI platform.
    pub platform: String,
    /// Uncompressed size of the loaded image (its layers per `docker history`), in bytes.
    pub local_bytes: Option<u64>,
    /// Sum of the compressed layers and config in the registry manifest, in bytes.
    pub compressed_bytes: Option<u64>,
}

/// Everything `bench` measured (`--json` prints this).
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// `uname -srm`, cores and memory.
    pub machine: String,
    /// The builder image: BuildKit's `RUST_IMAGE` and the baseline's container.
    pub builder_image: String,
    /// The runtime base image.
    pub runtime_image: String,
    /// Cold legs, cross strategy, in build order (per platform: broker, then agent).
    pub cold: Vec<Leg>,
    /// cargo outside BuildKit, per platform.
    pub baselines: Vec<Baseline>,
    /// Broker rebuilt per platform after a one-line change to `broker/src/main.rs`.
    pub change: Vec<Leg>,
    /// Broker rebuilt with nothing changed (host platform).
    pub noop: Option<Leg>,
    /// Cold arm64 broker built with `--strategy emulate`, when measured.
    pub emulate_arm64: Option<Leg>,
    /// Why emulation was not measured, when it was not.
    pub emulate_note: Option<String>,
    /// Image sizes.
    pub sizes: Vec<Size>,
    /// Wall time of `cargo xtask images --dry-run --platform all`, seconds.
    pub xtask_dry_run_seconds: f64,
}

/// The crates cargo compiled, from its `Compiling NAME vX (...)` lines in
/// plain output (buildx's `--progress plain` or cargo's own), sorted and
/// deduplicated: after a change to one binary's source this is that crate alone.
pub fn compiled_crates(output: &str) -> Vec<String> {
    let mut out: Vec<String> = output
        .lines()
        .filter_map(|l| l.split_once(" Compiling ").map(|(_, rest)| rest))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(str::to_owned)
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Seconds from cargo's last `Finished ... in 1m 03s` / `in 6.81s` line.
pub fn cargo_finished_seconds(output: &str) -> Option<f64> {
    let (_, time) = output.lines().rev().find_map(|l| {
        l.trim_start()
            .strip_prefix("Finished ")?
            .rsplit_once(" in ")
    })?;
    time.split_whitespace()
        .map(|t| match (t.strip_suffix('m'), t.strip_suffix('s')) {
            (Some(m), _) => m.parse::<f64>().ok().map(|m| m * 60.0),
            (None, Some(s)) => s.parse::<f64>().ok(),
            _ => None,
        })
        .sum()
}

/// Runs `cargo xtask bench`.
pub fn run(sh: &Shell, args: &BenchArgs) -> Result<()> {
    let epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
        .to_string();
    let opts = BuildOpts {
        strategy: Strategy::Cross,
        registry: Some(BENCH_REGISTRY.to_owned()),
        cache: CacheKind::None,
        progress: Progress::Plain,
        bases: args.bases,
        ca_bundle: args.ca_bundle.clone(),
        cache_epoch: Some(epoch.clone()),
        no_setup: args.no_setup,
        dry_run: false,
    };
    xtask().args(["registry", "start"]).run(sh)?;
    let platforms: Vec<&'static Platform> = PLATFORMS.iter().collect();
    let prepared = build_image::prepare(sh, &opts, &platforms)?;
    let bench = Bench {
        clone: clone_checkout(sh)?,
        prepared,
        epoch,
    };

    let mut cold = Vec::new();
    for p in &platforms {
        for c in COMPONENTS {
            cold.push(bench.build(sh, c, p, &[])?);
        }
    }
    let sizes = sizes(sh, &bench, &platforms)?;
    let mut baselines: Vec<Baseline> = platforms
        .iter()
        .map(|p| bench.baseline_cold(sh, p))
        .collect();

    let main_rs = bench.clone.join("broker/src/main.rs");
    let text = std::fs::read_to_string(&main_rs).context("reading the clone's broker source")?;
    std::fs::write(&main_rs, text + "\n// bench: a one-line source change\n")?;
    let broker = component("broker")?;
    let mut change = Vec::new();
    for (p, b) in platforms.iter().zip(&mut baselines) {
        bench.baseline_change(sh, p, b);
        change.push(bench.build(sh, broker, p, &[])?);
    }
    let noop = bench.build(sh, broker, Platform::host()?, &[])?;

    let (emulate_arm64, emulate_note) = if args.quick {
        (None, Some("skipped (--quick)".to_owned()))
    } else {
        let emulate = [
            "--strategy".to_owned(),
            "emulate".to_owned(),
            format!("--registry={BENCH_REGISTRY}-emulate"),
            format!("--cache-epoch={}-emulate", bench.epoch),
        ];
        match bench.build(sh, broker, Platform::parse("arm64")?, &emulate) {
            Ok(l) => (Some(l), None),
            Err(e) => (None, Some(format!("not measured: {e:#}"))),
        }
    };

    let t = Instant::now();
    xtask()
        .args(["images", "--dry-run", "--platform", "all", "--registry"])
        .arg(BENCH_REGISTRY)
        .capture(sh)?;
    let report = Report {
        machine: machine(sh),
        builder_image: bench.prepared.bases.rust_image.clone(),
        runtime_image: bench.prepared.bases.runtime_image.clone(),
        cold,
        baselines,
        change,
        noop: Some(noop),
        emulate_arm64,
        emulate_note,
        sizes,
        xtask_dry_run_seconds: t.elapsed().as_secs_f64(),
    };
    let md = markdown(&report);
    let out_dir = crate::target_dir().join("xtask");
    std::fs::create_dir_all(&out_dir)?;
    std::fs::write(out_dir.join("bench.md"), &md)?;
    let json = serde_json::to_string_pretty(&report)?;
    std::fs::write(out_dir.join("bench.json"), &json)?;
    let _ = std::fs::remove_dir_all(&bench.clone);
    println!("{}", if args.json { json } else { md });
    Ok(())
}

/// `cargo xtask` itself, for the builds a developer would run.
fn xtask() -> Cmd {
    Cmd::new(
        std::env::current_exe()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| "xtask".to_owned()),
    )
}

/// One run's shared state: the clone everything builds from.
struct Bench {
    clone: PathBuf,
    prepared: Prepared,
    epoch: String,
}

impl Bench {
    /// `cargo xtask build-image` of the clone (records under this checkout's
    /// target directory), its cargo output kept for [`compiled_crates`].
    fn build(
        &self,
        sh: &Shell,
        c: &'static Component,
        p: &'static Platform,
        extra: &[String],
    ) -> Result<Leg> {
        let ca = self
            .prepared
            .ca_bundle
            .as_ref()
            .map_or_else(|| "none".to_owned(), |ca| ca.display().to_string());
        let bases = if self.prepared.bases.local {
            "local"
        } else {
            "upstream"
        };
        let out = xtask()
            .args(["build-image", "--component", c.name, "--platform", p.name])
            .args(["--cache", "none", "--progress", "plain", "--no-setup"])
            .args(["--bases", bases, "--ca-bundle", &ca])
            .arg(format!("--registry={BENCH_REGISTRY}"))
            .arg(format!("--cache-epoch={}", self.epoch))
            .args(extra)
            .env("BROKKR_WORKSPACE", self.clone.display().to_string())
            .env(
                "CARGO_TARGET_DIR",
                crate::target_dir().display().to_string(),
            )
            .run_teed(sh)?;
        anyhow::ensure!(out.ok, "building {} for {p} failed", c.image_name());
        let registry = extra
            .iter()
            .find_map(|a| a.strip_prefix("--registry="))
            .unwrap_or(BENCH_REGISTRY);
        let rec = record::load(&self.reference(sh, registry, c, p)?, c, p)?
            .context("the build wrote no record")?;
        Ok(Leg {
            component: c.name.into(),
            platform: p.name.into(),
            seconds: rec.duration_secs,
            cached_steps: rec.cached_steps,
            compiled: compiled_crates(&out.stderr),
        })
    }

    fn reference(&self, sh: &Shell, registry: &str, c: &Component, p: &Platform) -> Result<String> {
        let clone_sh = sh.clone();
        clone_sh.change_dir(&self.clone);
        let ctx = tags::detect(&clone_sh)?;
        Ok(metadata::per_platform_reference(registry, c, &ctx, p))
    }

    fn baseline_cold(&self, sh: &Shell, p: &Platform) -> Baseline {
        let mut b = Baseline {
            platform: p.name.into(),
            ..Baseline::default()
        };
        let fetch = self.cargo(p, &["fetch", "--locked"]).run(sh);
        match fetch.and_then(|()| self.cargo_build(sh, p)) {
            Ok((secs, _)) => b.cold = Some(secs),
            Err(e) => b.note = Some(format!("not measured: {e:#}")),
        }
        b
    }

    fn baseline_change(&self, sh: &Shell, p: &Platform, b: &mut Baseline) {
        if b.cold.is_none() {
            return;
        }
        match self.cargo_build(sh, p) {
            Ok((secs, compiled)) => (b.change, b.change_compiled) = (Some(secs), compiled),
            Err(e) => b.note = Some(format!("one-file change not measured: {e:#}")),
        }
    }

    /// `cargo build --release` as the Dockerfiles run it, outside BuildKit.
    fn cargo_build(&self, sh: &Shell, p: &Platform) -> Result<(f64, Vec<String>)> {
        let packages = COMPONENTS.iter().flat_map(|c| ["--package", c.package]);
        let cmd = self
            .cargo(p, &["build", "--release", "--locked", "--offline"])
            .args(["--target", p.rust_target])
            .args(packages);
        let t = Instant::now();
        let out = cmd.run_teed(sh)?;
        anyhow::ensure!(out.ok, "cargo build for {} failed", p.rust_target);
        let secs = cargo_finished_seconds(&out.stderr).unwrap_or(t.elapsed().as_secs_f64());
        Ok((secs, compiled_crates(&out.stderr)))
    }

    /// cargo in a plain container of the builder image: the clone at `/src`
    /// (BuildKit's path), its own target directory per platform, crates
    /// downloaded once into `target/bench-cargo-registry`, the cross linker
    /// set as `docker/cargo-env.sh` sets it.
    fn cargo(&self, p: &Platform, args: &[&str]) -> Cmd {
        let clone = self.clone.display().to_string();
        let registry = crate::target_dir().join("bench-cargo-registry");
        let upper = p.rust_target.replace('-', "_");
        let cc = format!("{}-gcc", p.gnu_prefix);
        let mut c = Cmd::new("docker")
            .args(["run", "--rm", "--workdir", "/src"])
            .opt("--volume", format!("{clone}:/src"))
            .opt(
                "--volume",
                format!("{}:/usr/local/cargo/registry", registry.display()),
            )
            .opt("--env", "CARGO_HOME=/usr/local/cargo")
            .opt("--env", "CARGO_TERM_COLOR=never")
            .opt(
                "--env",
                format!("CARGO_TARGET_DIR=/src/target/baseline-{}", p.arch),
            )
            .opt(
                "--env",
                format!("CARGO_TARGET_{}_LINKER={cc}", upper.to_uppercase()),
            )
            .opt("--env", format!("CC_{upper}={cc}"));
        if let Some(ca) = &self.prepared.ca_bundle {
            c = c
                .opt(
                    "--volume",
                    format!("{}:/run/brokkr-ca.pem:ro", ca.display()),
                )
                .opt("--env", "CARGO_HTTP_CAINFO=/run/brokkr-ca.pem");
        }
        c.arg(&self.prepared.bases.rust_image)
            .arg("cargo")
            .args(args.iter().copied())
    }
}

/// Clones the checkout to `target/bench-workspace`: every build and the
/// baseline read it, so only the changed file's mtime differs afterwards.
fn clone_checkout(sh: &Shell) -> Result<PathBuf> {
    let dir = crate::target_dir().join("bench-workspace");
    let _ = std::fs::remove_dir_all(&dir);
    let root = crate::project_root().display().to_string();
    Cmd::new("git")
        .args(["clone", "--quiet", &root, &dir.display().to_string()])
        .run(sh)?;
    Ok(dir)
}

/// Sizes: local from the loaded images, compressed from the registry after a push.
fn sizes(sh: &Shell, bench: &Bench, platforms: &[&'static Platform]) -> Result<Vec<Size>> {
    let mut sizes = Vec::new();
    for p in platforms {
        for c in COMPONENTS {
            let reference = bench.reference(sh, BENCH_REGISTRY, c, p)?;
            let compressed = push::push_one(sh, c, p, &reference)
                .ok()
                .and_then(|_| compressed_size(sh, &reference, p).ok());
            sizes.push(Size {
                component: c.name.into(),
                platform: p.name.into(),
                local_bytes: build_image::image_size(sh, &reference, p),
                compressed_bytes: compressed,
            });
        }
    }
    Ok(sizes)
}

/// Compressed size of the `platform` image behind `reference`: config plus
/// layers of its manifest, as the registry stores them.
fn compressed_size(sh: &Shell, reference: &str, platform: &Platform) -> Result<u64> {
    let inspect = |r: &str| {
        Cmd::new("docker")
            .args(["buildx", "imagetools", "inspect", "--raw", r])
            .read_quiet(sh)
    };
    let digest = index::per_platform_digest(&inspect(reference)?, platform)?;
    let repo = reference.rsplit_once(':').map_or(reference, |(r, _)| r);
    let v: serde_json::Value = serde_json::from_str(&inspect(&format!("{repo}@{digest}"))?)?;
    let layers: u64 = v["layers"]
        .as_array()
        .map_or(0, |ls| ls.iter().filter_map(|l| l["size"].as_u64()).sum());
    Ok(layers + v["config"]["size"].as_u64().unwrap_or(0))
}

fn machine(sh: &Shell) -> String {
    let uname = Cmd::new("uname")
        .args(["-srm"])
        .read_quiet(sh)
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            let kb = m.lines().next()?.split_whitespace().nth(1)?;
            kb.parse::<u64>().ok()
        })
        .map_or_else(String::new, |kb| format!(", {} GiB", kb / 1024 / 1024));
    format!("{}, {cores} cores{mem}", uname.trim())
}

/// One table row: the BuildKit figure, its baseline, the ratio and whether the target is met.
pub fn row(measure: &str, seconds: f64, baseline: Option<f64>, target: Option<Target>) -> String {
    let ratio = baseline
        .filter(|b| *b > 0.0)
        .map_or_else(String::new, |b| format!("{:.2}x", seconds / b));
    let (describe, met) = match target {
        Some(t) => (
            t.describe(),
            match t.met(seconds, baseline) {
                Some(true) => "yes",
                Some(false) => "**no**",
                None => "-",
            },
        ),
        None => (String::new(), ""),
    };
    format!(
        "| {measure} | {seconds:.1} s | {} | {ratio} | {describe} | {met} |\n",
        baseline.map_or_else(String::new, |b| format!("{b:.1} s"))
    )
}

fn mb(b: Option<u64>) -> String {
    b.map_or_else(|| "-".to_owned(), |b| format!("{:.1} MB", b as f64 / 1e6))
}

/// The report as Markdown (what BENCHMARKS.md holds).
pub fn markdown(r: &Report) -> String {
    let mut s = format!(
        "Machine: {}  \nBuilder image (BuildKit and baseline): {}  \nRuntime base: {}\n\n",
        r.machine, r.builder_image, r.runtime_image
    );
    s.push_str("| measure | BuildKit (`build-image`) | baseline: cargo outside BuildKit | ratio | target | met |\n|---|---|---|---|---|---|\n");
    let base = |p: &str| r.baselines.iter().find(|b| b.platform == p);
    for l in &r.cold {
        let (baseline, target) = match (l.component.as_str(), base(&l.platform)) {
            ("broker", Some(b)) => (b.cold, Some(COLD)),
            _ => (None, None),
        };
        let what = format!(
            "cold {} {} ({} crates compiled)",
            l.component,
            l.platform,
            l.compiled.len()
        );
        s.push_str(&row(&what, l.seconds, baseline, target));
    }
    for l in &r.change {
        let b = base(&l.platform);
        let what = format!(
            "one-file change, broker {}: compiled {} (baseline: {})",
            l.platform,
            l.compiled.join(", "),
            b.map_or_else(String::new, |b| b.change_compiled.join(", "))
        );
        s.push_str(&row(
            &what,
            l.seconds,
            b.and_then(|b| b.change),
            Some(CHANGE),
        ));
    }
    if let Some(n) = &r.noop {
        s.push_str(&row(
            &format!("no-op rebuild, broker {}", n.platform),
            n.seconds,
            None,
            Some(NOOP),
        ));
    }
    if let Some(e) = &r.emulate_arm64 {
        let cross = r
            .cold
            .iter()
            .find(|l| l.component == "broker" && l.platform == e.platform);
        s.push_str(&row(
            "broker linux/arm64 under emulation (baseline: cross)",
            e.seconds,
            cross.map(|c| c.seconds),
            None,
        ));
    }
    s.push_str(&format!(
        "| fresh machine to the first arm64 images | see below | | | {} | |\n",
        FRESH_MACHINE.describe()
    ));
    s.push_str(&row(
        "xtask overhead (`images --dry-run --platform all`)",
        r.xtask_dry_run_seconds,
        None,
        None,
    ));
    for b in r.baselines.iter().filter(|b| b.note.is_some()) {
        s.push_str(&format!(
            "\nBaseline {}: {}\n",
            b.platform,
            b.note.clone().unwrap_or_default()
        ));
    }
    if let Some(note) = &r.emulate_note {
        s.push_str(&format!("\nEmulation: {note}\n"));
    }
    s.push_str("\n| image | uncompressed | compressed |\n|---|---|---|\n");
    for z in &r.sizes {
        s.push_str(&format!(
            "| {} {} | {} | {} |\n",
            z.component,
            z.platform,
            mb(z.local_bytes),
            mb(z.compressed_bytes)
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_hold_figures_to_their_baselines() {
        let cases = [
            (COLD, 66.0, Some(60.0), Some(true)),
            (COLD, 66.1, Some(60.0), Some(false)),
            (COLD, 10.0, None, None),
            (CHANGE, 12.2, Some(6.8), Some(true)),
            (CHANGE, 12.3, Some(6.8), Some(false)),
            (CHANGE, 15.2, Some(6.8), Some(false)),
            (NOOP, 1.1, None, Some(true)),
            (NOOP, 1.5, None, Some(false)),
            (FRESH_MACHINE, 358.0, None, Some(false)),
            (FRESH_MACHINE, 239.0, Some(1.0), Some(true)),
        ];
        for (target, secs, baseline, want) in cases {
            assert_eq!(
                target.met(secs, baseline),
                want,
                "{target:?} {secs} {baseline:?}"
            );
        }
        assert_eq!(COLD.describe(), "<= 1.1x baseline");
        assert_eq!(CHANGE.describe(), "<= 1.5x baseline + 2 s");
        assert_eq!(NOOP.describe(), "< 1.5 s");
    }

    #[test]
    fn rows_print_ratio_and_verdict() {
        assert_eq!(
            row("cold", 62.0, Some(63.3), Some(COLD)),
            "| cold | 62.0 s | 63.3 s | 0.98x | <= 1.1x baseline | yes |\n"
        );
        assert_eq!(
            row("change", 15.2, Some(6.8), Some(CHANGE)),
            "| change | 15.2 s | 6.8 s | 2.24x | <= 1.5x baseline + 2 s | **no** |\n"
        );
        assert_eq!(
            row("cold", 62.0, None, Some(COLD)),
            "| cold | 62.0 s |  |  | <= 1.1x baseline | - |\n"
        );
        assert_eq!(row("x", 0.4, None, None), "| x | 0.4 s |  |  |  |  |\n");
    }

    #[test]
    fn compiled_crates_from_buildkit_and_cargo_output() {
        let buildkit = "#14 [linux/arm64 build 2/2] RUN . cargo-env.sh && cargo build\n\
#14 0.52    Compiling brokkr-broker v0.1.0 (/src/broker)\n\
#14 6.10     Finished `release` profile [optimized] target(s) in 5.71s\n#14 DONE 6.2s\n";
        assert_eq!(compiled_crates(buildkit), vec!["brokkr-broker"]);
        let cargo = "   Compiling serde v1.0.228\n   Compiling brokkr-agent v0.1.0 (/src/agent)\n\
   Compiling serde v1.0.228\n   Compiling brokkr-broker v0.1.0 (/src/broker)\n";
        assert_eq!(
            compiled_crates(cargo),
            vec!["brokkr-agent", "brokkr-broker", "serde"]
        );
        assert!(compiled_crates("#9 CACHED\n").is_empty());
    }

    #[test]
    fn cargo_finished_seconds_reads_both_formats() {
        let cases = [
            (
                "    Finished `release` profile [optimized] target(s) in 6.81s\n",
                Some(6.81),
            ),
            (
                "Compiling x\n    Finished `release` profile [optimized] target(s) in 1m 03s\n",
                Some(63.0),
            ),
            ("   Compiling x\n", None),
        ];
        for (text, want) in cases {
            assert_eq!(cargo_finished_seconds(text), want, "{text}");
        }
    }
}
