//! `cargo xtask bench`: BuildKit builds against the builder image's own `cargo build --release
//! --target <triple>` in a plain `docker run` (cold and after a one-file change), as ratios beside
//! their targets (reported, never asserted). Images go to `localhost:5000/brokkr-bench`, cold
//! builds use a fresh cache epoch, all from a clone under `target/bench-workspace`: the user's
//! images and cache are left alone.

use std::{
    collections::BTreeSet,
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
    gha,
    host::probe,
    index, metadata,
    options::BuildOpts,
    plan::Cmd,
    project::{component, Component, Platform, COMPONENTS, PLATFORMS},
    push, record, tags,
};

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

pub const BENCH_REGISTRY: &str = "localhost:5000/brokkr-bench";

/// What a figure is held to (issue 14's targets).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Target {
    /// At most `.0` times the baseline plus `.1` seconds.
    Ratio(f64, f64),
    /// Under this many seconds.
    Under(f64),
}

pub const COLD: Target = Target::Ratio(1.1, 0.0);
pub const CHANGE: Target = Target::Ratio(1.5, 2.0);
pub const NOOP: Target = Target::Under(1.5);
pub const FRESH_MACHINE: Target = Target::Under(240.0);

impl Target {
    /// `None` when the target needs a baseline and has none.
    pub fn met(self, seconds: f64, baseline: Option<f64>) -> Option<bool> {
        match self {
            Target::Ratio(factor, plus) => baseline.map(|b| seconds <= factor * b + plus),
            Target::Under(limit) => Some(seconds < limit),
        }
    }

    pub fn describe(self) -> String {
        match self {
            Target::Ratio(f, plus) if plus > 0.0 => format!("<= {f}x baseline + {plus} s"),
            Target::Ratio(f, _) => format!("<= {f}x baseline"),
            Target::Under(limit) => format!("< {limit} s"),
        }
    }
}

/// One `cargo xtask build-image`: `seconds` from its record; sizes in bytes, uncompressed (`docker
/// history`) and compressed (in the registry, cold legs only).
#[derive(Clone, Debug, Serialize)]
pub struct Leg {
    pub component: String,
    pub platform: String,
    pub seconds: f64,
    pub cached_steps: usize,
    pub compiled: Vec<String>,
    pub bytes: Option<u64>,
    pub compressed_bytes: Option<u64>,
}

/// cargo outside BuildKit for one platform: seconds with a fresh target directory and after the
/// one-file change (cargo's own `Finished ... in`); `note` says why a figure is missing.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Baseline {
    pub platform: String,
    pub cold: Option<f64>,
    pub change: Option<f64>,
    pub change_compiled: Vec<String>,
    pub note: Option<String>,
}

/// Everything `bench` measured (`--json`): `cold` per platform and component; the broker after a
/// one-line change (`change`), after a second change with the cache of a main build
/// (`pull_request`), again (`noop`) and for arm64 with `--strategy emulate`, or why not.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub machine: String,
    pub builder_image: String,
    pub runtime_image: String,
    pub cold: Vec<Leg>,
    pub baselines: Vec<Baseline>,
    pub change: Vec<Leg>,
    pub pull_request: Leg,
    pub noop: Leg,
    pub emulate_arm64: Result<Leg, String>,
    /// Seconds of `fresh_machine`, or why not.
    pub fresh_machine: Result<f64, String>,
    pub xtask_dry_run_seconds: f64,
}

/// The crates cargo compiled, sorted, from its `Compiling NAME vX (...)` lines in plain output
/// (buildx's `--progress plain` or cargo's own): after a one-file change, that crate alone.
pub fn compiled_crates(output: &str) -> Vec<String> {
    let crates =
        output.lines().filter_map(|l| l.split_once(" Compiling ")?.1.split_whitespace().next());
    crates.collect::<BTreeSet<_>>().into_iter().map(str::to_owned).collect()
}

/// Seconds from cargo's last `Finished ... in 1m 03s` / `in 6.81s` line.
pub fn cargo_finished_seconds(output: &str) -> Option<f64> {
    let mut finished =
        output.lines().rev().filter_map(|l| l.trim_start().strip_prefix("Finished "));
    let time = finished.next()?.rsplit_once(" in ")?.1.trim();
    Some(time.parse::<jiff::SignedDuration>().ok()?.as_secs_f64())
}

