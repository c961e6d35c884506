//! Multi-arch image indexes: parsing and verification of what
//! `docker buildx imagetools inspect --raw REF` prints.
//!
//! Pure logic, no commands. Rules and where they come from:
//!
//! - OCI image-spec `image-index.md` (v1.1): an index (`mediaType`
//!   [`OCI_INDEX`]) holds `manifests[]`, each a descriptor (`mediaType`,
//!   `digest`, `size`) with an optional `platform` (`architecture`, `os`,
//!   `variant`, ...) and optional `annotations`. When several entries match a
//!   client's platform "the first matching entry SHOULD be used", so two
//!   entries for one platform make pulls depend on order: we call that an error.
//!   Docker's manifest list ([`DOCKER_MANIFEST_LIST`]) has the same shape
//!   (image-spec `media-types.md`, compatibility matrix).
//! - OCI image-spec `descriptor.md`: a digest is `algorithm:encoded`; for
//!   `sha256` the encoded part is 64 lower-case hex digits, for `sha512` 128.
//! - BuildKit attestation storage
//!   (<https://docs.docker.com/build/metadata/attestations/attestation-storage/>):
//!   attestations are stored as extra image manifests in the index, with
//!   platform `unknown/unknown` and the annotations
//!   `vnd.docker.reference.type: attestation-manifest` and
//!   `vnd.docker.reference.digest: <digest of the image manifest they describe>`.
//!   They are not platforms: they are neither counted nor compared (case M2).
//! - `buildx build --push` with provenance on (its default) pushes even a
//!   single-platform image as an index holding `linux/<arch>` plus one
//!   attestation manifest (case M1); [`per_platform_digest`] finds the image
//!   manifest inside.

use std::{collections::BTreeMap, fmt};

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use crate::project::Platform;

/// Media type of an OCI image index (image-spec `image-index.md`).
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Media type of a Docker manifest list (Docker image manifest v2, schema 2).
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Media type of an OCI image manifest (image-spec `manifest.md`).
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// Media type of a Docker image manifest (v2, schema 2).
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Annotation naming the kind of a reference entry (BuildKit attestation storage).
pub const REFERENCE_TYPE: &str = "vnd.docker.reference.type";
/// Annotation holding the digest of the image manifest an attestation describes.
pub const REFERENCE_DIGEST: &str = "vnd.docker.reference.digest";
/// Value of [`REFERENCE_TYPE`] on attestation manifests.
pub const ATTESTATION_MANIFEST: &str = "attestation-manifest";

/// A parsed registry document: either an index (several manifests) or one
/// image manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Document {
    /// An OCI image index or Docker manifest list.
    Index(Index),
    /// A single image manifest: it has no platform field of its own; its
    /// platform is in the image config ([`Manifest::config_digest`]).
    Manifest(Manifest),
}

/// A single image manifest (OCI or Docker v2): what matters when it stands
/// where an index was expected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    /// [`OCI_MANIFEST`] or [`DOCKER_MANIFEST`].
    pub media_type: String,
    /// Digest of the image config blob, which holds `os` and `architecture`.
    pub config_digest: String,
}

/// An OCI image index or Docker manifest list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Index {
    /// [`OCI_INDEX`] or [`DOCKER_MANIFEST_LIST`].
    pub media_type: String,
    /// The `manifests[]` entries, in document order.
    pub entries: Vec<Entry>,
}

/// One entry of an index's `manifests[]` (an OCI descriptor).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Media type of the manifest the entry points to.
    pub media_type: String,
    /// Content digest, `sha256:<64 hex>` (validated when parsed).
    pub digest: String,
    /// Size of the pointed-to manifest in bytes.
    pub size: u64,
    /// The raw `platform` object, if any.
    pub platform: Option<RawPlatform>,
    /// The entry's `annotations` (empty when absent).
    pub annotations: BTreeMap<String, String>,
}

/// The `platform` object of an index entry as written in the document.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct RawPlatform {
    /// `os` (`linux`, or `unknown` on attestation manifests).
    pub os: String,
    /// `architecture` (`amd64`, `arm64`).
    pub architecture: String,
    /// Optional CPU `variant` (`v8`).
    #[serde(default)]
    pub variant: Option<String>,
}

