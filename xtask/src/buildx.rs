//! Pure planning of `docker buildx build` invocations and of the checks that must pass
//! before one starts (cases B1, B2, B3, B4, B10 of `shared/cases/builds.md`), plus parsing
//! of buildx's plain progress output. Nothing here runs a command.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

use anyhow::{ensure, Result};
use clap::ValueEnum;

use crate::{
    plan::Cmd,
    project::{Component, Platform},
};

/// Where rustc runs, as the Dockerfiles' `STRATEGY` build argument.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Strategy {
    /// Compile on the build platform and cross-compile for the target (fast; default).
    #[default]
    Cross,
    /// Compile on the target platform under QEMU (the classic approach; slow).
    Emulate,
}

impl Strategy {
    pub fn as_str(self) -> &'static str {
        ["cross", "emulate"][self as usize]
    }
}

/// Build cache backend for `--cache-from`/`--cache-to`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum CacheKind {
    /// Only the builder's own cache (nothing imported or exported).
    #[default]
    None,
    /// A directory per scope under `target/buildx-cache/`.
    Local,
    /// An image `<registry>/brokkr-<component>:buildcache-<arch>` in the registry.
    Registry,
    /// GitHub Actions' cache service (needs ACTIONS_RUNTIME_TOKEN and ACTIONS_CACHE_URL
    /// or ACTIONS_RESULTS_URL in the environment of `run:` steps).
    Gha,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Progress {
    /// Plain text, one line per event: readable in CI logs and parsed for cached steps.
    #[default]
    Plain,
    /// A live view on a terminal, plain otherwise (cached steps are then not counted).
    Auto,
}

/// What happens to the built image: `--load`, `--push` under the tags, or pushed with
/// no tag at all (`push-by-digest=true`; drivers other than `docker`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    Load,
    Push,
    PushByDigest,
}

/// Whether a builder driver can push by digest (the `docker` driver cannot:
/// "not implemented for docker driver").
pub fn can_push_by_digest(driver: &str) -> bool {
    matches!(driver, "docker-container" | "remote" | "kubernetes")
}

/// The cache scope of one call, `brokkr-broker-linux-arm64` (several platforms: joined), so
/// matrix legs never overwrite each other's cache (case B3; gha's default scope is shared).
pub fn cache_scope(component: &Component, platforms: &[&Platform]) -> String {
    let names: Vec<String> = platforms.iter().map(|p| p.name.replace('/', "-")).collect();
    format!("brokkr-{}-{}", component.name, names.join("-"))
}

/// `--cache-from` and `--cache-to` for one leg. `--cache-to` carries `mode=max` (every stage)
/// and `ignore-error=true`: a cache service down or over quota warns, never fails the build
/// (case B4); `read_only` (pull requests) never exports; `local` is imported only once it holds
/// a cache (buildx refuses an empty local directory).
pub fn cache_args(
    kind: CacheKind,
    scope: &str,
    platform: &Platform,
    repository: &str,
    local: &Path,
    read_only: bool,
) -> (Option<String>, Option<String>) {
    let (shared, arch) = (|s: String| (Some(s.clone()), s), platform.arch);
    let (local_dir, local_exists) = (local.display(), local.join("index.json").is_file());
    let (from, to) = match kind {
        CacheKind::None => return (None, None),
        CacheKind::Local => (
            local_exists.then(|| format!("type=local,src={local_dir}")),
            format!("type=local,dest={local_dir}.new"),
        ),
        CacheKind::Registry => shared(format!("type=registry,ref={repository}:buildcache-{arch}")),
        CacheKind::Gha => shared(format!("type=gha,scope={scope}")),
    };
    (from, (!read_only).then(|| format!("{to},mode=max,ignore-error=true")))
}

/// Makes a build's local cache export (`<dir>.new`) the scope's cache, deleting the previous
/// one: buildx's local exporter never removes a blob, so exporting into the imported directory
/// grows it on every build (7.4 GB for four legs, issue 15). Nothing exported: the old stays.
pub fn replace_local_cache(dir: &Path) -> Result<()> {
    let (new, old) = (dir.with_extension("new"), dir.with_extension("old"));
    if new.join("index.json").is_file() {
        let _ = std::fs::remove_dir_all(&old);
        let _ = std::fs::rename(dir, &old); // none before the first export
        std::fs::rename(&new, dir)?;
        if old.exists() {
            std::fs::remove_dir_all(&old)?;
        }
    }
    Ok(())
}

