//! `cargo xtask bench`: build time, cache effect, cross versus emulation and
//! image size, measured on this machine in one run. Timings are reported,
//! never asserted. It builds under its own registry prefix
//! (`localhost:5000/brokkr-bench`) and makes cold builds with a fresh
//! `BROKKR_CACHE_EPOCH`, so the user's images and build cache are left alone
//! (the build records under `target/xtask/images` are rewritten, as by any build).

use std::{
    path::PathBuf,
    time::{Instant, SystemTime, UNIX_EPOCH},
};

use anyhow::{Context as _, Result};
use serde::Serialize;
use xshell::Shell;

use crate::{
    build_image::{self, Prepared},
    buildx::{Output, Strategy},
    cli::BenchArgs,
    index,
    options::BuildOpts,
    plan::Cmd,
    project::{component, Platform, COMPONENTS, PLATFORMS},
    push,
    record::BuildRecord,
};

/// Registry prefix of the benchmark's images (`cargo xtask registry start` serves it).
pub const BENCH_REGISTRY: &str = "localhost:5000/brokkr-bench";

/// One leg's numbers.
#[derive(Clone, Debug, Serialize)]
pub struct Leg {
    /// Component name.
    pub component: String,
    /// OCI platform.
    pub platform: String,
    /// Wall time in seconds.
    pub seconds: f64,
    /// Build steps buildx reported `CACHED`.
    pub cached_steps: usize,
    /// Dependency crates compiled.
    pub dependency_crates_compiled: usize,
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
    /// Base images used.
    pub bases: String,
    /// Cold legs, cross strategy, in build order.
    pub cold: Vec<Leg>,
    /// Sum of the cold legs in seconds.
    pub cold_total_seconds: f64,
    /// arm64 legs' time over amd64 legs' time (cross, cold).
    pub arm64_to_amd64: Option<f64>,
    /// Cold arm64 broker built with `--strategy emulate`, when measured.
    pub emulate_arm64: Option<Leg>,
    /// Emulate time over cross time for the arm64 broker.
    pub emulate_to_cross: Option<f64>,
    /// Why emulation was not measured, when it was not.
    pub emulate_note: Option<String>,
    /// Broker rebuilt per platform after a one-line source change.
    pub warm: Vec<Leg>,
    /// Broker rebuilt with nothing changed (host platform).
    pub noop: Option<Leg>,
    /// Image sizes.
    pub sizes: Vec<Size>,
    /// Wall time of `cargo xtask images --dry-run --platform all`, seconds.
    pub xtask_dry_run_seconds: f64,
}

