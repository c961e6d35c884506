//! The checks `build-image` and `images` run before building: the host
//! pieces they need (set up when missing, unless `--no-setup`) and case B2
//! (a foreign platform whose build runs `RUN` steps on the target platform
//! needs a QEMU binfmt handler, or it dies with `exec format error`).

use std::collections::BTreeMap;

use anyhow::{anyhow, bail, Result};
use xshell::Shell;

use crate::{
    buildx::{self, BuilderFacts, Strategy},
    host::{probe, setup, ImageStore},
    project::{Platform, COMPONENTS},
};

/// The stages of our Dockerfiles that would run `RUN` steps on the target
/// platform with `strategy` (empty for `cross`).
pub fn emulated_stages(sh: &Shell, strategy: Strategy) -> Result<Vec<String>> {
    let args = BTreeMap::from([("STRATEGY".to_owned(), strategy.as_str().to_owned())]);
    let mut all = Vec::new();
    for c in COMPONENTS {
        let text = sh.read_file(c.dockerfile)?;
        for s in buildx::emulated_run_stages(&buildx::parse_stages(&text, &args)) {
            if !all.contains(&s) {
                all.push(s);
            }
        }
    }
    Ok(all)
}

/// Case B2 as a pure decision: the foreign platforms among `platforms` that
/// lack a binfmt handler while `emulated` stages would run on them.
pub fn missing_emulation<'a>(
    platforms: &[&'a Platform],
    build: &Platform,
    emulated: &[String],
    has_handler: impl Fn(&Platform) -> bool,
) -> Vec<&'a Platform> {
    if emulated.is_empty() {
        return Vec::new();
    }
    platforms
        .iter()
        .copied()
        .filter(|p| *p != build && !has_handler(p))
        .collect()
}

/// Makes sure the host can build `platforms` with `strategy`: runs the
/// doctor's build checks, sets up what is missing (Debian/Ubuntu as root)
/// unless `no_setup`, and refuses with the remedies otherwise. Returns what
/// the B1 check needs to know about the builder.
pub fn ensure_build_host(
    sh: &Shell,
    platforms: &[&'static Platform],
    strategy: Strategy,
    no_setup: bool,
) -> Result<BuilderFacts> {
    let build = Platform::host()?;
    let emulated = emulated_stages(sh, strategy)?;
    // With setup allowed, every requested platform gets what running its
    // image needs (QEMU for foreign ones, used by `smoke`); with --no-setup
    // only what the build itself needs is required.
    let needs_qemu = missing_emulation(platforms, build, &emulated, |_| false);
    let mut checked: Vec<&'static Platform> = vec![build];
    let extra: &[&'static Platform] = if no_setup { &needs_qemu } else { platforms };
    checked.extend(extra.iter().copied().filter(|p| *p != build));
    setup::ensure(sh, &checked, no_setup)?;
    let facts = builder_facts(sh)?;
    let still = missing_emulation(platforms, build, &emulated, has_binfmt);
    if !still.is_empty() {
        bail!(
            "{} needs QEMU: stage(s) {} run RUN steps on the target platform ({}), and no binfmt handler is \
             registered for {}; register it with `cargo xtask setup --platform {}`, or use --strategy cross",
            still.iter().map(|p| p.name).collect::<Vec<_>>().join(", "),
            emulated.join(", "),
            strategy.as_str(),
            still.iter().map(|p| p.machine).collect::<Vec<_>>().join(", "),
            still.iter().map(|p| p.arch).collect::<Vec<_>>().join(",")
        );
    }
    Ok(facts)
}

/// What B1 needs about the current builder: its driver (`docker buildx
/// inspect`) and whether the engine uses the containerd image store (`docker info`).
fn builder_facts(sh: &Shell) -> Result<BuilderFacts> {
    let builder = probe::builder(sh).map_err(|e| anyhow!("`docker buildx inspect`: {e}"))?;
    let info = probe::docker_info(sh).map_err(|e| anyhow!("`docker info`: {e}"))?;
    Ok(BuilderFacts {
        driver: builder.driver,
        containerd_store: matches!(info.store(), ImageStore::Containerd(_)),
    })
}

fn has_binfmt(p: &Platform) -> bool {
    Platform::parse(p.name).is_ok_and(probe::binfmt_usable)
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
