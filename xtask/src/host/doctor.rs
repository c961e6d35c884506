//! `cargo xtask doctor`: one line per check of what building brokkr's images
//! needs on this host, each with its status and the exact command that
//! fixes it. [`preflight`] is the subset a build needs, for the image commands.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use serde::Serialize;
use xshell::Shell;

use super::{
    foreign, human_bytes, probe, registry, BinfmtStatus, Builder, DockerInfo, ImageStore, Version,
    MIN_BUILDX, MIN_ENGINE, MIN_FREE_DISK,
};
use crate::{base_images::LOCAL_PREFIX, project::Platform};

/// The local base images `cargo xtask base-images` makes, as repository
/// names under [`LOCAL_PREFIX`] (`brokkr.local/base/<name>:<tag>`).
pub const LOCAL_BASE_IMAGES: &[&str] = &["rust-builder", "runtime", "debian"];

/// How a check came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Works.
    Ok,
    /// Not needed for the requested platforms, but missing or odd.
    Warn,
    /// Needed and missing: `doctor` exits non-zero.
    Fail,
    /// Not checked (does not apply here); the detail says why.
    Skip,
}

impl Status {
    fn label(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
            Status::Skip => "skip",
        }
    }
}

/// One line of `doctor`: `--json` prints these as an array of
/// `{"name", "status": "ok|warn|fail|skip", "detail", "remedy": string|null}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Check {
    /// Short name (`engine`, `binfmt linux/arm64`).
    pub name: String,
    /// Outcome.
    pub status: Status,
    /// What was found.
    pub detail: String,
    /// The exact command that fixes it, when not ok.
    pub remedy: Option<String>,
}

