//! `cargo xtask manifest`: turns the per-platform images of one component
//! into one multi-platform image index under every final tag, then reads it
//! back from the registry and proves it (cases M1 to M5 of
//! `shared/cases/manifests.md`). `manifest verify` checks any reference, or
//! a saved index offline.

use std::{collections::BTreeMap, path::PathBuf};

use anyhow::{bail, Context as _, Result};
use clap::{Args, Subcommand};
use serde_json::json;
use xshell::Shell;

use crate::{
    gha,
    index::{self, Document},
    metadata,
    options::absolute_path,
    plan::Cmd,
    project::{
        parse_component, parse_platform_list, parse_registry, Component, Platform, PlatformList,
        PLATFORMS,
    },
    push, record, tags,
};

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
    /// Platforms the index holds; default and normally: every platform the project declares.
    /// Fewer only with --partial-platforms.
    #[arg(long, value_parser = parse_platform_list)]
    pub platform: Option<PlatformList>,
    /// Allow an index of fewer platforms than the project declares; it is then written only
    /// under the --tag values given, never under the computed final tags.
    #[arg(long, requires = "platform")]
    pub partial_platforms: bool,
    /// Registry prefix; default as for `build-image`.
    #[arg(long, env = "BROKKR_REGISTRY", value_parser = parse_registry)]
    pub registry: Option<String>,
    /// Extra final tag (repeatable), added to the computed ones; must match Docker's tag
    /// grammar and not be a per-platform reference name (`sha-<7 hex>-<arch>`).
    #[arg(long)]
    pub tag: Vec<String>,
    /// Publish per-platform images built from a working tree with uncommitted changes.
    #[arg(long)]
    pub allow_dirty: bool,
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

/// One per-platform source found in the registry.
#[derive(Clone, Debug)]
pub struct Source {
    pub platform: &'static Platform,
    /// Its unique per-platform reference (`…:sha-abc1234-arm64`).
    pub reference: String,
    /// Digest of what the reference points to (an index when buildx added attestations).
    pub digest: String,
    /// Digest of the image manifest for `platform` inside it: what the final index lists.
    pub platform_digest: String,
}

/// Whether `tag` is a name the xtask reserves for per-platform references
/// and caches (`sha-<7 hex>-<arch>`, `sha-<7 hex>-dirty-<arch>`,
/// `buildcache-<arch>`): a final tag there would overwrite one leg.
pub fn is_reserved_tag(tag: &str) -> bool {
    PLATFORMS.iter().any(|p| {
        let Some(head) = tag.strip_suffix(&format!("-{}", p.tag_suffix())) else {
            return false;
        };
        let hex = head
            .strip_prefix("sha-")
            .map(|h| h.trim_end_matches("-dirty"));
        head == "buildcache"
            || hex.is_some_and(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_hexdigit()))
    })
}

/// The final tags: the computed ones plus `--tag`, or with a platform subset
/// (`--partial-platforms`) only the explicit ones. `dirty` turns the
/// `sha-<7>` tag into `sha-<7>-dirty`.
fn final_tags(
    args: &ManifestArgs,
    ctx: &metadata::Context,
    rules: &metadata::Rules,
    dirty: bool,
) -> Result<Vec<String>> {
    for t in &args.tag {
        metadata::check_explicit_tag(t)?;
        if is_reserved_tag(t) {
            bail!("--tag {t} is the name of a per-platform reference (or cache), which `manifest` never overwrites; pick another tag");
        }
    }
    if args.partial_platforms {
        if args.tag.is_empty() {
            bail!("--partial-platforms writes only the tags given explicitly: add --tag NAME (the computed final tags always cover every platform)");
        }
        return Ok(args.tag.clone());
    }
    let (tags, warnings) = metadata::final_tags(ctx, rules, &args.tag)?;
    warnings.iter().for_each(|w| eprintln!("warning: {w}"));
    let sha = metadata::sha_tag(ctx);
    Ok(tags
        .into_iter()
        .map(|t| {
            if dirty && t == sha {
                format!("{t}-dirty")
            } else {
                t
            }
        })
        .collect())
}