/// Appends a comment line to the clone's `broker/src/main.rs` (uncommitted, so `BROKKR_GIT_COMMIT`,
/// which both binaries embed, stays the same).
fn change_broker(dir: &std::path::Path, line: &str) -> Result<()> {
    let main_rs = dir.join("broker/src/main.rs");
    let text = std::fs::read_to_string(&main_rs).context("reading the clone's broker source")?;
    Ok(std::fs::write(&main_rs, format!("{text}\n// bench: {line}\n"))?)
}

pub fn run(sh: &Shell, args: &BenchArgs) -> Result<()> {
    let epoch = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    // Defaults: the cross strategy, no cache import or export, plain progress.
    let opts = BuildOpts {
        registry: Some(BENCH_REGISTRY.to_owned()),
        bases: args.bases,
        ca_bundle: args.ca_bundle.clone(),
        no_setup: args.no_setup,
        ..BuildOpts::default()
    };
    let platforms: Vec<&'static Platform> = PLATFORMS.iter().collect();
    xtask().args(["registry", "start"]).run(sh)?;
    let prepared = build_image::prepare(sh, &opts, &platforms)?;
    let (target, dir) = (crate::target_dir(), crate::target_dir().join("bench-workspace"));
    let _ = std::fs::remove_dir_all(&dir);
    let root = crate::project_root().display().to_string();
    Cmd::new("git").args(["clone", "--quiet", &root, &dir.display().to_string()]).run(sh)?;
    let clone_sh = Shell::new()?;
    clone_sh.change_dir(&dir);
    // Every `build-image` below (and `record::load` here) uses the clone's target
    // directory: its records and local cache go with the clone.
    std::env::set_var("CARGO_TARGET_DIR", dir.join("target"));
    let (ctx, registry) = (tags::detect(&clone_sh)?, target.join("bench-cargo-registry"));
    let fresh_machine = fresh_machine(sh, &dir).map_err(|e| format!("not measured: {e:#}"));
    let mut b = Bench { ctx, dir, registry, prepared, epoch: String::new() };

    // Per platform the baseline and the cold legs back to back, in two rounds with their own
    // cache epochs; the faster figure of each is kept (this machine's speed drifts by up to a
    // half between minutes). The second round's epoch is the one the later legs build on.
    let (mut cold, mut baselines) = (Vec::new(), Vec::new());
    for p in &platforms {
        b.epoch = format!("--cache-epoch={epoch}-1");
        let (first, first_base) = b.cold_round(sh, p)?;
        b.epoch = format!("--cache-epoch={epoch}");
        let (second, mut base) = b.cold_round(sh, p)?;
        base.cold = base.cold.into_iter().chain(first_base.cold).reduce(f64::min);
        for (l1, l2) in first.into_iter().zip(second) {
            let (c, leg) =
                (component(&l1.component)?, if l1.seconds < l2.seconds { l1 } else { l2 });
            cold.push(Leg { compressed_bytes: b.compressed_size(sh, c, p), ..leg });
        }
        baselines.push(base);
    }
    let (broker, host) = (component("broker")?, Platform::host()?);
    // A main build: every step cached from the cold legs, its cache exported.
    b.build(sh, broker, host, &["--cache=local".into()])?;
    change_broker(&b.dir, "a one-line source change")?;
    let mut change = Vec::new();
    for (p, base) in platforms.iter().zip(&mut baselines) {
        match base.cold.map(|_| b.cargo_build(sh, p)) {
            Some(Ok((s, compiled))) => (base.change, base.change_compiled) = (Some(s), compiled),
            Some(Err(e)) => base.note = Some(format!("one-file change not measured: {e:#}")),
            None => {}
        }
        change.push(b.build(sh, broker, p, &[])?);
    }
    change_broker(&b.dir, "a pull request's change")?;
    let pr = ["--cache=local".into(), "--cache-read-only".into()];
    let pull_request = b.build(sh, broker, host, &pr)?;
    let noop = b.build(sh, broker, host, &[])?;
    let emulate_arm64 = if args.quick {
        Err("skipped (--quick)".to_owned())
    } else {
        b.epoch += "-emulate";
        b.build(sh, broker, Platform::parse("arm64")?, &["--strategy=emulate".into()])
            .map_err(|e| format!("not measured: {e:#}"))
    };

    let t = Instant::now();
    let dry_run = ["images", "--dry-run", "--platform", "all"];
    xtask().args(dry_run).arg(format!("--registry={BENCH_REGISTRY}")).capture(sh)?;
    let report = Report {
        machine: machine(sh),
        builder_image: b.prepared.bases.rust_image.clone(),
        runtime_image: b.prepared.bases.runtime_image.clone(),
        cold,
        baselines,
        change,
        pull_request,
        noop,
        emulate_arm64,
        fresh_machine,
        xtask_dry_run_seconds: t.elapsed().as_secs_f64(),
    };
    let (md, json) = (markdown(&report), serde_json::to_string_pretty(&report)?);
    std::fs::create_dir_all(target.join("xtask"))?;
    for (file, text) in [("bench.md", &md), ("bench.json", &json)] {
        std::fs::write(target.join("xtask").join(file), text)?;
    }
    let _ = std::fs::remove_dir_all(&b.dir);
    println!("{}", if args.json { json } else { md });
    Ok(())
}

