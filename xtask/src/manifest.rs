//! `cargo xtask manifest`: publishes one component's per-platform images, named by digest in their
//! build records, as one annotated image index (cases M1 to M5 of `shared/cases/manifests.md`, R1
//! to R4 of `releases.md`). Every record and source is checked before anything is written; the
//! index is pushed under a content-addressed staging tag and verified by digest; only then are the
//! final tags that may move ([`moves`]) written, by digest. `manifest verify` checks a reference or
//! a saved index, and with `--rebuild` rebuilds its commit to compare digests.

mod moves;

use std::{collections::BTreeMap, path::PathBuf};

use anyhow::{anyhow, bail, ensure, Context as _, Result};
use clap::{Args, Subcommand};
use serde_json::json;
use xshell::Shell;

use self::moves::Stamp;
use crate::{
    gha,
    index::{self, Document},
    metadata,
    options::absolute_path,
    plan::Cmd,
    project::{
        parse_component, parse_platform_list, parse_registry, Component, Platform, PlatformList,
        COMPONENTS, PLATFORMS,
    },
    record::{self, BuildRecord},
    tags,
};

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ManifestArgs {
    #[command(subcommand)]
    pub command: Option<ManifestCommand>,
    /// The component to publish (`broker` or `agent`).
    #[arg(long, value_parser = parse_component)]
    pub component: Option<&'static Component>,
    /// Platforms the index holds; default and normally: every platform the project declares. Fewer
    /// only with --partial-platforms.
    #[arg(long, value_parser = parse_platform_list)]
    pub platform: Option<PlatformList>,
    /// Allow an index of fewer platforms than the project declares; it is then written only under
    /// the --tag values given, never under the computed final tags.
    #[arg(long, requires = "platform")]
    pub partial_platforms: bool,
    /// Registry prefix; default as for `build-image`.
    #[arg(long, env = "BROKKR_REGISTRY", value_parser = parse_registry)]
    pub registry: Option<String>,
    /// Extra final tag (repeatable), added to the computed ones; must match Docker's tag grammar
    /// and not be a reserved name (`sha-<7 hex>-<arch>`, `index-<64 hex>`).
    #[arg(long)]
    pub tag: Vec<String>,
    /// Publish per-platform images built from a working tree with uncommitted changes.
    #[arg(long)]
    pub allow_dirty: bool,
    /// Move every final tag, even back to an older commit or a lower version.
    #[arg(long)]
    pub force: bool,
    /// Check the sources, print the tag decisions and the commands that would write; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the result as JSON: tags written and skipped, index digest, platforms.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum ManifestCommand {
    /// Verify an index: exactly the expected platforms, attestations ignored, no duplicates.
    Verify(VerifyArgs),
}

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
    /// Rebuild the commit of the index's revision annotation (clean checkout, cold) for each of its
    /// platforms and say whether each image digest matches; exit 1 on any mismatch.
    #[arg(long, conflicts_with = "from_file")]
    pub rebuild: bool,
    /// Registry prefix the rebuilt images are pushed to, to read their digests.
    #[arg(long, requires = "rebuild", value_parser = parse_registry, default_value = "localhost:5000/rebuild")]
    pub rebuild_registry: String,
}

pub struct Source {
    pub platform: &'static Platform,
    /// `<repository>@<pushed digest>` from the record.
    pub reference: String,
    /// The image manifest for `platform` inside it: what the index lists (M1).
    pub platform_digest: String,
}

const CREATE: [&str; 3] = ["buildx", "imagetools", "create"];

/// Whether `tag` is reserved: `sha-<7 hex>[-dirty]-<arch>`, `buildcache-<arch>`, `index-<64 hex>`.
pub fn is_reserved_tag(tag: &str) -> bool {
    static RESERVED: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        let archs: Vec<&str> = PLATFORMS.iter().map(|p| p.arch).collect();
        let per_platform = format!("(buildcache|sha-[[:xdigit:]]+(-dirty)*)-({})", archs.join("|"));
        regex::Regex::new(&format!("^(index-[[:xdigit:]]{{64}}|{per_platform})$")).unwrap()
    });
    RESERVED.is_match(tag)
}

