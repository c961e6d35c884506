//! Build records, the handover between a build leg and `manifest`: JSON under
//! `target/xtask/images/<percent-encoded registry>/<component>-<arch>.json`. A record says what the
//! engine's local tag and the registry hold: it is written under a per-leg lock ([`lock`]) after
//! reading both back, and [`load_checked`] compares it with them before anyone trusts it (issue 15
//! item 6: concurrent runs, SIGINT between a build and its record).

use std::{
    fs::File,
    path::{Path, PathBuf},
    time::{SystemTime, UNIX_EPOCH},
};

use anyhow::{bail, ensure, Context as _, Result};
use fs4::FileExt;
use serde::{Deserialize, Serialize};
use xshell::Shell;

use crate::{
    diagnose, index,
    metadata::{self, Context},
    plan::Cmd,
    project::{Component, Platform},
};

/// The result of building (and maybe pushing) one component for one platform.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BuildRecord {
    pub component: String,
    /// OCI platform (`linux/arm64`).
    pub platform: String,
    /// `<registry>/brokkr-<component>`, lower-cased.
    #[serde(default)]
    pub repository: String,
    /// The per-commit tag (`<repository>:sha-<7>-<arch>`, `sha-<7>-dirty-<arch>`), or
    /// `<repository>@<digest>` when pushed by digest.
    pub reference: String,
    /// Full commit id (40 hex).
    pub commit: String,
    /// What the engine's local tag holds (`docker image inspect`), or for a push by digest what was
    /// pushed; `sha256:<64 hex>`.
    pub digest: Option<String>,
    /// What the registry holds under `reference`: with provenance an index of the platform manifest
    /// and its attestation.
    pub pushed_digest: Option<String>,
    /// Uncompressed, from `docker history` (loaded images only).
    pub size_bytes: Option<u64>,
    pub duration_secs: f64,
    pub cached_steps: usize,
    /// The `cargo chef cook` step.
    pub dependency_stage_cached: Option<bool>,
    /// Not the workspace's own.
    #[serde(default)]
    pub dependency_crates_compiled: usize,
    pub strategy: String,
    /// Uncommitted changes (the reference says `-dirty`).
    #[serde(default)]
    pub dirty: bool,
}

/// The record file of the leg of `reference` (any reference or repository of it); its registry
/// percent-encoded (bytes outside `[A-Za-z0-9.-]` as `%XX`): `a/b/y` and `a/b_y` never share one.
pub fn path(reference: &str, component: &Component, platform: &Platform) -> PathBuf {
    let registry = reference.rsplit_once('/').map_or("", |(r, _)| r).to_ascii_lowercase();
    let keep = |b: &u8| b.is_ascii_alphanumeric() || b"-.".contains(b);
    let encode = |b: u8| if keep(&b) { char::from(b).to_string() } else { format!("%{b:02X}") };
    let slug: String = registry.bytes().map(encode).collect();
    let file = format!("{}-{}.json", component.name, platform.arch);
    crate::target_dir().join("xtask/images").join(slug).join(file)
}

/// Takes the leg's advisory lock (`<record>.lock`, released when the file drops), waiting for
/// another xtask building or pushing the same leg.
pub fn lock(reference: &str, component: &Component, platform: &Platform) -> Result<File> {
    let p = path(reference, component, platform).with_extension("lock");
    std::fs::create_dir_all(p.parent().context("record path without a directory")?)?;
    let f = File::create(&p).with_context(|| format!("creating {}", p.display()))?;
    // Through the trait: std's `File::lock` (Rust 1.89) is above the workspace's 1.85.
    if FileExt::try_lock(&f).is_err() {
        eprintln!("waiting for another xtask working on {component} {platform} ({})", p.display());
        FileExt::lock(&f).with_context(|| format!("locking {}", p.display()))?;
    }
    Ok(f)
}

/// The record of one leg as stored, `None` when there is none; an unreadable one is reported,
/// moved aside to `<file>.corrupt-<unix time>` and treated as absent.
pub fn load(reference: &str, c: &Component, p: &Platform) -> Result<Option<BuildRecord>> {
    load_file(&path(reference, c, p))
}