impl RawPlatform {
    /// The platform as `os/arch[/variant]`, normalised: a spelling that
    /// [`Platform::parse`] maps to a supported platform becomes that platform's
    /// name (`linux/arm64/v8` gives `linux/arm64`); anything else is kept as
    /// written, lower-cased (`linux/s390x`, `unknown/unknown`).
    pub fn name(&self) -> String {
        let mut raw = format!("{}/{}", self.os.trim(), self.architecture.trim());
        if let Some(v) = self
            .variant
            .as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
        {
            raw.push('/');
            raw.push_str(v);
        }
        normalise_platform(&raw)
    }
}

/// Normalises a platform string (`os/arch[/variant]`, or an alias such as
/// `arm64`) to a supported platform's name when [`Platform::parse`] knows it,
/// else returns it trimmed and lower-cased.
pub fn normalise_platform(s: &str) -> String {
    match Platform::parse(s) {
        Ok(p) => p.name.to_owned(),
        Err(_) => s.trim().to_ascii_lowercase(),
    }
}

/// What an index entry is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EntryKind {
    /// An image for a platform; the name is normalised ([`RawPlatform::name`]).
    Image(String),
    /// A BuildKit attestation manifest; `describes` is its
    /// [`REFERENCE_DIGEST`] annotation, if present.
    Attestation {
        /// Digest of the image manifest the attestation is about.
        describes: Option<String>,
    },
    /// Neither: no `platform`, or `unknown/unknown` without the attestation
    /// annotation. Not a platform, not compared.
    Other,
}

impl Entry {
    /// Classifies the entry: by the [`REFERENCE_TYPE`] annotation first, then
    /// by platform (`unknown/unknown` or missing is not a platform).
    pub fn kind(&self) -> EntryKind {
        if self.annotations.get(REFERENCE_TYPE).map(String::as_str) == Some(ATTESTATION_MANIFEST) {
            return EntryKind::Attestation {
                describes: self.annotations.get(REFERENCE_DIGEST).cloned(),
            };
        }
        match &self.platform {
            None => EntryKind::Other,
            Some(p) if p.os == "unknown" && p.architecture == "unknown" => EntryKind::Other,
            Some(p) => EntryKind::Image(p.name()),
        }
    }

    /// True when the entry points to another index rather than an image manifest.
    pub fn is_nested_index(&self) -> bool {
        self.media_type == OCI_INDEX || self.media_type == DOCKER_MANIFEST_LIST
    }
}

impl Index {
    /// The image entries with their platform names, in document order,
    /// attestation manifests and platform-less entries excluded. Duplicates
    /// are kept (see [`verify`]).
    pub fn platform_entries(&self) -> Vec<(String, &Entry)> {
        self.entries
            .iter()
            .filter_map(|e| match e.kind() {
                EntryKind::Image(p) => Some((p, e)),
                _ => None,
            })
            .collect()
    }

    /// The distinct platform names, sorted.
    pub fn platforms(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .platform_entries()
            .into_iter()
            .map(|(p, _)| p)
            .collect();
        v.sort();
        v.dedup();
        v
    }

    /// The attestation manifests (BuildKit attestation storage).
    pub fn attestations(&self) -> Vec<&Entry> {
        self.entries
            .iter()
            .filter(|e| matches!(e.kind(), EntryKind::Attestation { .. }))
            .collect()
    }
}

/// Something wrong with an index, one line when displayed. All are errors
/// except [`Problem::DanglingAttestation`] (see [`Problem::is_error`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// An expected platform has no entry.
    MissingPlatform {
        /// The platform wanted.
        platform: String,
        /// The platforms the index has, sorted.
        present: Vec<String>,
    },
    /// The index has a platform that was not asked for.
    UnexpectedPlatform {
        /// The extra platform.
        platform: String,
        /// Its entry's digest.
        digest: String,
    },
    /// Two or more entries for one platform (OCI: the first match wins, so
    /// which image a client gets depends on order).
    DuplicatePlatform {
        /// The platform.
        platform: String,
        /// Digests of all its entries, in document order.
        digests: Vec<String>,
    },
    /// A platform's entry is not the manifest its per-platform source holds.
    DigestMismatch {
        /// The platform.
        platform: String,
        /// Digest in the index.
        found: String,
        /// Digest of the per-platform source.
        expected: String,
    },
    /// A platform's entry points to another index, not an image manifest
    /// (what `docker manifest create` would make of per-platform indexes).
    NestedIndex {
        /// The platform.
        platform: String,
        /// The entry's digest.
        digest: String,
    },
    /// Warning only: an attestation manifest names no image, or one that is
    /// not in this index.
    DanglingAttestation {
        /// The attestation manifest's digest.
        digest: String,
        /// Its [`REFERENCE_DIGEST`] annotation, if any.
        describes: Option<String>,
    },
}

