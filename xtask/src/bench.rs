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
    index, metadata,
    options::BuildOpts,
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

/// Name prefix of the benchmark's images (loaded into the engine, never pushed).
pub const BENCH_REGISTRY: &str = "localhost:5000/brokkr-bench";

/// What a figure is held to (issue 14's targets).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Target {
    /// At most `.0` times the baseline plus `.1` seconds.
    Ratio(f64, f64),
    /// Under this many seconds.
    Under(f64),
}

/// A cold leg against a cold baseline.
pub const COLD: Target = Target::Ratio(1.1, 0.0);
/// A one-file change against the baseline's same change.
pub const CHANGE: Target = Target::Ratio(1.5, 2.0);
/// A rebuild with nothing changed.
pub const NOOP: Target = Target::Under(1.5);
/// A fresh machine to the first arm64 images (`.ci/run`; not measured by `bench`).
pub const FRESH_MACHINE: Target = Target::Under(240.0);

impl Target {
    /// Whether `seconds` meets the target; `None` when it needs a baseline and has none.
    pub fn met(self, seconds: f64, baseline: Option<f64>) -> Option<bool> {
        match self {
            Target::Ratio(factor, plus) => baseline.map(|b| seconds <= factor * b + plus),
            Target::Under(limit) => Some(seconds < limit),
        }
    }

    /// The target as the table prints it.
    pub fn describe(self) -> String {
        match self {
            Target::Ratio(factor, plus) if plus > 0.0 => {
                format!("<= {factor}x baseline + {plus} s")
            }
            Target::Ratio(factor, _) => format!("<= {factor}x baseline"),
            Target::Under(limit) => format!("< {limit} s"),
        }
    }
}

/// One BuildKit build (`cargo xtask build-image`): wall time of `docker
/// buildx build` in seconds, and the crates cargo compiled ([`compiled_crates`]).
#[derive(Clone, Debug, Serialize)]
pub struct Leg {
    pub component: String,
    pub platform: String,
    pub seconds: f64,
    pub cached_steps: usize,
    pub compiled: Vec<String>,
    /// Uncompressed size of the loaded image (its layers per `docker history`), bytes.
    pub bytes: Option<u64>,
    /// Config and layers in the registry after a push (cold legs), bytes.
    pub compressed_bytes: Option<u64>,
}

/// cargo outside BuildKit for one platform: seconds with a fresh target
/// directory and after the one-file change (cargo's own `Finished ... in`).
#[derive(Clone, Debug, Default, Serialize)]
pub struct Baseline {
    pub platform: String,
    pub cold: Option<f64>,
    pub change: Option<f64>,
    pub change_compiled: Vec<String>,
    /// Why a figure is missing.
    pub note: Option<String>,
}