fn load_file(p: &Path) -> Result<Option<BuildRecord>> {
    let text = match std::fs::read_to_string(p) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        text => text.with_context(|| format!("reading {}", p.display()))?,
    };
    serde_json::from_str(&text).map(Some).or_else(|e| {
        let secs = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let aside = p.with_extension(format!("json.corrupt-{secs}"));
        std::fs::rename(p, &aside).with_context(|| format!("moving aside {}", p.display()))?;
        let (p, aside) = (p.display(), aside.display());
        eprintln!(
            "warning: the record {p} was unreadable ({e}); moved aside to {aside}; \
             the next build of this leg writes a new one"
        );
        Ok(None)
    })
}

/// [`load`], compared with what the local tag and the registry hold (unreachable: an error);
/// one that disagrees is reported, corrected and rewritten. Take [`lock`] first.
pub fn load_checked(
    sh: &Shell,
    reference: &str,
    c: &Component,
    p: &Platform,
) -> Result<Option<BuildRecord>> {
    let Some(stored) = load(reference, c, p)? else { return Ok(None) };
    let mut rec = stored.clone();
    if !rec.reference.contains('@') {
        rec.digest = local_digest(sh, &rec.reference, None)?;
    }
    rec.pushed_digest = remote(sh, &rec.reference)?.map(|r| r.digest);
    let drift = drift(&stored, &rec);
    if !drift.is_empty() {
        rec.size_bytes = rec.size_bytes.filter(|_| rec.digest == stored.digest);
        eprintln!(
            "warning: the record {} did not say what is there ({}); re-read and rewritten",
            path(reference, c, p).display(),
            drift.join("; ")
        );
        save(c, p, &rec)?;
    }
    Ok(Some(rec))
}

/// What differs between a stored record and the same one re-read, in words.
pub fn drift(stored: &BuildRecord, now: &BuildRecord) -> Vec<String> {
    let show = |d: &Option<String>| d.clone().unwrap_or_else(|| "nothing".into());
    [
        ("the local tag", &stored.digest, &now.digest),
        ("the registry", &stored.pushed_digest, &now.pushed_digest),
    ]
    .into_iter()
    .filter(|(_, a, b)| a != b)
    .map(|(what, a, b)| format!("{what} holds {}, the record said {}", show(b), show(a)))
    .collect()
}

/// Writes the record of one leg (pretty JSON) atomically: a temporary file, renamed.
pub fn save(component: &Component, platform: &Platform, record: &BuildRecord) -> Result<()> {
    save_file(&path(&record.reference, component, platform), record)
}

fn save_file(p: &Path, record: &BuildRecord) -> Result<()> {
    let dir = p.parent().context("record path without a directory")?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let tmp = p.with_extension(format!("json.tmp-{}", std::process::id()));
    std::fs::write(&tmp, serde_json::to_string_pretty(record)? + "\n")
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, p)
        .with_context(|| format!("renaming {} to {}", tmp.display(), p.display()))
}

/// What the engine's local tag `image` holds (`docker image inspect`) in docker context
/// `context` (`None`: the current one): `None` when there is no such image; an error when the
/// engine does not answer.
pub fn local_digest(sh: &Shell, image: &str, context: Option<&str>) -> Result<Option<String>> {
    let cmd = Cmd::new("docker").opts("--context", context);
    let out = cmd.args(["image", "inspect", "--format", "{{.Id}}", image]).capture(sh)?;
    if out.ok {
        return Ok(Some(out.stdout.trim().to_owned()));
    }
    ensure!(
        out.stderr.to_ascii_lowercase().contains("no such image"),
        "reading {image} from the local engine: {}",
        diagnose::reason(&out.stderr)
    );
    Ok(None)
}

/// What a registry holds under a reference: the raw manifest or index and its digest.
pub struct Remote {
    pub raw: String,
    pub digest: String,
}

/// Reads `reference` from its registry: `None` only when the registry says it has none; any other
/// failure (credentials, DNS, plain HTTP, nothing listening) is an error with its diagnosis.
pub fn remote(sh: &Shell, reference: &str) -> Result<Option<Remote>> {
    let out = Cmd::new("docker")
        .args(["buildx", "imagetools", "inspect", "--raw", reference])
        .capture_retrying(sh, &format!("reading {reference}"), false)?;
    if !out.ok {
        if is_missing(&out.stderr) {
            return Ok(None);
        }
        let why = diagnose::explain(&out.stderr)
            .map_or_else(|| diagnose::reason(&out.stderr), |h| h.to_string());
        bail!("reading {reference}: {why}");
    }
    Ok(Some(Remote { raw: out.stdout, digest: remote_digest(sh, reference)? }))
}

