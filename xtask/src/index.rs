//! Multi-arch image indexes: one serde model of what `docker buildx imagetools inspect --raw REF`
//! prints, and its verification. Rules:
//! - OCI image-spec `image-index.md` (v1.1): an index ([`OCI_INDEX`], or Docker's
//!   [`DOCKER_MANIFEST_LIST`]) holds `manifests[]` descriptors with an optional `platform`; several
//!   entries for one platform make pulls depend on order ("the first matching entry SHOULD be
//!   used"): an error here.
//! - image-spec `descriptor.md`: a digest is `sha256:` + 64 lower-case hex (or `sha512:` + 128).
//! - BuildKit attestations are extra manifests of platform `unknown/unknown` annotated
//!   [`REFERENCE_TYPE`]`: attestation-manifest` and [`REFERENCE_DIGEST`]`: <image>`; neither
//!   counted nor compared (case M2).
//! - `buildx build --push` with provenance pushes even one platform as an index of `linux/<arch>`
//!   plus an attestation (case M1); [`source_digest`] finds the image in it.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{bail, ensure, Context, Result};
use serde::Deserialize;

use crate::project::Platform;

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const REFERENCE_TYPE: &str = "vnd.docker.reference.type";
pub const REFERENCE_DIGEST: &str = "vnd.docker.reference.digest";

/// A registry document: an index (`manifests` is `Some`) or an image manifest (`config` is `Some`);
/// [`parse`] fills an absent `media_type` (optional in OCI) from the shape.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Document {
    schema_version: Option<u32>,
    pub media_type: String,
    pub manifests: Option<Vec<Entry>>,
    pub config: Option<Entry>,
    pub layers: Option<Vec<Entry>>,
    /// Index-level annotations (`org.opencontainers.image.*` on what `manifest` writes).
    pub annotations: BTreeMap<String, String>,
    /// A registry error body (distribution spec) instead of a document.
    errors: Vec<RegistryError>,
}

/// An OCI descriptor: an index entry, or a manifest's `config`; `size` in bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Entry {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    pub platform: Option<RawPlatform>,
    pub annotations: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct RawPlatform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
struct RegistryError {
    code: String,
    message: String,
}

/// A platform string as [`Platform::parse`] names it (`linux/arm64/v8`, `arm64`: `linux/arm64`),
/// else trimmed and lower-cased.
pub fn normalise_platform(s: &str) -> String {
    Platform::parse(s).map_or_else(|_| s.trim().to_ascii_lowercase(), |p| p.name.to_owned())
}

impl Entry {
    /// A BuildKit attestation manifest (by its [`REFERENCE_TYPE`]): what it describes.
    pub fn attestation(&self) -> Option<Option<&String>> {
        let a = self.annotations.get(REFERENCE_TYPE).is_some_and(|t| t == "attestation-manifest");
        a.then(|| self.annotations.get(REFERENCE_DIGEST))
    }

    /// An image's platform as [`normalise_platform`] names it; `None` for attestations and for
    /// entries without platform or of `unknown/unknown` (neither is compared).
    pub fn image_platform(&self) -> Option<String> {
        let known = |p: &&RawPlatform| !(p.os == "unknown" && p.architecture == "unknown");
        let p = self.platform.as_ref().filter(known).filter(|_| self.attestation().is_none())?;
        let variant = p.variant.as_deref().map(str::trim).unwrap_or_default();
        let raw = format!("{}/{}/{variant}", p.os.trim(), p.architecture.trim());
        Some(normalise_platform(raw.trim_end_matches('/')))
    }
}

impl Document {
    pub fn entries(&self) -> &[Entry] {
        self.manifests.as_deref().unwrap_or_default()
    }

    /// The image entries with their platform names, in document order; attestations and
    /// platform-less entries left out, duplicates kept.
    pub fn platform_entries(&self) -> Vec<(String, &Entry)> {
        self.entries().iter().filter_map(|e| Some((e.image_platform()?, e))).collect()
    }

    /// The distinct platform names, sorted.
    pub fn platforms(&self) -> Vec<String> {
        let v = self.platform_entries().into_iter().map(|(p, _)| p);
        v.collect::<BTreeSet<_>>().into_iter().collect()
    }
}