/// Everything `bench` measured (`--json` prints this).
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// `uname -srm`, cores and memory.
    pub machine: String,
    /// BuildKit's `RUST_IMAGE`, and the baseline's container.
    pub builder_image: String,
    pub runtime_image: String,
    /// Cross strategy, per platform: broker, then agent.
    pub cold: Vec<Leg>,
    pub baselines: Vec<Baseline>,
    /// The broker after a one-line change to `broker/src/main.rs`, per platform.
    pub change: Vec<Leg>,
    /// The broker for the host platform, nothing changed.
    pub noop: Leg,
    /// The arm64 broker with `--strategy emulate`, cold, or why not.
    pub emulate_arm64: Result<Leg, String>,
    /// `cargo xtask images --dry-run --platform all`, seconds.
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
        .map_or(0, |d| d.as_nanos());
    let opts = BuildOpts {
        strategy: Strategy::Cross,
        registry: Some(BENCH_REGISTRY.to_owned()),
        cache: CacheKind::None,
        cache_read_only: false,
        progress: Progress::Plain,
        bases: args.bases,
        ca_bundle: args.ca_bundle.clone(),
        cache_epoch: None,
        no_setup: args.no_setup,
        builder: None,
        dry_run: false,
    };
    let platforms: Vec<&'static Platform> = PLATFORMS.iter().collect();
    xtask().args(["registry", "start"]).run(sh)?;
    let prepared = build_image::prepare(sh, &opts, &platforms)?;
    let dir = crate::target_dir().join("bench-workspace");
    let _ = std::fs::remove_dir_all(&dir);
    let root = crate::project_root().display().to_string();
    Cmd::new("git")
        .args(["clone", "--quiet", &root, &dir.display().to_string()])
        .run(sh)?;
    let clone_sh = Shell::new()?;
    clone_sh.change_dir(&dir);
    let b = Bench {
        ctx: tags::detect(&clone_sh)?,
        dir,
        prepared,
        epoch: format!("--cache-epoch={epoch}"),
    };

    let mut cold = Vec::new();
    for p in &platforms {
        for c in COMPONENTS {
            let mut leg = b.build(sh, c, p, &[])?;
            leg.compressed_bytes = b.compressed_size(sh, c, p);
            cold.push(leg);
        }
    }
    let mut baselines: Vec<Baseline> = platforms.iter().map(|p| b.baseline_cold(sh, p)).collect();
    let main_rs = b.dir.join("broker/src/main.rs");
    let text = std::fs::read_to_string(&main_rs).context("reading the clone's broker source")?;
    std::fs::write(&main_rs, text + "\n// bench: a one-line source change\n")?;
    let broker = component("broker")?;
    let mut change = Vec::new();
    for (p, base) in platforms.iter().zip(&mut baselines) {
        b.baseline_change(sh, p, base);
        change.push(b.build(sh, broker, p, &[])?);
    }
    let noop = b.build(sh, broker, Platform::host()?, &[])?;
    let emulate_arm64 = if args.quick {
        Err("skipped (--quick)".to_owned())
    } else {
        let emulate = [
            "--strategy=emulate".to_owned(),
            format!("{}-emulate", b.epoch),
        ];
        b.build(sh, broker, Platform::parse("arm64")?, &emulate)
            .map_err(|e| format!("not measured: {e:#}"))
    };

    let t = Instant::now();
    xtask()
        .args(["images", "--dry-run", "--platform", "all"])
        .arg(format!("--registry={BENCH_REGISTRY}"))
        .capture(sh)?;
    let report = Report {
        machine: machine(sh),
        builder_image: b.prepared.bases.rust_image.clone(),
        runtime_image: b.prepared.bases.runtime_image.clone(),
        cold,
        baselines,
        change,
        noop,
        emulate_arm64,
        xtask_dry_run_seconds: t.elapsed().as_secs_f64(),
    };
    let md = markdown(&report);
    let json = serde_json::to_string_pretty(&report)?;
    let out_dir = crate::target_dir().join("xtask");
    std::fs::create_dir_all(&out_dir)?;
    std::fs::write(out_dir.join("bench.md"), &md)?;
    std::fs::write(out_dir.join("bench.json"), &json)?;
    let _ = std::fs::remove_dir_all(&b.dir);
    println!("{}", if args.json { json } else { md });
    Ok(())
}

fn xtask() -> Cmd {
    let exe = std::env::current_exe().unwrap_or_else(|_| "xtask".into());
    Cmd::new(exe.display().to_string())
}

/// One run's shared state: the clone of this checkout that every build and
/// the baseline read (so that after the change only that file's mtime differs).
struct Bench {
    dir: PathBuf,
    ctx: metadata::Context,
    prepared: Prepared,
    /// `--cache-epoch=<nanoseconds>`: one cold start for every leg, as one CI run.
    epoch: String,
}

