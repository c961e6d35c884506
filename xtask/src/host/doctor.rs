//! `cargo xtask doctor`: one line per check of what building brokkr's images
//! needs on this host, each with its status and the exact command that
//! fixes it. [`preflight`] is the subset a build needs, for the image commands.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use clap::Args;
use serde::Serialize;
use xshell::Shell;

use super::{
    foreign, human_bytes, probe, registry, BinfmtStatus, Builder, DockerInfo, ImageStore, Version,
    MIN_BUILDX, MIN_ENGINE, MIN_FREE_DISK,
};
use crate::{
    project::LOCAL_BASE_PREFIX as LOCAL_PREFIX,
    project::{parse_platform_list, Platform, PlatformList},
};

/// Options of `doctor`.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Platforms to check for (comma-separated, or `all`); default: the host's.
    #[arg(long, value_parser = parse_platform_list)]
    pub platform: Option<PlatformList>,
    /// Print a JSON array of {name, status, detail, remedy} instead of lines.
    #[arg(long)]
    pub json: bool,
}

/// The local base images `cargo xtask base-images` makes, as repository
/// names under [`LOCAL_PREFIX`] (`brokkr.local/base/<name>:<tag>`).
pub const LOCAL_BASE_IMAGES: &[&str] = &["rust-builder", "runtime", "debian"];

/// How a check came out: `Warn` is missing or odd but not needed for the
/// requested platforms; `Fail` is needed and missing (`doctor` exits
/// non-zero); `Skip` does not apply here.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warn,
    Fail,
    Skip,
}

/// One line of `doctor`: `--json` prints these as an array of
/// `{"name", "status": "ok|warn|fail|skip", "detail", "remedy": string|null}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Check {
    /// `engine`, `binfmt linux/arm64`.
    pub name: String,
    pub status: Status,
    /// What was found.
    pub detail: String,
    /// The exact command that fixes it, when not ok.
    pub remedy: Option<String>,
}

impl Check {
    fn new(name: &str, status: Status, detail: impl Into<String>, remedy: Option<String>) -> Check {
        let (name, detail) = (name.to_owned(), detail.into());
        Check {
            name,
            status,
            detail,
            remedy,
        }
    }
    fn ok(name: &str, detail: impl Into<String>) -> Check {
        Check::new(name, Status::Ok, detail, None)
    }
    fn fail(name: &str, detail: impl Into<String>, remedy: impl Into<String>) -> Check {
        Check::new(name, Status::Fail, detail, Some(remedy.into()))
    }
    fn warn(name: &str, detail: impl Into<String>, remedy: impl Into<String>) -> Check {
        Check::new(name, Status::Warn, detail, Some(remedy.into()))
    }
    fn skip(name: &str, detail: impl Into<String>) -> Check {
        Check::new(name, Status::Skip, detail, None)
    }
}

/// Whether no check failed (warnings and skips pass).
pub fn passed(checks: &[Check]) -> bool {
    checks.iter().all(|c| c.status != Status::Fail)
}

/// The checks as aligned lines: `STATUS  NAME  DETAIL[  -> fix: REMEDY]`.
pub fn render(checks: &[Check]) -> String {
    let width = checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
    let mut out = String::new();
    for c in checks {
        let label = match c.status {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
            Status::Skip => "skip",
        };
        out.push_str(&format!("{label:<4}  {:<width$}  {}", c.name, c.detail));
        if let Some(r) = &c.remedy {
            out.push_str(&format!("  -> fix: {r}"));
        }
        out.push('\n');
    }
    out
}

/// The failing checks and their remedies, for an error message.
pub fn failures(checks: &[Check]) -> String {
    let line = |c: &Check| match &c.remedy {
        Some(r) => format!("{}: {} (fix: {r})", c.name, c.detail),
        None => format!("{}: {}", c.name, c.detail),
    };
    let failed = checks.iter().filter(|c| c.status == Status::Fail);
    failed.map(line).collect::<Vec<_>>().join("\n")
}

/// `cargo xtask setup [--platform A,B]`: the remedy naming the platforms asked for.
pub fn setup_remedy(platforms: &[&Platform]) -> String {
    if platforms.is_empty() {
        return "cargo xtask setup".to_owned();
    }
    let list: Vec<&str> = platforms.iter().map(|p| p.name).collect();
    format!("cargo xtask setup --platform {}", list.join(","))
}