fn present_text(present: &[String], prefix: &str) -> String {
    match present.is_empty() {
        true => "no platform at all".to_owned(),
        false => format!("{prefix}{}", present.join(", ")),
    }
}

/// (errors, warnings) of an index: each of `expected_platforms` and of `expected_children`'s keys
/// (platform -> its source's digest) has one image manifest entry, with that digest; no other
/// platform (M2, M4). Errors per platform (sorted), then extras; an attestation describing no
/// entry is a warning.
pub fn verify(
    index: &Document,
    expected_platforms: &[&Platform],
    expected_children: Option<&BTreeMap<String, String>>,
) -> (Vec<String>, Vec<String>) {
    let mut by_platform: BTreeMap<String, Vec<&Entry>> = BTreeMap::new();
    for (p, e) in index.platform_entries() {
        by_platform.entry(p).or_default().push(e);
    }
    let children = expected_children.into_iter().flatten();
    let children: BTreeMap<String, &str> =
        children.map(|(p, d)| (normalise_platform(p), d.trim())).collect();
    let wanted = expected_platforms.iter().map(|p| p.name.to_owned());
    let wanted: BTreeSet<String> = wanted.chain(children.keys().cloned()).collect();
    let mut errors = Vec::new();
    for platform in &wanted {
        let entries = by_platform.get(platform).map_or(&[][..], Vec::as_slice);
        let digests: Vec<&str> = entries.iter().map(|e| e.digest.as_str()).collect();
        match digests.len() {
            0 => errors.push(format!(
                "missing platform {platform}: the index has {}",
                present_text(&index.platforms(), "only ")
            )),
            1 => {}
            n => errors.push(format!(
                "duplicate platform {platform}: {n} entries ({}); a platform must appear once",
                digests.join(", ")
            )),
        }
        for e in entries {
            let d = &e.digest;
            if e.media_type == OCI_INDEX || e.media_type == DOCKER_MANIFEST_LIST {
                errors.push(format!(
                    "{platform} points to another index ({d}), not an image manifest; \
                     create the index with `docker buildx imagetools create`"
                ));
            }
            if let Some(expected) = children.get(platform).filter(|x| d != *x) {
                errors.push(format!(
                    "{platform} points to {d}, but its per-platform source holds {expected}"
                ));
            }
        }
    }
    for (platform, entries) in by_platform.iter().filter(|(p, _)| !wanted.contains(*p)) {
        errors.extend(entries.iter().map(|e| {
            format!("unexpected platform {platform} ({}): it was not asked for", e.digest)
        }));
    }
    let warnings = index.entries().iter().filter_map(|att| match att.attestation()? {
        Some(d) if index.entries().iter().any(|e| e.digest == *d) => None,
        Some(d) => Some(format!(
            "warning: attestation manifest {} describes {d}, which is not in this index",
            att.digest
        )),
        None => Some(format!(
            "warning: attestation manifest {} has no {REFERENCE_DIGEST} annotation",
            att.digest
        )),
    });
    (errors, warnings.collect())
}

/// The OCI digest of `bytes` as pushed (`sha256:<64 hex>`).
pub fn sha256_digest(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    format!("sha256:{:x}", sha2::Sha256::digest(bytes))
}

/// Whether `s` is `sha256:` + 64 lower-case hex digits or `sha512:` + 128.
pub fn is_digest(s: &str) -> bool {
    static DIGEST: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new("^(sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128})$").unwrap()
    });
    DIGEST.is_match(s)
}

/// First 120 characters of `s` on one line, for error messages.
fn snippet(s: &str) -> String {
    crate::diagnose::cut(&s.split_whitespace().collect::<Vec<_>>().join(" "), 120)
}