/// The platforms of the index: every declared one, or the `--platform`
/// subset when `--partial-platforms` says so.
fn platforms(args: &ManifestArgs) -> Result<Vec<&'static Platform>> {
    let all: Vec<&'static Platform> = PLATFORMS.iter().collect();
    match &args.platform {
        None => Ok(all),
        Some(l) if l.0 == all || args.partial_platforms => Ok(l.0.clone()),
        Some(l) => bail!(
            "--platform {} is a subset of the platforms the project declares ({}): final tags always \
             cover all of them. Leave --platform out, or pass --partial-platforms with --tag NAME to write \
             a partial index under that tag only",
            l.0.iter().map(|p| p.arch).collect::<Vec<_>>().join(","),
            crate::project::platform_names()
        ),
    }
}

/// Runs `cargo xtask manifest [verify]`.
pub fn run(sh: &Shell, args: &ManifestArgs) -> Result<()> {
    if let Some(ManifestCommand::Verify(v)) = &args.command {
        return verify_cmd(sh, v);
    }
    let component = args.component.context(
        "--component is required (broker or agent); or use `cargo xtask manifest verify REF`",
    )?;
    let platforms = platforms(args)?;
    let ctx = tags::detect(sh)?;
    let registry = metadata::resolve_registry(&ctx, args.registry.as_deref())?;
    let repo = metadata::image_repository(&registry, component);
    let dirty = record::tree_dirty(sh)?;
    let rules = tags::declared_rules(sh)?;
    let finals = metadata::references(&repo, &final_tags(args, &ctx, &rules, dirty)?);
    let refs: Vec<String> = platforms
        .iter()
        .map(|p| record::reference(&registry, component, &ctx, p, dirty))
        .collect();
    record::check_clean(&refs.join(", "), dirty, args.allow_dirty)?;

    // 1. Every source must exist, once, before anything is written (M4).
    let sources = find_sources(sh, args, component, &platforms, &refs, &finals)?;

    // 2. One index under every final tag (M1: imagetools, never `docker manifest`).
    let create = Cmd::new("docker")
        .args(["buildx", "imagetools", "create"])
        .args(finals.iter().flat_map(|f| ["--tag", f]))
        .args(sources.iter().map(|s| format!("{repo}@{}", s.digest)));
    if args.dry_run {
        println!("{create}");
        return Ok(());
    }
    gha::group(&format!("create {}", finals.join(", ")));
    let created = create.run_retrying(
        sh,
        &format!("imagetools create for {}", component.image_name()),
    );
    gha::end_group();
    created?;

    // 3. Read it back and prove it.
    let children: BTreeMap<String, String> = sources
        .iter()
        .map(|s| (s.platform.name.to_owned(), s.platform_digest.clone()))
        .collect();
    let mut problems = Vec::new();
    let mut first: Option<(String, Document)> = None;
    for f in &finals {
        let remote = push::remote(sh, f)?
            .with_context(|| format!("{f} is not in the registry right after it was written"))?;
        let idx = index::parse_index(&remote.raw).with_context(|| format!("reading back {f}"))?;
        for p in index::verify(&idx, &platforms, Some(&children)) {
            if p.is_error() {
                problems.push(format!("{f}: {p}"));
            } else {
                eprintln!("{f}: {p}");
            }
        }
        match &first {
            Some((d, _)) if *d != remote.digest => problems.push(format!(
                "{f} resolves to {}, but {} resolves to {d}",
                remote.digest, finals[0]
            )),
            Some(_) => {}
            None => first = Some((remote.digest, idx)),
        }
    }
    if !problems.is_empty() {
        bail!(
            "the index written for {} does not verify:\n{}",
            component.image_name(),
            problems.join("\n")
        );
    }
    let (digest, idx) = first.context("no final tag")?;
    report(
        component.image_name(),
        &finals,
        &digest,
        &sources,
        &idx,
        args.json,
    )
}