/// The docker CLI: found on `PATH`, with its version.
pub fn check_cli(path: Option<&Path>, version: Option<&str>, remedy: &str) -> Check {
    match path {
        Some(p) => Check::ok(
            "docker-cli",
            format!(
                "{} at {}",
                version.unwrap_or("version unknown"),
                p.display()
            ),
        ),
        None => Check::fail("docker-cli", "`docker` is not on PATH", remedy),
    }
}

/// The engine: answers, version >= [`MIN_ENGINE`]. With `docker_host` (a
/// `DOCKER_HOST` other than the local socket) a silent engine is reported
/// as that address not answering, not as a local engine to start.
pub fn check_engine(
    info: &Result<DockerInfo, String>,
    docker_host: Option<&str>,
    remedy: &str,
) -> Check {
    match (info, docker_host) {
        (Err(e), _) if e.to_ascii_lowercase().contains("permission denied") => Check::fail(
            "engine",
            format!("not reachable: {e}"),
            "run as root, or add the user to the `docker` group: usermod -aG docker $USER (then log in again)",
        ),
        (Err(e), Some(h)) => Check::fail(
            "engine",
            format!("DOCKER_HOST={h} does not answer: {e}"),
            format!("start the engine at {h}, or unset DOCKER_HOST to use this machine's (then {remedy})"),
        ),
        (Err(e), None) => Check::fail("engine", format!("not reachable: {e}"), remedy),
        (Ok(i), _) if i.version().is_some_and(|v| v >= MIN_ENGINE) => Check::ok(
            "engine",
            format!("{} ({}, root {})", i.server_version, i.architecture, i.docker_root_dir),
        ),
        (Ok(i), _) => Check::fail(
            "engine",
            format!("{} is older than {MIN_ENGINE} (no containerd image store)", i.server_version),
            remedy,
        ),
    }
}

/// The image store: containerd is needed with the `docker` driver
/// (multi-platform `--load`, cache export); with other drivers a classic
/// store only warns.
pub fn check_store(
    info: &Result<DockerInfo, String>,
    builder: Option<&Builder>,
    remedy: &str,
) -> Check {
    let Ok(i) = info else {
        return Check::fail(
            "image-store",
            "unknown: the engine is not reachable",
            remedy,
        );
    };
    match i.store() {
        ImageStore::Containerd(s) => {
            Check::ok("image-store", format!("containerd (snapshotter {s})"))
        }
        ImageStore::Classic(d) => {
            let detail = format!(
                "classic ({d}): no multi-platform --load, no cache export with the docker driver; \
                 needs \"features\": {{\"containerd-snapshotter\": true}} in /etc/docker/daemon.json \
                 and an engine restart"
            );
            if builder.is_some_and(|b| b.driver != "docker") {
                Check::warn("image-store", detail, remedy)
            } else {
                Check::fail("image-store", detail, remedy)
            }
        }
    }
}

/// The default bridge (issue 15): an engine that uses the default bridge
/// network needs its interface (`docker0`), or every `RUN` step and `docker
/// run` fails. `bridge` is [`probe::default_bridge`]; `exists` looks the
/// interface up on this host. Skipped for an engine elsewhere (`remote`).
pub fn check_bridge(
    bridge: &Result<Option<String>, String>,
    remote: bool,
    exists: impl Fn(&str) -> bool,
) -> Check {
    match bridge {
        _ if remote => Check::skip("bridge", "the engine runs elsewhere (DOCKER_HOST)"),
        Err(e) => Check::skip("bridge", format!("not checked: {e}")),
        Ok(None) => Check::skip("bridge", "the engine has no default bridge network (--bridge none)"),
        Ok(Some(name)) if exists(name) => Check::ok("bridge", format!("default bridge {name} is up")),
        Ok(Some(name)) => Check::fail(
            "bridge",
            format!("the engine's default bridge {name} is missing: every RUN step and `docker run` fails"),
            format!("restart the engine, which recreates {name}: cargo xtask setup (it asks for --yes when containers run)"),
        ),
    }
}

/// buildx: present, version >= [`MIN_BUILDX`].
pub fn check_buildx(version: Option<Version>, remedy: &str) -> Check {
    match version {
        Some(v) if v >= MIN_BUILDX => Check::ok("buildx", v.to_string()),
        Some(v) => Check::fail("buildx", format!("{v} is older than {MIN_BUILDX}"), remedy),
        None => Check::fail("buildx", "the docker buildx plugin is missing", remedy),
    }
}