/// Parses what `imagetools inspect --raw` printed: an index or an image manifest (without
/// `mediaType`: `manifests` or `config` + `layers`); errors name what it was instead.
pub fn parse(json: &str) -> Result<Document> {
    let trimmed = json.trim_start();
    ensure!(
        !trimmed.starts_with('<'),
        "expected a manifest or index (JSON) but got an HTML/XML page, likely an error page \
         from the registry or a proxy in front of it: {}",
        snippet(trimmed)
    );
    let mut doc: Document = serde_json::from_str(json).with_context(|| {
        format!("expected a manifest or index (JSON), got: {}", snippet(trimmed))
    })?;
    if !doc.errors.is_empty() {
        let list: Vec<String> =
            doc.errors.iter().map(|e| format!("{}: {}", e.code, e.message)).collect();
        bail!("the registry answered with an error instead of a manifest: {}", list.join("; "));
    }
    ensure!(doc.schema_version != Some(1), "this is a Docker schema 1 manifest, which is not supported; re-push the image with a current docker/buildx");
    if doc.media_type.is_empty() {
        doc.media_type = match (&doc.manifests, &doc.config, &doc.layers) {
            (Some(_), _, _) => OCI_INDEX.to_owned(),
            (None, Some(_), Some(_)) => OCI_MANIFEST.to_owned(),
            _ => bail!(
                "JSON without `mediaType`, `manifests` or `config`: not a manifest or index: {}",
                snippet(trimmed)
            ),
        };
    }
    match doc.media_type.as_str() {
        t @ (OCI_MANIFEST | DOCKER_MANIFEST) => {
            let config = doc.config.as_ref().map(|c| c.digest.as_str());
            let d = config.with_context(|| format!("image manifest ({t}) without `config`"))?;
            ensure!(is_digest(d), "image manifest has a malformed config digest `{d}`");
            doc.manifests = None;
        }
        t @ (OCI_INDEX | DOCKER_MANIFEST_LIST) => {
            ensure!(doc.manifests.is_some(), "index ({t}) without `manifests`")
        }
        t => bail!(
            "unsupported mediaType `{t}`: expected an image index ({OCI_INDEX}, \
             {DOCKER_MANIFEST_LIST}) or an image manifest ({OCI_MANIFEST}, {DOCKER_MANIFEST})"
        ),
    }
    if let Some((i, e)) = doc.entries().iter().enumerate().find(|(_, e)| !is_digest(&e.digest)) {
        bail!("entry {} of the index has a malformed digest `{}`", i + 1, e.digest);
    }
    Ok(doc)
}

/// Parses an index; a single image manifest is an error saying so.
pub fn parse_index(json: &str) -> Result<Document> {
    let doc = parse(json)?;
    ensure!(
        doc.manifests.is_some(),
        "expected an image index but this is a single image manifest ({}); \
         a multi-arch tag must point to an index (`cargo xtask manifest`)",
        doc.media_type
    );
    Ok(doc)
}