fn xtask() -> Cmd {
    let exe = std::env::current_exe().unwrap_or_else(|_| "xtask".into());
    Cmd::new(exe.display().to_string())
}

/// One run's shared state: the clone every build and baseline reads, the baseline's crates
/// downloaded once into `registry`, and one `--cache-epoch=<nanoseconds>` for all legs.
struct Bench {
    dir: PathBuf,
    registry: PathBuf,
    ctx: metadata::Context,
    prepared: Prepared,
    epoch: String,
}

impl Bench {
    /// The baseline with a fresh target directory, then every component's cold leg.
    fn cold_round(&self, sh: &Shell, p: &Platform) -> Result<(Vec<Leg>, Baseline)> {
        let _ = std::fs::remove_dir_all(self.dir.join(format!("target/baseline-{}", p.arch)));
        let fetch = self.cargo(p, &["fetch", "--locked"]).run(sh);
        let built = fetch.and_then(|()| self.cargo_build(sh, p));
        let note = built.as_ref().err().map(|e| format!("not measured: {e:#}"));
        let (platform, cold) = (p.name.into(), built.ok().map(|b| b.0));
        let base = Baseline { platform, cold, note, ..Baseline::default() };
        let legs = COMPONENTS.iter().map(|c| self.build(sh, c, p, &[]));
        Ok((legs.collect::<Result<_>>()?, base))
    }

    /// `cargo xtask build-image` of the clone as a developer runs it (time and size: its record).
    fn build(&self, sh: &Shell, c: &Component, p: &Platform, extra: &[String]) -> Result<Leg> {
        let (ca, local) = (&self.prepared.ca_bundle, self.prepared.bases.local);
        let ca = ca.as_ref().map_or("none".into(), |ca| ca.display().to_string());
        let bases = if local { "--bases=local" } else { "--bases=upstream" };
        let args = "build-image --no-setup --progress=plain --component";
        // No cache import or export unless the leg asks for one.
        let cache = (!extra.iter().any(|a| a.starts_with("--cache="))).then_some("--cache=none");
        let out = xtask()
            .args(args.split(' ').chain([c.name, "--platform", p.name, bases]).chain(cache))
            .args([&format!("--registry={BENCH_REGISTRY}"), &self.epoch, "--ca-bundle", &ca])
            .args(extra.iter().map(String::as_str))
            .env("BROKKR_WORKSPACE", self.dir.display().to_string())
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
        let pushed = push::push_one(sh, c, p, &reference).ok()?;
        let repo = reference.rsplit_once(':').map_or(&*reference, |(r, _)| r);
        let raw = |r: &str| Some(record::remote(sh, r).ok()??.raw);
        let digest = index::source_digest(&raw(&reference)?, Some(&pushed), p).ok()?;
        let m = index::parse(&raw(&format!("{repo}@{digest}"))?).ok()?;
        Some(m.config?.size + m.layers?.iter().map(|l| l.size).sum::<u64>())
    }

