//! `cargo xtask manifest`: turns the per-platform images of one component
//! into one multi-platform image index under every final tag, then reads it
//! back from the registry and proves it (cases M1 to M5 of
//! `shared/cases/manifests.md`). `manifest verify` checks any reference, or
//! a saved index offline.

use std::collections::BTreeMap;

use anyhow::{bail, Context as _, Result};
use serde_json::json;
use xshell::Shell;

use crate::{
    cli::{ManifestArgs, ManifestCommand, VerifyArgs},
    diagnose, gha,
    index::{self, Index},
    metadata,
    plan::Cmd,
    project::{Platform, PlatformList, PLATFORMS},
    tags,
};

/// One per-platform source found in the registry.
#[derive(Clone, Debug)]
pub struct Source {
    /// The platform it serves.
    pub platform: &'static Platform,
    /// Its unique per-platform reference (`…:sha-abc1234-arm64`).
    pub reference: String,
    /// Digest of what the reference points to (an index when buildx added attestations).
    pub digest: String,
    /// Digest of the image manifest for `platform` inside it: what the final index must list.
    pub platform_digest: String,
}

/// Runs `cargo xtask manifest [verify]`.
pub fn run(sh: &Shell, args: &ManifestArgs) -> Result<()> {
    if let Some(ManifestCommand::Verify(v)) = &args.command {
        return verify_cmd(sh, v);
    }
    let component = args.component.context(
        "--component is required (broker or agent); or use `cargo xtask manifest verify REF`",
    )?;
    let platforms = args
        .platform
        .clone()
        .map_or_else(|| PLATFORMS.iter().collect(), |l| l.0);
    let ctx = tags::detect(sh)?;
    let registry = metadata::resolve_registry(&ctx, args.registry.as_deref())?;
    let repo = metadata::image_repository(&registry, component);
    let rules = tags::declared_rules(sh)?;
    let (tags, warnings) = metadata::final_tags(&ctx, &rules, &args.tag)?;
    for w in warnings {
        eprintln!("warning: {w}");
    }
    let finals = metadata::references(&repo, &tags);

    // 1. Every source must exist, once, before anything is written (M4).
    let mut sources = Vec::new();
    let mut missing = Vec::new();
    let mut missing_arches = Vec::new();
    for p in &platforms {
        let reference = metadata::per_platform_reference(&registry, component, &ctx, p);
        let problem = match find_source(sh, &reference, p) {
            Ok(Some(s)) => {
                sources.push(s);
                continue;
            }
            Ok(None) => format!("{p} ({reference} is not in the registry)"),
            Err(e) => format!("{p} ({reference}: {e:#})"),
        };
        missing.push(problem);
        missing_arches.push(p.arch);
    }
    if !missing.is_empty() {
        bail!(
            "refusing to write {}: no usable per-platform image for {}. Nothing was written; the final tags \
             still point where they did. Build and push it first: cargo xtask build-image --component {} \
             --platform {} --push",
            finals.join(", "),
            missing.join("; "),
            component.name,
            missing_arches.join(",")
        );
    }

    // 2. One index under every final tag (M1: imagetools, never `docker manifest`).
    let mut create = Cmd::new("docker").args(["buildx", "imagetools", "create"]);
    for f in &finals {
        create = create.opt("--tag", f);
    }
    let create = create.args(sources.iter().map(|s| format!("{repo}@{}", s.digest)));
    if args.dry_run {
        println!("{create}");
        return Ok(());
    }
    gha::group(&format!("create {}", finals.join(", ")));
    let created = diagnose::run_retrying(
        sh,
        &create,
        &format!("imagetools create for {}", component.image_name()),
    );
    gha::end_group();
    created?;

    // 3. Read it back and prove it.
    let children: BTreeMap<String, String> = sources
        .iter()
        .map(|s| (s.platform.name.to_owned(), s.platform_digest.clone()))
        .collect();
    let mut index_digest: Option<String> = None;
    let mut problems = Vec::new();
    let mut index_for_table: Option<Index> = None;
    for f in &finals {
        let (raw, digest) = inspect(sh, f)?;
        if let Some(first) = &index_digest {
            if *first != digest {
                problems.push(format!(
                    "{f} resolves to {digest}, but {} resolves to {first}",
                    finals[0]
                ));
            }
        } else {
            index_digest = Some(digest);
        }
        let idx = index::parse_index(&raw).with_context(|| format!("reading back {f}"))?;
        for p in index::verify(&idx, &platforms, Some(&children)) {
            if p.is_error() {
                problems.push(format!("{f}: {p}"));
            } else {
                eprintln!("{f}: {p}");
            }
        }
        index_for_table.get_or_insert(idx);
    }
    if !problems.is_empty() {
        bail!(
            "the index written for {} does not verify:\n{}",
            component.image_name(),
            problems.join("\n")
        );
    }
    let index_digest = index_digest.unwrap_or_default();
    report(
        component.image_name(),
        &finals,
        &index_digest,
        &sources,
        index_for_table.as_ref(),
        args.json,
    )
}