/// The gha cache backend reads `ACTIONS_RUNTIME_TOKEN` and `ACTIONS_CACHE_URL`
/// (or `ACTIONS_RESULTS_URL`, cache service v2): GitHub gives them to actions, not `run:` steps.
pub fn check_gha_env(get: impl Fn(&str) -> Option<String>) -> Result<()> {
    let has = |k: &str| get(k).is_some_and(|v| !v.is_empty());
    ensure!(
        has("ACTIONS_RUNTIME_TOKEN") && (has("ACTIONS_CACHE_URL") || has("ACTIONS_RESULTS_URL")),
        "--cache gha needs ACTIONS_RUNTIME_TOKEN and ACTIONS_CACHE_URL (or ACTIONS_RESULTS_URL) in the environment; \
         GitHub gives them only to actions: add a step `uses: crazy-max/ghaction-github-runtime` before this one, \
         or use --cache local|registry|none outside GitHub Actions"
    );
    Ok(())
}

/// Everything one `docker buildx build` call needs. `tags`: with [`Output::PushByDigest`]
/// the one repository pushed to; `build_args`: `KEY=value`; `source_date_epoch`: unix seconds,
/// the config's `created` and the binaries' dates; `context`: `docker --context NAME`.
#[derive(Clone, Debug)]
pub struct BuildSpec {
    pub component: &'static Component,
    pub platforms: Vec<&'static Platform>,
    pub output: Output,
    pub tags: Vec<String>,
    pub build_args: Vec<String>,
    pub ca_bundle: Option<PathBuf>,
    pub labels: BTreeMap<String, String>,
    pub cache: (Option<String>, Option<String>),
    pub source_date_epoch: String,
    pub progress: Progress,
    pub metadata_file: PathBuf,
    pub builder: Option<String>,
    pub context: Option<String>,
}

/// `docker buildx build`, context = the workspace root.
pub fn build_command(spec: &BuildSpec) -> Cmd {
    let platforms = spec.platforms.iter().map(|p| p.name).collect::<Vec<_>>().join(",");
    let tags = spec.tags.iter().filter(|_| spec.output != Output::PushByDigest);
    let secret = spec.ca_bundle.iter().map(|ca| format!("id=ca-bundle,src={}", ca.display()));
    let c = Cmd::new("docker").opts("--context", &spec.context).args(["buildx", "build"]);
    let c = c.opts("--builder", &spec.builder).opt("--file", spec.component.dockerfile);
    let c = c
        .opt("--platform", platforms)
        .opts("--build-arg", &spec.build_args)
        .opts("--secret", secret)
        .opts("--label", spec.labels.iter().map(|(k, v)| format!("{k}={v}")))
        .opts("--tag", tags)
        .opts("--cache-from", &spec.cache.0)
        .opts("--cache-to", &spec.cache.1)
        .opts("--provenance", (spec.output != Output::Load).then_some("mode=max"));
    let progress = if spec.progress == Progress::Plain { "plain" } else { "auto" };
    let c = c.env("SOURCE_DATE_EPOCH", &spec.source_date_epoch).opt("--progress", progress);
    let c = c.opt("--metadata-file", spec.metadata_file.display().to_string());
    let by_digest =
        |name| format!("type=image,name={name},push-by-digest=true,name-canonical=true,push=true");
    match spec.output {
        Output::Load => c.arg("--load"),
        Output::Push => c.arg("--push"),
        Output::PushByDigest => c.opt("--output", by_digest(spec.tags.join(","))),
    }
    .arg(".")
}

/// From `docker buildx inspect` and `docker info` ([`crate::preflight::builder_facts`]): the
/// driver, `driver-type io.containerd.snapshotter.v1`, the docker context to build and inspect in.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BuilderFacts {
    pub driver: String,
    pub containerd_store: bool,
    pub context: Option<String>,
}