/// The current builder: running, and listing every requested platform.
pub fn check_builder(
    builder: &Result<Builder, String>,
    platforms: &[&Platform],
    remedy: &str,
) -> Check {
    let b = match builder {
        Ok(b) => b,
        Err(e) => {
            return Check::fail(
                "builder",
                format!("`docker buildx inspect` failed: {e}"),
                remedy,
            )
        }
    };
    let kit = if b.buildkit.is_empty() {
        "?"
    } else {
        &b.buildkit
    };
    let what = format!("{} ({} driver, BuildKit {kit})", b.name, b.driver);
    if b.status != "running" {
        let state = if b.status.is_empty() {
            "in an unknown state"
        } else {
            &b.status
        };
        return Check::warn(
            "builder",
            format!("{what} is {state}: its platforms are known once it runs"),
            "docker buildx inspect --bootstrap",
        );
    }
    let missing: Vec<&str> = platforms
        .iter()
        .filter(|p| !b.supports(p))
        .map(|p| p.name)
        .collect();
    let has = b.platforms.join(", ");
    if missing.is_empty() {
        Check::ok("builder", format!("{what}: {has}"))
    } else {
        Check::fail(
            "builder",
            format!("{what} lacks {} (has {has})", missing.join(", ")),
            remedy,
        )
    }
}

/// A binfmt handler for one requested platform: none needed for the host's
/// own; a foreign one needs an enabled handler with the `F` flag.
pub fn check_binfmt(probe: Option<&probe::BinfmtProbe>, p: &Platform, remedy: &str) -> Check {
    let name = format!("binfmt {}", p.name);
    let Some(probe) = probe else {
        return Check::ok(&name, "native: no emulation needed");
    };
    if !probe.mounted {
        return Check::fail(
            &name,
            format!("{} is not mounted", super::BINFMT_DIR),
            remedy,
        );
    }
    let entry = &probe.entry_name;
    match probe.status() {
        BinfmtStatus::Ready => {
            let e = probe.entry.clone().unwrap_or_default();
            Check::ok(
                &name,
                format!("{entry}: {} (flags {})", e.interpreter, e.flags),
            )
        }
        BinfmtStatus::Stale {
            registered,
            installed,
        } => Check::warn(
            &name,
            format!("{entry} registers {registered}, but the installed handler is {installed}"),
            remedy,
        ),
        BinfmtStatus::Unusable(why) => Check::fail(&name, format!("{entry}: {why}"), remedy),
        BinfmtStatus::Missing => {
            Check::fail(&name, format!("no {entry} handler registered"), remedy)
        }
    }
}

/// The loopback registry (`localhost:5000`), the default push target
/// outside CI: a warning when it does not answer `GET /v2/` with 200.
pub fn check_registry(api_status: Option<u16>, ci: bool) -> Check {
    let host = registry::Kind::Open.host();
    match api_status {
        _ if ci => Check::skip(
            "registry",
            format!("GitHub Actions pushes to ghcr.io, not {host}"),
        ),
        Some(200) => Check::ok("registry", format!("{host} answers GET /v2/ (200)")),
        Some(code) => Check::warn(
            "registry",
            format!("{host} answers GET /v2/ with {code}, not 200: not an open registry"),
            "cargo xtask registry stop && cargo xtask registry start",
        ),
        None => Check::warn(
            "registry",
            format!("nothing answers on {host}"),
            "cargo xtask registry start",
        ),
    }
}

/// The local base-image substitutes ([`LOCAL_BASE_IMAGES`]): a warning when some are missing.
pub fn check_local_bases(images: &Result<Vec<String>, String>) -> Check {
    let fix = "cargo xtask base-images";
    let images = match images {
        Ok(i) => i,
        Err(e) => return Check::warn("base-images", format!("cannot list images: {e}"), fix),
    };
    let has = |name: &str| {
        let repo = format!("{LOCAL_PREFIX}/{name}");
        images
            .iter()
            .any(|i| i.split_once(':').map_or(i.as_str(), |(r, _)| r) == repo)
    };
    let missing: Vec<&str> = LOCAL_BASE_IMAGES
        .iter()
        .copied()
        .filter(|n| !has(n))
        .collect();
    if missing.is_empty() {
        Check::ok(
            "base-images",
            format!("local substitutes present: {}", images.join(", ")),
        )
    } else {
        let detail = format!(
            "local substitutes missing: {} (under {LOCAL_PREFIX}/)",
            missing.join(", ")
        );
        Check::warn("base-images", detail, fix)
    }
}