/// The digest of `platform`'s image behind a reference: its entry when `json` is an index (with
/// provenance, M1), else `descriptor`, the registry's digest of the manifest. Errors: the platform
/// absent or twice; a single manifest without `descriptor`.
pub fn source_digest(json: &str, descriptor: Option<&str>, platform: &Platform) -> Result<String> {
    let doc = parse(json)?;
    if doc.manifests.is_none() {
        let d = descriptor.map(str::trim).with_context(|| {
            format!(
                "this is a single image manifest ({}), not an index: its digest is the one the \
                 registry reports for the reference (use source_digest with it)",
                doc.media_type
            )
        })?;
        ensure!(is_digest(d), "malformed manifest digest `{d}`: expected sha256:<64 hex digits>");
        return Ok(d.to_owned());
    }
    let entries = doc.platform_entries();
    let found = entries.iter().filter(|(p, _)| p == platform.name).map(|(_, e)| &*e.digest);
    match found.collect::<Vec<_>>().as_slice() {
        [one] => Ok((*one).to_owned()),
        [] => bail!(
            "no {platform} image in this index; it holds {}",
            present_text(&doc.platforms(), "")
        ),
        many => bail!(
            "{platform} appears {} times in this index ({}); which one is meant is ambiguous",
            many.len(),
            many.join(", ")
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

    /// Errors, then warnings: every line `manifest verify` prints.
    fn lines((errors, warnings): (Vec<String>, Vec<String>)) -> Vec<String> {
        errors.into_iter().chain(warnings).collect()
    }

    #[test]
    fn m2_attestations_are_not_platforms() {
        let index = parse_index(INDEX_ATTESTATIONS).unwrap();
        assert_eq!(index.media_type, OCI_INDEX);
        assert_eq!(index.entries().len(), 4);
        assert_eq!(index.platforms(), ["linux/amd64", "linux/arm64"]);
        let attestation = |e: &&Entry| e.attestation().is_some();
        assert_eq!(index.entries().iter().filter(attestation).count(), 2);
        let got: Vec<(String, &str)> =
            index.platform_entries().into_iter().map(|(p, e)| (p, e.digest.as_str())).collect();
        assert_eq!(
            got,
            [("linux/amd64".to_owned(), AMD64_IMG), ("linux/arm64".to_owned(), ARM64_IMG)]
        );
        assert_eq!(lines(verify(&index, &all(), None)), Vec::<String>::new());
    }

    #[test]
    fn m1_per_platform_provenance_indexes_feed_the_final_index() {
        let mut children = BTreeMap::new();
        for (json, arch) in [(PER_PLATFORM_AMD64, "amd64"), (PER_PLATFORM_ARM64, "arm64")] {
            let index = parse_index(json).unwrap();
            // Each per-platform reference is an index of one platform plus an attestation.
            assert_eq!(index.platforms(), [format!("linux/{arch}")]);
            assert_eq!(lines(verify(&index, &[p(arch)], None)), Vec::<String>::new(), "{arch}");
            let digest = source_digest(json, None, p(arch)).unwrap();
            assert_eq!(source_digest(json, Some(OTHER), p(arch)).unwrap(), digest);
            children.insert(format!("linux/{arch}"), digest);
        }
        assert_eq!(children["linux/amd64"], AMD64_IMG);
        assert_eq!(children["linux/arm64"], ARM64_IMG);
        let final_index = parse_index(INDEX_ATTESTATIONS).unwrap();
        assert_eq!(lines(verify(&final_index, &all(), Some(&children))), Vec::<String>::new());
    }

    #[test]
    fn per_platform_digest_errors() {
        let err = source_digest(PER_PLATFORM_AMD64, None, p("arm64")).unwrap_err().to_string();
        assert!(err.contains("no linux/arm64 image") && err.contains("linux/amd64"), "{err}");
        let err = source_digest(DUPLICATE, None, p("arm64")).unwrap_err().to_string();
        assert!(err.contains("appears 2 times"), "{err}");
        let err = source_digest(SINGLE, None, p("arm64")).unwrap_err().to_string();
        assert!(err.contains("single image manifest"), "{err}");
        // A multi-arch index answers for either platform.
        assert_eq!(source_digest(INDEX_ATTESTATIONS, None, p("arm64")).unwrap(), ARM64_IMG);
    }

    #[test]
    fn source_digest_of_a_plain_manifest_is_the_descriptor() {
        assert_eq!(source_digest(SINGLE, Some(OTHER), p("amd64")).unwrap(), OTHER);
        assert_eq!(source_digest(SINGLE, Some(&format!(" {OTHER}\n")), p("amd64")).unwrap(), OTHER);
        let err = source_digest(SINGLE, Some("latest"), p("amd64")).unwrap_err().to_string();
        assert!(err.contains("malformed manifest digest"), "{err}");
    }

    #[test]
    fn docker_manifest_list_with_variant() {
        let index = parse_index(DOCKER_LIST).unwrap();
        assert_eq!(index.media_type, DOCKER_MANIFEST_LIST);
        // linux/arm64/v8 is linux/arm64.
        assert_eq!(index.platforms(), ["linux/amd64", "linux/arm64"]);
        assert_eq!(lines(verify(&index, &all(), None)), Vec::<String>::new());
    }

    #[test]
    fn single_manifest_is_not_an_index() {
        let m = parse(SINGLE).unwrap();
        assert!(m.manifests.is_none());
        assert_eq!(m.media_type, OCI_MANIFEST);
        assert_eq!(
            m.config.unwrap().digest,
            "sha256:6fb984685ae490ee4728b0883625731a05a9c997aee99a5d0ee2eb50cb752dd9"
        );
        let err = parse_index(SINGLE).unwrap_err().to_string();
        assert!(err.contains("single image manifest"), "{err}");
    }

    #[test]
    fn duplicate_platform_is_an_error() {
        let index = parse_index(DUPLICATE).unwrap();
        let (errors, warnings) = verify(&index, &all(), None);
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(
            errors,
            [format!(
                "duplicate platform linux/arm64: 2 entries ({ARM64_IMG}, \
                 sha256:f64641183f58358ed90c005f78375afa4d4a17e96f1807d6b1cc6798e4a43a69); \
                 a platform must appear once"
            )]
        );
    }

    #[test]
    fn missing_extra_and_mismatched_platforms() {
        let index = parse_index(PER_PLATFORM_AMD64).unwrap();
        // M4: only amd64 exists.
        assert_eq!(
            lines(verify(&index, &all(), None)),
            ["missing platform linux/arm64: the index has only linux/amd64"]
        );
        // Extra platform.
        let index = parse_index(INDEX_ATTESTATIONS).unwrap();
        assert_eq!(
            lines(verify(&index, &[p("amd64")], None)),
            [format!("unexpected platform linux/arm64 ({ARM64_IMG}): it was not asked for")]
        );
        // Child digest differs; keys in any spelling.
        let children: BTreeMap<String, String> = [
            ("amd64".to_owned(), AMD64_IMG.to_owned()),
            ("linux/arm64/v8".to_owned(), OTHER.to_owned()),
        ]
        .into();
        assert_eq!(
            lines(verify(&index, &all(), Some(&children))),
            [format!(
                "linux/arm64 points to {ARM64_IMG}, but its per-platform source holds {OTHER}"
            )]
        );
        // A child expected for a platform the index lacks is reported missing.
        let empty = parse_index(r#"{"manifests":[]}"#).unwrap();
        assert_eq!(
            lines(verify(&empty, &[], Some(&children))),
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
        for other in &index.entries()[2..] {
            assert_eq!((other.image_platform(), other.attestation()), (None, None));
        }
        assert_eq!(
            lines(verify(&index, &[p("amd64")], None)),
            [format!("unexpected platform linux/s390x ({OTHER}): it was not asked for")]
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
        let (errors, warnings) = verify(&index, &[p("amd64")], None);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].starts_with("warning: attestation manifest sha256:a795"));
    }

    #[test]
    fn nested_index_entry_is_an_error() {
        let json = format!(
            r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST_LIST}","manifests":[
              {{"mediaType":"{OCI_INDEX}","digest":"{OTHER}","size":856,
                "platform":{{"architecture":"amd64","os":"linux"}}}}]}}"#
        );
        let index = parse_index(&json).unwrap();
        let problems = lines(verify(&index, &[p("amd64")], None));
        assert_eq!(problems.len(), 1);
        assert!(problems[0].contains("imagetools create"), "{}", problems[0]);
    }

    #[test]
    fn garbage_is_named() {
        let cases: &[(&str, &str)] = &[
            (ERROR_PAGE, "HTML/XML page"),
            ("", "expected a manifest or index (JSON)"),
            ("unauthorized: authentication required", "expected a manifest or index (JSON)"),
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
        assert_eq!(parse_index(json).unwrap().entries(), []);
        let no_type =
            SINGLE.replace("\"mediaType\": \"application/vnd.oci.image.manifest.v1+json\",", "");
        assert!(parse(&no_type).unwrap().manifests.is_none());
    }

    #[test]
    fn dry_run_output_is_what_is_pushed() {
        // `imagetools create --dry-run --annotation index:... SRC SRC` of buildx 0.13.1; the
        // registry then served this index as sha256:1d0a19ad...
        let printed = include_str!("../tests/fixtures/index-annotated-dry-run.json");
        assert_eq!(
            sha256_digest(printed.trim().as_bytes()),
            "sha256:1d0a19ad4abb6108aacea8499d244d1214ccfa334ba3990c3f5acc4a493cca4a"
        );
        let index = parse_index(printed).unwrap();
        assert_eq!(index.annotations["org.opencontainers.image.version"], "main");
        assert_eq!(index.platforms(), ["linux/amd64", "linux/arm64"]);
    }

    #[test]
    fn digests() {
        assert!(is_digest(AMD64_IMG));
        assert!(is_digest(&format!("sha512:{}", "a".repeat(128))));
        for bad in
            ["", "sha256:", "sha256:ABC", &AMD64_IMG.to_uppercase(), &AMD64_IMG[..70], "md5:00"]
        {
            assert!(!is_digest(bad), "{bad}");
        }
    }
}