/// Case B1: several platforms in one `--load` need an image store that keeps multi-platform
/// images; the classic store of the `docker` driver does not: refuse and name the fixes.
pub fn check_multi_platform_load(facts: &BuilderFacts, n: usize, output: Output) -> Result<()> {
    let classic = facts.driver == "docker" && !facts.containerd_store;
    ensure!(
        n <= 1 || output != Output::Load || !classic,
        "cannot --load {n} platforms at once: the builder uses the `docker` driver with the classic image store, \
             which keeps one platform per image. Build one platform per call (`--platform linux/arm64`), or `--push`, \
             or enable the containerd image store (`cargo xtask setup` sets \"features\": {{\"containerd-snapshotter\": true}} in \
             /etc/docker/daemon.json), or use a docker-container builder"
    );
    Ok(())
}

/// Case B10: a `-gnu` binary in Alpine (musl) or scratch / distroless `static` (no libc) fails
/// with `exec ...: no such file or directory`. libc from well-known names; others count as glibc.
pub fn check_libc_pairing(triple: &str, runtime_image: &str) -> Result<()> {
    let name = runtime_image.to_ascii_lowercase();
    let last = name.rsplit('/').next().unwrap_or_default();
    let libc = if name == "scratch" || last.starts_with("static") {
        "no C library"
    } else if last.starts_with("alpine") || name.contains("/alpine") || name.contains("musl") {
        "musl (no glibc)"
    } else {
        return Ok(());
    };
    ensure!(
        !triple.ends_with("-gnu"),
        "target {triple} links against glibc, but the runtime image {runtime_image} has {libc}: the binary would fail \
             with `exec ...: no such file or directory`. Use a glibc runtime (distroless cc, Debian, or the local one \
             from `cargo xtask base-images`), or build for a -musl target"
    );
    Ok(())
}

/// A Dockerfile stage for the preflight: `name` (`AS name`, else its index), `base` (`FROM` image
/// or stage, arguments substituted), `on_build` (its FROM chain reaches
/// `--platform=$BUILDPLATFORM`), `copies_from` (`COPY --from=`, `RUN --mount=...,from=`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stage {
    pub name: String,
    pub base: String,
    pub on_build: bool,
    pub runs: bool,
    pub copies_from: Vec<String>,
}

/// Parses the stages of a Dockerfile (with backslash continuations), substituting `${ARG}` in
/// `FROM` lines from the global `ARG` defaults overridden by `build_args`.
pub fn parse_stages(dockerfile: &str, build_args: &BTreeMap<String, String>) -> Vec<Stage> {
    let (mut args, mut stages) = (BTreeMap::new(), Vec::<Stage>::new());
    // Comment lines dropped, backslash continuations joined.
    let lines = dockerfile.lines().map(str::trim).filter(|l| !l.starts_with('#'));
    let instructions: String =
        lines.map(|l| l.strip_suffix('\\').map_or(format!("{l}\n"), |s| format!("{s} "))).collect();
    for instr in instructions.lines() {
        let mut words = instr.split_whitespace();
        let keyword = words.next().unwrap_or_default().to_ascii_uppercase();
        let rest: Vec<&str> = words.collect();
        match keyword.as_str() {
            "ARG" if stages.is_empty() => {
                for a in rest {
                    let (k, v) = a.split_once('=').unwrap_or((a, ""));
                    let v = build_args.get(k).map_or(v.trim_matches('"'), String::as_str);
                    args.insert(k.to_owned(), v.to_owned());
                }
            }
            "FROM" => {
                let platform = rest.iter().find_map(|w| w.strip_prefix("--platform="));
                let plain: Vec<&str> =
                    rest.iter().copied().filter(|w| !w.starts_with("--")).collect();
                let base =
                    args.iter().fold(plain.first().unwrap_or(&"").to_string(), |b, (k, v)| {
                        b.replace(&format!("${{{k}}}"), v).replace(&format!("${k}"), v)
                    });
                let name = match plain.as_slice() {
                    [_, as_kw, name, ..] if as_kw.eq_ignore_ascii_case("as") => name.to_string(),
                    _ => stages.len().to_string(),
                };
                let on_build = platform.is_some_and(|p| p.contains("BUILDPLATFORM"))
                    || stages.iter().find(|s| s.name == base).is_some_and(|s| s.on_build);
                stages.push(Stage { name, base, on_build, runs: false, copies_from: Vec::new() });
            }
            "RUN" | "COPY" => {
                let Some(stage) = stages.last_mut() else { continue };
                stage.runs |= keyword == "RUN";
                stage.copies_from.extend(rest.iter().filter_map(|w| {
                    let mount = w.strip_prefix("--mount=");
                    let from =
                        mount.and_then(|m| m.split(',').find_map(|kv| kv.strip_prefix("from=")));
                    w.strip_prefix("--from=").or(from).map(str::to_owned)
                }));
            }
            _ => {}
        }
    }
    stages
}