impl Problem {
    /// False only for warnings ([`Problem::DanglingAttestation`]).
    pub fn is_error(&self) -> bool {
        !matches!(self, Problem::DanglingAttestation { .. })
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::MissingPlatform { platform, present } => {
                let has = if present.is_empty() {
                    "no platform at all".to_owned()
                } else {
                    format!("only {}", present.join(", "))
                };
                write!(f, "missing platform {platform}: the index has {has}")
            }
            Problem::UnexpectedPlatform { platform, digest } => {
                write!(
                    f,
                    "unexpected platform {platform} ({digest}): it was not asked for"
                )
            }
            Problem::DuplicatePlatform { platform, digests } => write!(
                f,
                "duplicate platform {platform}: {} entries ({}); a platform must appear once",
                digests.len(),
                digests.join(", ")
            ),
            Problem::DigestMismatch {
                platform,
                found,
                expected,
            } => write!(
                f,
                "{platform} points to {found}, but its per-platform source holds {expected}"
            ),
            Problem::NestedIndex { platform, digest } => write!(
                f,
                "{platform} points to another index ({digest}), not an image manifest; \
                 create the index with `docker buildx imagetools create`"
            ),
            Problem::DanglingAttestation {
                digest,
                describes: Some(d),
            } => write!(
                f,
                "warning: attestation manifest {digest} describes {d}, which is not in this index"
            ),
            Problem::DanglingAttestation {
                digest,
                describes: None,
            } => write!(
                f,
                "warning: attestation manifest {digest} has no {REFERENCE_DIGEST} annotation"
            ),
        }
    }
}

/// Checks an index against what it should hold. An empty result means it holds.
///
/// - Every platform in `expected_platforms`, and every key of
///   `expected_children`, must have exactly one image entry
///   ([`Problem::MissingPlatform`], [`Problem::DuplicatePlatform`]).
/// - No other platform may appear ([`Problem::UnexpectedPlatform`]).
/// - `expected_children` maps a platform (any spelling [`normalise_platform`]
///   accepts) to the digest of the image manifest its per-platform source holds
///   (from [`per_platform_digest`] / [`source_digest`]); the entry must point
///   exactly there ([`Problem::DigestMismatch`]).
/// - Image entries must be image manifests, not nested indexes.
/// - Attestation manifests are not platforms; one whose
///   [`REFERENCE_DIGEST`] names no entry of the index is a warning.
///
/// Problems come out in a stable order: per platform (sorted), then extras,
/// then attestation warnings.
pub fn verify(
    index: &Index,
    expected_platforms: &[&Platform],
    expected_children: Option<&BTreeMap<String, String>>,
) -> Vec<Problem> {
    let mut problems = Vec::new();

    let mut by_platform: BTreeMap<String, Vec<&Entry>> = BTreeMap::new();
    for (p, e) in index.platform_entries() {
        by_platform.entry(p).or_default().push(e);
    }
    let present: Vec<String> = by_platform.keys().cloned().collect();

    let children: BTreeMap<String, &str> = expected_children
        .map(|m| {
            m.iter()
                .map(|(p, d)| (normalise_platform(p), d.trim()))
                .collect()
        })
        .unwrap_or_default();
    let mut wanted: Vec<String> = expected_platforms
        .iter()
        .map(|p| p.name.to_owned())
        .collect();
    wanted.extend(children.keys().cloned());
    wanted.sort();
    wanted.dedup();

    for platform in &wanted {
        let entries = match by_platform.get(platform) {
            Some(e) => e,
            None => {
                problems.push(Problem::MissingPlatform {
                    platform: platform.clone(),
                    present: present.clone(),
                });
                continue;
            }
        };
        if entries.len() > 1 {
            problems.push(Problem::DuplicatePlatform {
                platform: platform.clone(),
                digests: entries.iter().map(|e| e.digest.clone()).collect(),
            });
        }
        for e in entries {
            if e.is_nested_index() {
                problems.push(Problem::NestedIndex {
                    platform: platform.clone(),
                    digest: e.digest.clone(),
                });
            }
            if let Some(expected) = children.get(platform) {
                if e.digest != *expected {
                    problems.push(Problem::DigestMismatch {
                        platform: platform.clone(),
                        found: e.digest.clone(),
                        expected: (*expected).to_owned(),
                    });
                }
            }
        }
    }

    for (platform, entries) in &by_platform {
        if wanted.contains(platform) {
            continue;
        }
        for e in entries {
            problems.push(Problem::UnexpectedPlatform {
                platform: platform.clone(),
                digest: e.digest.clone(),
            });
        }
    }

    for att in index.attestations() {
        let describes = match att.kind() {
            EntryKind::Attestation { describes } => describes,
            _ => None,
        };
        let found = describes
            .as_deref()
            .is_some_and(|d| index.entries.iter().any(|e| e.digest == d));
        if !found {
            problems.push(Problem::DanglingAttestation {
                digest: att.digest.clone(),
                describes,
            });
        }
    }

    problems
}