fn staging_tag(digest: &str) -> String {
    format!("index-{}", digest.trim_start_matches("sha256:"))
}

/// The final tags: the computed ones plus `--tag` (`sha-<7>-dirty` for `dirty`), or with
/// `--partial-platforms` only the explicit ones.
fn final_tags(
    args: &ManifestArgs,
    ctx: &metadata::Context,
    rules: &metadata::Rules,
    dirty: bool,
) -> Result<Vec<String>> {
    for t in &args.tag {
        metadata::check_explicit_tag(t)?;
        ensure!(!is_reserved_tag(t), "--tag {t} is a reserved name (a per-platform reference, cache or index staging tag), which `manifest` never overwrites; pick another tag");
    }
    if args.partial_platforms {
        ensure!(!args.tag.is_empty(), "--partial-platforms writes only the tags given explicitly: add --tag NAME (the computed final tags always cover every platform)");
        return Ok(args.tag.clone());
    }
    let metadata::eval::Tags { tags, warnings, .. } =
        metadata::eval::evaluate(rules, ctx, &args.tag)?;
    warnings.iter().for_each(|w| eprintln!("warning: {w}"));
    let sha = metadata::sha_tag(ctx);
    Ok(tags.into_iter().map(|t| if dirty && t == sha { format!("{t}-dirty") } else { t }).collect())
}

/// Every declared platform, or the `--platform` subset with `--partial-platforms`.
fn platforms(args: &ManifestArgs) -> Result<Vec<&'static Platform>> {
    // `--platform` lists come in declaration order, once each: as long means all.
    let list = PlatformList::or_all(args.platform.clone());
    ensure!(
        list.len() == PLATFORMS.len() || args.partial_platforms,
        "--platform {} is a subset of the platforms the project declares ({}): final tags always \
         cover all of them. Leave --platform out, or pass --partial-platforms with --tag NAME to write \
         a partial index under that tag only",
        list.iter().map(|p| p.arch).collect::<Vec<_>>().join(","),
        crate::project::platform_names()
    );
    Ok(list)
}