/// Case B2: the stages reachable from the last one that `RUN` on the target platform (no
/// `--platform=$BUILDPLATFORM`): a foreign one needs QEMU, else `exec format error`.
pub fn emulated_run_stages(stages: &[Stage]) -> Vec<String> {
    let by_name = |n: &str| -> Option<&Stage> { stages.iter().find(|s| s.name == n) };
    let (mut seen, mut todo) = (BTreeSet::new(), stages.last().into_iter().collect::<Vec<_>>());
    while let Some(stage) = todo.pop() {
        if seen.insert(stage.name.as_str()) {
            todo.extend(by_name(&stage.base));
            todo.extend(stage.copies_from.iter().filter_map(|f| by_name(f)));
        }
    }
    let hits = seen.into_iter().filter_map(by_name).filter(|s| s.runs && !s.on_build);
    hits.map(|s| s.name.clone()).collect()
}

/// One step of buildx's plain progress output: `#12 [linux/arm64 cook 4/4] RUN ...`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    pub id: u32,
    pub name: String,
    pub cached: bool,
}

/// Parses `--progress plain` output (`#N title`, `#N CACHED`, `#N DONE 1.2s`).
pub fn parse_progress(text: &str) -> Vec<Step> {
    let mut steps: Vec<Step> = Vec::new();
    let lines = text.lines().filter_map(|l| {
        let (num, tail) = l.strip_prefix('#')?.split_once(' ')?;
        Some((num.parse::<u32>().ok()?, tail.trim()))
    });
    for (id, tail) in lines {
        let cached = tail == "CACHED";
        match steps.iter_mut().find(|s| s.id == id) {
            Some(s) => s.cached |= cached,
            None => steps.push(Step { id, name: tail.to_owned(), cached }),
        }
    }
    steps
}

/// Build steps (`[stage n/m] INSTR`) reported as cached, counted once per step.
pub fn cached_steps(steps: &[Step]) -> usize {
    let build_step = |s: &&Step| s.name.starts_with('[') && !s.name.starts_with("[internal]");
    steps.iter().filter(|s| s.cached).filter(build_step).count()
}

/// The crates cargo compiled in a build's output (`Compiling serde v1.0.228`) except the
/// workspace's own (`brokkr-*`): empty after a source-only change (case B11).
pub fn dependency_crates_compiled(progress: &str) -> Vec<String> {
    let crates = progress.lines().filter_map(|l| Some(l.split_once(" Compiling ")?.1.trim()));
    let deps = crates.filter(|c| !c.starts_with("brokkr-") && !c.starts_with("xtask "));
    deps.collect::<BTreeSet<_>>().into_iter().map(str::to_owned).collect()
}

/// The error of a failed cache export in plain progress output (`#24 exporting cache to
/// registry` ... `#24 ERROR: ...`) that `ignore-error=true` made a warning (case B4).
pub fn cache_export_error(progress: &str) -> Option<String> {
    let steps = parse_progress(progress);
    steps.iter().filter(|s| s.name.starts_with("exporting cache")).find_map(|s| {
        let prefix = format!("#{} ERROR: ", s.id);
        progress.lines().find_map(|l| l.strip_prefix(&prefix)).map(str::to_owned)
    })
}