/// Whether `imagetools inspect` failed because the reference does not exist (`ERROR: <ref>: not
/// found`, `manifest unknown`, `name unknown`), not because the registry could not be asked.
pub fn is_missing(stderr: &str) -> bool {
    let e = stderr.to_ascii_lowercase();
    diagnose::explain(stderr).is_none_or(|h| h.cause == diagnose::Cause::NotFound)
        && [": not found", "manifest unknown", "name unknown"].iter().any(|p| e.contains(p))
}

/// The digest of what the registry holds under `reference`.
pub fn remote_digest(sh: &Shell, reference: &str) -> Result<String> {
    let what = format!("reading the digest of {reference}");
    let json = Cmd::new("docker")
        .args(["buildx", "imagetools", "inspect", "--format", "{{json .Manifest}}", reference])
        .capture_retrying(sh, &what, false)?;
    ensure!(json.ok, "{what} from the registry: {}", json.stderr.trim());
    let json = json.stdout.trim();
    let d: index::Entry = serde_json::from_str(json)
        .with_context(|| format!("parsing `imagetools inspect` output: {json}"))?;
    ensure!(index::is_digest(&d.digest), "no digest in `imagetools inspect` output: {json}");
    Ok(d.digest)
}

/// Refuses `reference` built from a dirty tree unless `allow_dirty` (`push`, `manifest`).
pub fn check_clean(reference: &str, dirty: bool, allow_dirty: bool) -> Result<()> {
    ensure!(
        !dirty || allow_dirty,
        "{reference} comes from a working tree with uncommitted changes or untracked files \
         (`git status`); commit them and build again, or pass --allow-dirty to publish it anyway"
    );
    Ok(())
}

/// `git status --porcelain` says something; false outside a git checkout.
pub fn tree_dirty(sh: &Shell) -> Result<bool> {
    let out = Cmd::new("git").args(["status", "--porcelain"]).capture(sh)?;
    Ok(out.ok && !out.stdout.trim().is_empty())
}

/// The per-commit reference of one leg: `<repository>:sha-<7>-<arch>`, or `sha-<7>-dirty-<arch>`.
pub fn reference(reg: &str, c: &Component, ctx: &Context, p: &Platform, dirty: bool) -> String {
    let dirty = if dirty { "-dirty" } else { "" };
    let repository = metadata::image_repository(reg, c);
    format!("{repository}:{}{dirty}-{}", metadata::sha_tag(ctx), p.arch)
}