/// A text per platform: a source reference, or why there is no usable one.
type ByPlatform = Vec<(&'static Platform, String)>;
const DIRTY: &str =
    "built from a working tree with uncommitted changes: commit and rebuild, or pass --allow-dirty";

/// `<repository>@<pushed digest>` per platform from the records, or every platform whose record is
/// missing, of another commit than `head`, dirty (unless `allow_dirty`) or not pushed.
fn select_sources(
    repo: &str,
    component: &Component,
    records: &[(&'static Platform, Option<BuildRecord>)],
    head: &str,
    allow_dirty: bool,
) -> Result<ByPlatform, ByPlatform> {
    let (mut selected, mut problems) = (Vec::new(), Vec::new());
    for (p, rec) in records {
        let why = match rec {
            None => format!("no record ({})", record::path(repo, component, p).display()),
            Some(r) if r.commit != head => format!("built from `{}`, not {head} (HEAD)", r.commit),
            Some(r) if r.dirty && !allow_dirty => DIRTY.to_owned(),
            Some(BuildRecord { pushed_digest: Some(d), .. }) if index::is_digest(d) => {
                selected.push((*p, format!("{repo}@{d}")));
                continue;
            }
            Some(_) => "built but not pushed (no pushed_digest in its record)".to_owned(),
        };
        problems.push((*p, why));
    }
    problems.is_empty().then_some(selected).ok_or(problems)
}

/// Each selected source in the registry by digest, its platform in it once.
fn check_sources(sh: &Shell, selected: ByPlatform) -> Result<Vec<Source>, ByPlatform> {
    let (mut sources, mut problems) = (Vec::new(), Vec::new());
    for (platform, reference) in selected {
        let digest = reference.rsplit_once('@').map_or("", |(_, d)| d);
        let found = record::remote(sh, &reference).and_then(|r| match r {
            None => bail!("{reference} (from its record) is not in the registry"),
            Some(r) if r.digest != digest => bail!("{reference} resolves to {}", r.digest),
            Some(r) => index::source_digest(&r.raw, Some(&r.digest), platform),
        });
        match found {
            Ok(d) => sources.push(Source { platform, reference, platform_digest: d }),
            Err(e) => problems.push((platform, format!("{e:#}"))),
        }
    }
    problems.is_empty().then_some(sources).ok_or(problems)
}

/// The `--annotation index:KEY=VALUE` arguments (empty values left out).
fn annotation_args(labels: &BTreeMap<String, String>) -> Vec<String> {
    let set = labels.iter().filter(|(_, v)| !v.is_empty());
    set.flat_map(|(k, v)| ["--annotation".to_owned(), format!("index:{k}={v}")]).collect()
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
    let load = |p: &&'static Platform| Ok((*p, record::load(&repo, component, p)?));
    let records = platforms.iter().map(load).collect::<Result<Vec<_>>>()?;
    let dirty = records.iter().flat_map(|(_, r)| r).any(|r| r.dirty);
    let rules = metadata::Rules::load(&sh.current_dir(), None, None)?;
    let finals = metadata::references(&repo, &final_tags(args, &ctx, &rules, dirty)?);

    // 1. Every source, from its record, in the registry before anything is written (M4).
    let sources = select_sources(&repo, component, &records, &ctx.sha, args.allow_dirty)
        .and_then(|s| check_sources(sh, s))
        .map_err(|problems| {
            let (c, finals) = (component.name, finals.join(", "));
            let why: Vec<String> = problems.iter().map(|(p, w)| format!("{p}: {w}")).collect();
            let archs: Vec<&str> = problems.iter().map(|(p, _)| p.arch).collect();
            let (why, archs) = (why.join("\n  "), archs.join(","));
            let registry: String = args.registry.iter().flat_map(|r| [" --registry ", r]).collect();
            anyhow!(
                "refusing to write {finals}: no usable per-platform image for\n  {why}\nNothing was written; the final tags \
                 still point where they did. Build and push first: cargo xtask build-image --component {c} \
                 --platform {archs}{registry} --push"
            )
        })?;

    // 2. The annotated index (M1: imagetools, never `docker manifest`) and its digest.
    let version = metadata::eval::evaluate(&rules, &ctx, &[])?.version;
    let created = metadata::rfc3339_utc(ctx.commit_date.unwrap_or(ctx.now).as_second());
    let package = metadata::package_info(&tags::cargo_metadata(sh)?, component.package)?;
    let labels = metadata::labels(&ctx, component, &package, &created, Some(&version));
    let sourced = sources.iter().map(|s| s.reference.clone());
    let create = Cmd::new("docker").args(CREATE).args(annotation_args(&labels)).args(sourced);
    // The bytes `--dry-run` prints, less the newline, are what is pushed (buildx 0.13.1).
    let dry_run = create.clone().arg("--dry-run");
    let out = dry_run.capture_retrying(sh, "imagetools create --dry-run", false)?;
    ensure!(out.ok, "imagetools create --dry-run failed: {}", out.stderr.trim());
    let (digest, doc) =
        (index::sha256_digest(out.stdout.trim().as_bytes()), index::parse_index(&out.stdout)?);
    let by_digest = format!("{repo}@{digest}");
    let children = sources.iter().map(|s| (s.platform.name.to_owned(), s.platform_digest.clone()));
    let children = children.collect();
    // What an index (planned, then pushed) lacks against the sources and the revision.
    let check = |idx: &Document, what: &str| {
        let (mut errors, warnings) = index::verify(idx, &[], Some(&children));
        warnings.iter().for_each(|w| eprintln!("{w}"));
        if Stamp::from_annotations(&idx.annotations).revision.as_ref() != Some(&ctx.sha) {
            errors.push(format!("its revision annotation is not {}", ctx.sha));
        }
        let problems = errors.join("\n");
        ensure!(errors.is_empty(), "{what} does not verify; no final tag was written:\n{problems}");
        Ok(())
    };
    check(&doc, "the planned index")?;

    // 3. Never backwards (R1, R2): what each final tag holds decides whether it moves.
    let held = finals.iter().map(|f| {
        let doc = record::remote(sh, f)?.and_then(|r| index::parse(&r.raw).ok());
        Ok(doc.map(|d| Stamp::from_annotations(&d.annotations)))
    });
    let held = held.collect::<Result<Vec<_>>>()?;
    let ours = Stamp::from_annotations(&doc.annotations);
    let history = |a: &str, b: &str| moves::is_ancestor(sh, a, b);
    let (write, skipped) = &moves::plan(&finals, &ours, &held, args.force, &history);
    for (tag, why) in skipped {
        gha::notice(&format!("{tag} not moved: {why}"));
    }
    let staging = create.opt("--tag", format!("{repo}:{}", staging_tag(&digest)));
    let tag = Cmd::new("docker").args(CREATE).args(write.iter().flat_map(|f| ["--tag", f]));
    let tag = (!write.is_empty()).then(|| tag.arg(&by_digest));
    if args.dry_run {
        println!("{staging}");
        tag.iter().for_each(|t| println!("{t}"));
        return Ok(());
    }
    // 4. The index under its staging tag, verified by digest; then the final tags, each checked.
    staging.run_retrying(sh, &format!("imagetools create {by_digest}"))?;
    let pushed = record::remote(sh, &by_digest)?
        .with_context(|| format!("{by_digest} is not in the registry after its push"))?;
    check(&index::parse_index(&pushed.raw)?, &by_digest)?;
    if let Some(tag) = tag {
        tag.run_retrying(sh, &format!("tagging {by_digest}"))?;
        for f in write {
            let d = record::remote_digest(sh, f)?;
            ensure!(d == digest, "{f} resolves to {d}, not to the verified index {by_digest}");
        }
    }
    // The tags and platforms (JSON or a table), the step outputs and summary.
    let image = component.image_name();
    let size = |d: &str| doc.entries().iter().find(|e| e.digest == d).map_or(0, |e| e.size);
    let value = json!({
        "image": image,
        "index_digest": digest,
        "tags": write,
        "skipped": skipped.iter().map(|(t, why)| json!({"tag": t, "reason": why})).collect::<Vec<_>>(),
        "annotations": doc.annotations,
        "platforms": sources.iter().map(|s| json!({
            "platform": s.platform.name,
            "digest": s.platform_digest,
            "manifest_size": size(&s.platform_digest),
            "source": s.reference,
        })).collect::<Vec<_>>(),
    });
    let mut rows: Vec<Vec<String>> =
        write.iter().map(|f| vec![f.clone(), digest.to_owned()]).collect();
    rows.extend(skipped.iter().map(|(t, why)| vec![t.clone(), format!("not moved: {why}")]));
    rows.extend(sources.iter().map(|s| {
        let d = &s.platform_digest;
        vec![s.platform.name.to_owned(), format!("{d} ({} B)", size(d))]
    }));
    let head = ["tag or platform", "digest"];
    match args.json {
        true => println!("{}", serde_json::to_string_pretty(&value)?),
        false => println!("{}", gha::text_table(&head, &rows)),
    }
    gha::output("index-digest", &digest, false)?;
    gha::output("tags", &write.join("\n"), false)?;
    gha::output("manifest", &value.to_string(), false)?;
    gha::summary(&format!("### {image}\n\n{}\n", gha::markdown_table(&head, &rows)))
}

/// `manifest verify`: the index holds exactly the expected platforms (attestations ignored,
/// duplicates refused); with `--rebuild` each rebuilds to the digest listed.
fn verify_cmd(sh: &Shell, args: &VerifyArgs) -> Result<()> {
    let (what, raw) = match (&args.reference, &args.from_file) {
        (_, Some(file)) => (
            file.display().to_string(),
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?,
        ),
        (Some(r), None) => match record::remote(sh, r)? {
            Some(remote) => (r.clone(), remote.raw),
            None => bail!("{r} is not in the registry (check the name and tag; `cargo xtask manifest` writes it)"),
        },
        (None, None) => bail!("give a reference (`manifest verify localhost:5000/brokkr-broker:main`) or --from-file FILE"),
    };
    let idx = index::parse_index(&raw).with_context(|| format!("{what} is not an image index"))?;
    let platforms = PlatformList::or_all(args.platform.clone());
    let (errors, warnings) = index::verify(&idx, &platforms, None);
    errors.iter().chain(&warnings).for_each(|p| println!("{what}: {p}"));
    ensure!(errors.is_empty(), "{what}: {} problem(s)", errors.len());
    println!("{what}: ok: {}", idx.platforms().join(", "));
    if args.rebuild {
        return rebuild(sh, &what, &idx, &args.rebuild_registry);
    }
    Ok(())
}

/// Rebuilds the commit of `idx`'s revision annotation cold in a clean `git worktree`, pushing to
/// `registry`, and compares each platform's digest with the index's.
fn rebuild(sh: &Shell, reference: &str, idx: &Document, registry: &str) -> Result<()> {
    let get = |k: &str| idx.annotations.get(&format!("org.opencontainers.image.{k}"));
    let (Some(rev), Some(title)) = (get("revision"), get("title")) else {
        bail!("{reference} has no revision or title annotation: `cargo xtask manifest` did not write it");
    };
    let component = COMPONENTS.iter().find(|c| c.image_name() == *title);
    let component =
        component.with_context(|| format!("{reference}: {title} is no component's image"))?;
    let entries = idx.platform_entries();
    let names: Vec<&str> = entries.iter().map(|(p, _)| p.as_str()).collect();
    let target = crate::target_dir();
    let dir = target.join("xtask").join(format!("rebuild-{}", &rev[..rev.len().min(12)]));
    let worktree =
        |args: [&str; 2]| Cmd::new("git").arg("worktree").args(args).arg(dir.display().to_string());
    let _ = worktree(["remove", "--force"]).capture(sh);
    let add = worktree(["add", "--detach"]).arg(rev);
    add.run(sh).with_context(|| format!("checking out {rev}"))?;
    let built = Cmd::new(std::env::current_exe()?.display().to_string())
        .args(["build-image", "--component", component.name, "--push", "--registry", registry])
        .opt("--platform", names.join(","))
        .opt("--cache-epoch", format!("rebuild-{}", jiff::Timestamp::now().as_second()))
        .env("BROKKR_WORKSPACE", dir.display().to_string())
        .env("CARGO_TARGET_DIR", target.display().to_string())
        .env("GITHUB_ACTIONS", "false")
        .run(sh);
    let _ = worktree(["remove", "--force"]).run(sh).inspect_err(|e| eprintln!("warning: {e:#}"));
    built?;
    let repo = metadata::image_repository(registry, component);
    let mut mismatches = Vec::new();
    for (name, entry) in &entries {
        let p = Platform::parse(name)?;
        let rec = record::load(&repo, component, p)?.filter(|r| r.commit == *rev);
        let pushed =
            rec.and_then(|r| r.pushed_digest).context("the rebuild recorded no pushed digest")?;
        let r = record::remote(sh, &format!("{repo}@{pushed}"))?
            .context("the rebuilt image is not in the registry")?;
        let digest = index::source_digest(&r.raw, Some(&r.digest), p)?;
        if digest == entry.digest {
            println!("{p}: match {digest}");
        } else {
            println!("{p}: MISMATCH: the index lists {}, the rebuild gives {digest}", entry.digest);
            mismatches.push(p.name);
        }
    }
    let differ = mismatches.join(", ");
    ensure!(mismatches.is_empty(), "the rebuild of {rev} differs from {reference} for {differ}");
    println!("{reference}: every platform rebuilds to the digest the index lists");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    const HEAD: &str = "abc1234abc1234abc1234abc1234abc1234abc12";
    const D: &str = "sha256:93e0eb242d928500dcd44629dbd91668caf704b3be091bab7e4bee7362e83568";

    #[test]
    fn reserved_tags() {
        let staging = staging_tag(D);
        for t in [
            "sha-abc1234-arm64",
            "sha-0123456-amd64",
            "sha-abc1234-dirty-arm64",
            "buildcache-amd64",
            staging.as_str(),
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
            "index-abc",
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
        metadata::Context::from_git(HEAD, Some("main"), &[]).unwrap()
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

        let partial =
            parse(&["--component", "broker", "--platform", "arm64", "--partial-platforms"]);
        assert_eq!(platforms(&partial).unwrap().len(), 1);
        let err = final_tags(&partial, &ctx(), &rules(), false).unwrap_err().to_string();
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
        assert_eq!(final_tags(&tagged, &ctx(), &rules(), false).unwrap(), ["arm-only"]);
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
        for reserved in ["sha-abc1234-arm64", &staging_tag(D)] {
            let args = parse(&["--component", "broker", "--tag", reserved]);
            let err = final_tags(&args, &ctx(), &rules(), false).unwrap_err().to_string();
            assert!(err.contains("reserved name"), "{err}");
        }
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

    fn rec(commit: &str, dirty: bool, pushed: Option<&str>) -> Option<BuildRecord> {
        Some(BuildRecord {
            commit: commit.into(),
            dirty,
            pushed_digest: pushed.map(Into::into),
            ..BuildRecord::default()
        })
    }

    #[test]
    fn sources_come_from_records_of_head_only() {
        let broker = crate::project::component("broker").unwrap();
        let (amd, arm) = (Platform::parse("amd64").unwrap(), Platform::parse("arm64").unwrap());
        let repo = "localhost:5000/brokkr-broker";
        let pick = |a, b, allow| select_sources(repo, broker, &[(amd, a), (arm, b)], HEAD, allow);
        let ok = rec(HEAD, false, Some(D));
        assert_eq!(
            pick(ok.clone(), ok.clone(), false).unwrap(),
            [(amd, format!("{repo}@{D}")), (arm, format!("{repo}@{D}"))]
        );
        // (amd64 record, arm64 record, --allow-dirty, what the arm64 problem says)
        let other = "0".repeat(40);
        let cases = [
            (None, false, "no record ("),
            (
                rec(&other, false, Some(D)),
                false,
                "not abc1234abc1234abc1234abc1234abc1234abc12 (HEAD)",
            ),
            (rec(HEAD, true, Some(D)), false, "--allow-dirty"),
            (rec(HEAD, false, None), false, "not pushed"),
            (rec(HEAD, false, Some("latest")), false, "not pushed"),
        ];
        for (arm64, allow, want) in cases {
            let problems = pick(ok.clone(), arm64.clone(), allow).unwrap_err();
            assert_eq!(problems.len(), 1, "{problems:?}");
            assert_eq!(problems[0].0, arm, "{problems:?}");
            assert!(problems[0].1.contains(want), "{problems:?}");
        }
        assert!(pick(ok.clone(), rec(HEAD, true, Some(D)), true).is_ok());
        assert_eq!(pick(None, None, false).unwrap_err().len(), 2);
    }

    #[test]
    fn annotations_go_on_the_index() {
        let labels: BTreeMap<String, String> = [
            ("org.opencontainers.image.version", "1.2.3"),
            ("org.opencontainers.image.url", ""),
            ("org.opencontainers.image.description", "a, b = c"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .into();
        assert_eq!(
            annotation_args(&labels),
            [
                "--annotation",
                "index:org.opencontainers.image.description=a, b = c",
                "--annotation",
                "index:org.opencontainers.image.version=1.2.3"
            ]
        );
        let s = Stamp::from_annotations(&labels);
        assert_eq!((s.version.as_deref(), s.revision), (Some("1.2.3"), None));
    }

    #[test]
    fn verify_rebuild_needs_a_reference() {
        let parse = |argv: &[&str]| {
            crate::cli::Cli::try_parse_from(
                ["cargo xtask", "manifest", "verify"].iter().chain(argv),
            )
        };
        assert!(parse(&["r:main", "--rebuild"]).is_ok());
        assert!(parse(&["--from-file", "/tmp/x.json", "--rebuild"]).is_err());
        assert!(parse(&["r:main", "--rebuild-registry", "localhost:5000/x"]).is_err());
    }
}