    /// `cargo build --release` as the Dockerfiles run it, outside BuildKit.
    fn cargo_build(&self, sh: &Shell, p: &Platform) -> Result<(f64, Vec<String>)> {
        let t = Instant::now();
        let build = "build --release --locked --offline --target".split(' ');
        let out = self
            .cargo(p, &build.chain([p.rust_target]).collect::<Vec<_>>())
            .args(COMPONENTS.iter().flat_map(|c| ["--package", c.package]))
            .run_teed(sh)?;
        anyhow::ensure!(out.ok, "cargo build for {} failed", p.rust_target);
        let secs = cargo_finished_seconds(&out.stderr).unwrap_or(t.elapsed().as_secs_f64());
        Ok((secs, compiled_crates(&out.stderr)))
    }

    /// cargo in a plain container of the builder image: the clone at `/src`, a target directory per
    /// platform, the cross linker set as `docker/cargo-env.sh` does.
    fn cargo(&self, p: &Platform, args: &[&str]) -> Cmd {
        let triple = p.rust_target.replace('-', "_");
        let cc = format!("{}-gcc", p.gnu_prefix);
        let (src, registry) = (self.dir.display(), self.registry.display());
        let ca = self.prepared.ca_bundle.iter().flat_map(|ca| {
            let mount = format!("--volume={}:/run/brokkr-ca.pem:ro", ca.display());
            [mount, "--env=CARGO_HTTP_CAINFO=/run/brokkr-ca.pem".into()]
        });
        Cmd::new("docker")
            .args("run --rm --workdir=/src --env=CARGO_TERM_COLOR=never".split(' '))
            .args(["--env=CARGO_HOME=/usr/local/cargo".into(), format!("--volume={src}:/src")])
            .arg(format!("--volume={registry}:/usr/local/cargo/registry"))
            .arg(format!("--env=CARGO_TARGET_DIR=/src/target/baseline-{}", p.arch))
            .arg(format!("--env=CARGO_TARGET_{}_LINKER={cc}", triple.to_uppercase()))
            .arg(format!("--env=CC_{triple}={cc}"))
            .args(ca)
            .args([&self.prepared.bases.rust_image, "cargo"])
            .args(args.iter().copied())
    }
}

/// A fresh machine, as near as one gets beside the running engine: a second engine with an empty
/// data root and a fresh target directory; `cargo xtask images --platform arm64` timed there in
/// the bench's clone (xtask's own compile, the local base images, both images). Not in the
/// figure: installing the engine and buildx (`setup`) and downloading crates (CARGO_HOME stays).
fn fresh_machine(sh: &Shell, clone: &std::path::Path) -> Result<f64> {
    let dir = crate::target_dir().join("bench-fresh");
    let _ = std::fs::remove_dir_all(&dir);
    let engine = SecondEngine::start(sh, dir.join("engine"))?;
    let (t, target) = (Instant::now(), dir.join("target").display().to_string());
    let images =
        line("cargo xtask images --platform arm64").dir(clone).env("DOCKER_HOST", engine.host());
    images.env("CARGO_TARGET_DIR", target).run(sh)?;
    let secs = t.elapsed().as_secs_f64();
    drop(engine);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(secs)
}

/// A command from a constant line of words.
fn line(words: &str) -> Cmd {
    let mut w = words.split(' ');
    Cmd::new(w.next().unwrap_or_default()).args(w)
}

/// A second dockerd on its own socket, data root and exec root, as the `--builder` e2e test
/// starts one; dropping it stops the engine and undoes its network.
struct SecondEngine(PathBuf, std::process::Child);

impl SecondEngine {
    /// Its own bridge (never `--bridge none`: that deletes the first engine's docker0) and NAT for
    /// its RUN steps, as the engine runs without iptables; on drop `-A` becomes `-D`.
    const NET: [&str; 6] = [
        "ip link add brf type bridge",
        "ip addr add 172.30.0.1/24 dev brf",
        "ip link set brf up",
        "iptables -t nat -A POSTROUTING -s 172.30.0.0/24 ! -o brf -j MASQUERADE",
        "iptables -t filter -A FORWARD -i brf -j ACCEPT",
        "iptables -t filter -A FORWARD -o brf -j ACCEPT",
    ];