/// Looks up the per-platform reference in the registry: `Ok(None)` when the
/// registry does not have it; an error when it holds the wrong or several
/// platforms (M4, duplicate).
fn find_source(sh: &Shell, reference: &str, platform: &'static Platform) -> Result<Option<Source>> {
    let out = Cmd::new("docker")
        .args(["buildx", "imagetools", "inspect", "--raw", reference])
        .capture(sh)?;
    if !out.ok {
        let e = out.stderr.to_ascii_lowercase();
        if e.contains("not found") || e.contains("manifest unknown") || e.contains("name unknown") {
            return Ok(None);
        }
        bail!(
            "{}",
            diagnose::explain(&out.stderr)
                .map_or_else(|| diagnose::reason(&out.stderr), |h| h.to_string())
        );
    }
    let (_, digest) = inspect(sh, reference)?;
    let platform_digest = index::source_digest(&out.stdout, &digest, platform)?;
    Ok(Some(Source {
        platform,
        reference: reference.to_owned(),
        digest,
        platform_digest,
    }))
}

/// The raw manifest or index of `reference` and its digest.
fn inspect(sh: &Shell, reference: &str) -> Result<(String, String)> {
    let raw = Cmd::new("docker")
        .args(["buildx", "imagetools", "inspect", "--raw", reference])
        .read_quiet(sh)
        .with_context(|| format!("reading {reference} from the registry"))?;
    let digest = crate::push::remote_digest(sh, reference)?;
    Ok((raw, digest))
}

fn report(
    image: String,
    finals: &[String],
    index_digest: &str,
    sources: &[Source],
    idx: Option<&Index>,
    json_out: bool,
) -> Result<()> {
    let size_of = |digest: &str| {
        idx.and_then(|i| i.entries.iter().find(|e| e.digest == digest))
            .map_or(0, |e| e.size)
    };
    let tag_rows: Vec<Vec<String>> = finals
        .iter()
        .map(|f| vec![f.clone(), index_digest.to_owned()])
        .collect();
    let platform_rows: Vec<Vec<String>> = sources
        .iter()
        .map(|s| {
            vec![
                s.platform.name.to_owned(),
                s.platform_digest.clone(),
                format!("{} B", size_of(&s.platform_digest)),
            ]
        })
        .collect();
    let value = json!({
        "image": image,
        "index_digest": index_digest,
        "tags": finals,
        "platforms": sources.iter().map(|s| json!({
            "platform": s.platform.name,
            "digest": s.platform_digest,
            "manifest_size": size_of(&s.platform_digest),
            "source": s.reference,
        })).collect::<Vec<_>>(),
    });
    if json_out {
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        println!("{}", gha::text_table(&["tag", "index digest"], &tag_rows));
        println!(
            "{}",
            gha::text_table(&["platform", "digest", "manifest size"], &platform_rows)
        );
        println!(
            "verified: {} platforms, {} tags",
            sources.len(),
            finals.len()
        );
    }
    gha::output("index-digest", index_digest)?;
    gha::output("tags", &finals.join("\n"))?;
    gha::output("manifest", &value.to_string())?;
    gha::summary(&format!(
        "### {image}\n\n{}\n{}\n",
        gha::markdown_table(&["tag", "index digest"], &tag_rows),
        gha::markdown_table(&["platform", "digest", "manifest size"], &platform_rows)
    ))?;
    Ok(())
}

/// `cargo xtask manifest verify REF | --from-file FILE`: exit 0 only when
/// the index holds exactly the expected platforms (attestations ignored,
/// duplicates refused); each problem on its own line.
fn verify_cmd(sh: &Shell, args: &VerifyArgs) -> Result<()> {
    let platforms = args
        .platform
        .clone()
        .map_or_else(|| PLATFORMS.iter().collect(), |l: PlatformList| l.0);
    let (what, raw) = match (&args.reference, &args.from_file) {
        (_, Some(file)) => (
            file.display().to_string(),
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?,
        ),
        (Some(r), None) => (r.clone(), inspect(sh, r)?.0),
        (None, None) => bail!("give a reference (`manifest verify localhost:5000/brokkr-broker:main`) or --from-file FILE"),
    };
    let idx = index::parse_index(&raw).with_context(|| format!("{what} is not an image index"))?;
    let problems = index::verify(&idx, &platforms, None);
    let errors: Vec<_> = problems.iter().filter(|p| p.is_error()).collect();
    for p in &problems {
        println!("{what}: {p}");
    }
    if !errors.is_empty() {
        bail!("{what}: {} problem(s)", errors.len());
    }
    println!("{what}: ok: {}", idx.platforms().join(", "));
    Ok(())
}
