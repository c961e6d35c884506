//! Build records: what `build-image` and `push` produced, kept as JSON under
//! `target/xtask/images/<registry>/<component>-<arch>.json`: `push` adds the digest
//! the registry holds to the build's record, and CI, `bench` and users read
//! them (digest, size, time, cached steps) without scraping logs.

use std::{
    path::{Path, PathBuf},
    time::{SystemTime, UNIX_EPOCH},
};

use anyhow::{Context as _, Result};
use serde::{Deserialize, Serialize};

use crate::{
    metadata::{self, Context},
    plan::Cmd,
    project::{Component, Platform},
};

/// The result of building (and maybe pushing) one component for one platform.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BuildRecord {
    /// Component name (`broker`).
    pub component: String,
    /// OCI platform (`linux/arm64`).
    pub platform: String,
    /// The unique per-platform reference (`localhost:5000/brokkr-broker:sha-abc1234-arm64`).
    pub reference: String,
    /// Full commit id the image was built from.
    pub commit: String,
    /// Digest buildx reported for the image (`containerimage.digest`), `sha256:<64 hex>`.
    pub digest: Option<String>,
    /// Digest of the pushed per-platform reference in the registry, once pushed.
    pub pushed_digest: Option<String>,
    /// Uncompressed image size in bytes, the layers' sizes from `docker history` (loaded images only).
    pub size_bytes: Option<u64>,
    /// Wall time of the build in seconds.
    pub duration_secs: f64,
    /// Build steps buildx reported as `CACHED`.
    pub cached_steps: usize,
    /// Whether the dependency (`cargo chef cook`) step was cached; `None` when unknown.
    pub dependency_stage_cached: Option<bool>,
    /// Dependency crates (not the workspace's own) compiled by this build.
    #[serde(default)]
    pub dependency_crates_compiled: usize,
    /// `cross` or `emulate`.
    pub strategy: String,
    /// Built from a working tree with uncommitted changes (its reference says `-dirty`).
    #[serde(default)]
    pub dirty: bool,
}

/// The directory holding the records: `target/xtask/images`.
pub fn dir() -> PathBuf {
    crate::target_dir().join("xtask").join("images")
}

/// The record file of one leg, one directory per registry so builds for
/// different registries never overwrite each other's records. The registry
/// is percent-encoded (every byte outside `[A-Za-z0-9.-]` as `%XX`), which
/// is collision-free: `localhost:5000/bkx/y` gives `localhost%3A5000%2Fbkx%2Fy`,
/// `localhost:5000/bkx_y` gives `localhost%3A5000%2Fbkx%5Fy`.
pub fn path(reference: &str, component: &Component, platform: &Platform) -> PathBuf {
    let registry = reference.rsplit_once('/').map_or("", |(r, _)| r);
    let mut slug = String::new();
    for b in registry.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'.' {
            slug.push(char::from(b));
        } else {
            slug.push_str(&format!("%{b:02X}"));
        }
    }
    dir()
        .join(slug)
        .join(format!("{}-{}.json", component.name, platform.arch))
}

/// Reads the record of one leg; `Ok(None)` when there is none. An empty or
/// unreadable one is reported, moved aside to `<file>.corrupt-<unix time>`
/// and treated as absent, so the next build rewrites it.
pub fn load(
    reference: &str,
    component: &Component,
    platform: &Platform,
) -> Result<Option<BuildRecord>> {
    load_file(&path(reference, component, platform))
}

fn load_file(p: &Path) -> Result<Option<BuildRecord>> {
    let text = match std::fs::read_to_string(p) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", p.display())),
    };
    match serde_json::from_str(&text) {
        Ok(r) => Ok(Some(r)),
        Err(e) => {
            let secs = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let aside = p.with_extension(format!("json.corrupt-{secs}"));
            std::fs::rename(p, &aside).with_context(|| format!("moving aside {}", p.display()))?;
            eprintln!(
                "warning: the record {} was unreadable ({e}); moved aside to {}; \
                 the next build of this leg writes a new one",
                p.display(),
                aside.display()
            );
            Ok(None)
        }
    }
}

/// Writes the record of one leg (pretty JSON) under [`path`] of its
/// reference, atomically: a temporary file in the same directory, renamed.
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

/// Refuses `reference` built from a dirty tree unless `allow_dirty`: a
/// dirty tree is never published as its commit (`push`, `manifest`).
pub fn check_clean(reference: &str, dirty: bool, allow_dirty: bool) -> Result<()> {
    if dirty && !allow_dirty {
        anyhow::bail!(
            "{reference} comes from a working tree with uncommitted changes or untracked files \
             (`git status`); commit them and build again, or pass --allow-dirty to publish it anyway"
        );
    }
    Ok(())
}

/// Whether the checkout has uncommitted changes or untracked files (`git
/// status --porcelain`); false outside a git checkout.
pub fn tree_dirty(sh: &xshell::Shell) -> Result<bool> {
    let out = Cmd::new("git")
        .args(["status", "--porcelain"])
        .capture(sh)?;
    Ok(out.ok && !out.stdout.trim().is_empty())
}

/// The unique per-platform reference of one leg: `<repository>:sha-<7>-<arch>`
/// ([`metadata::per_platform_reference`]), or `sha-<7>-dirty-<arch>` for a
/// dirty tree, which a release build of that commit never writes.
pub fn reference(
    registry: &str,
    component: &Component,
    ctx: &Context,
    platform: &Platform,
    dirty: bool,
) -> String {
    if !dirty {
        return metadata::per_platform_reference(registry, component, ctx, platform);
    }
    let repository = metadata::image_repository(registry, component);
    format!(
        "{repository}:{}-dirty-{}",
        metadata::sha_tag(ctx),
        platform.tag_suffix()
    )
}

/// `12.3 MB` (decimal megabytes, as registries and Docker print sizes).
pub fn human_size(bytes: Option<u64>) -> String {
    bytes.map_or_else(
        || "-".to_owned(),
        |b| format!("{:.1} MB", b as f64 / 1_000_000.0),
    )
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
                .strip_prefix(dir())
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
        let r = BuildRecord {
            reference: "r".into(),
            dirty: true,
            ..BuildRecord::default()
        };
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
        assert!(
            names
                .iter()
                .any(|n| n.starts_with("broker-arm64.json.corrupt-")),
            "{names:?}"
        );
        assert!(!names.iter().any(|n| n.contains(".tmp-")), "{names:?}");
        std::fs::remove_dir_all(&dir).unwrap();
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
        assert_eq!(
            dirty,
            "localhost:5000/brokkr-broker:sha-abc1234-dirty-arm64"
        );
        assert!(crate::manifest::is_reserved_tag(
            dirty.rsplit_once(':').unwrap().1
        ));
    }
}