    fn start(sh: &Shell, dir: PathBuf) -> Result<SecondEngine> {
        Self::NET.iter().try_for_each(|l| line(l).run(sh))?;
        let d = |p: &str| dir.join(p).display().to_string();
        let dockerd = line("dockerd --bridge=brf --iptables=false --ip6tables=false");
        let dockerd = dockerd.args(["--host", &format!("unix://{}", d("docker.sock"))]);
        let dockerd = dockerd.args(["--data-root", &d("data"), "--exec-root", &d("exec")]);
        let child =
            probe::spawn_detached(sh, &dockerd.opt("--pidfile", d("pid")), &dir.join("log"))?;
        let engine = SecondEngine(dir.clone(), child);
        for _ in 0..60 {
            if line("docker info").env("DOCKER_HOST", engine.host()).read_quiet(sh).is_ok() {
                return Ok(engine);
            }
            std::thread::sleep(std::time::Duration::from_secs(1));
        }
        anyhow::bail!("the second engine did not answer in 60 s: see {}", d("log"))
    }

    fn host(&self) -> String {
        format!("unix://{}", self.0.join("docker.sock").display())
    }
}

impl Drop for SecondEngine {
    fn drop(&mut self) {
        let Ok(sh) = Shell::new() else { return };
        let _ = line(&format!("kill -TERM {}", self.1.id())).run(&sh).map(|()| self.1.wait());
        let _ = Cmd::new("umount").arg(self.0.join("data").display().to_string()).run(&sh);
        let undo = Self::NET
            .iter()
            .filter_map(|l| Some(l.replace(" -A ", " -D ")).filter(|_| l.starts_with("iptables")));
        undo.chain(["ip link del brf".into()]).for_each(|l| drop(line(&l).run(&sh)));
    }
}

/// `uname -srm`, cores and memory.
fn machine(sh: &Shell) -> String {
    let uname = Cmd::new("uname").args(["-srm"]).read_quiet(sh).unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let kb = meminfo.split_whitespace().nth(1).and_then(|kb| kb.parse::<u64>().ok());
    let mem = kb.map_or_else(String::new, |kb| format!(", {} GiB", kb / 1024 / 1024));
    format!("{}, {cores} cores{mem}", uname.trim())
}