/// The per-platform sources, all of them or an error that writes nothing:
/// really missing images get the build command (with the user's
/// `--registry`); other failures keep their own diagnosis.
fn find_sources(
    sh: &Shell,
    args: &ManifestArgs,
    component: &Component,
    platforms: &[&'static Platform],
    refs: &[String],
    finals: &[String],
) -> Result<Vec<Source>> {
    let mut sources = Vec::new();
    let (mut problems, mut missing) = (Vec::new(), Vec::new());
    for (p, reference) in platforms.iter().zip(refs) {
        let found = push::remote(sh, reference).and_then(|r| {
            r.map(|r| -> Result<Source> {
                let platform_digest = index::source_digest(&r.raw, &r.digest, p)?;
                Ok(Source {
                    platform: p,
                    reference: reference.clone(),
                    digest: r.digest,
                    platform_digest,
                })
            })
            .transpose()
        });
        match found {
            Ok(Some(s)) => sources.push(s),
            Ok(None) => {
                problems.push(format!("{p} ({reference} is not in the registry)"));
                missing.push(p.arch);
            }
            Err(e) => problems.push(format!("{p} ({e:#})")),
        }
    }
    if problems.is_empty() {
        return Ok(sources);
    }
    let mut msg = format!(
        "refusing to write {}: no usable per-platform image for {}. Nothing was written; the final tags \
         still point where they did.",
        finals.join(", "),
        problems.join("; ")
    );
    if !missing.is_empty() {
        let registry = args
            .registry
            .as_ref()
            .map(|r| format!(" --registry {r}"))
            .unwrap_or_default();
        msg.push_str(&format!(
            " Build and push it first: cargo xtask build-image --component {} --platform {}{registry} --push",
            component.name,
            missing.join(",")
        ));
    }
    bail!(msg)
}

fn report(
    image: String,
    finals: &[String],
    index_digest: &str,
    sources: &[Source],
    idx: &Document,
    json_out: bool,
) -> Result<()> {
    let size_of = |digest: &str| {
        idx.entries()
            .iter()
            .find(|e| e.digest == digest)
            .map_or(0, |e| e.size)
    };
    let tag_rows: Vec<Vec<String>> = finals
        .iter()
        .map(|f| vec![f.clone(), index_digest.to_owned()])
        .collect();
    let platform_rows: Vec<Vec<String>> = sources
        .iter()
        .map(|s| {
            let size = format!("{} B", size_of(&s.platform_digest));
            vec![s.platform.name.to_owned(), s.platform_digest.clone(), size]
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
    let (tag_head, platform_head) = (
        ["tag", "index digest"],
        ["platform", "digest", "manifest size"],
    );
    if json_out {
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        println!("{}", gha::text_table(&tag_head, &tag_rows));
        println!("{}", gha::text_table(&platform_head, &platform_rows));
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
        gha::markdown_table(&tag_head, &tag_rows),
        gha::markdown_table(&platform_head, &platform_rows)
    ))
}

/// `cargo xtask manifest verify REF | --from-file FILE`: exit 0 only when
/// the index holds exactly the expected platforms (attestations ignored,
/// duplicates refused); each problem on its own line.
fn verify_cmd(sh: &Shell, args: &VerifyArgs) -> Result<()> {
    let platforms = PlatformList::or_all(args.platform.clone());
    let (what, raw) = match (&args.reference, &args.from_file) {
        (_, Some(file)) => (
            file.display().to_string(),
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?,
        ),
        (Some(r), None) => match push::remote(sh, r)? {
            Some(remote) => (r.clone(), remote.raw),
            None => bail!("{r} is not in the registry (check the name and tag; `cargo xtask manifest` writes it)"),
        },
        (None, None) => bail!("give a reference (`manifest verify localhost:5000/brokkr-broker:main`) or --from-file FILE"),
    };
    let idx = index::parse_index(&raw).with_context(|| format!("{what} is not an image index"))?;
    let problems = index::verify(&idx, &platforms, None);
    for p in &problems {
        println!("{what}: {p}");
    }
    let errors = problems.iter().filter(|p| p.is_error()).count();
    if errors > 0 {
        bail!("{what}: {errors} problem(s)");
    }
    println!("{what}: ok: {}", idx.platforms().join(", "));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn reserved_tags() {
        for t in [
            "sha-abc1234-arm64",
            "sha-0123456-amd64",
            "sha-abc1234-dirty-arm64",
            "buildcache-amd64",
        ] {
            assert!(is_reserved_tag(t), "{t}");
        }
        for t in [
            "main",
            "1.0",
            "sha-abc1234",
            "arm64",
            "sha--arm64",
            "sha-xyz-arm64",
            "nightly-arm64",
        ] {
            assert!(!is_reserved_tag(t), "{t}");
        }
    }

    fn parse(argv: &[&str]) -> ManifestArgs {
        let mut full = vec!["cargo xtask", "manifest"];
        full.extend(argv);
        match crate::cli::Cli::try_parse_from(full).unwrap().command {
            crate::cli::Command::Manifest(m) => m,
            other => panic!("{other:?}"),
        }
    }

    fn rules() -> metadata::Rules {
        metadata::Rules::parse("type=ref,event=branch\ntype=sha,prefix=sha-", "").unwrap()
    }

    fn ctx() -> metadata::Context {
        metadata::Context::from_git(&"abc1234".repeat(6)[..40], Some("main"), &[]).unwrap()
    }

    #[test]
    fn final_tags_cover_every_platform() {
        let all = parse(&["--component", "broker"]);
        assert_eq!(platforms(&all).unwrap().len(), PLATFORMS.len());
        let subset = parse(&["--component", "broker", "--platform", "arm64"]);
        let err = platforms(&subset).unwrap_err().to_string();
        assert!(err.contains("--partial-platforms"), "{err}");
        let every = parse(&["--component", "broker", "--platform", "all"]);
        assert_eq!(platforms(&every).unwrap().len(), PLATFORMS.len());

        let partial = parse(&[
            "--component",
            "broker",
            "--platform",
            "arm64",
            "--partial-platforms",
        ]);
        assert_eq!(platforms(&partial).unwrap().len(), 1);
        let err = final_tags(&partial, &ctx(), &rules(), false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("--tag NAME"), "{err}");
        let tagged = parse(&[
            "--component",
            "broker",
            "--platform",
            "arm64",
            "--partial-platforms",
            "--tag",
            "arm-only",
        ]);
        assert_eq!(
            final_tags(&tagged, &ctx(), &rules(), false).unwrap(),
            ["arm-only"]
        );
        assert!(crate::cli::Cli::try_parse_from([
            "cargo xtask",
            "manifest",
            "--component",
            "broker",
            "--partial-platforms"
        ])
        .is_err());
    }

    #[test]
    fn reserved_and_dirty_final_tags() {
        let args = parse(&["--component", "broker", "--tag", "sha-abc1234-arm64"]);
        let err = final_tags(&args, &ctx(), &rules(), false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("per-platform reference"), "{err}");
        let args = parse(&["--component", "broker"]);
        let clean = final_tags(&args, &ctx(), &rules(), false).unwrap();
        assert!(clean.contains(&"sha-abc1234".to_owned()), "{clean:?}");
        let dirty = final_tags(&args, &ctx(), &rules(), true).unwrap();
        assert!(
            dirty.contains(&"sha-abc1234-dirty".to_owned())
                && !dirty.contains(&"sha-abc1234".to_owned()),
            "{dirty:?}"
        );
    }
}
