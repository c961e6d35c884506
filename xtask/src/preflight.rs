//! The checks `build-image` and `images` run before building: the host pieces (set up unless
//! `--no-setup`), the builder (`--builder`, else `$BUILDX_BUILDER`, else the current one), and
//! case B2: `RUN` steps on a foreign platform need a QEMU binfmt handler (else `exec format
//! error`) unless a node of the builder runs that platform natively.

use std::collections::BTreeMap;

use anyhow::{anyhow, bail, Result};
use xshell::Shell;

use crate::{
    buildx::{self, BuilderFacts, Strategy},
    host::{probe, setup, Builder, ImageStore},
    project::{Platform, COMPONENTS},
};

/// Stages that run `RUN` steps on the target platform with `strategy` (none for `cross`).
pub fn emulated_stages(sh: &Shell, strategy: Strategy) -> Result<Vec<String>> {
    let args = BTreeMap::from([("STRATEGY".to_owned(), strategy.as_str().to_owned())]);
    let mut all = indexmap::IndexSet::new();
    for c in COMPONENTS {
        let stages = buildx::parse_stages(&sh.read_file(c.dockerfile)?, &args);
        all.extend(buildx::emulated_run_stages(&stages));
    }
    Ok(all.into_iter().collect())
}

/// Case B2: the foreign platforms lacking a handler while `emulated` stages would run on them.
pub fn missing_emulation<'a>(
    platforms: &[&'a Platform],
    build: &Platform,
    emulated: &[String],
    has_handler: impl Fn(&Platform) -> bool,
) -> Vec<&'a Platform> {
    let needs = |p: &&Platform| !emulated.is_empty() && *p != build && !has_handler(p);
    platforms.iter().copied().filter(needs).collect()
}

/// The doctor's build checks, setup of what is missing unless `no_setup`,
/// then case B2; returns what B1 and the build need to know of the builder.
pub fn ensure_build_host(
    sh: &Shell,
    platforms: &[&'static Platform],
    strategy: Strategy,
    no_setup: bool,
    builder: Option<&str>,
) -> Result<BuilderFacts> {
    let (build, emulated) = (Platform::host()?, emulated_stages(sh, strategy)?);
    // With setup allowed, every requested platform gets what running its image needs (QEMU for
    // foreign ones, used by `smoke`); with --no-setup only what the build itself needs.
    let needs_qemu = missing_emulation(platforms, build, &emulated, |_| false);
    let extra = if no_setup { &needs_qemu } else { platforms };
    let checked: Vec<_> =
        std::iter::once(build).chain(extra.iter().copied().filter(|p| *p != build)).collect();
    setup::ensure(sh, &checked, no_setup, builder)?;
    let (facts, b) = builder_facts(sh, builder)?;
    let usable = |p: &Platform| {
        Platform::parse(p.name).is_ok_and(|p| probe::binfmt(p).entry.is_some_and(|e| e.usable()))
    };
    let still =
        missing_emulation(platforms, build, &emulated, |p| b.supports(p, true) || usable(p));
    if !still.is_empty() {
        let list = |f: fn(&Platform) -> &str, sep| {
            still.iter().map(|p| f(p)).collect::<Vec<_>>().join(sep)
        };
        bail!(
            "{} needs QEMU: stage(s) {} run RUN steps on the target platform ({}), and no binfmt handler is \
             registered for {}; register it with `cargo xtask setup --platform {}`, or use --strategy cross",
            list(|p| p.name, ", "),
            emulated.join(", "),
            strategy.as_str(),
            list(|p| p.machine, ", "),
            list(|p| p.arch, ",")
        );
    }
    Ok(facts)
}

/// The builder `name` (else `$BUILDX_BUILDER`, else the current one) and what B1 needs. A named
/// builder of the `docker` driver is a docker context, which `buildx build --builder NAME`
/// refuses ("use `docker --context=NAME buildx`"): builds then run with `docker --context NAME`.
pub fn builder_facts(sh: &Shell, name: Option<&str>) -> Result<(BuilderFacts, Builder)> {
    let env = std::env::var("BUILDX_BUILDER").ok();
    let name = name.map(str::to_owned).or(env.filter(|b| !b.is_empty()));
    let b =
        probe::builder(sh, name.as_deref()).map_err(|e| anyhow!("`docker buildx inspect`: {e}"))?;
    let context = name.filter(|_| b.driver == "docker");
    let info =
        probe::docker_info(sh, context.as_deref()).map_err(|e| anyhow!("`docker info`: {e}"))?;
    let containerd_store = matches!(info.store(), ImageStore::Containerd(_));
    Ok((BuilderFacts { driver: b.driver.clone(), containerd_store, context }, b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn b2_only_foreign_emulated_platforms_without_handler() {
        let amd64 = Platform::parse("amd64").unwrap();
        let arm64 = Platform::parse("arm64").unwrap();
        let emulated = vec!["cook".to_owned()];
        let none = missing_emulation(&[amd64, arm64], amd64, &[], |_| false);
        assert!(none.is_empty(), "cross runs nothing emulated");
        let missing = missing_emulation(&[amd64, arm64], amd64, &emulated, |_| false);
        assert_eq!(missing, vec![arm64]);
        let registered = missing_emulation(&[amd64, arm64], amd64, &emulated, |_| true);
        assert!(registered.is_empty());
    }
}
