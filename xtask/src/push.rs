//! `cargo xtask push`: pushes locally built images under their unique
//! per-platform references (`<registry>/brokkr-<c>:sha-<7 hex>-<arch>`) and
//! records the digest the registry holds. It never writes a final tag:
//! only `manifest` does (case M3), so parallel per-platform jobs can never
//! leave a single-platform image under `:1.0`.

use anyhow::{bail, Context as _, Result};
use xshell::Shell;

use crate::{
    cli::PushArgs,
    diagnose, metadata,
    plan::Cmd,
    project::{Component, Platform},
    record, tags,
};

/// Runs `cargo xtask push`.
pub fn run(sh: &Shell, args: &PushArgs) -> Result<()> {
    let platforms = args.select.platforms()?;
    let components = args.select.components();
    let ctx = tags::detect(sh)?;
    let registry = metadata::resolve_registry(&ctx, args.registry.as_deref())?;
    if !args.dry_run && registry.split('/').next() == Some(crate::project::LOCAL_REGISTRY) {
        // The default target outside CI: start it when it is not running.
        crate::host::registry::start(sh, crate::host::registry::Kind::Open)?;
    }
    for c in &components {
        for p in &platforms {
            let reference = metadata::per_platform_reference(&registry, c, &ctx, p);
            let push = Cmd::new("docker").args(["push", &reference]);
            if args.dry_run {
                println!("{push}");
                continue;
            }
            let digest = push_one(sh, c, p, &reference)?;
            println!("{reference}@{digest}");
        }
    }
    Ok(())
}

/// Pushes one per-platform reference (retrying transient registry errors)
/// and returns the digest the registry serves for it; updates the record.
pub fn push_one(
    sh: &Shell,
    component: &Component,
    platform: &Platform,
    reference: &str,
) -> Result<String> {
    let exists = Cmd::new("docker")
        .args(["image", "inspect", "--format", "{{.Id}}", reference])
        .capture(sh)?;
    if !exists.ok {
        // The registry part of the reference, so the hint builds the same name.
        let registry = reference.rsplit_once('/').map_or("", |(r, _)| r);
        bail!(
            "{reference} is not in the local image store; build it first: \
             cargo xtask build-image --component {} --platform {} --registry {registry}",
            component.name,
            platform.arch
        );
    }
    let push = Cmd::new("docker").args(["push", reference]);
    diagnose::run_retrying(sh, &push, &format!("push {reference}"))?;
    let digest = remote_digest(sh, reference)?;
    let mut rec = record::load(reference, component, platform)?.unwrap_or_default();
    rec.component = component.name.into();
    rec.platform = platform.name.into();
    rec.reference = reference.into();
    rec.pushed_digest = Some(digest.clone());
    record::save(component, platform, &rec)?;
    Ok(digest)
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
        .read_quiet(sh)
        .with_context(|| format!("reading the digest of {reference} from the registry"))?;
    let v: serde_json::Value = serde_json::from_str(&json)
        .with_context(|| format!("parsing `imagetools inspect` output: {json}"))?;
    v.get("digest")
        .and_then(|d| d.as_str())
        .map(str::to_owned)
        .with_context(|| format!("no digest in `imagetools inspect` output: {json}"))
}