/// True when `s` is a well-formed OCI digest as registries write them:
/// `sha256:` + 64 lower-case hex digits or `sha512:` + 128 (image-spec `descriptor.md`).
pub fn is_digest(s: &str) -> bool {
    let hex_len = |h: &str, n: usize| {
        h.len() == n
            && h.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    if let Some(h) = s.strip_prefix("sha256:") {
        hex_len(h, 64)
    } else if let Some(h) = s.strip_prefix("sha512:") {
        hex_len(h, 128)
    } else {
        false
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawDoc {
    schema_version: Option<u32>,
    media_type: Option<String>,
    manifests: Option<Vec<RawDescriptor>>,
    config: Option<RawDescriptor>,
    layers: Option<serde_json::Value>,
    errors: Option<Vec<RawRegistryError>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawDescriptor {
    media_type: Option<String>,
    digest: Option<String>,
    size: Option<u64>,
    platform: Option<RawPlatform>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct RawRegistryError {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

/// First `n` characters of `s` on one line, for error messages.
fn snippet(s: &str, n: usize) -> String {
    let one_line: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    match one_line.char_indices().nth(n) {
        Some((i, _)) => format!("{}...", &one_line[..i]),
        None => one_line,
    }
}

/// Parses what `docker buildx imagetools inspect --raw` printed.
///
/// Recognises an index ([`OCI_INDEX`], [`DOCKER_MANIFEST_LIST`]) and a single
/// image manifest ([`OCI_MANIFEST`], [`DOCKER_MANIFEST`]); without a
/// `mediaType` (it is optional in OCI) the shape decides: `manifests` means an
/// index, `config` + `layers` a manifest.
///
/// Errors: a body that is not JSON (an HTML error page from a registry or
/// proxy is named as such), a registry error body (`{"errors":[...]}` from the
/// distribution spec), schema 1 manifests, other media types, entries without
/// a well-formed `digest` ([`is_digest`]).
pub fn parse(json: &str) -> Result<Document> {
    let trimmed = json.trim_start();
    if trimmed.starts_with('<') {
        bail!(
            "expected a manifest or index (JSON) but got an HTML/XML page, likely an error page \
             from the registry or a proxy in front of it: {}",
            snippet(trimmed, 120)
        );
    }
    let raw: RawDoc = serde_json::from_str(json).with_context(|| {
        format!(
            "expected a manifest or index (JSON), got: {}",
            snippet(trimmed, 120)
        )
    })?;

    if let Some(errors) = raw.errors.filter(|e| !e.is_empty()) {
        let list: Vec<String> = errors
            .iter()
            .map(|e| format!("{}: {}", e.code, e.message))
            .collect();
        bail!(
            "the registry answered with an error instead of a manifest: {}",
            list.join("; ")
        );
    }
    if raw.schema_version == Some(1) {
        bail!(
            "this is a Docker schema 1 manifest, which is not supported; \
             re-push the image with a current docker/buildx"
        );
    }

    let is_index_type = |m: &str| m == OCI_INDEX || m == DOCKER_MANIFEST_LIST;
    let is_manifest_type = |m: &str| m == OCI_MANIFEST || m == DOCKER_MANIFEST;
    let media_type = match raw.media_type.as_deref() {
        Some(m) if is_index_type(m) || is_manifest_type(m) => m.to_owned(),
        Some(m) => bail!(
            "unsupported mediaType `{m}`: expected an image index ({OCI_INDEX}, \
             {DOCKER_MANIFEST_LIST}) or an image manifest ({OCI_MANIFEST}, {DOCKER_MANIFEST})"
        ),
        None if raw.manifests.is_some() => OCI_INDEX.to_owned(),
        None if raw.config.is_some() && raw.layers.is_some() => OCI_MANIFEST.to_owned(),
        None => bail!(
            "JSON without `mediaType`, `manifests` or `config`: not a manifest or index: {}",
            snippet(trimmed, 120)
        ),
    };

    if is_manifest_type(&media_type) {
        let config = raw
            .config
            .with_context(|| format!("image manifest ({media_type}) without `config`"))?;
        let config_digest = config.digest.unwrap_or_default();
        if !is_digest(&config_digest) {
            bail!("image manifest has a malformed config digest `{config_digest}`");
        }
        return Ok(Document::Manifest(Manifest {
            media_type,
            config_digest,
        }));
    }

    let manifests = raw
        .manifests
        .with_context(|| format!("index ({media_type}) without `manifests`"))?;
    let mut entries = Vec::with_capacity(manifests.len());
    for (i, d) in manifests.into_iter().enumerate() {
        let digest = d.digest.unwrap_or_default();
        if !is_digest(&digest) {
            bail!(
                "entry {} of the index has a malformed digest `{digest}`",
                i + 1
            );
        }
        entries.push(Entry {
            media_type: d.media_type.unwrap_or_default(),
            digest,
            size: d.size.unwrap_or(0),
            platform: d.platform,
            annotations: d.annotations,
        });
    }
    Ok(Document::Index(Index {
        media_type,
        entries,
    }))
}

/// Parses an index; a single image manifest is an error saying so (use
/// [`parse`] to accept both).
pub fn parse_index(json: &str) -> Result<Index> {
    match parse(json)? {
        Document::Index(i) => Ok(i),
        Document::Manifest(m) => bail!(
            "expected an image index but this is a single image manifest ({}); \
             a multi-arch tag must point to an index (`cargo xtask manifest`)",
            m.media_type
        ),
    }
}

/// The digest of `platform`'s image manifest inside an index: for a
/// per-platform reference pushed by buildx with provenance (an index holding
/// `linux/<arch>` plus an attestation, case M1) or for a multi-arch index.
///
/// Errors: the platform is absent (naming what is there) or appears twice;
/// the document is a single manifest (its digest is the descriptor's own: use
/// [`source_digest`]); parse errors as [`parse`].
pub fn per_platform_digest(json: &str, platform: &Platform) -> Result<String> {
    match parse(json)? {
        Document::Index(index) => digest_in_index(&index, platform),
        Document::Manifest(m) => bail!(
            "this is a single image manifest ({}), not an index: its digest is the one the \
             registry reports for the reference (use source_digest with it)",
            m.media_type
        ),
    }
}

/// The digest of `platform`'s image manifest behind a per-platform reference,
/// whatever buildx pushed: for an index (provenance on) the platform's entry
/// ([`per_platform_digest`]); for a single image manifest (provenance off)
/// `descriptor_digest`, the manifest's own digest as the registry reports it
/// (`docker buildx imagetools inspect REF --format '{{json .Manifest}}'`,
/// field `digest`). The caller checks the manifest's platform from its config.
///
/// Errors: `descriptor_digest` malformed when it is needed; as [`per_platform_digest`].
pub fn source_digest(json: &str, descriptor_digest: &str, platform: &Platform) -> Result<String> {
    match parse(json)? {
        Document::Index(index) => digest_in_index(&index, platform),
        Document::Manifest(_) => {
            let d = descriptor_digest.trim();
            if !is_digest(d) {
                bail!("malformed manifest digest `{d}`: expected sha256:<64 hex digits>");
            }
            Ok(d.to_owned())
        }
    }
}

fn digest_in_index(index: &Index, platform: &Platform) -> Result<String> {
    let entries: Vec<&Entry> = index
        .platform_entries()
        .into_iter()
        .filter(|(p, _)| p == platform.name)
        .map(|(_, e)| e)
        .collect();
    match entries.as_slice() {
        [one] => Ok(one.digest.clone()),
        [] => {
            let present = index.platforms();
            bail!(
                "no {platform} image in this index; it holds {}",
                if present.is_empty() {
                    "no platform at all".to_owned()
                } else {
                    present.join(", ")
                }
            )
        }
        many => bail!(
            "{platform} appears {} times in this index ({}); which one is meant is ambiguous",
            many.len(),
            many.iter()
                .map(|e| e.digest.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::project::PLATFORMS;

    const INDEX_ATTESTATIONS: &str = include_str!("../tests/fixtures/index-attestations.json");
    const PER_PLATFORM_AMD64: &str = include_str!("../tests/fixtures/per-platform-amd64.json");
    const PER_PLATFORM_ARM64: &str = include_str!("../tests/fixtures/per-platform-arm64.json");
    const DOCKER_LIST: &str = include_str!("../tests/fixtures/manifest-list-docker.json");
    const SINGLE: &str = include_str!("../tests/fixtures/manifest-single.json");
    const DUPLICATE: &str = include_str!("../tests/fixtures/index-duplicate-platform.json");
    const ERROR_PAGE: &str = include_str!("../tests/fixtures/error-page.html");

    const AMD64_IMG: &str =
        "sha256:f93228c146ee4b642dbf02cd609bd1d675f23d8222c4fe2febb2737a7c5dae50";
    const ARM64_IMG: &str =
        "sha256:00fc139b8d40d986ba0af07df81cf98e3428752cde1618e7ce61be9590d2f7dd";
    const OTHER: &str = "sha256:7e4fa2eb8c7ac089739d5defc4489fad68a100d92082ca35c6b40a4524821f87";

    fn p(name: &str) -> &'static Platform {
        Platform::parse(name).unwrap()
    }

    fn all() -> Vec<&'static Platform> {
        PLATFORMS.iter().collect()
    }

    fn lines(problems: &[Problem]) -> Vec<String> {
        problems.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn m2_attestations_are_not_platforms() {
        let index = parse_index(INDEX_ATTESTATIONS).unwrap();
        assert_eq!(index.media_type, OCI_INDEX);
        assert_eq!(index.entries.len(), 4);
        assert_eq!(index.platforms(), ["linux/amd64", "linux/arm64"]);
        assert_eq!(index.attestations().len(), 2);
        let got: Vec<(String, &str)> = index
            .platform_entries()
            .into_iter()
            .map(|(p, e)| (p, e.digest.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("linux/amd64".to_owned(), AMD64_IMG),
                ("linux/arm64".to_owned(), ARM64_IMG)
            ]
        );
        assert_eq!(verify(&index, &all(), None), []);
    }

    #[test]
    fn m1_per_platform_provenance_indexes_feed_the_final_index() {
        let mut children = BTreeMap::new();
        for (json, arch) in [(PER_PLATFORM_AMD64, "amd64"), (PER_PLATFORM_ARM64, "arm64")] {
            let index = parse_index(json).unwrap();
            // Each per-platform reference is an index of one platform plus an attestation.
            assert_eq!(index.platforms(), [format!("linux/{arch}")]);
            assert_eq!(verify(&index, &[p(arch)], None), [], "{arch}");
            let digest = per_platform_digest(json, p(arch)).unwrap();
            assert_eq!(source_digest(json, OTHER, p(arch)).unwrap(), digest);
            children.insert(format!("linux/{arch}"), digest);
        }
        assert_eq!(children["linux/amd64"], AMD64_IMG);
        assert_eq!(children["linux/arm64"], ARM64_IMG);
        let final_index = parse_index(INDEX_ATTESTATIONS).unwrap();
        assert_eq!(verify(&final_index, &all(), Some(&children)), []);
    }

    #[test]
    fn per_platform_digest_errors() {
        let err = per_platform_digest(PER_PLATFORM_AMD64, p("arm64"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("no linux/arm64 image") && err.contains("linux/amd64"),
            "{err}"
        );
        let err = per_platform_digest(DUPLICATE, p("arm64"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("appears 2 times"), "{err}");
        let err = per_platform_digest(SINGLE, p("arm64"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("single image manifest"), "{err}");
        // A multi-arch index answers for either platform.
        assert_eq!(
            per_platform_digest(INDEX_ATTESTATIONS, p("arm64")).unwrap(),
            ARM64_IMG
        );
    }

    #[test]
    fn source_digest_of_a_plain_manifest_is_the_descriptor() {
        assert_eq!(source_digest(SINGLE, OTHER, p("amd64")).unwrap(), OTHER);
        assert_eq!(
            source_digest(SINGLE, &format!(" {OTHER}\n"), p("amd64")).unwrap(),
            OTHER
        );
        let err = source_digest(SINGLE, "latest", p("amd64"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("malformed manifest digest"), "{err}");
    }

    #[test]
    fn docker_manifest_list_with_variant() {
        let index = parse_index(DOCKER_LIST).unwrap();
        assert_eq!(index.media_type, DOCKER_MANIFEST_LIST);
        // linux/arm64/v8 is linux/arm64.
        assert_eq!(index.platforms(), ["linux/amd64", "linux/arm64"]);
        assert_eq!(verify(&index, &all(), None), []);
    }

    #[test]
    fn single_manifest_is_not_an_index() {
        match parse(SINGLE).unwrap() {
            Document::Manifest(m) => {
                assert_eq!(m.media_type, OCI_MANIFEST);
                assert_eq!(
                    m.config_digest,
                    "sha256:6fb984685ae490ee4728b0883625731a05a9c997aee99a5d0ee2eb50cb752dd9"
                );
            }
            other => panic!("{other:?}"),
        }
        let err = parse_index(SINGLE).unwrap_err().to_string();
        assert!(err.contains("single image manifest"), "{err}");
    }

    #[test]
    fn duplicate_platform_is_an_error() {
        let index = parse_index(DUPLICATE).unwrap();
        let problems = verify(&index, &all(), None);
        assert_eq!(
            lines(&problems),
            [format!(
                "duplicate platform linux/arm64: 2 entries ({ARM64_IMG}, \
                 sha256:f64641183f58358ed90c005f78375afa4d4a17e96f1807d6b1cc6798e4a43a69); \
                 a platform must appear once"
            )]
        );
        assert!(problems[0].is_error());
    }

    #[test]
    fn missing_extra_and_mismatched_platforms() {
        let index = parse_index(PER_PLATFORM_AMD64).unwrap();
        // M4: only amd64 exists.
        assert_eq!(
            lines(&verify(&index, &all(), None)),
            ["missing platform linux/arm64: the index has only linux/amd64"]
        );
        // Extra platform.
        let index = parse_index(INDEX_ATTESTATIONS).unwrap();
        assert_eq!(
            lines(&verify(&index, &[p("amd64")], None)),
            [format!(
                "unexpected platform linux/arm64 ({ARM64_IMG}): it was not asked for"
            )]
        );
        // Child digest differs; keys in any spelling.
        let children: BTreeMap<String, String> = [
            ("amd64".to_owned(), AMD64_IMG.to_owned()),
            ("linux/arm64/v8".to_owned(), OTHER.to_owned()),
        ]
        .into();
        let problems = verify(&index, &all(), Some(&children));
        assert_eq!(
            lines(&problems),
            [format!(
                "linux/arm64 points to {ARM64_IMG}, but its per-platform source holds {OTHER}"
            )]
        );
        // A child expected for a platform the index lacks is reported missing.
        let empty = Index {
            media_type: OCI_INDEX.to_owned(),
            entries: vec![],
        };
        assert_eq!(
            lines(&verify(&empty, &[], Some(&children))),
            [
                "missing platform linux/amd64: the index has no platform at all",
                "missing platform linux/arm64: the index has no platform at all",
            ]
        );
    }

    #[test]
    fn unknown_platforms_kept_raw_and_unannotated_unknown_ignored() {
        let json = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[
              {{"mediaType":"{OCI_MANIFEST}","digest":"{AMD64_IMG}","size":1614,
                "platform":{{"architecture":"amd64","os":"linux"}}}},
              {{"mediaType":"{OCI_MANIFEST}","digest":"{OTHER}","size":1614,
                "platform":{{"architecture":"S390X","os":"linux"}}}},
              {{"mediaType":"{OCI_MANIFEST}","digest":"{ARM64_IMG}","size":566,
                "platform":{{"architecture":"unknown","os":"unknown"}}}},
              {{"mediaType":"{OCI_MANIFEST}","digest":"{ARM64_IMG}","size":566}}
            ]}}"#
        );
        let index = parse_index(&json).unwrap();
        assert_eq!(index.platforms(), ["linux/amd64", "linux/s390x"]);
        assert_eq!(index.entries[2].kind(), EntryKind::Other);
        assert_eq!(index.entries[3].kind(), EntryKind::Other);
        assert_eq!(
            lines(&verify(&index, &[p("amd64")], None)),
            [format!(
                "unexpected platform linux/s390x ({OTHER}): it was not asked for"
            )]
        );
    }

    #[test]
    fn dangling_attestation_is_only_a_warning() {
        // The per-platform arm64 attestation inside the amd64-only index.
        let json = PER_PLATFORM_AMD64.replace(
            "\"vnd.docker.reference.digest\": \"sha256:f932",
            "\"vnd.docker.reference.digest\": \"sha256:0000",
        );
        let index = parse_index(&json).unwrap();
        let problems = verify(&index, &[p("amd64")], None);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(!problems[0].is_error());
        assert!(problems[0]
            .to_string()
            .starts_with("warning: attestation manifest sha256:a795"));
    }

    #[test]
    fn nested_index_entry_is_an_error() {
        let json = format!(
            r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST_LIST}","manifests":[
              {{"mediaType":"{OCI_INDEX}","digest":"{OTHER}","size":856,
                "platform":{{"architecture":"amd64","os":"linux"}}}}]}}"#
        );
        let index = parse_index(&json).unwrap();
        let problems = verify(&index, &[p("amd64")], None);
        assert_eq!(problems.len(), 1);
        assert!(
            problems[0].to_string().contains("imagetools create"),
            "{}",
            problems[0]
        );
    }

    #[test]
    fn garbage_is_named() {
        let cases: &[(&str, &str)] = &[
            (ERROR_PAGE, "HTML/XML page"),
            ("", "expected a manifest or index (JSON)"),
            (
                "unauthorized: authentication required",
                "expected a manifest or index (JSON)",
            ),
            (
                r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"sha-1a2b3c4-arm64"}}]}"#,
                "MANIFEST_UNKNOWN: manifest unknown",
            ),
            (
                r#"{"schemaVersion":1,"name":"library/busybox","tag":"latest","fsLayers":[]}"#,
                "schema 1",
            ),
            (
                r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.artifact.manifest.v1+json"}"#,
                "unsupported mediaType",
            ),
            (r#"{"hello":"world"}"#, "not a manifest or index"),
            (
                r#"{"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"digest":"sha256:abc"}]}"#,
                "entry 1 of the index has a malformed digest",
            ),
        ];
        for (body, want) in cases {
            let err = format!("{:#}", parse(body).unwrap_err());
            assert!(err.contains(want), "{body:?}: {err}");
        }
    }

    #[test]
    fn shape_decides_without_media_type() {
        let json = r#"{"schemaVersion":2,"manifests":[]}"#;
        assert_eq!(parse_index(json).unwrap().entries, []);
        let no_type = SINGLE.replace(
            "\"mediaType\": \"application/vnd.oci.image.manifest.v1+json\",",
            "",
        );
        assert!(matches!(parse(&no_type).unwrap(), Document::Manifest(_)));
    }

    #[test]
    fn digests() {
        assert!(is_digest(AMD64_IMG));
        assert!(is_digest(&format!("sha512:{}", "a".repeat(128))));
        for bad in [
            "",
            "sha256:",
            "sha256:ABC",
            &AMD64_IMG.to_uppercase(),
            &AMD64_IMG[..70],
            "md5:00",
        ] {
            assert!(!is_digest(bad), "{bad}");
        }
    }
}
