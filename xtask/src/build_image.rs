//! `cargo xtask build-image`: one component's image for one or more
//! platforms, through `docker buildx build`. Also the building block of
//! `images`.

use std::{collections::BTreeMap, path::PathBuf, time::Instant};

use anyhow::{bail, Context as _, Result};
use clap::Args;
use serde::Deserialize;
use xshell::Shell;

use crate::{
    base_images::{self, BaseOptions, ResolvedBases},
    buildx::{self, BuildSpec, CacheKind, Output},
    diagnose, gha,
    metadata::{self, Context},
    options::{self, BuildOpts},
    plan::Cmd,
    preflight,
    project::{parse_one_component, parse_platform_list, Component, Platform, PlatformList},
    record::{self, BuildRecord},
    tags,
};

/// Options of `build-image`.
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

/// What every build of one invocation shares: the checked host, the base
/// images, the git/GitHub context, the registry and whether the tree is dirty.
#[derive(Clone)]
pub struct Prepared {
    pub bases: ResolvedBases,
    pub ctx: Context,
    /// The declared tag rules (`.github/image-tags.yml`): the `version` label.
    pub rules: metadata::Rules,
    pub registry: String,
    /// CA bundle for the `ca-bundle` secret.
    pub ca_bundle: Option<PathBuf>,
    /// `created` label value: the commit time (R5).
    pub created: String,
    /// `SOURCE_DATE_EPOCH` for buildx: `$SOURCE_DATE_EPOCH`, else the commit time.
    pub source_date_epoch: String,
    /// `cargo metadata` JSON (labels).
    pub cargo_metadata: metadata::CargoMetadata,
    /// Builder facts for the preflight (B1).
    pub builder: buildx::BuilderFacts,
    /// Uncommitted changes: references and records say `dirty`.
    pub dirty: bool,
}

/// Checks a CA bundle file: it exists and holds at least one PEM
/// certificate (`-----BEGIN CERTIFICATE-----`).
pub fn check_ca_bundle(path: &std::path::Path) -> Result<()> {
    let text = std::fs::read(path).with_context(|| {
        format!(
            "--ca-bundle {}: cannot read it; pass a PEM bundle, or `none`",
            path.display()
        )
    })?;
    if !String::from_utf8_lossy(&text).contains("-----BEGIN CERTIFICATE-----") {
        bail!(
            "--ca-bundle {}: {} holds no PEM certificate (`-----BEGIN CERTIFICATE-----`); pass a PEM \
             bundle such as /etc/ssl/certs/ca-certificates.crt, or `none`",
            path.display(),
            if text.is_empty() { "the file is empty and" } else { "it" }
        );
    }
    Ok(())
}

/// Checks the host for building `platforms` (setting up what is missing
/// unless `--no-setup`), resolves base images and the tag context.
pub fn prepare(sh: &Shell, opts: &BuildOpts, platforms: &[&'static Platform]) -> Result<Prepared> {
    let ca_bundle = options::ca_bundle(opts.ca_bundle.as_deref());
    if let Some(ca) = &ca_bundle {
        check_ca_bundle(ca)?;
    }
    if opts.cache == CacheKind::Gha {
        buildx::check_gha_env(|k| std::env::var(k).ok())?;
    }
    let ctx = tags::detect(sh)?;
    let rules = tags::declared_rules(sh)?;
    metadata::eval::evaluate(&rules, &ctx, &[])?;
    let registry = metadata::resolve_registry(&ctx, opts.registry.as_deref())?;
    let mut builder = buildx::BuilderFacts {
        driver: "docker".into(),
        containerd_store: true,
        context: None,
    };
    let name = opts.builder.as_deref();
    if !opts.dry_run {
        builder = preflight::ensure_build_host(sh, platforms, opts.strategy, opts.no_setup, name)?;
    } else if name.is_some() {
        builder = preflight::builder_facts(sh, name)?.0;
    }
    let bases = base_images::resolve(
        sh,
        opts.bases,
        opts.strategy,
        platforms,
        &BaseOptions {
            ca_bundle: ca_bundle.clone(),
            dry_run: opts.dry_run,
        },
    )?;
    for p in platforms {
        buildx::check_libc_pairing(p.rust_target, &bases.runtime_image)?;
    }
    let source_date_epoch = match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(s) if !s.trim().is_empty() => s,
        _ => Cmd::new("git")
            .args(["show", "-s", "--format=%ct", &ctx.sha])
            .read_quiet(sh)?,
    };
    Ok(Prepared {
        bases,
        ctx,
        rules,
        registry,
        ca_bundle,
        created: metadata::created(Some(&source_date_epoch), jiff::Timestamp::UNIX_EPOCH)?,
        source_date_epoch: source_date_epoch.trim().to_owned(),
        cargo_metadata: tags::cargo_metadata(sh)?,
        builder,
        dirty: record::tree_dirty(sh)?,
    })
}

