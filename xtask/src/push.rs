//! `cargo xtask push`: pushes locally built images under their unique
//! per-platform references (`<registry>/brokkr-<c>:sha-<7 hex>-<arch>`) and
//! records the digest the registry holds. It never writes a final tag:
//! only `manifest` does (case M3). Everything that can be checked (local
//! images, dirty builds, the registry answering over the right protocol with
//! credentials) is checked before the first push.

use anyhow::{bail, Context as _, Result};
use clap::Args;
use xshell::Shell;

use crate::{
    diagnose, index, metadata,
    options::Selection,
    plan::Cmd,
    project::{parse_registry, Component, Platform, LOCAL_REGISTRY},
    record, tags,
};

/// Options of `push`.
#[derive(Debug, Args)]
pub struct PushArgs {
    /// Components and platforms to push.
    #[command(flatten)]
    pub select: Selection,
    /// Registry prefix; default as for `build-image`.
    #[arg(long, env = "BROKKR_REGISTRY", value_parser = parse_registry)]
    pub registry: Option<String>,
    /// Push images built from a working tree with uncommitted changes (refused otherwise).
    #[arg(long)]
    pub allow_dirty: bool,
    /// Print the commands that would run, and run nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// Runs `cargo xtask push`.
pub fn run(sh: &Shell, args: &PushArgs) -> Result<()> {
    let platforms = args.select.platforms()?;
    let ctx = tags::detect(sh)?;
    let registry = metadata::resolve_registry(&ctx, args.registry.as_deref())?;
    let dirty = record::tree_dirty(sh)?;
    let mut legs = Vec::new();
    for c in args.select.components() {
        for p in &platforms {
            legs.push((c, *p, record::reference(&registry, c, &ctx, p, dirty)));
        }
    }
    if dirty && !args.allow_dirty {
        record::check_clean(&legs[0].2, dirty, false)?;
    }
    if args.dry_run {
        legs.iter()
            .for_each(|(_, _, r)| println!("{}", Cmd::new("docker").args(["push", r])));
        return Ok(());
    }
    for (c, p, reference) in &legs {
        check_local(sh, c, p, reference, args)?;
    }
    if registry.split('/').next() == Some(LOCAL_REGISTRY) {
        // The default target outside CI: start it when it is not running.
        crate::host::registry::start(sh, crate::host::registry::Kind::Open)?;
    }
    // Plain HTTP to a non-loopback host, missing credentials, a wrong port:
    // found by a read before anything is written.
    remote(sh, &legs[0].2).with_context(|| format!("the registry {registry} cannot be used"))?;
    for (c, p, reference) in &legs {
        println!("{reference}@{}", push_one(sh, c, p, reference)?);
    }
    Ok(())
}

/// The image is in the local store, and its record (if any) is not from a
/// dirty tree unless `--allow-dirty`.
fn check_local(
    sh: &Shell,
    c: &Component,
    p: &Platform,
    reference: &str,
    args: &PushArgs,
) -> Result<()> {
    let exists = Cmd::new("docker")
        .args(["image", "inspect", "--format", "{{.Id}}", reference])
        .capture(sh)?;
    if !exists.ok {
        let registry = reference.rsplit_once('/').map_or("", |(r, _)| r);
        bail!(
            "{reference} is not in the local image store; build it first: \
             cargo xtask build-image --component {} --platform {} --registry {registry}",
            c.name,
            p.arch
        );
    }
    let rec = record::load(reference, c, p)?.filter(|r| r.reference == reference);
    let dirty = reference.contains("-dirty-") || rec.is_some_and(|r| r.dirty);
    record::check_clean(reference, dirty, args.allow_dirty)
}

/// Pushes one per-platform reference (retrying transient registry errors)
/// and returns the digest the registry serves for it; updates the record.
pub fn push_one(
    sh: &Shell,
    component: &Component,
    platform: &Platform,
    reference: &str,
) -> Result<String> {
    Cmd::new("docker")
        .args(["push", reference])
        .run_retrying(sh, &format!("push {reference}"))?;
    let digest = remote_digest(sh, reference)?;
    let mut rec = record::load(reference, component, platform)?.unwrap_or_default();
    rec.component = component.name.into();
    rec.platform = platform.name.into();
    rec.dirty |= reference.contains("-dirty-");
    rec.reference = reference.into();
    rec.pushed_digest = Some(digest.clone());
    record::save(component, platform, &rec)?;
    Ok(digest)
}

/// What a registry holds under a reference: the raw manifest or index and
/// the digest of that document.
#[derive(Clone, Debug)]
pub struct Remote {
    pub raw: String,
    pub digest: String,
}

/// Reads `reference` from its registry: `Ok(None)` only when the registry
/// answers that it does not have it; every other failure (credentials, DNS,
/// plain HTTP, nothing listening) is an error with its diagnosis.
pub fn remote(sh: &Shell, reference: &str) -> Result<Option<Remote>> {
    let out = Cmd::new("docker")
        .args(["buildx", "imagetools", "inspect", "--raw", reference])
        .capture_retrying(sh, &format!("reading {reference}"))?;
    if !out.ok {
        if is_missing(&out.stderr) {
            return Ok(None);
        }
        let why = diagnose::explain(&out.stderr)
            .map_or_else(|| diagnose::reason(&out.stderr), |h| h.to_string());
        bail!("reading {reference}: {why}");
    }
    let digest = remote_digest(sh, reference)?;
    Ok(Some(Remote {
        raw: out.stdout,
        digest,
    }))
}

/// Whether `imagetools inspect` failed because the reference does not exist
/// (`ERROR: <ref>: not found`, `manifest unknown`, `name unknown`), not
/// because the registry could not be asked.
pub fn is_missing(stderr: &str) -> bool {
    let e = stderr.to_ascii_lowercase();
    diagnose::explain(stderr).is_none_or(|h| h.cause == diagnose::Cause::NotFound)
        && (e.contains(": not found")
            || e.contains("manifest unknown")
            || e.contains("name unknown"))
}

/// The digest of what `reference` points to in its registry
/// (`docker buildx imagetools inspect --format '{{json .Manifest}}'`).
pub fn remote_digest(sh: &Shell, reference: &str) -> Result<String> {
    let json = Cmd::new("docker")
        .args([
            "buildx",
            "imagetools",
            "inspect",
            "--format",
            "{{json .Manifest}}",
            reference,
        ])
        .capture_retrying(sh, &format!("reading the digest of {reference}"))?;
    if !json.ok {
        bail!(
            "reading the digest of {reference} from the registry: {}",
            json.stderr.trim()
        );
    }
    let json = json.stdout.trim();
    let d: index::Entry = serde_json::from_str(json)
        .with_context(|| format!("parsing `imagetools inspect` output: {json}"))?;
    if !index::is_digest(&d.digest) {
        bail!("no digest in `imagetools inspect` output: {json}");
    }
    Ok(d.digest)
}

#[cfg(test)]
mod tests {
    #[test]
    fn missing_only_when_the_registry_says_so() {
        let cases = [
            ("ERROR: localhost:5000/brokkr-broker:nope: not found", true),
            ("ERROR: ghcr.io/a/b:c: manifest unknown: manifest unknown", true),
            ("ERROR: failed to do request: Head \"http://localhost:5002/v2/xx/manifests/nope\": dial tcp 127.0.0.1:5002: connect: connection refused", false),
            ("ERROR: failed to do request: Head \"https://nosuchhost.invalid/v2/xx/manifests/nope\": dial tcp: lookup nosuchhost.invalid on 10.255.255.53:53: no such host", false),
            ("ERROR: unexpected status from HEAD request to https://ghcr.io/v2/a/b/manifests/c: 401 Unauthorized", false),
            ("ERROR: failed to do request: Head \"https://10.0.0.5:5000/v2/b/manifests/c\": http: server gave HTTP response to HTTPS client", false),
        ];
        for (stderr, want) in cases {
            assert_eq!(super::is_missing(stderr), want, "{stderr}");
        }
    }
}