/// Free space on the engine's root directory: a warning below [`MIN_FREE_DISK`].
pub fn check_disk(path: &Path, avail: Option<u64>) -> Check {
    let at = path.display();
    match avail {
        Some(n) if n >= MIN_FREE_DISK => {
            Check::ok("disk", format!("{} free on {at}", human_bytes(n)))
        }
        Some(n) => Check::warn(
            "disk",
            format!(
                "{} free on {at}, less than {}",
                human_bytes(n),
                human_bytes(MIN_FREE_DISK)
            ),
            "docker system prune --filter until=168h",
        ),
        None => Check::warn("disk", format!("`df {at}` failed"), "df -h"),
    }
}

/// The checks a build needs for `platforms`: docker CLI, engine, image
/// store, default bridge, buildx, builder platforms, and a binfmt handler
/// for every foreign platform. Probes run quietly; a missing tool is a
/// failed check, not an error (errors are reserved for xtask's own faults).
pub fn preflight(sh: &Shell, platforms: &[&'static Platform]) -> Result<Vec<Check>> {
    Ok(preflight_with_info(sh, platforms)?.0)
}

/// [`preflight`], also returning the engine info it read (for `doctor`'s disk check).
fn preflight_with_info(
    sh: &Shell,
    platforms: &[&'static Platform],
) -> Result<(Vec<Check>, Result<DockerInfo, String>)> {
    let host = Platform::host()?;
    let remedy = setup_remedy(platforms);
    let cli = probe::docker_cli();
    let version = cli.as_ref().and_then(|_| probe::docker_client_version(sh));
    let info = match cli {
        Some(_) => probe::docker_info(sh),
        None => Err("no docker CLI".to_owned()),
    };
    let buildx = cli.as_ref().and_then(|_| probe::buildx_version(sh));
    let builder = match (&info, &buildx) {
        (Ok(_), Some(_)) => probe::builder(sh),
        (Err(_), _) => Err("the engine is not reachable".to_owned()),
        (_, None) => Err("no buildx".to_owned()),
    };
    let bridge = match &info {
        Ok(_) => probe::default_bridge(sh),
        Err(_) => Err("the engine is not reachable".to_owned()),
    };
    let docker_host = probe::docker_host();
    let mut checks = vec![
        check_cli(cli.as_deref(), version.as_deref(), &remedy),
        check_engine(&info, docker_host.as_deref(), &remedy),
        check_store(&info, builder.as_ref().ok(), &remedy),
        check_bridge(&bridge, docker_host.is_some(), probe::interface_exists),
        check_buildx(buildx, &remedy),
        check_builder(&builder, platforms, &remedy),
    ];
    let foreign = foreign(host, platforms);
    for p in platforms {
        let probe = foreign.contains(p).then(|| probe::binfmt(p));
        checks.push(check_binfmt(probe.as_ref(), p, &remedy));
    }
    Ok((checks, info))
}

/// `cargo xtask doctor`: prints every check (aligned lines, or a JSON array
/// with `--json`) and fails when a needed one fails. Platforms default to the host's.
pub fn run(sh: &Shell, args: DoctorArgs) -> Result<()> {
    let platforms = PlatformList::or_host(args.platform)?;
    let (mut checks, info) = preflight_with_info(sh, &platforms)?;
    checks.push(check_registry(
        probe::registry_api_status(registry::Kind::Open.port()),
        probe::github_actions(),
    ));
    checks.push(match &info {
        Ok(_) => check_local_bases(&probe::images_with_prefix(sh, &format!("{LOCAL_PREFIX}/"))),
        Err(_) => Check::skip("base-images", "the engine is not reachable"),
    });
    checks.push(Check::skip(
        "base-upstream",
        "pullability of upstream bases is not probed here: `cargo xtask base-images` decides upstream vs local",
    ));
    let root = match &info {
        Ok(i) if !i.docker_root_dir.is_empty() => PathBuf::from(&i.docker_root_dir),
        _ if Path::new("/var/lib/docker").is_dir() => PathBuf::from("/var/lib/docker"),
        _ => PathBuf::from("/"),
    };
    checks.push(check_disk(&root, probe::df_avail(sh, &root)));
    if args.json {
        println!("{}", serde_json::to_string_pretty(&checks)?);
    } else {
        print!("{}", render(&checks));
    }
    if !passed(&checks) {
        let failed = checks.iter().filter(|c| c.status == Status::Fail).count();
        let names: Vec<&str> = platforms.iter().map(|p| p.name).collect();
        bail!("{failed} needed check(s) failed for {}", names.join(", "));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::{probe::BinfmtProbe, BinfmtEntry, BinfmtHandler};

    fn info(json: &str) -> Result<DockerInfo, String> {
        Ok(DockerInfo::parse(json).unwrap())
    }

    const CONTAINERD: &str = include_str!("fixtures/docker-info-containerd.json");
    const CLASSIC: &str = include_str!("fixtures/docker-info-classic-overlay2.json");
    const OLD: &str = include_str!("fixtures/docker-info-bookworm-20.10.json");

    #[test]
    fn host_doctor_engine_and_store() {
        let r = "cargo xtask setup";
        let default = Builder::parse(include_str!("fixtures/buildx-inspect-default.txt")).unwrap();
        let container = Builder::parse(include_str!(
            "fixtures/buildx-inspect-container-amd64-only.txt"
        ))
        .unwrap();
        let cases: Vec<(&str, Check, Status, &str)> = vec![
            (
                "recorded engine",
                check_engine(&info(CONTAINERD), None, r),
                Status::Ok,
                "26.1.5+dfsg1 (x86_64",
            ),
            (
                "old engine",
                check_engine(&info(OLD), None, r),
                Status::Fail,
                "older than 24.0.0",
            ),
            (
                "down",
                check_engine(&Err("Cannot connect".into()), None, r),
                Status::Fail,
                "not reachable: Cannot connect",
            ),
            (
                "DOCKER_HOST that does not answer",
                check_engine(
                    &Err("Cannot connect to the Docker daemon at tcp://10.9.9.9:2375".into()),
                    Some("tcp://10.9.9.9:2375"),
                    r,
                ),
                Status::Fail,
                "DOCKER_HOST=tcp://10.9.9.9:2375 does not answer",
            ),
            (
                "containerd store",
                check_store(&info(CONTAINERD), Some(&default), r),
                Status::Ok,
                "containerd (snapshotter overlayfs)",
            ),
            (
                "classic + docker driver",
                check_store(&info(CLASSIC), Some(&default), r),
                Status::Fail,
                "classic (overlay2)",
            ),
            (
                "classic + container driver",
                check_store(&info(CLASSIC), Some(&container), r),
                Status::Warn,
                "classic",
            ),
            (
                "store unknown",
                check_store(&Err("x".into()), None, r),
                Status::Fail,
                "unknown",
            ),
            (
                "buildx ok",
                check_buildx(Some(Version::new(0, 13, 1)), r),
                Status::Ok,
                "0.13.1",
            ),
            (
                "buildx old",
                check_buildx(Some(Version::new(0, 8, 2)), r),
                Status::Fail,
                "older than 0.10.0",
            ),
            ("no buildx", check_buildx(None, r), Status::Fail, "missing"),
            (
                "no cli",
                check_cli(None, None, r),
                Status::Fail,
                "not on PATH",
            ),
        ];
        for (name, c, status, detail) in cases {
            assert_eq!(c.status, status, "{name}: {c:?}");
            assert!(
                c.detail.contains(detail),
                "{name}: {:?} lacks {detail:?}",
                c.detail
            );
            assert_eq!(c.remedy.is_some(), status != Status::Ok, "{name}");
        }
    }

    #[test]
    fn host_doctor_default_bridge() {
        let up = |n: &str| n == "docker0";
        let none = |_: &str| false;
        let cases: Vec<(&str, Check, Status, &str)> = vec![
            (
                "docker0 up",
                check_bridge(&Ok(Some("docker0".into())), false, up),
                Status::Ok,
                "docker0 is up",
            ),
            (
                "docker0 deleted by a second engine's --bridge none",
                check_bridge(&Ok(Some("docker0".into())), false, none),
                Status::Fail,
                "default bridge docker0 is missing: every RUN step",
            ),
            (
                "engine without bridge",
                check_bridge(&Ok(None), false, none),
                Status::Skip,
                "--bridge none",
            ),
            (
                "remote engine",
                check_bridge(&Ok(Some("docker0".into())), true, none),
                Status::Skip,
                "elsewhere",
            ),
            (
                "engine down",
                check_bridge(&Err("down".into()), false, none),
                Status::Skip,
                "down",
            ),
        ];
        for (name, c, status, detail) in cases {
            assert_eq!(c.status, status, "{name}: {c:?}");
            assert!(
                c.detail.contains(detail),
                "{name}: {:?} lacks {detail:?}",
                c.detail
            );
        }
        let fail = check_bridge(&Ok(Some("docker0".into())), false, none);
        assert!(fail.remedy.unwrap().contains("cargo xtask setup"));
        assert_eq!(
            crate::host::BridgeOptions::interface(
                r#"{"com.docker.network.bridge.default_bridge":"true","com.docker.network.bridge.name":"docker0"}"#
            )
            .unwrap(),
            "docker0"
        );
        assert_eq!(
            crate::host::BridgeOptions::interface("{}").unwrap(),
            "docker0"
        );
        assert_eq!(
            crate::host::BridgeOptions::interface(r#"{"com.docker.network.bridge.name":"br-x"}"#)
                .unwrap(),
            "br-x"
        );
    }

    #[test]
    fn host_doctor_builder_platforms() {
        let amd = Platform::parse("amd64").unwrap();
        let arm = Platform::parse("arm64").unwrap();
        let both = [amd, arm];
        let remedy = setup_remedy(&both);
        assert_eq!(
            remedy,
            "cargo xtask setup --platform linux/amd64,linux/arm64"
        );
        let parse = |t: &str| Builder::parse(t).map_err(|e| e.to_string());
        let default = parse(include_str!("fixtures/buildx-inspect-default.txt"));
        let no_arm = parse(include_str!(
            "fixtures/buildx-inspect-container-amd64-only.txt"
        ));
        let inactive = parse(include_str!("fixtures/buildx-inspect-inactive.txt"));
        let cases: Vec<(&str, Check, Status, &str)> = vec![
            (
                "recorded, both",
                check_builder(&default, &both, &remedy),
                Status::Ok,
                "default (docker driver, BuildKit v0.0.0+unknown)",
            ),
            (
                "no arm64, both wanted",
                check_builder(&no_arm, &both, &remedy),
                Status::Fail,
                "lacks linux/arm64",
            ),
            (
                "no arm64, amd64 wanted",
                check_builder(&no_arm, &[amd], &remedy),
                Status::Ok,
                "linux/386",
            ),
            (
                "inactive",
                check_builder(&inactive, &both, &remedy),
                Status::Warn,
                "inactive",
            ),
            (
                "error",
                check_builder(&Err("no builder".into()), &both, &remedy),
                Status::Fail,
                "no builder",
            ),
        ];
        for (name, c, status, detail) in cases {
            assert_eq!(c.status, status, "{name}: {c:?}");
            assert!(
                c.detail.contains(detail),
                "{name}: {:?} lacks {detail:?}",
                c.detail
            );
        }
    }

    #[test]
    fn host_doctor_binfmt() {
        let arm: &'static Platform = Platform::parse("arm64").unwrap();
        let h10 =
            BinfmtHandler::parse(include_str!("fixtures/binfmt-d-qemu-aarch64-10.conf")).unwrap();
        let e10 = BinfmtEntry::parse(include_str!("fixtures/binfmt-qemu-aarch64-10.txt"));
        let probe = |mounted: bool, entry: Option<BinfmtEntry>| BinfmtProbe {
            platform: arm,
            mounted,
            handler: Some(("/usr/lib/binfmt.d/qemu-aarch64.conf".into(), h10.clone())),
            entry_name: "qemu-aarch64".into(),
            entry,
        };
        let old = BinfmtEntry {
            flags: "PO".into(),
            ..e10.clone()
        };
        let stale = BinfmtEntry {
            interpreter: "/usr/bin/qemu-aarch64-static".into(),
            flags: "PF".into(),
            enabled: true,
        };
        let r = "cargo xtask setup --platform linux/arm64";
        let cases: Vec<(&str, Check, Status, &str)> = vec![
            ("native", check_binfmt(None, arm, r), Status::Ok, "native"),
            (
                "recorded",
                check_binfmt(Some(&probe(true, Some(e10.clone()))), arm, r),
                Status::Ok,
                "aarch64-binfmt-P (flags POF)",
            ),
            (
                "unmounted",
                check_binfmt(Some(&probe(false, None)), arm, r),
                Status::Fail,
                "not mounted",
            ),
            (
                "missing",
                check_binfmt(Some(&probe(true, None)), arm, r),
                Status::Fail,
                "no qemu-aarch64 handler",
            ),
            (
                "no F",
                check_binfmt(Some(&probe(true, Some(old))), arm, r),
                Status::Fail,
                "without F",
            ),
            (
                "stale",
                check_binfmt(Some(&probe(true, Some(stale))), arm, r),
                Status::Warn,
                "qemu-aarch64-static (PF)",
            ),
        ];
        for (name, c, status, detail) in cases {
            assert_eq!(c.status, status, "{name}: {c:?}");
            assert!(
                c.detail.contains(detail),
                "{name}: {:?} lacks {detail:?}",
                c.detail
            );
            if status != Status::Ok {
                assert_eq!(c.remedy.as_deref(), Some(r), "{name}");
            }
        }
    }

    #[test]
    fn host_doctor_optional_checks() {
        let imgs = |v: &[&str]| Ok(v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        let all = imgs(&[
            "brokkr.local/base/rust-builder:1.85",
            "brokkr.local/base/runtime:trixie",
            "brokkr.local/base/debian:trixie",
        ]);
        let cases: Vec<(&str, Check, Status, &str)> = vec![
            (
                "registry up",
                check_registry(Some(200), false),
                Status::Ok,
                "localhost:5000 answers",
            ),
            (
                "registry down",
                check_registry(None, false),
                Status::Warn,
                "nothing answers on localhost:5000",
            ),
            (
                "registry wants auth",
                check_registry(Some(401), false),
                Status::Warn,
                "401",
            ),
            (
                "registry in CI",
                check_registry(None, true),
                Status::Skip,
                "ghcr.io",
            ),
            (
                "bases present",
                check_local_bases(&all),
                Status::Ok,
                "present",
            ),
            (
                "recorded: only runtime",
                check_local_bases(&imgs(&["brokkr.local/base/runtime:proto"])),
                Status::Warn,
                "missing: rust-builder, debian",
            ),
            (
                "disk ok",
                check_disk(Path::new("/var/lib/docker"), Some(77_554_962_432)),
                Status::Ok,
                "72.2 GiB free",
            ),
            (
                "disk low",
                check_disk(Path::new("/"), Some(5 << 30)),
                Status::Warn,
                "less than 10.0 GiB",
            ),
        ];
        for (name, c, status, detail) in cases {
            assert_eq!(c.status, status, "{name}: {c:?}");
            assert!(
                c.detail.contains(detail),
                "{name}: {:?} lacks {detail:?}",
                c.detail
            );
        }
        assert_eq!(
            check_registry(None, false).remedy.as_deref(),
            Some("cargo xtask registry start")
        );
        assert_eq!(
            check_local_bases(&imgs(&[])).remedy.as_deref(),
            Some("cargo xtask base-images")
        );
    }

    #[test]
    fn host_doctor_render_and_json() {
        let checks = vec![
            Check::ok("engine", "26.1.5"),
            Check::fail(
                "binfmt linux/arm64",
                "missing",
                "cargo xtask setup --platform linux/arm64",
            ),
            Check::skip("base-upstream", "not probed"),
        ];
        assert_eq!(
            render(&checks),
            "ok    engine              26.1.5\n\
             FAIL  binfmt linux/arm64  missing  -> fix: cargo xtask setup --platform linux/arm64\n\
             skip  base-upstream       not probed\n"
        );
        assert!(!passed(&checks));
        assert!(passed(&checks[..1]));
        assert!(passed(&[Check::warn(
            "registry",
            "down",
            "cargo xtask registry start"
        )]));
        let json: serde_json::Value = serde_json::to_value(&checks).unwrap();
        assert_eq!(json[1]["status"], "fail");
        assert_eq!(
            json[1]["remedy"],
            "cargo xtask setup --platform linux/arm64"
        );
        assert_eq!(json[0]["remedy"], serde_json::Value::Null);
        assert_eq!(
            failures(&checks),
            "binfmt linux/arm64: missing (fix: cargo xtask setup --platform linux/arm64)"
        );
    }
}