/// `cargo xtask build-image`.
pub fn run(sh: &Shell, args: &BuildImageArgs) -> Result<()> {
    let platforms = PlatformList::or_host(args.platform.clone())?;
    for t in &args.tag {
        metadata::check_explicit_tag(t)?;
    }
    let output = if args.push {
        Output::Push
    } else {
        Output::Load
    };
    let prepared = prepare(sh, &args.build, &platforms)?;
    let repo = metadata::image_repository(&prepared.registry, args.component);
    let extra = metadata::references(&repo, &args.tag);
    // One call per platform under its per-platform reference (plus the extra
    // tags), or with tags one image of every platform under them only (B1).
    let calls: Vec<Vec<&'static Platform>> = if platforms.len() == 1 || args.tag.is_empty() {
        platforms.iter().map(|p| vec![*p]).collect()
    } else {
        vec![platforms.clone()]
    };
    let mut records = Vec::new();
    for call in calls {
        let (opts, c) = (&args.build, args.component);
        records.push(build(sh, &prepared, opts, c, &call, output, &extra)?);
    }
    if !args.build.dry_run {
        print_table(&records)?;
    }
    Ok(())
}

/// Builds `component` for `platforms` in one buildx call. With one platform
/// the image is tagged with its unique per-platform reference plus
/// `extra_refs`, and its record is saved; several platforms make one
/// multi-platform image tagged with `extra_refs` only (no record).
pub fn build(
    sh: &Shell,
    prepared: &Prepared,
    opts: &BuildOpts,
    component: &'static Component,
    platforms: &[&'static Platform],
    output: Output,
    extra_refs: &[String],
) -> Result<BuildRecord> {
    buildx::check_multi_platform_load(&prepared.builder, platforms.len(), output)?;
    if platforms.len() > 1 && !prepared.bases.emulate_rust_images.is_empty() {
        bail!("--strategy emulate with local base images builds one platform per call; drop --tag or pass one platform");
    }
    let first = *platforms.first().context("no platform to build")?;
    let reference = record::reference(
        &prepared.registry,
        component,
        &prepared.ctx,
        first,
        prepared.dirty,
    );
    let single = platforms.len() == 1;
    let tags: Vec<String> = if single {
        std::iter::once(reference.clone())
            .chain(extra_refs.iter().cloned())
            .collect()
    } else {
        extra_refs.to_vec()
    };
    let repository = metadata::image_repository(&prepared.registry, component);
    let scope = buildx::cache_scope(component, platforms);
    let local_dir = crate::target_dir().join("buildx-cache").join(&scope);
    let package = metadata::package_info(&prepared.cargo_metadata, component.package)?;
    let version = metadata::eval::evaluate(&prepared.rules, &prepared.ctx, &[])?.version;
    let labels: BTreeMap<String, String> = metadata::labels(
        &prepared.ctx,
        component,
        &package,
        &prepared.created,
        Some(&version),
    );
    let metadata_file = crate::target_dir()
        .join("xtask")
        .join("buildx")
        .join(format!("{scope}.json"));
    let spec = BuildSpec {
        component,
        platforms: platforms.to_vec(),
        strategy: opts.strategy,
        output,
        tags,
        rust_image: prepared.bases.rust_image.clone(),
        emulate_rust_image: prepared.bases.emulate_rust_images.get(first.arch).cloned(),
        runtime_image: prepared.bases.runtime_image.clone(),
        ca_bundle: prepared.ca_bundle.clone(),
        labels,
        git_commit: Some(prepared.ctx.sha.clone()),
        cache: buildx::cache_args(
            opts.cache,
            &scope,
            first,
            &repository,
            &local_dir.display().to_string(),
            local_dir.join("index.json").is_file(),
        ),
        progress: opts.progress,
        metadata_file: metadata_file.clone(),
        cache_epoch: opts.cache_epoch.clone(),
        builder: opts
            .builder
            .clone()
            .filter(|_| prepared.builder.context.is_none()),
        context: prepared.builder.context.clone(),
    };
    // `cd <root> &&` in the echo: a printed command can be pasted from anywhere.
    let cmd = buildx::build_command(&spec)
        .env("SOURCE_DATE_EPOCH", &prepared.source_date_epoch)
        .dir(crate::project_root());
    if opts.dry_run {
        println!("{cmd}");
        return Ok(BuildRecord {
            component: component.name.into(),
            platform: first.name.into(),
            reference,
            ..BuildRecord::default()
        });
    }
    if let Some(dir) = metadata_file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let label = format!(
        "build {} for {}",
        component.image_name(),
        platforms
            .iter()
            .map(|p| p.name)
            .collect::<Vec<_>>()
            .join(",")
    );
    if opts.cache == buildx::CacheKind::Local {
        // a half-written export of an interrupted build
        let _ = std::fs::remove_dir_all(local_dir.with_extension("new"));
    }
    gha::group(&label);
    let started = Instant::now();
    let out = cmd.run_teed(sh);
    gha::end_group();
    let out = out.with_context(|| label.clone())?;
    let duration_secs = started.elapsed().as_secs_f64();
    if !out.ok {
        let mut msg = format!("{label} failed");
        if let Some(hint) = diagnose::explain(&out.stderr) {
            msg.push_str(&format!(": {hint}"));
        }
        bail!(msg);
    }
    let steps = buildx::parse_progress(&out.stderr);
    if let Some(e) = buildx::cache_export_error(&out.stderr) {
        // B4: ignore-error=true kept the build; say so instead of hiding it.
        let line =
            format!("the build cache export failed and was ignored (the image is fine): {e}");
        if gha::active() {
            println!("::warning::{line}");
        }
        eprintln!("warning: {line}");
    }
    if opts.cache == buildx::CacheKind::Local {
        buildx::replace_local_cache(&local_dir).context("replacing the local build cache")?;
    }
    #[derive(Deserialize)]
    struct BuildxMetadata {
        #[serde(rename = "containerimage.digest")]
        digest: Option<String>,
    }
    let digest = std::fs::read_to_string(&metadata_file)
        .ok()
        .and_then(|t| serde_json::from_str::<BuildxMetadata>(&t).ok())
        .and_then(|m| m.digest);
    let size_bytes = if output == Output::Load && platforms.len() == 1 {
        image_size(sh, &spec.tags[0], first, spec.context.as_deref())
    } else {
        None
    };
    let rec = BuildRecord {
        component: component.name.into(),
        platform: platforms
            .iter()
            .map(|p| p.name)
            .collect::<Vec<_>>()
            .join(","),
        reference: spec.tags[0].clone(),
        commit: prepared.ctx.sha.clone(),
        digest,
        pushed_digest: None,
        size_bytes,
        duration_secs,
        cached_steps: buildx::cached_steps(&steps),
        dependency_stage_cached: buildx::dependency_stage_cached(&steps),
        dependency_crates_compiled: buildx::dependency_crates_compiled(&out.stderr).len(),
        strategy: opts.strategy.as_str().into(),
        dirty: prepared.dirty,
    };
    if single {
        let mut rec = rec.clone();
        rec.pushed_digest = match output {
            Output::Push => rec.digest.clone(),
            // A rebuild that produced the very image pushed before keeps its pushed digest.
            Output::Load => record::load(&rec.reference, component, first)?
                .filter(|old| old.reference == rec.reference && old.digest == rec.digest)
                .and_then(|old| old.pushed_digest),
        };
        record::save(component, first, &rec)?;
    }
    report(&rec, output)?;
    Ok(rec)
}

/// Uncompressed size of a loaded single-platform image in bytes: the sum of
/// its layers' sizes as `docker history` reports them (the unpacked
/// snapshots; `docker image inspect`'s `Size` is the compressed content with
/// the containerd image store). A foreign-platform image is unpacked first
/// by creating (not starting) a container from it.
pub fn image_size(
    sh: &Shell,
    reference: &str,
    platform: &Platform,
    context: Option<&str>,
) -> Option<u64> {
    let docker = || Cmd::new("docker").args(context.into_iter().flat_map(|c| ["--context", c]));
    let history = || {
        docker()
            .args([
                "history",
                "--human=false",
                "--format",
                "{{.Size}}",
                reference,
            ])
            .read_quiet(sh)
            .ok()
            .and_then(|out| out.lines().map(|l| l.trim().parse::<u64>().ok()).sum())
    };
    history().or_else(|| {
        let id = docker()
            .args(["create", "--platform", platform.name, reference])
            .read_quiet(sh)
            .ok()?;
        let _ = docker().args(["rm", id.trim()]).capture(sh);
        history()
    })
}

fn report(rec: &BuildRecord, output: Output) -> Result<()> {
    eprintln!(
        "built {} ({}) in {:.1}s, {} cached steps, dependency stage {}, digest {}",
        rec.reference,
        rec.platform,
        rec.duration_secs,
        rec.cached_steps,
        match rec.dependency_stage_cached {
            Some(true) => "cached",
            Some(false) => "rebuilt",
            None => "unknown",
        },
        rec.digest.as_deref().unwrap_or("-")
    );
    if gha::active() {
        let key = format!(
            "{}-{}",
            rec.component,
            rec.platform.replace(['/', ','], "-")
        );
        gha::output("reference", &rec.reference)?;
        if let Some(d) = &rec.digest {
            gha::output("digest", d)?;
            gha::output(&format!("digest-{key}"), d)?;
        }
        gha::summary(&gha::markdown_table(
            &[
                "component",
                "platform",
                "reference",
                "digest",
                "time",
                "cached steps",
                "output",
            ],
            &[vec![
                rec.component.clone(),
                rec.platform.clone(),
                rec.reference.clone(),
                rec.digest.clone().unwrap_or_default(),
                format!("{:.0}s", rec.duration_secs),
                rec.cached_steps.to_string(),
                if output == Output::Push {
                    "pushed".into()
                } else {
                    "loaded".into()
                },
            ]],
        ))?;
    }
    Ok(())
}

/// Prints the table `images` ends with: component, platform, reference,
/// size, time, cached steps.
pub fn print_table(records: &[BuildRecord]) -> Result<()> {
    let rows: Vec<Vec<String>> = records
        .iter()
        .map(|r| {
            vec![
                r.component.clone(),
                r.platform.clone(),
                r.reference.clone(),
                record::human_size(r.size_bytes),
                format!("{:.1}s", r.duration_secs),
                r.cached_steps.to_string(),
            ]
        })
        .collect();
    let header = [
        "component",
        "platform",
        "reference",
        "size",
        "time",
        "cached steps",
    ];
    println!("{}", gha::text_table(&header, &rows));
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn ca_bundle_must_be_pem() {
        let dir = std::env::temp_dir().join(format!("xtask-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cases = [
            ("empty.pem", "", Some("the file is empty")),
            (
                "der.crt",
                "0\u{82}\u{3}binary",
                Some("holds no PEM certificate"),
            ),
            (
                "ok.pem",
                "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
                None,
            ),
        ];
        for (name, body, want) in cases {
            let p = dir.join(name);
            std::fs::write(&p, body).unwrap();
            match (super::check_ca_bundle(&p), want) {
                (Ok(()), None) => {}
                (Err(e), Some(w)) => assert!(e.to_string().contains(w), "{name}: {e}"),
                (got, _) => panic!("{name}: {got:?}"),
            }
        }
        let err = super::check_ca_bundle(&dir.join("absent.pem")).unwrap_err();
        assert!(err.to_string().contains("cannot read it"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