/// One table row: the BuildKit figure, its baseline, the ratio and whether the target is met.
pub fn row(measure: &str, seconds: f64, baseline: Option<f64>, target: Option<Target>) -> String {
    let ratio =
        baseline.filter(|b| *b > 0.0).map_or_else(String::new, |b| format!("{:.2}x", seconds / b));
    let met = match target.map(|t| t.met(seconds, baseline)) {
        Some(Some(true)) => "yes",
        Some(Some(false)) => "**no**",
        Some(None) => "-",
        None => "",
    };
    let baseline = baseline.map_or_else(String::new, |b| format!("{b:.1} s"));
    let target = target.map_or_else(String::new, Target::describe);
    format!("| {measure} | {seconds:.1} s | {baseline} | {ratio} | {target} | {met} |\n")
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
    let cold = |p: &str| r.cold.iter().find(|l| l.component == "broker" && l.platform == p);
    let cold = |p: &str| cold(p).map(|l| l.seconds);
    for l in &r.cold {
        let (c, p, n) = (&l.component, &l.platform, l.compiled.len());
        let b = base(p).filter(|_| c == "broker");
        let what = format!("cold {c} {p} ({n} crates compiled)");
        s += &row(&what, l.seconds, b.and_then(|b| b.cold), b.map(|_| COLD));
    }
    for l in &r.change {
        let (p, ours, b) = (&l.platform, l.compiled.join(", "), base(&l.platform));
        let theirs = b.map_or_else(String::new, |b| b.change_compiled.join(", "));
        let what = format!("one-file change, broker {p}: compiled {ours} (baseline: {theirs})");
        s += &row(&what, l.seconds, b.and_then(|b| b.change), Some(CHANGE));
    }
    let (pr, compiled) = (&r.pull_request, r.pull_request.compiled.join(", "));
    let what = format!(
        "pull-request leg, broker {}: cache imported from a main build, compiled {compiled} \
         (baseline: its cold leg)",
        pr.platform
    );
    s += &row(&what, pr.seconds, cold(&pr.platform), None);
    let what = format!("no-op rebuild, broker {}", r.noop.platform);
    s += &row(&what, r.noop.seconds, None, Some(NOOP));
    if let Ok(e) = &r.emulate_arm64 {
        let what = "broker linux/arm64 under emulation (baseline: cross)";
        s += &row(what, e.seconds, cold(&e.platform), None);
    }
    if let Ok(secs) = r.fresh_machine {
        s += &row("fresh machine to the first arm64 images", secs, None, Some(FRESH_MACHINE));
    }
    let what = "xtask overhead (`images --dry-run --platform all`)";
    s += &row(what, r.xtask_dry_run_seconds, None, None);
    let notes = r.baselines.iter().filter_map(|b| Some((b.platform.as_str(), b.note.as_deref()?)));
    let emulation = r.emulate_arm64.as_ref().err().map(|e| ("emulation", e.as_str()));
    let fresh = r.fresh_machine.as_ref().err().map(|e| ("fresh machine", e.as_str()));
    for (what, note) in notes.chain(emulation).chain(fresh) {
        s += &format!("\n{what}: {note}\n");
    }
    let size = |l: &Leg| {
        let name = format!("{} {}", l.component, l.platform);
        vec![name, record::human_size(l.bytes), record::human_size(l.compressed_bytes)]
    };
    let sizes: Vec<_> = r.cold.iter().map(size).collect();
    s + "\n" + &gha::markdown_table(&["image", "uncompressed", "compressed"], &sizes)
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
            assert_eq!(target.met(secs, baseline), want, "{target:?} {secs} {baseline:?}");
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
    fn pull_request_leg_is_a_ratio_to_its_cold_leg() {
        let leg = |c: &str, secs, compiled: &[&str]| Leg {
            component: c.into(),
            platform: "linux/amd64".into(),
            seconds: secs,
            cached_steps: 0,
            compiled: compiled.iter().map(|c| c.to_string()).collect(),
            bytes: Some(7_300_000),
            compressed_bytes: Some(3_400_000),
        };
        let r = Report {
            machine: "m".into(),
            builder_image: "b".into(),
            runtime_image: "r".into(),
            cold: vec![leg("broker", 150.0, &["serde"]), leg("agent", 1.0, &[])],
            baselines: vec![],
            change: vec![],
            pull_request: leg("broker", 15.0, &["brokkr-agent", "brokkr-broker"]),
            noop: leg("broker", 0.9, &[]),
            emulate_arm64: Err("skipped (--quick)".into()),
            fresh_machine: Ok(201.0),
            xtask_dry_run_seconds: 0.1,
        };
        let md = markdown(&r);
        let pr = "| pull-request leg, broker linux/amd64: cache imported from a main build, \
                  compiled brokkr-agent, brokkr-broker (baseline: its cold leg) | 15.0 s | 150.0 s | 0.10x |  |  |\n";
        assert!(md.contains(pr), "{md}");
        assert!(md.contains("| broker linux/amd64 | 7.3 MB | 3.4 MB |\n"), "{md}");
        assert!(md.contains("\nemulation: skipped (--quick)\n"), "{md}");
        let fresh = "| fresh machine to the first arm64 images | 201.0 s |  |  | < 240 s | yes |\n";
        assert!(md.contains(fresh), "{md}");
    }

    #[test]
    fn compiled_crates_from_buildkit_and_cargo_output() {
        let buildkit = "#14 [linux/arm64 build 2/2] RUN . cargo-env.sh && cargo build\n\
#14 0.52    Compiling brokkr-broker v0.1.0 (/src/broker)\n\
#14 6.10     Finished `release` profile [optimized] target(s) in 5.71s\n#14 DONE 6.2s\n";
        assert_eq!(compiled_crates(buildkit), vec!["brokkr-broker"]);
        let cargo = "   Compiling serde v1.0.228\n   Compiling brokkr-agent v0.1.0 (/src/agent)\n\
   Compiling serde v1.0.228\n   Compiling brokkr-broker v0.1.0 (/src/broker)\n";
        assert_eq!(compiled_crates(cargo), vec!["brokkr-agent", "brokkr-broker", "serde"]);
        assert!(compiled_crates("#9 CACHED\n").is_empty());
    }

    #[test]
    fn cargo_finished_seconds_reads_both_formats() {
        let cases = [
            ("    Finished `release` profile [optimized] target(s) in 6.81s\n", Some(6.81)),
            (
                "Compiling x\n    Finished `release` profile [optimized] target(s) in 1m 03s\n",
                Some(63.0),
            ),
            ("   Compiling x\n", None),
        ];
        for (text, want) in cases {
            let secs = cargo_finished_seconds(text).map(|s| (s * 1000.0).round() / 1000.0);
            assert_eq!(secs, want, "{text}");
        }
    }
}
