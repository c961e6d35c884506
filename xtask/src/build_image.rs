//! `cargo xtask build-image` and `images`: images through `docker buildx build`. An image
//! depends only on the commit and the base images: no ref-dependent label, `created` and
//! `SOURCE_DATE_EPOCH` are the commit time.

use std::{path::PathBuf, time::Instant};

use anyhow::{bail, ensure, Context as _, Result};
use clap::Args;
use xshell::Shell;

use crate::{
    base_images::{self, BaseOptions, ResolvedBases},
    buildx::{self, BuildSpec, CacheKind, Output},
    diagnose, gha,
    metadata::{self, Context},
    options::{self, BuildOpts, Selection},
    plan::Cmd,
    preflight,
    project::{parse_one_component, parse_platform_list, Component, Platform, PlatformList},
    record::{self, BuildRecord},
    tags,
};

#[derive(Debug, Args)]
pub struct BuildImageArgs {
    /// The component to build (`broker` or `agent`; several: `cargo xtask images`).
    #[arg(long, value_parser = parse_one_component)]
    pub component: &'static Component,
    /// Target platforms (`arm64`, `linux/amd64,linux/arm64`, `all`); default: the host's.
    #[arg(long, value_parser = parse_platform_list)]
    pub platform: Option<PlatformList>,
    /// Load the image into the local engine (the default).
    #[arg(long, conflicts_with = "push")]
    pub load: bool,
    /// Push the image instead of loading it: by digest (no tag) on builders that can, else under
    /// its per-commit reference; with provenance `mode=max`. Writes the leg's record.
    #[arg(long)]
    pub push: bool,
    /// Extra local tag for a loaded image (repeatable), next to the per-platform reference;
    /// several platforms with a tag make one multi-platform image under the tags only. Not
    /// with --push: final tags are written by `cargo xtask manifest --tag`.
    #[arg(long, conflicts_with = "push", value_parser = |s: &str| metadata::check_explicit_tag(s).map(|()| s.to_owned()))]
    pub tag: Vec<String>,
    #[command(flatten)]
    pub build: BuildOpts,
}

#[derive(Debug, Args)]
pub struct ImagesArgs {
    #[command(flatten)]
    pub select: Selection,
    /// Push each image under its per-platform reference instead of loading it.
    #[arg(long)]
    pub push: bool,
    #[command(flatten)]
    pub build: BuildOpts,
}

/// What every build of one invocation shares. `epoch`: `SOURCE_DATE_EPOCH` in unix seconds,
/// `$SOURCE_DATE_EPOCH`, else the commit time; `dirty`: uncommitted changes.
#[derive(Clone)]
pub struct Prepared {
    pub bases: ResolvedBases,
    pub ctx: Context,
    pub registry: String,
    pub ca_bundle: Option<PathBuf>,
    pub epoch: String,
    pub cargo_metadata: metadata::CargoMetadata,
    pub builder: buildx::BuilderFacts,
    pub dirty: bool,
}

/// Checks (and unless `--no-setup` sets up) the host, resolves base images and the commit.
pub fn prepare(sh: &Shell, opts: &BuildOpts, platforms: &[&'static Platform]) -> Result<Prepared> {
    let ca_bundle = options::ca_bundle(opts.ca_bundle.as_deref())?;
    if opts.cache == CacheKind::Gha {
        buildx::check_gha_env(|k| std::env::var(k).ok())?;
    }
    let ctx = tags::detect(sh)?;
    let registry = metadata::resolve_registry(&ctx, opts.registry.as_deref())?;
    let name = opts.builder.as_deref();
    let builder = if !opts.dry_run {
        preflight::ensure_build_host(sh, platforms, opts.strategy, opts.no_setup, name)?
    } else if name.is_some() {
        preflight::builder_facts(sh, name)?.0
    } else {
        buildx::BuilderFacts { driver: "docker".into(), containerd_store: true, context: None }
    };
    let base_opts = BaseOptions { ca_bundle: ca_bundle.clone(), dry_run: opts.dry_run };
    let bases = base_images::resolve(sh, opts.bases, opts.strategy, platforms, &base_opts)?;
    for p in platforms {
        buildx::check_libc_pairing(p.rust_target, &bases.runtime_image)?;
    }
    let commit_time = Cmd::new("git").args(["show", "-s", "--format=%ct", &ctx.sha]);
    let epoch = match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(s) if !s.trim().is_empty() => s.trim().to_owned(),
        _ => commit_time.read_quiet(sh).context("reading the commit time")?,
    };
    let (cargo_metadata, dirty) = (tags::cargo_metadata(sh)?, record::tree_dirty(sh)?);
    Ok(Prepared { bases, ctx, registry, ca_bundle, epoch, cargo_metadata, builder, dirty })
}