impl Bench {
    /// `cargo xtask build-image` of the clone, as a developer runs it; its
    /// record (under this checkout's target directory) gives time and size.
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
            .map_or("none".into(), |ca| ca.display().to_string());
        let bases = if self.prepared.bases.local {
            "local"
        } else {
            "upstream"
        };
        let out = xtask()
            .args([
                "build-image",
                "--component",
                c.name,
                "--platform",
                p.name,
                "--no-setup",
            ])
            .args([
                "--cache=none",
                "--progress=plain",
                "--bases",
                bases,
                "--ca-bundle",
                &ca,
            ])
            .arg(format!("--registry={BENCH_REGISTRY}"))
            .arg(&self.epoch)
            .args(extra.iter().map(String::as_str))
            .env("BROKKR_WORKSPACE", self.dir.display().to_string())
            .env(
                "CARGO_TARGET_DIR",
                crate::target_dir().display().to_string(),
            )
            .run_teed(sh)?;
        anyhow::ensure!(out.ok, "building {} for {p} failed", c.image_name());
        let reference = metadata::per_platform_reference(BENCH_REGISTRY, c, &self.ctx, p);
        let rec = record::load(&reference, c, p)?.context("the build wrote no record")?;
        Ok(Leg {
            component: c.name.into(),
            platform: p.name.into(),
            seconds: rec.duration_secs,
            cached_steps: rec.cached_steps,
            compiled: compiled_crates(&out.stderr),
            bytes: rec.size_bytes,
            compressed_bytes: None,
        })
    }

    /// Pushes the image, then sums config and layers of its manifest in the registry.
    fn compressed_size(&self, sh: &Shell, c: &Component, p: &Platform) -> Option<u64> {
        let reference = metadata::per_platform_reference(BENCH_REGISTRY, c, &self.ctx, p);
        push::push_one(sh, c, p, &reference).ok()?;
        let inspect = |r: &str| {
            let raw = Cmd::new("docker").args(["buildx", "imagetools", "inspect", "--raw", r]);
            raw.read_quiet(sh).ok()
        };
        let digest = index::per_platform_digest(&inspect(&reference)?, p).ok()?;
        let repo = reference.rsplit_once(':').map_or(&*reference, |(r, _)| r);
        let v: serde_json::Value =
            serde_json::from_str(&inspect(&format!("{repo}@{digest}"))?).ok()?;
        let layers = v["layers"]
            .as_array()?
            .iter()
            .filter_map(|l| l["size"].as_u64());
        Some(layers.sum::<u64>() + v["config"]["size"].as_u64()?)
    }

    fn baseline_cold(&self, sh: &Shell, p: &Platform) -> Baseline {
        let fetched = self.cargo(p, &["fetch", "--locked"]).run(sh);
        let (cold, note) = match fetched.and_then(|()| self.cargo_build(sh, p)) {
            Ok((secs, _)) => (Some(secs), None),
            Err(e) => (None, Some(format!("not measured: {e:#}"))),
        };
        Baseline {
            platform: p.name.into(),
            cold,
            note,
            ..Baseline::default()
        }
    }

    fn baseline_change(&self, sh: &Shell, p: &Platform, b: &mut Baseline) {
        match b.cold.map(|_| self.cargo_build(sh, p)) {
            Some(Ok((secs, compiled))) => (b.change, b.change_compiled) = (Some(secs), compiled),
            Some(Err(e)) => b.note = Some(format!("one-file change not measured: {e:#}")),
            None => {}
        }
    }

    /// `cargo build --release` as the Dockerfiles run it, outside BuildKit.
    fn cargo_build(&self, sh: &Shell, p: &Platform) -> Result<(f64, Vec<String>)> {
        let t = Instant::now();
        let out = self
            .cargo(
                p,
                &[
                    "build",
                    "--release",
                    "--locked",
                    "--offline",
                    "--target",
                    p.rust_target,
                ],
            )
            .args(COMPONENTS.iter().flat_map(|c| ["--package", c.package]))
            .run_teed(sh)?;
        anyhow::ensure!(out.ok, "cargo build for {} failed", p.rust_target);
        let secs = cargo_finished_seconds(&out.stderr).unwrap_or(t.elapsed().as_secs_f64());
        Ok((secs, compiled_crates(&out.stderr)))
    }

    /// cargo in a plain container of the builder image: the clone at `/src`
    /// (BuildKit's path), a target directory per platform, crates downloaded
    /// once into `target/bench-cargo-registry`, the cross linker set as
    /// `docker/cargo-env.sh` sets it.
    fn cargo(&self, p: &Platform, args: &[&str]) -> Cmd {
        let registry = crate::target_dir().join("bench-cargo-registry");
        let triple = p.rust_target.replace('-', "_");
        let cc = format!("{}-gcc", p.gnu_prefix);
        let mut c = Cmd::new("docker")
            .args([
                "run",
                "--rm",
                "--workdir=/src",
                "--env=CARGO_TERM_COLOR=never",
            ])
            .opt("--volume", format!("{}:/src", self.dir.display()))
            .opt(
                "--volume",
                format!("{}:/usr/local/cargo/registry", registry.display()),
            )
            .opt("--env", "CARGO_HOME=/usr/local/cargo")
            .opt(
                "--env",
                format!("CARGO_TARGET_DIR=/src/target/baseline-{}", p.arch),
            )
            .opt(
                "--env",
                format!("CARGO_TARGET_{}_LINKER={cc}", triple.to_uppercase()),
            )
            .opt("--env", format!("CC_{triple}={cc}"));
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

fn machine(sh: &Shell) -> String {
    let uname = Cmd::new("uname")
        .args(["-srm"])
        .read_quiet(sh)
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let kb = meminfo
        .split_whitespace()
        .nth(1)
        .and_then(|kb| kb.parse::<u64>().ok());
    let mem = kb.map_or_else(String::new, |kb| format!(", {} GiB", kb / 1024 / 1024));
    format!("{}, {cores} cores{mem}", uname.trim())
}

/// One table row: the BuildKit figure, its baseline, the ratio and whether the target is met.
pub fn row(measure: &str, seconds: f64, baseline: Option<f64>, target: Option<Target>) -> String {
    let ratio = baseline
        .filter(|b| *b > 0.0)
        .map_or_else(String::new, |b| format!("{:.2}x", seconds / b));
    let met = match target.map(|t| t.met(seconds, baseline)) {
        Some(Some(true)) => "yes",
        Some(Some(false)) => "**no**",
        Some(None) => "-",
        None => "",
    };
    format!(
        "| {measure} | {seconds:.1} s | {} | {ratio} | {} | {met} |\n",
        baseline.map_or_else(String::new, |b| format!("{b:.1} s")),
        target.map_or_else(String::new, Target::describe)
    )
}

/// The report as Markdown (what BENCHMARKS.md holds).
pub fn markdown(r: &Report) -> String {
    let mut s = format!(
        "Machine: {}  \nBuilder image (BuildKit and baseline): {}  \nRuntime base: {}\n\n\
         | measure | BuildKit (`build-image`) | baseline: cargo outside BuildKit | ratio | target | met |\n\
         |---|---|---|---|---|---|\n",
        r.machine, r.builder_image, r.runtime_image
    );
    let base = |p: &str| r.baselines.iter().find(|b| b.platform == p);
    for l in &r.cold {
        let b = base(&l.platform).filter(|_| l.component == "broker");
        let what = format!(
            "cold {} {} ({} crates compiled)",
            l.component,
            l.platform,
            l.compiled.len()
        );
        s += &row(&what, l.seconds, b.and_then(|b| b.cold), b.map(|_| COLD));
    }
    for l in &r.change {
        let b = base(&l.platform);
        let theirs = b.map_or_else(String::new, |b| b.change_compiled.join(", "));
        let what = format!(
            "one-file change, broker {}: compiled {} (baseline: {theirs})",
            l.platform,
            l.compiled.join(", ")
        );
        s += &row(&what, l.seconds, b.and_then(|b| b.change), Some(CHANGE));
    }
    s += &row(
        &format!("no-op rebuild, broker {}", r.noop.platform),
        r.noop.seconds,
        None,
        Some(NOOP),
    );
    if let Ok(e) = &r.emulate_arm64 {
        let cross = r
            .cold
            .iter()
            .find(|l| l.component == "broker" && l.platform == e.platform);
        s += &row(
            "broker linux/arm64 under emulation (baseline: cross)",
            e.seconds,
            cross.map(|c| c.seconds),
            None,
        );
    }
    s += &format!(
        "| fresh machine to the first arm64 images | see below | | | {} | |\n",
        FRESH_MACHINE.describe()
    );
    s += &row(
        "xtask overhead (`images --dry-run --platform all`)",
        r.xtask_dry_run_seconds,
        None,
        None,
    );
    let notes = r
        .baselines
        .iter()
        .filter_map(|b| Some((b.platform.as_str(), b.note.as_deref()?)));
    for (what, note) in notes.chain(
        r.emulate_arm64
            .as_ref()
            .err()
            .map(|e| ("emulation", e.as_str())),
    ) {
        s += &format!("\n{what}: {note}\n");
    }
    s += "\n| image | uncompressed size |\n|---|---|\n";
    for l in &r.cold {
        let mb = l
            .bytes
            .map_or_else(|| "-".to_owned(), |b| format!("{:.1} MB", b as f64 / 1e6));
        s += &format!("| {} {} | {mb} |\n", l.component, l.platform);
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
