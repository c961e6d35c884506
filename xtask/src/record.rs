//! Build records: what `build-image` and `push` produced, kept as JSON under
//! `target/xtask/images/<registry>/<component>-<arch>.json`: `push` adds the digest
//! the registry holds to the build's record, and CI, `bench` and users read
//! them (digest, size, time, cached steps) without scraping logs.

use std::path::PathBuf;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::project::{Component, Platform};

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
}

/// The directory holding the records: `target/xtask/images`.
pub fn dir() -> PathBuf {
    crate::target_dir().join("xtask").join("images")
}

/// The record file of one leg, per registry so that builds for different
/// registries never overwrite each other's records:
/// `target/xtask/images/localhost_5000/broker-arm64.json` for
/// `localhost:5000/brokkr-broker:sha-abc1234-arm64`.
pub fn path(reference: &str, component: &Component, platform: &Platform) -> PathBuf {
    let registry = reference.rsplit_once('/').map_or("", |(r, _)| r);
    let slug: String = registry
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    dir()
        .join(slug)
        .join(format!("{}-{}.json", component.name, platform.arch))
}

/// Reads the record of one leg; `Ok(None)` when there is none.
pub fn load(
    reference: &str,
    component: &Component,
    platform: &Platform,
) -> Result<Option<BuildRecord>> {
    let p = path(reference, component, platform);
    match std::fs::read_to_string(&p) {
        Ok(text) => Ok(Some(
            serde_json::from_str(&text).with_context(|| format!("parsing {}", p.display()))?,
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", p.display())),
    }
}

/// Writes the record of one leg (pretty JSON), under [`path`] of its reference.
pub fn save(component: &Component, platform: &Platform, record: &BuildRecord) -> Result<()> {
    let p = path(&record.reference, component, platform);
    if let Some(d) = p.parent() {
        std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    std::fs::write(&p, serde_json::to_string_pretty(record)? + "\n")
        .with_context(|| format!("writing {}", p.display()))
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
            "localhost_5000/broker-arm64.json"
        );
        assert_eq!(
            p("localhost:5000/m4/brokkr-broker:sha-abc1234-arm64"),
            "localhost_5000_m4/broker-arm64.json"
        );
        assert_eq!(
            p("ghcr.io/acme/brokkr-broker:sha-abc1234-arm64"),
            "ghcr.io_acme/broker-arm64.json"
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
}