pub fn run(sh: &Shell, args: &BuildImageArgs) -> Result<()> {
    let platforms = PlatformList::or_host(args.platform.clone())?;
    build_legs(sh, &args.build, &[args.component], &platforms, args.push, &args.tag)
}

/// `cargo xtask images`: every component (or those given) for the given platforms, loaded
/// into the local engine or pushed under per-platform references, ending with a table.
pub fn images(sh: &Shell, args: &ImagesArgs) -> Result<()> {
    let (components, platforms) = (args.select.components(), args.select.platforms()?);
    build_legs(sh, &args.build, &components, &platforms, args.push, &[])
}

/// Builds `components` for `platforms` (loaded, or pushed with `push`), then prints the table:
/// one call per platform under its per-platform reference plus `tags`, or with tags one image of
/// every platform under them only (B1).
fn build_legs(
    sh: &Shell,
    opts: &BuildOpts,
    components: &[&'static Component],
    platforms: &[&'static Platform],
    push: bool,
    tags: &[String],
) -> Result<()> {
    let output = if push { Output::Push } else { Output::Load };
    let legs: Vec<(_, Vec<_>)> = match tags.is_empty() {
        true => components.iter().flat_map(|c| platforms.iter().map(|p| (*c, vec![*p]))).collect(),
        false => components.iter().map(|c| (*c, platforms.to_vec())).collect(),
    };
    let prep = prepare(sh, opts, platforms)?;
    let records = legs.iter().map(|(c, ps)| build(sh, &prep, opts, c, ps, output, tags));
    let rows: Vec<_> = records.map(|r| r.map(|r| row(&r))).collect::<Result<_>>()?;
    if !opts.dry_run {
        println!("{}", gha::text_table(&TABLE, &rows));
    }
    Ok(())
}

/// Builds `component` for `platforms` in one buildx call: pushed by digest when the builder
/// can, else under the per-commit reference plus `tags` (one platform) or `tags` only. With one
/// platform the leg's record is written under its lock once what the engine and the registry
/// hold is read back; several platforms make one multi-platform image (no record).
fn build(
    sh: &Shell,
    p: &Prepared,
    opts: &BuildOpts,
    component: &'static Component,
    platforms: &[&'static Platform],
    output: Output,
    tags: &[String],
) -> Result<BuildRecord> {
    buildx::check_multi_platform_load(&p.builder, platforms.len(), output)?;
    ensure!(
        platforms.len() <= 1 || p.bases.emulate_rust_images.is_empty(),
        "--strategy emulate with local base images builds one platform per call; drop --tag or pass one platform"
    );
    let first = *platforms.first().context("no platform to build")?;
    let by_digest = output == Output::Push && buildx::can_push_by_digest(&p.builder.driver);
    let output = if by_digest { Output::PushByDigest } else { output };
    let repository = metadata::image_repository(&p.registry, component);
    let reference = record::reference(&p.registry, component, &p.ctx, first, p.dirty);
    let extra_refs = metadata::references(&repository, tags);
    let tags = match output {
        Output::PushByDigest => vec![repository.clone()],
        _ if platforms.len() == 1 => [vec![reference], extra_refs].concat(),
        _ => extra_refs,
    };
    let scope = buildx::cache_scope(component, platforms);
    // The local cache directory of the scope (case B3).
    let dir = crate::target_dir().join("buildx-cache").join(&scope);
    let (kind, read_only) = (opts.cache, opts.cache_read_only);
    let cache = buildx::cache_args(kind, &scope, first, &repository, &dir, read_only);
    // `EMULATE_RUST_IMAGE` only with `--strategy emulate` and local bases, else `RUST_IMAGE`.
    let build_args = [
        ("STRATEGY", Some(opts.strategy.as_str())),
        ("RUST_IMAGE", Some(&*p.bases.rust_image)),
        ("RUNTIME_IMAGE", Some(&*p.bases.runtime_image)),
        ("EMULATE_RUST_IMAGE", p.bases.emulate_rust_images.get(first.arch).map(String::as_str)),
        ("BROKKR_GIT_COMMIT", Some(&*p.ctx.sha)),
        ("BROKKR_CACHE_EPOCH", opts.cache_epoch.as_deref()),
    ];
    let build_args = build_args.into_iter().filter_map(|(k, v)| Some(format!("{k}={}", v?)));
    // OCI labels: nothing ref-dependent (no `version`: the index carries it), `created` = the
    // commit time, the runtime base's `base.name` and (if known) `base.digest`.
    let package = metadata::package_info(&p.cargo_metadata, component.package)?;
    let created = metadata::created(Some(&p.epoch), jiff::Timestamp::UNIX_EPOCH)?;
    let mut labels = metadata::labels(&p.ctx, component, &package, &created, None);
    let base = &p.bases.runtime_image;
    let digest = record::local_digest(sh, base, None).ok().flatten();
    let digest = digest.or_else(|| record::remote_digest(sh, base).ok());
    let key = |k: &str| format!("org.opencontainers.image.base.{k}");
    labels.insert(key("name"), base.clone());
    labels.extend(digest.map(|d| (key("digest"), d)));
    let spec = BuildSpec {
        component,
        platforms: platforms.to_vec(),
        output,
        tags,
        build_args: build_args.collect(),
        ca_bundle: p.ca_bundle.clone(),
        labels,
        cache,
        source_date_epoch: p.epoch.clone(),
        progress: opts.progress,
        metadata_file: crate::target_dir().join("xtask/buildx").join(format!("{scope}.json")),
        builder: opts.builder.clone().filter(|_| p.builder.context.is_none()),
        context: p.builder.context.clone(),
    };
    let mut rec = BuildRecord {
        component: component.name.into(),
        platform: platforms.iter().map(|p| p.name).collect::<Vec<_>>().join(","),
        repository,
        reference: spec.tags[0].clone(),
        commit: p.ctx.sha.clone(),
        strategy: opts.strategy.as_str().into(),
        dirty: p.dirty,
        ..BuildRecord::default()
    };
    // `cd <root> &&` in the echo: a printed command can be pasted from anywhere.
    let cmd = buildx::build_command(&spec).dir(crate::project_root());
    if opts.dry_run {
        println!("{cmd}");
        return Ok(rec);
    }
    let single = platforms.len() == 1;
    let _lock = single.then(|| record::lock(&rec.repository, component, first)).transpose()?;
    let old = record::load(&rec.repository, component, first)?;
    if opts.cache == CacheKind::Local {
        // a half-written export of an interrupted build
        let _ = std::fs::remove_dir_all(dir.with_extension("new"));
    }
    run_buildx(sh, &cmd, &spec, &mut rec)?;
    if opts.cache == CacheKind::Local && !opts.cache_read_only {
        buildx::replace_local_cache(&dir).context("replacing the local build cache")?;
    }
    if single {
        read_back(sh, &spec, &mut rec)?;
        // A rebuild of the very image pushed before keeps its pushed digest.
        let same = old.filter(|o| o.reference == rec.reference && o.digest == rec.digest);
        rec.pushed_digest = rec.pushed_digest.take().or(same.and_then(|o| o.pushed_digest));
        record::save(component, first, &rec)?;
    }
    let cook =
        rec.dependency_stage_cached.map_or("unknown", |c| if c { "cached" } else { "rebuilt" });
    let digest = rec.digest.as_deref().unwrap_or("-");
    eprintln!(
        "built {} ({}) in {:.1}s, {} cached steps, dependency stage {cook}, digest {digest}",
        rec.reference, rec.platform, rec.duration_secs, rec.cached_steps
    );
    if gha::active() {
        gha::output("reference", &rec.reference, false)?;
        gha::output("digest", digest, false)?;
        gha::summary(&gha::markdown_table(&TABLE, &[row(&rec)]))?;
    }
    Ok(rec)
}

/// Runs the build (a log group), fails with a diagnosis, warns about a failed cache export (B4),
/// and fills the record's time, cache statistics and buildx's digest.
fn run_buildx(sh: &Shell, cmd: &Cmd, spec: &BuildSpec, rec: &mut BuildRecord) -> Result<()> {
    let label = format!("build {} for {}", spec.component.image_name(), rec.platform);
    let metadata_file = &spec.metadata_file;
    std::fs::create_dir_all(metadata_file.parent().context("a metadata file in a directory")?)?;
    let _ = std::fs::remove_file(metadata_file);
    gha::group(&label);
    let started = Instant::now();
    let out = cmd.run_teed(sh);
    gha::end_group();
    let out = out.with_context(|| label.clone())?;
    rec.duration_secs = started.elapsed().as_secs_f64();
    if !out.ok {
        let hint = diagnose::explain(&out.stderr).map(|h| format!(": {h}")).unwrap_or_default();
        bail!("{label} failed{hint}");
    }
    if let Some(e) = buildx::cache_export_error(&out.stderr) {
        let msg = format!("the build cache export failed and was ignored (the image is fine): {e}");
        if gha::active() {
            println!("::warning::{msg}");
        }
        eprintln!("warning: {msg}");
    }
    let steps = buildx::parse_progress(&out.stderr);
    rec.cached_steps = buildx::cached_steps(&steps);
    rec.dependency_stage_cached = buildx::dependency_stage_cached(&steps);
    rec.dependency_crates_compiled = buildx::dependency_crates_compiled(&out.stderr).len();
    let meta = std::fs::read_to_string(metadata_file).ok();
    let meta = meta.and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok());
    rec.digest = meta.and_then(|m| Some(m.get("containerimage.digest")?.as_str()?.to_owned()));
    Ok(())
}

/// Fills the record with what the engine and the registry hold after the build, read back
/// (never assumed from buildx's output), and a loaded image's size.
fn read_back(sh: &Shell, spec: &BuildSpec, rec: &mut BuildRecord) -> Result<()> {
    let context = spec.context.as_deref();
    if spec.output == Output::PushByDigest {
        let d = rec.digest.clone().context("buildx reported no digest for the push by digest")?;
        rec.reference = format!("{}@{d}", rec.repository);
        let held = record::remote_digest(sh, &rec.reference)?;
        ensure!(held == d, "the registry serves {held} for {}, not what was pushed", rec.reference);
        rec.pushed_digest = Some(d);
        return Ok(());
    }
    rec.digest = record::local_digest(sh, &rec.reference, context)?;
    if spec.output == Output::Push {
        rec.pushed_digest = Some(record::remote_digest(sh, &rec.reference)?);
    } else {
        ensure!(
            rec.digest.is_some(),
            "the build finished but {} is not in the local image store; build again",
            rec.reference
        );
        // Uncompressed size in bytes: the layers' sizes from `docker history` (`docker image
        // inspect`'s `Size` is compressed with the containerd store). A foreign-platform image is
        // unpacked first by creating (not starting) a container from it.
        let (image, platform) = (&rec.reference, &rec.platform);
        let docker = || Cmd::new("docker").opts("--context", context);
        let history = || -> Option<u64> {
            let c = docker().args(["history", "--human=false", "--format", "{{.Size}}", image]);
            c.read_quiet(sh).ok()?.lines().map(|l| l.trim().parse::<u64>().ok()).sum()
        };
        rec.size_bytes = history().or_else(|| {
            let id =
                docker().args(["create", "--platform", platform, image]).read_quiet(sh).ok()?;
            let _ = docker().args(["rm", id.trim()]).capture(sh);
            history()
        });
    }
    Ok(())
}

const TABLE: [&str; 6] = ["component", "platform", "reference", "size", "time", "cached steps"];

fn row(r: &BuildRecord) -> Vec<String> {
    let size = record::human_size(r.size_bytes);
    let time = format!("{:.1}s", r.duration_secs);
    let (c, p) = (r.component.clone(), r.platform.clone());
    vec![c, p, r.reference.clone(), size, time, r.cached_steps.to_string()]
}
