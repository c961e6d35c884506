//! `cargo xtask push`: pushes locally built images under their per-commit references
//! (`<registry>/brokkr-<c>:sha-<7 hex>-<arch>`) and records what the registry holds. It never
//! writes a final tag: only `manifest` does (case M3). Local images, dirty builds and the registry
//! (protocol, credentials) are checked before the first push.

use anyhow::{ensure, Context as _, Result};
use clap::Args;
use xshell::Shell;

use crate::{
    metadata,
    options::Selection,
    plan::Cmd,
    project::{parse_registry, Component, Platform, LOCAL_REGISTRY},
    record::{self, BuildRecord},
    tags,
};

#[derive(Debug, Args)]
pub struct PushArgs {
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

pub fn run(sh: &Shell, args: &PushArgs) -> Result<()> {
    let platforms = args.select.platforms()?;
    let ctx = tags::detect(sh)?;
    let registry = metadata::resolve_registry(&ctx, args.registry.as_deref())?;
    let dirty = record::tree_dirty(sh)?;
    let leg = |c, p: &&'static Platform| (c, *p, record::reference(&registry, c, &ctx, p, dirty));
    let components = args.select.components().into_iter();
    let legs: Vec<_> = components.flat_map(|c| platforms.iter().map(move |p| leg(c, p))).collect();
    record::check_clean(&legs[0].2, dirty, args.allow_dirty)?;
    if args.dry_run {
        legs.iter().for_each(|(_, _, r)| println!("{}", Cmd::new("docker").args(["push", r])));
        return Ok(());
    }
    // Each image in the local store, its record (if any) not from a dirty tree unless allowed.
    for (c, p, reference) in &legs {
        let registry = reference.rsplit_once('/').map_or("", |(r, _)| r);
        ensure!(
            record::local_digest(sh, reference, None)?.is_some(),
            "{reference} is not in the local image store; build it first: \
             cargo xtask build-image --component {} --platform {} --registry {registry}",
            c.name,
            p.arch
        );
        let rec = record::load(reference, c, p)?.filter(|r| r.reference == *reference);
        let dirty = reference.contains("-dirty-") || rec.is_some_and(|r| r.dirty);
        record::check_clean(reference, dirty, args.allow_dirty)?;
    }
    if registry.split('/').next() == Some(LOCAL_REGISTRY) {
        // The default target outside CI: start it when it is not running.
        crate::host::registry::start(sh, crate::host::registry::Kind::Open)?;
    }
    // Plain HTTP to a non-loopback host, missing credentials, a wrong port:
    // found by a read before anything is written.
    let probe = record::remote(sh, &legs[0].2);
    probe.with_context(|| format!("the registry {registry} cannot be used"))?;
    for (c, p, reference) in &legs {
        println!("{reference}@{}", push_one(sh, c, p, reference)?);
    }
    Ok(())
}

/// Pushes one per-commit reference under the leg's lock and records what the local tag and the
/// registry hold; returns the pushed digest.
pub fn push_one(sh: &Shell, c: &Component, p: &Platform, reference: &str) -> Result<String> {
    let _lock = record::lock(reference, c, p)?;
    let mut rec = record::load_checked(sh, reference, c, p)?
        .filter(|r| r.reference == reference)
        .unwrap_or_else(|| BuildRecord {
            component: c.name.into(),
            platform: p.name.into(),
            reference: reference.into(),
            dirty: reference.contains("-dirty-"),
            ..BuildRecord::default()
        });
    Cmd::new("docker").args(["push", reference]).run_retrying(sh, &format!("push {reference}"))?;
    rec.repository = reference.rsplit_once(':').map_or(reference, |(r, _)| r).into();
    rec.digest = record::local_digest(sh, reference, None)?;
    let digest = record::remote_digest(sh, reference)?;
    rec.pushed_digest = Some(digest.clone());
    record::save(c, p, &rec)?;
    Ok(digest)
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
            assert_eq!(crate::record::is_missing(stderr), want, "{stderr}");
        }
    }
}