/// Whether every platform's dependency-cooking step (`cargo chef cook`) was cached.
pub fn dependency_stage_cached(steps: &[Step]) -> Option<bool> {
    let cook = |s: &&Step| s.name.contains("cargo chef cook") && !s.name.contains("--no-build");
    let mut cooks = steps.iter().filter(cook).peekable();
    cooks.peek()?;
    Some(cooks.all(|s| s.cached))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::project::{component, Platform};

    #[test]
    fn a_local_cache_export_replaces_the_previous_one() {
        let root = std::env::temp_dir().join(format!("xtask-cache-{}", std::process::id()));
        let dir = root.join("brokkr-broker-linux-arm64");
        let write = |d: &std::path::Path, blob: &str| {
            std::fs::create_dir_all(d.join("blobs")).unwrap();
            std::fs::write(d.join("index.json"), "{}").unwrap();
            std::fs::write(d.join("blobs").join(blob), blob).unwrap();
        };
        write(&dir, "old");
        replace_local_cache(&dir).unwrap(); // nothing exported: kept
        assert!(dir.join("blobs/old").is_file());
        write(&dir.with_extension("new"), "new");
        replace_local_cache(&dir).unwrap();
        let names: Vec<_> =
            std::fs::read_dir(&root).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["brokkr-broker-linux-arm64"]);
        assert!(dir.join("blobs/new").is_file() && !dir.join("blobs/old").exists());
        std::fs::remove_dir_all(&root).unwrap();
    }

    fn arm64() -> &'static Platform {
        Platform::parse("arm64").unwrap()
    }

    #[test]
    fn b3_every_leg_has_its_own_scope() {
        let mut scopes = Vec::new();
        for c in crate::project::COMPONENTS {
            for p in crate::project::PLATFORMS {
                let (from, to) =
                    cache_args(CacheKind::Gha, &cache_scope(c, &[p]), p, "r", "d".as_ref(), false);
                let scope = cache_scope(c, &[p]);
                assert!(from.unwrap().contains(&format!("scope={scope}")));
                assert!(to.unwrap().contains(&format!("scope={scope}")));
                scopes.push(scope);
            }
        }
        assert!(scopes.contains(&"brokkr-broker-linux-arm64".to_owned()));
        let all: Vec<&Platform> = crate::project::PLATFORMS.iter().collect();
        let broker = crate::project::component("broker").unwrap();
        assert_eq!(cache_scope(broker, &all), "brokkr-broker-linux-amd64-linux-arm64");
        let mut dedup = scopes.clone();
        dedup.dedup();
        assert_eq!(dedup.len(), 4);
    }

    #[test]
    fn b4_cache_export_errors_are_ignored() {
        let repo = "localhost:5000/brokkr-broker";
        let c = std::env::temp_dir().join(format!("xtask-cache-args-{}", std::process::id()));
        std::fs::create_dir_all(&c).unwrap();
        std::fs::write(c.join("index.json"), "{}").unwrap();
        for kind in [CacheKind::Local, CacheKind::Registry, CacheKind::Gha] {
            let (_, to) = cache_args(kind, "s", arm64(), repo, &c, false);
            let to = to.unwrap();
            assert!(to.ends_with("mode=max,ignore-error=true"), "{kind:?}: {to}");
            let (from, to) = cache_args(kind, "s", arm64(), repo, &c, true);
            assert!(from.is_some() && to.is_none(), "{kind:?} read-only exports nothing");
        }
        assert_eq!(cache_args(CacheKind::None, "s", arm64(), "r", &c, false), (None, None));
        std::fs::remove_dir_all(&c).unwrap();
        let (from, _) = cache_args(CacheKind::Local, "s", arm64(), "r", &c, false);
        assert_eq!(from, None, "no import from an empty local cache");
        let (from, to) = cache_args(CacheKind::Registry, "s", arm64(), repo, "d".as_ref(), false);
        assert_eq!(
            from.unwrap(),
            "type=registry,ref=localhost:5000/brokkr-broker:buildcache-arm64"
        );
        assert!(to
            .unwrap()
            .starts_with("type=registry,ref=localhost:5000/brokkr-broker:buildcache-arm64,"));
    }

    #[test]
    fn gha_needs_the_runtime_token() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
        };
        assert!(check_gha_env(env(&[]))
            .unwrap_err()
            .to_string()
            .contains("crazy-max/ghaction-github-runtime"));
        assert!(check_gha_env(env(&[("ACTIONS_RUNTIME_TOKEN", "t")])).is_err());
        assert!(check_gha_env(env(&[("ACTIONS_RUNTIME_TOKEN", "t"), ("ACTIONS_CACHE_URL", "u")]))
            .is_ok());
        assert!(check_gha_env(env(&[
            ("ACTIONS_RUNTIME_TOKEN", "t"),
            ("ACTIONS_RESULTS_URL", "u")
        ]))
        .is_ok());
    }

    #[test]
    fn b1_multi_platform_load_needs_containerd_store() {
        let classic =
            BuilderFacts { driver: "docker".into(), containerd_store: false, context: None };
        let containerd =
            BuilderFacts { driver: "docker".into(), containerd_store: true, context: None };
        let container = BuilderFacts {
            driver: "docker-container".into(),
            containerd_store: false,
            context: None,
        };
        let err = check_multi_platform_load(&classic, 2, Output::Load).unwrap_err().to_string();
        for fix in ["one platform", "--push", "containerd", "docker-container"] {
            assert!(err.contains(fix), "missing fix `{fix}`: {err}");
        }
        assert!(check_multi_platform_load(&classic, 1, Output::Load).is_ok());
        assert!(check_multi_platform_load(&classic, 2, Output::Push).is_ok());
        assert!(check_multi_platform_load(&containerd, 2, Output::Load).is_ok());
        assert!(check_multi_platform_load(&container, 2, Output::Push).is_ok());
    }

    #[test]
    fn b10_libc_pairing() {
        let cases = [
            ("aarch64-unknown-linux-gnu", "gcr.io/distroless/cc-debian12:nonroot", true),
            ("aarch64-unknown-linux-gnu", "brokkr.local/base/runtime:abc", true),
            ("aarch64-unknown-linux-gnu", "debian:bookworm-slim", true),
            ("aarch64-unknown-linux-gnu", "alpine:3.20", false),
            ("x86_64-unknown-linux-gnu", "docker.io/library/alpine", false),
            ("x86_64-unknown-linux-gnu", "scratch", false),
            ("x86_64-unknown-linux-gnu", "gcr.io/distroless/static-debian12", false),
            ("x86_64-unknown-linux-musl", "scratch", true),
            ("x86_64-unknown-linux-musl", "alpine:3.20", true),
        ];
        for (triple, image, ok) in cases {
            let r = check_libc_pairing(triple, image);
            assert_eq!(r.is_ok(), ok, "{triple} on {image}: {r:?}");
            if let Err(e) = r {
                let e = e.to_string();
                assert!(e.contains(triple) && e.contains(image), "{e}");
            }
        }
    }

    fn our_dockerfile() -> String {
        std::fs::read_to_string(crate::project_root().join("Dockerfile.broker")).unwrap()
    }

    #[test]
    fn b2_cross_runs_nothing_on_the_target_platform() {
        let stages = parse_stages(&our_dockerfile(), &BTreeMap::new());
        assert!(
            stages.iter().any(|s| s.name == "cook" && s.base == "compiler-cross"),
            "{stages:#?}"
        );
        assert_eq!(emulated_run_stages(&stages), Vec::<String>::new());
    }

    #[test]
    fn b2_emulate_runs_rustc_on_the_target_platform() {
        let args = BTreeMap::from([("STRATEGY".to_owned(), "emulate".to_owned())]);
        let stages = parse_stages(&our_dockerfile(), &args);
        assert_eq!(emulated_run_stages(&stages), vec!["build", "compiler-emulate", "cook"]);
    }

    #[test]
    fn b2_a_plain_dockerfile_with_run() {
        let df = "FROM debian\nRUN apt-get update\nFROM --platform=$BUILDPLATFORM rust AS b\nRUN cargo build\nFROM scratch\nCOPY --from=b /x /x\n";
        let stages = parse_stages(df, &BTreeMap::new());
        assert_eq!(emulated_run_stages(&stages), Vec::<String>::new(), "stage 0 is not reachable");
        let df = "FROM debian AS base\nRUN apt-get update\nFROM base\nCOPY x y\n";
        assert_eq!(emulated_run_stages(&parse_stages(df, &BTreeMap::new())), vec!["base"]);
    }

    #[test]
    fn command_line() {
        let spec = BuildSpec {
            component: component("broker").unwrap(),
            platforms: vec![arm64()],
            output: Output::Push,
            tags: vec!["localhost:5000/brokkr-broker:sha-abc1234-arm64".into()],
            build_args: [
                "STRATEGY=cross",
                "RUST_IMAGE=r",
                "RUNTIME_IMAGE=rt",
                "BROKKR_GIT_COMMIT=abc",
            ]
            .map(String::from)
            .to_vec(),
            ca_bundle: Some("/etc/ssl/certs/ca-certificates.crt".into()),
            labels: BTreeMap::from([(
                "org.opencontainers.image.title".into(),
                "brokkr-broker".into(),
            )]),
            cache: cache_args(
                CacheKind::Gha,
                "brokkr-broker-linux-arm64",
                arm64(),
                "",
                "".as_ref(),
                false,
            ),
            source_date_epoch: "1700000000".into(),
            progress: Progress::Plain,
            metadata_file: "target/m.json".into(),
            builder: None,
            context: None,
        };
        assert_eq!(
            build_command(&spec).to_string(),
            "SOURCE_DATE_EPOCH=1700000000 docker buildx build --file Dockerfile.broker --platform linux/arm64 --build-arg STRATEGY=cross \
             --build-arg RUST_IMAGE=r --build-arg RUNTIME_IMAGE=rt --build-arg BROKKR_GIT_COMMIT=abc \
             --secret id=ca-bundle,src=/etc/ssl/certs/ca-certificates.crt \
             --label org.opencontainers.image.title=brokkr-broker \
             --tag localhost:5000/brokkr-broker:sha-abc1234-arm64 \
             --cache-from type=gha,scope=brokkr-broker-linux-arm64 \
             --cache-to type=gha,scope=brokkr-broker-linux-arm64,mode=max,ignore-error=true \
             --provenance mode=max --progress plain --metadata-file target/m.json --push ."
        );
        let by_digest = BuildSpec {
            output: Output::PushByDigest,
            tags: vec!["localhost:5000/brokkr-broker".into()],
            cache: (None, None),
            ..spec.clone()
        };
        let line = build_command(&by_digest).to_string();
        assert!(!line.contains("--tag") && !line.contains("--push "), "{line}");
        assert!(line.ends_with(
            "--provenance mode=max --progress plain --metadata-file target/m.json --output \
             type=image,name=localhost:5000/brokkr-broker,push-by-digest=true,name-canonical=true,push=true ."
        ), "{line}");
        let load = BuildSpec { output: Output::Load, ..spec };
        assert!(!build_command(&load).to_string().contains("--provenance"));
        for (driver, ok) in
            [("docker", false), ("docker-container", true), ("remote", true), ("kubernetes", true)]
        {
            assert_eq!(can_push_by_digest(driver), ok, "{driver}");
        }
    }

    #[test]
    fn b4_a_failed_cache_export_is_reported() {
        let export = "#24 exporting cache to registry\n#24 preparing build cache for export\n\
#24 ERROR: error writing layer blob: 401 Unauthorized\n#25 exporting to image\n#25 DONE 0.1s\n";
        assert_eq!(
            cache_export_error(export).as_deref(),
            Some("error writing layer blob: 401 Unauthorized")
        );
        assert_eq!(
            cache_export_error("#24 exporting cache to registry\n#24 DONE 1.0s\n#3 ERROR: other\n"),
            None
        );
    }

    #[test]
    fn b11_dependency_crates_compiled() {
        let log = "#14 0.5    Compiling brokkr-broker v0.1.0 (/src/broker)\n#9 1.2    Compiling serde v1.0.228\n\
#10 1.2    Compiling serde v1.0.228\n#9 2.0    Compiling xtask v0.1.0 (/src/xtask)\n";
        assert_eq!(dependency_crates_compiled(log), vec!["serde v1.0.228"]);
        assert!(dependency_crates_compiled("#14 0.5    Compiling brokkr-agent v0.1.0\n").is_empty());
    }

    #[test]
    fn progress_parsing() {
        let text = "#0 building with \"default\" instance using docker driver\n\
#1 [internal] load build definition from Dockerfile.broker\n#1 DONE 0.0s\n\
#12 [linux/arm64 cook 4/4] RUN . /usr/local/share/brokkr/cargo-env.sh     && cargo chef cook $BROKKR_CARGO_ARGS --target \"$RUST_TARGET\" --recipe-path recipe.json\n\
#12 CACHED\n\
#13 [linux/arm64 build 1/2] COPY . .\n#13 DONE 0.1s\n\
#14 [linux/arm64 build 2/2] RUN . /usr/local/share/brokkr/cargo-env.sh && cargo build\n#14 0.5 Compiling brokkr-broker\n#14 DONE 20.0s\n";
        let steps = parse_progress(text);
        assert_eq!(steps.len(), 5);
        assert_eq!(cached_steps(&steps), 1);
        assert_eq!(dependency_stage_cached(&steps), Some(true));
        assert_eq!(dependency_stage_cached(&parse_progress("#1 [x] RUN true\n")), None);
    }
}