impl Check {
    fn new(name: &str, status: Status, detail: impl Into<String>, remedy: Option<String>) -> Check {
        Check {
            name: name.to_owned(),
            status,
            detail: detail.into(),
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
        out.push_str(&format!(
            "{:<4}  {:<width$}  {}",
            c.status.label(),
            c.name,
            c.detail
        ));
        if let Some(r) = &c.remedy {
            out.push_str(&format!("  -> fix: {r}"));
        }
        out.push('\n');
    }
    out
}

/// The failing checks and their remedies, for an error message.
pub fn failures(checks: &[Check]) -> String {
    checks
        .iter()
        .filter(|c| c.status == Status::Fail)
        .map(|c| match &c.remedy {
            Some(r) => format!("{}: {} (fix: {r})", c.name, c.detail),
            None => format!("{}: {}", c.name, c.detail),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `cargo xtask setup [--platform A,B]`: the remedy naming the platforms asked for.
pub fn setup_remedy(platforms: &[&Platform]) -> String {
    if platforms.is_empty() {
        "cargo xtask setup".to_owned()
    } else {
        let list = platforms
            .iter()
            .map(|p| p.name)
            .collect::<Vec<_>>()
            .join(",");
        format!("cargo xtask setup --platform {list}")
    }
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

/// The engine: answers, version >= [`MIN_ENGINE`].
pub fn check_engine(info: &Result<DockerInfo, String>, remedy: &str) -> Check {
    match info {
        Err(e) if e.to_ascii_lowercase().contains("permission denied") => Check::fail(
            "engine",
            format!("not reachable: {e}"),
            "run as root, or add the user to the `docker` group: usermod -aG docker $USER (then log in again)",
        ),
        Err(e) => Check::fail("engine", format!("not reachable: {e}"), remedy),
        Ok(i) => match i.version() {
            Some(v) if v >= MIN_ENGINE => Check::ok(
                "engine",
                format!(
                    "{} ({}, root {})",
                    i.server_version, i.architecture, i.docker_root_dir
                ),
            ),
            _ => Check::fail(
                "engine",
                format!(
                    "{} is older than {MIN_ENGINE} (no containerd image store)",
                    i.server_version
                ),
                remedy,
            ),
        },
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
                 needs \"features\": {{\"containerd-snapshotter\": true}} in /etc/docker/daemon.json"
            );
            if builder.is_some_and(|b| b.driver != "docker") {
                Check::warn("image-store", detail, remedy)
            } else {
                Check::fail("image-store", detail, remedy)
            }
        }
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
    let what = format!(
        "{} ({} driver, BuildKit {})",
        b.name,
        b.driver,
        if b.buildkit.is_empty() {
            "?"
        } else {
            &b.buildkit
        }
    );
    if b.status != "running" {
        return Check::warn(
            "builder",
            format!(
                "{what} is {}: its platforms are known once it runs",
                if b.status.is_empty() {
                    "in an unknown state"
                } else {
                    &b.status
                }
            ),
            "docker buildx inspect --bootstrap",
        );
    }
    let missing: Vec<&str> = platforms
        .iter()
        .filter(|p| !b.supports(p))
        .map(|p| p.name)
        .collect();
    if missing.is_empty() {
        Check::ok("builder", format!("{what}: {}", b.platforms.join(", ")))
    } else {
        Check::fail(
            "builder",
            format!(
                "{what} lacks {} (has {})",
                missing.join(", "),
                b.platforms.join(", ")
            ),
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
    match probe.status() {
        BinfmtStatus::Ready => {
            let e = probe.entry.clone().unwrap_or_default();
            Check::ok(
                &name,
                format!(
                    "{}: {} (flags {})",
                    probe.entry_name, e.interpreter, e.flags
                ),
            )
        }
        BinfmtStatus::Stale {
            registered,
            installed,
        } => Check::warn(
            &name,
            format!(
                "{} registers {registered}, but the installed handler is {installed}",
                probe.entry_name
            ),
            remedy,
        ),
        BinfmtStatus::Unusable(why) => {
            Check::fail(&name, format!("{}: {why}", probe.entry_name), remedy)
        }
        BinfmtStatus::Missing => Check::fail(
            &name,
            format!("no {} handler registered", probe.entry_name),
            remedy,
        ),
    }
}

/// The loopback registry (`localhost:5000`), the default push target
/// outside CI: a warning when it does not answer `GET /v2/` with 200.
pub fn check_registry(api_status: Option<u16>, ci: bool) -> Check {
    let host = registry::Kind::Open.host();
    if ci {
        return Check::skip(
            "registry",
            format!("GitHub Actions pushes to ghcr.io, not {host}"),
        );
    }
    match api_status {
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
    let images = match images {
        Ok(i) => i,
        Err(e) => {
            return Check::warn(
                "base-images",
                format!("cannot list images: {e}"),
                "cargo xtask base-images",
            )
        }
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
        Check::warn(
            "base-images",
            format!(
                "local substitutes missing: {} (under {LOCAL_PREFIX}/)",
                missing.join(", ")
            ),
            "cargo xtask base-images",
        )
    }
}

/// Free space on the engine's root directory: a warning below [`MIN_FREE_DISK`].
pub fn check_disk(path: &Path, avail: Option<u64>) -> Check {
    match avail {
        Some(n) if n >= MIN_FREE_DISK => Check::ok(
            "disk",
            format!("{} free on {}", human_bytes(n), path.display()),
        ),
        Some(n) => Check::warn(
            "disk",
            format!(
                "{} free on {}, less than {}",
                human_bytes(n),
                path.display(),
                human_bytes(MIN_FREE_DISK)
            ),
            "docker system prune --filter until=168h",
        ),
        None => Check::warn("disk", format!("`df {}` failed", path.display()), "df -h"),
    }
}

/// The checks a build needs for `platforms`: docker CLI, engine, image
/// store, buildx, builder platforms, and a binfmt handler for every
/// foreign platform. Probes run quietly; a missing tool is a failed check,
/// not an error (errors are reserved for xtask's own faults).
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
    let info = if cli.is_some() {
        probe::docker_info(sh)
    } else {
        Err("no docker CLI".to_owned())
    };
    let buildx = if cli.is_some() {
        probe::buildx_version(sh)
    } else {
        None
    };
    let builder = match (&info, buildx) {
        (Ok(_), Some(_)) => probe::builder(sh),
        (Err(_), _) => Err("the engine is not reachable".to_owned()),
        (_, None) => Err("no buildx".to_owned()),
    };
    let mut checks = vec![
        check_cli(cli.as_deref(), version.as_deref(), &remedy),
        check_engine(&info, &remedy),
        check_store(&info, builder.as_ref().ok(), &remedy),
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
/// with `json`) and fails when a needed one fails. `platforms` defaults to
/// the host's at the CLI.
pub fn run(sh: &Shell, platforms: &[&'static Platform], json: bool) -> Result<()> {
    let (mut checks, info) = preflight_with_info(sh, platforms)?;
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

    if json {
        println!("{}", serde_json::to_string_pretty(&checks)?);
    } else {
        print!("{}", render(&checks));
    }
    if !passed(&checks) {
        bail!(
            "{} needed check(s) failed for {}",
            checks.iter().filter(|c| c.status == Status::Fail).count(),
            platforms
                .iter()
                .map(|p| p.name)
                .collect::<Vec<_>>()
                .join(", ")
        );
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
                check_engine(&info(CONTAINERD), r),
                Status::Ok,
                "26.1.5+dfsg1 (x86_64",
            ),
            (
                "old engine",
                check_engine(&info(OLD), r),
                Status::Fail,
                "older than 24.0.0",
            ),
            (
                "down",
                check_engine(&Err("Cannot connect".into()), r),
                Status::Fail,
                "not reachable: Cannot connect",
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