/// Runs `cargo xtask bench`.
pub fn run(sh: &Shell, args: &BenchArgs) -> Result<()> {
    let epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
        .to_string();
    let opts = BuildOpts {
        strategy: Strategy::Cross,
        registry: Some(BENCH_REGISTRY.to_owned()),
        cache: crate::buildx::CacheKind::None,
        cache_read_only: false,
        progress: crate::buildx::Progress::Plain,
        bases: args.bases,
        ca_bundle: args.ca_bundle.clone(),
        cache_epoch: Some(epoch.clone()),
        no_setup: args.no_setup,
        dry_run: false,
    };
    let platforms: Vec<&'static Platform> = PLATFORMS.iter().collect();
    Cmd::new(std::env::current_exe()?.display().to_string())
        .args(["registry", "start"])
        .run(sh)?;
    let prepared = build_image::prepare(sh, &opts, &platforms)?;

    // Cold: every leg, one fresh cache epoch shared by the four legs (as one CI run).
    let mut cold = Vec::new();
    let mut records = Vec::new();
    for p in &platforms {
        for c in COMPONENTS {
            let r = build_image::build(sh, &prepared, &opts, c, &[p], Output::Load, &[])?;
            cold.push(leg(&r));
            records.push((c, *p, r));
        }
    }
    let total = |arch: &str| {
        cold.iter()
            .filter(|l| l.platform.ends_with(arch))
            .map(|l| l.seconds)
            .sum::<f64>()
    };
    let arm64_to_amd64 = (total("amd64") > 0.0).then(|| total("arm64") / total("amd64"));

    // Sizes: local, then compressed from the registry after a push.
    let mut sizes = Vec::new();
    for (c, p, r) in &records {
        let compressed = push::push_one(sh, c, p, &r.reference)
            .ok()
            .and_then(|_| compressed_size(sh, &r.reference, p).ok());
        sizes.push(Size {
            component: c.name.into(),
            platform: p.name.into(),
            local_bytes: r.size_bytes,
            compressed_bytes: compressed,
        });
    }

    // Warm: a one-line change to broker's source, in a clone of this checkout.
    let clone = clone_with_change(sh)?;
    let clone_sh = Shell::new()?;
    clone_sh.change_dir(&clone);
    let clone_prepared = Prepared {
        ctx: crate::tags::detect(&clone_sh)?,
        ..prepared.clone()
    };
    let broker = component("broker")?;
    let mut warm = Vec::new();
    for p in &platforms {
        warm.push(leg(&build_image::build(
            &clone_sh,
            &clone_prepared,
            &opts,
            broker,
            &[p],
            Output::Load,
            &[],
        )?));
    }
    let host = Platform::host()?;
    let noop = leg(&build_image::build(
        &clone_sh,
        &clone_prepared,
        &opts,
        broker,
        &[host],
        Output::Load,
        &[],
    )?);

    // Emulation: the arm64 broker compiled under QEMU, cold.
    let cross_arm64 = cold
        .iter()
        .find(|l| l.component == "broker" && l.platform == "linux/arm64")
        .map(|l| l.seconds);
    let (emulate_arm64, emulate_note) = if args.quick {
        (None, Some("skipped (--quick)".to_owned()))
    } else {
        let emu_opts = BuildOpts {
            strategy: Strategy::Emulate,
            cache_epoch: Some(format!("{epoch}-emulate")),
            // its own repository: the cross image under the same tag stays as it is
            registry: Some(format!("{BENCH_REGISTRY}-emulate")),
            ..opts.clone()
        };
        let arm64 = Platform::parse("arm64")?;
        match build_image::prepare(sh, &emu_opts, &[arm64]).and_then(|pre| {
            build_image::build(sh, &pre, &emu_opts, broker, &[arm64], Output::Load, &[])
        }) {
            Ok(r) => (Some(leg(&r)), None),
            Err(e) => (None, Some(format!("not measured: {e:#}"))),
        }
    };
    let emulate_to_cross = match (&emulate_arm64, cross_arm64) {
        (Some(e), Some(c)) if c > 0.0 => Some(e.seconds / c),
        _ => None,
    };

    // xtask's own overhead.
    let t = Instant::now();
    Cmd::new(std::env::current_exe()?.display().to_string())
        .args([
            "images",
            "--dry-run",
            "--platform",
            "all",
            "--registry",
            BENCH_REGISTRY,
        ])
        .capture(sh)?;
    let xtask_dry_run_seconds = t.elapsed().as_secs_f64();

    let report = Report {
        machine: machine(sh),
        bases: format!(
            "{} / {}",
            prepared.bases.rust_image, prepared.bases.runtime_image
        ),
        cold_total_seconds: cold.iter().map(|l| l.seconds).sum(),
        cold,
        arm64_to_amd64,
        emulate_arm64,
        emulate_to_cross,
        emulate_note,
        warm,
        noop: Some(noop),
        sizes,
        xtask_dry_run_seconds,
    };
    let md = markdown(&report);
    let out_dir = crate::target_dir().join("xtask");
    std::fs::create_dir_all(&out_dir)?;
    std::fs::write(out_dir.join("bench.md"), &md)?;
    std::fs::write(
        out_dir.join("bench.json"),
        serde_json::to_string_pretty(&report)?,
    )?;
    let _ = std::fs::remove_dir_all(&clone);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("{md}");
    }
    Ok(())
}

fn leg(r: &BuildRecord) -> Leg {
    Leg {
        component: r.component.clone(),
        platform: r.platform.clone(),
        seconds: r.duration_secs,
        cached_steps: r.cached_steps,
        dependency_crates_compiled: r.dependency_crates_compiled,
    }
}