/// `12.3 MB` (decimal, as registries and Docker print sizes).
pub fn human_size(bytes: Option<u64>) -> String {
    bytes.map_or_else(|| "-".to_owned(), |b| format!("{:.1} MB", b as f64 / 1_000_000.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(human_size(Some(12_345_678)), "12.3 MB");
        assert_eq!(human_size(None), "-");
    }

    #[test]
    fn one_file_per_registry_and_leg() {
        let broker = crate::project::component("broker").unwrap();
        let arm64 = Platform::parse("arm64").unwrap();
        let p = |r: &str| {
            path(r, broker, arm64)
                .strip_prefix(crate::target_dir().join("xtask/images"))
                .unwrap()
                .display()
                .to_string()
        };
        assert_eq!(
            p("localhost:5000/brokkr-broker:sha-abc1234-arm64"),
            "localhost%3A5000/broker-arm64.json"
        );
        assert_eq!(
            p("localhost:5000/m4/brokkr-broker:sha-abc1234-arm64"),
            "localhost%3A5000%2Fm4/broker-arm64.json"
        );
        assert_eq!(
            p("ghcr.io/acme/brokkr-broker:sha-abc1234-arm64"),
            "ghcr.io%2Facme/broker-arm64.json"
        );
        // Issue 15 item 6: `/` and `_` in the registry path do not collide.
        assert_ne!(
            p("localhost:5000/bkx/y/brokkr-broker:sha-abc1234-arm64"),
            p("localhost:5000/bkx_y/brokkr-broker:sha-abc1234-arm64")
        );
    }

    #[test]
    fn round_trip() {
        let r = BuildRecord {
            component: "broker".into(),
            digest: Some("sha256:00".into()),
            ..BuildRecord::default()
        };
        let text = serde_json::to_string(&r).unwrap();
        assert_eq!(serde_json::from_str::<BuildRecord>(&text).unwrap(), r);
    }

    #[test]
    fn corrupt_records_are_set_aside_and_rewritten() {
        let dir = std::env::temp_dir().join(format!("xtask-record-{}", std::process::id()));
        let p = dir.join("reg").join("broker-arm64.json");
        let r = BuildRecord { reference: "r".into(), dirty: true, ..BuildRecord::default() };
        save_file(&p, &r).unwrap();
        assert_eq!(load_file(&p).unwrap(), Some(r.clone()));
        for bad in ["", "{\"component\": "] {
            std::fs::write(&p, bad).unwrap();
            assert_eq!(load_file(&p).unwrap(), None, "{bad:?}");
            assert!(!p.exists());
            save_file(&p, &r).unwrap();
            assert_eq!(load_file(&p).unwrap(), Some(r.clone()));
        }
        let names: Vec<String> = std::fs::read_dir(p.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.iter().any(|n| n.starts_with("broker-arm64.json.corrupt-")), "{names:?}");
        assert!(!names.iter().any(|n| n.contains(".tmp-")), "{names:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn drift_names_what_the_record_got_wrong() {
        let rec = |d: Option<&str>, p: Option<&str>| BuildRecord {
            digest: d.map(Into::into),
            pushed_digest: p.map(Into::into),
            ..BuildRecord::default()
        };
        let cases: &[(BuildRecord, BuildRecord, &[&str])] = &[
            (rec(Some("a"), None), rec(Some("a"), None), &[]),
            (
                rec(Some("a"), None),
                rec(Some("b"), None),
                &["the local tag holds b, the record said a"],
            ),
            (
                rec(Some("a"), Some("a")),
                rec(None, Some("c")),
                &[
                    "the local tag holds nothing, the record said a",
                    "the registry holds c, the record said a",
                ],
            ),
        ];
        for (stored, now, want) in cases {
            assert_eq!(drift(stored, now), *want, "{stored:?} {now:?}");
        }
    }

    #[test]
    fn one_leg_at_a_time() {
        let broker = crate::project::component("broker").unwrap();
        let arm64 = Platform::parse("arm64").unwrap();
        let repo = format!("localhost:5000/locktest-{}/brokkr-broker", std::process::id());
        let held = lock(&repo, broker, arm64).unwrap();
        let second = File::create(path(&repo, broker, arm64).with_extension("lock")).unwrap();
        assert!(FileExt::try_lock(&second).is_err(), "a second holder");
        drop(held);
        assert!(FileExt::try_lock(&second).is_ok());
        std::fs::remove_dir_all(path(&repo, broker, arm64).parent().unwrap()).unwrap();
    }

    #[test]
    fn dirty_is_refused_unless_allowed() {
        assert!(check_clean("r", false, false).is_ok());
        assert!(check_clean("r", true, true).is_ok());
        let err = check_clean("r", true, false).unwrap_err().to_string();
        assert!(err.contains("--allow-dirty"), "{err}");
    }

    #[test]
    fn a_dirty_tree_never_writes_the_release_reference() {
        let broker = crate::project::component("broker").unwrap();
        let arm64 = Platform::parse("arm64").unwrap();
        let ctx = Context::from_git(&"abc1234".repeat(6)[..40], Some("main"), &[]).unwrap();
        let clean = reference("localhost:5000", broker, &ctx, arm64, false);
        let dirty = reference("localhost:5000", broker, &ctx, arm64, true);
        assert_eq!(clean, "localhost:5000/brokkr-broker:sha-abc1234-arm64");
        assert_eq!(dirty, "localhost:5000/brokkr-broker:sha-abc1234-dirty-arm64");
        assert!(crate::manifest::is_reserved_tag(dirty.rsplit_once(':').unwrap().1));
    }
}