/// Clones the checkout to `target/bench-workspace`, appends a comment to
/// broker's main.rs and commits it (a new commit gives new per-platform tags).
fn clone_with_change(sh: &Shell) -> Result<PathBuf> {
    let dir = crate::target_dir().join("bench-workspace");
    let _ = std::fs::remove_dir_all(&dir);
    let root = crate::project_root().display().to_string();
    let d = dir.display().to_string();
    Cmd::new("git")
        .args(["clone", "--quiet", &root, &d])
        .run(sh)?;
    let main_rs = dir.join("broker/src/main.rs");
    let mut text =
        std::fs::read_to_string(&main_rs).context("reading the clone's broker/src/main.rs")?;
    text.push_str("\n// bench: a one-line source change\n");
    std::fs::write(&main_rs, text)?;
    Cmd::new("git")
        .args([
            "-C",
            &d,
            "-c",
            "user.name=bench",
            "-c",
            "user.email=bench@localhost",
            "commit",
            "--quiet",
            "-am",
            "bench: change",
        ])
        .run(sh)?;
    Ok(dir)
}

/// Compressed size of the `platform` image behind `reference`: config plus
/// layers of its manifest, as the registry stores them.
fn compressed_size(sh: &Shell, reference: &str, platform: &Platform) -> Result<u64> {
    let raw = Cmd::new("docker")
        .args(["buildx", "imagetools", "inspect", "--raw", reference])
        .read_quiet(sh)?;
    let digest = index::per_platform_digest(&raw, platform)?;
    let repo = reference.rsplit_once(':').map_or(reference, |(r, _)| r);
    let manifest = Cmd::new("docker")
        .args([
            "buildx",
            "imagetools",
            "inspect",
            "--raw",
            &format!("{repo}@{digest}"),
        ])
        .read_quiet(sh)?;
    let v: serde_json::Value = serde_json::from_str(&manifest)?;
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
            m.lines()
                .next()
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or_else(String::new, |kb| format!(", {} GiB", kb / 1024 / 1024));
    format!("{uname}, {cores} cores{mem}")
}

fn secs(s: f64) -> String {
    format!("{s:.1} s")
}

fn mb(b: Option<u64>) -> String {
    b.map_or_else(
        || "-".to_owned(),
        |b| format!("{:.1} MB", b as f64 / 1_000_000.0),
    )
}

/// The report as Markdown (what BENCHMARKS.md holds).
pub fn markdown(r: &Report) -> String {
    let mut s = format!("Machine: {}  \nBase images: {}\n\n", r.machine, r.bases);
    s.push_str("| measure | value | target |\n|---|---|---|\n");
    s.push_str(&format!(
        "| cold, all four images (cross) | {} | < 360 s |\n",
        secs(r.cold_total_seconds)
    ));
    for l in &r.cold {
        s.push_str(&format!(
            "| cold {} {} | {} ({} dependency crates compiled) | |\n",
            l.component,
            l.platform,
            secs(l.seconds),
            l.dependency_crates_compiled
        ));
    }
    s.push_str(&format!(
        "| arm64 / amd64 time (cross) | {} | <= 1.3 |\n",
        r.arm64_to_amd64
            .map_or_else(|| "-".to_owned(), |x| format!("{x:.2}"))
    ));
    match (&r.emulate_arm64, r.emulate_to_cross) {
        (Some(e), Some(x)) => s.push_str(&format!(
            "| emulate / cross, broker linux/arm64 | {x:.1}x ({} vs cross) | >= 5x |\n",
            secs(e.seconds)
        )),
        _ => s.push_str(&format!(
            "| emulate / cross, broker linux/arm64 | {} | >= 5x |\n",
            r.emulate_note.clone().unwrap_or_default()
        )),
    }
    for l in &r.warm {
        s.push_str(&format!(
            "| one-file change, broker {} | {}, {} dependency crates compiled, {} steps cached | < 90 s, 0 crates |\n",
            l.platform,
            secs(l.seconds),
            l.dependency_crates_compiled,
            l.cached_steps
        ));
    }
    if let Some(n) = &r.noop {
        s.push_str(&format!(
            "| no-op rebuild, broker {} | {} | < 10 s |\n",
            n.platform,
            secs(n.seconds)
        ));
    }
    for z in &r.sizes {
        s.push_str(&format!(
            "| size {} {} | {} uncompressed, {} compressed | < 30 MB |\n",
            z.component,
            z.platform,
            mb(z.local_bytes),
            mb(z.compressed_bytes)
        ));
    }
    s.push_str(&format!(
        "| xtask overhead (`images --dry-run --platform all`) | {} | |\n",
        secs(r.xtask_dry_run_seconds)
    ));
    s
}
