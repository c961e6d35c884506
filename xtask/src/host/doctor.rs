//! `cargo xtask doctor`: one line per check of what building images needs on this host, with
//! the command that fixes it. [`preflight`] is the subset a build needs.

use std::path::{Path, PathBuf};

use anyhow::{ensure, Result};
use clap::Args;
use serde::Serialize;
use xshell::Shell;

use super::{
    human_bytes,
    probe::{self, BinfmtStatus, Docker},
    registry, Builder, DockerInfo, ImageStore, BINFMT_DIR, MIN_BUILDX, MIN_ENGINE, MIN_FREE_DISK,
};
use crate::project::{parse_platform_list, Platform, PlatformList, LOCAL_BASE_PREFIX as LOCAL};
use Status::{Fail, Skip, Warn};

type Probed<T> = Result<T, String>;
const OK: Status = Status::Ok;

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Platforms to check for (comma-separated, or `all`); default: the host's.
    #[arg(long, value_parser = parse_platform_list)]
    pub platform: Option<PlatformList>,
    /// Print a JSON array of {name, status, detail, remedy} instead of lines.
    #[arg(long)]
    pub json: bool,
    /// The buildx builder to inspect (default: $BUILDX_BUILDER, else the current one).
    #[arg(long, value_name = "NAME")]
    pub builder: Option<String>,
}

/// The local base images `cargo xtask base-images` makes: `brokkr.local/base/<name>:<tag>`.
pub const LOCAL_BASE_IMAGES: &[&str] = &["rust-builder", "runtime", "debian"];

/// `Warn`: missing or odd but not needed for the requested platforms;
/// `Fail`: needed and missing (`doctor` exits non-zero); `Skip`: does not apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warn,
    Fail,
    Skip,
}

/// `--json` prints these as an array of `{"name", "status": "ok|warn|fail|skip",
/// "detail", "remedy": string|null}`, the remedy being the exact command that fixes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Check {
    pub name: String,
    pub status: Status,
    pub detail: String,
    pub remedy: Option<String>,
}

impl Check {
    /// `remedy` is kept only for `Warn` and `Fail`.
    fn new(status: Status, name: &str, detail: impl Into<String>, remedy: &str) -> Check {
        let remedy = matches!(status, Warn | Fail).then(|| remedy.to_owned());
        Check { name: name.to_owned(), status, detail: detail.into(), remedy }
    }
}

pub fn passed(checks: &[Check]) -> bool {
    checks.iter().all(|c| c.status != Fail)
}

/// Aligned lines: `STATUS  NAME  DETAIL[  -> fix: REMEDY]`.
pub fn render(checks: &[Check]) -> String {
    let width = checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
    let line = |c: &Check| {
        let label = ["ok", "warn", "FAIL", "skip"][c.status as usize];
        let fix = c.remedy.as_ref().map(|r| format!("  -> fix: {r}")).unwrap_or_default();
        format!("{label:<4}  {:<width$}  {}{fix}\n", c.name, c.detail)
    };
    checks.iter().map(line).collect()
}

/// The failing checks and their remedies, one a line, for an error message.
pub fn failures(checks: &[Check]) -> String {
    let line = |c: &Check| {
        let fix = c.remedy.as_ref().map(|r| format!(" (fix: {r})")).unwrap_or_default();
        format!("{}: {}{fix}", c.name, c.detail)
    };
    checks.iter().filter(|c| c.status == Fail).map(line).collect::<Vec<_>>().join("\n")
}

/// `cargo xtask setup [--platform A,B]`.
pub fn setup_remedy(platforms: &[&Platform]) -> String {
    let list: Vec<&str> = platforms.iter().map(|p| p.name).collect();
    let flag =
        if list.is_empty() { String::new() } else { format!(" --platform {}", list.join(",")) };
    format!("cargo xtask setup{flag}")
}

/// The docker CLI, the engine, its image store and default bridge, buildx and the builder `b`
/// for platforms `ps`. A `DOCKER_HOST` other than the local socket that is silent is that
/// address not answering, not a local engine to start. The `docker` driver needs the containerd
/// store (multi-platform `--load`, cache export); with other drivers a classic store only warns.
/// Issue 15: without the default bridge's interface (`docker0`) every `RUN` step fails.
/// The builder must run and list every requested platform.
fn check_docker(d: &Docker, b: &Probed<Builder>, ps: &[&Platform], remedy: &str) -> Vec<Check> {
    let check = |name, status, detail| Check::new(status, name, detail, remedy);
    let v = d.client.as_deref().unwrap_or("version unknown");
    let (status, detail) = match &d.cli {
        Some(p) => (OK, format!("{v} at {}", p.display())),
        None => (Fail, "`docker` is not on PATH".to_owned()),
    };
    let cli = check("docker-cli", status, detail);
    let (status, detail, fix) = match (&d.info, &d.host) {
        (Err(e), _) if e.to_ascii_lowercase().contains("permission denied") => (
            Fail,
            format!("not reachable: {e}"),
            "run as root, or add the user to the `docker` group: usermod -aG docker $USER (then log in again)"
                .to_owned(),
        ),
        (Err(e), Some(h)) => (
            Fail,
            format!("DOCKER_HOST={h} does not answer: {e}"),
            format!("start the engine at {h}, or unset DOCKER_HOST to use this machine's (then {remedy})"),
        ),
        (Err(e), None) => (Fail, format!("not reachable: {e}"), remedy.to_owned()),
        (Ok(i), _) if i.version().is_some_and(|v| v >= MIN_ENGINE) => {
            let d = format!("{} ({}, root {})", i.server_version, i.architecture, i.docker_root_dir);
            (OK, d, String::new())
        }
        (Ok(i), _) => {
            let d = format!("{} is older than {MIN_ENGINE} (no containerd image store)", i.server_version);
            (Fail, d, remedy.to_owned())
        }
    };
    let engine = Check::new(status, "engine", detail, &fix);
    let (status, detail) = match d.info.as_ref().map(DockerInfo::store) {
        Err(_) => (Fail, "unknown: the engine is not reachable".to_owned()),
        Ok(ImageStore::Containerd(s)) => (OK, format!("containerd (snapshotter {s})")),
        Ok(ImageStore::Classic(d)) => {
            let other_driver = b.as_ref().is_ok_and(|b| b.driver != "docker");
            let detail = format!(
                "classic ({d}): no multi-platform --load, no cache export with the docker driver; \
                 needs \"features\": {{\"containerd-snapshotter\": true}} in /etc/docker/daemon.json \
                 and an engine restart"
            );
            ([Fail, Warn][other_driver as usize], detail)
        }
    };
    let store = check("image-store", status, detail);
    let remote = d.host.as_ref().is_some_and(|h| !h.starts_with("unix://"));
    let (status, detail, fix) = match &d.bridge {
        _ if remote => (Skip, "the engine runs elsewhere (a DOCKER_HOST that is not a local socket)".to_owned(), String::new()),
        Err(e) => (Skip, format!("not checked: {e}"), String::new()),
        Ok(None) => (Skip, "the engine has no default bridge network (--bridge none)".to_owned(), String::new()),
        Ok(Some((name, true))) => (OK, format!("default bridge {name} is up"), String::new()),
        Ok(Some((name, false))) => (
            Fail,
            format!("the engine's default bridge {name} is missing: every RUN step and `docker run` fails"),
            format!("restart the engine, which recreates {name}: cargo xtask setup (it asks for --yes when containers run)"),
        ),
    };
    let bridge = Check::new(status, "bridge", detail, &fix);
    let (status, detail) = match d.buildx.clone() {
        Some(v) if v >= MIN_BUILDX => (OK, v.to_string()),
        Some(v) => (Fail, format!("{v} is older than {MIN_BUILDX}")),
        None => (Fail, "the docker buildx plugin is missing".to_owned()),
    };
    let buildx = check("buildx", status, detail);
    let or = |v: &str, d: &'static str| if v.is_empty() { d.to_owned() } else { v.to_owned() };
    let builder = match b {
        Err(e) => check("builder", Fail, format!("`docker buildx inspect` failed: {e}")),
        Ok(b) => {
            let what =
                format!("{} ({} driver, BuildKit {})", b.name, b.driver, or(&b.buildkit, "?"));
            let missing: Vec<&str> =
                ps.iter().filter(|p| !b.supports(p, false)).map(|p| p.name).collect();
            let has = b.platforms.join(", ");
            if b.status != "running" {
                let state = or(&b.status, "in an unknown state");
                let detail = format!("{what} is {state}: its platforms are known once it runs");
                let fix = format!("docker buildx inspect --bootstrap {}", b.name);
                Check::new(Warn, "builder", detail, &fix)
            } else if missing.is_empty() {
                check("builder", OK, format!("{what}: {has}"))
            } else {
                check("builder", Fail, format!("{what} lacks {} (has {has})", missing.join(", ")))
            }
        }
    };
    vec![cli, engine, store, bridge, buildx, builder]
}

/// None needed for a platform that runs natively (`probe` is `None`); a
/// foreign one needs an enabled handler with the `F` flag.
pub fn check_binfmt(probe: Option<&probe::BinfmtProbe>, p: &Platform, remedy: &str) -> Check {
    let name = &format!("binfmt {}", p.name);
    let Some(probe) = probe else {
        return Check::new(OK, name, "native: no emulation needed", remedy);
    };
    let entry = &probe.entry_name;
    let (status, detail) = match probe.status() {
        _ if !probe.mounted => (Fail, format!("{BINFMT_DIR} is not mounted")),
        BinfmtStatus::Ready => (OK, format!("{entry}: {}", probe.registered())),
        BinfmtStatus::Stale(r, i) => {
            (Warn, format!("{entry} registers {r}, but the installed handler is {i}"))
        }
        BinfmtStatus::Unusable(why) => (Fail, format!("{entry}: {why}")),
        BinfmtStatus::Missing => (Fail, format!("no {entry} handler registered")),
    };
    Check::new(status, name, detail, remedy)
}

/// `localhost:5000`, the default push target outside CI: answers `GET /v2/` with 200.
pub fn check_registry(api_status: Option<u16>, ci: bool) -> Check {
    let host = registry::Kind::Open.host();
    let (status, detail, fix) = match api_status {
        _ if ci => (Skip, format!("GitHub Actions pushes to ghcr.io, not {host}"), ""),
        Some(200) => (OK, format!("{host} answers GET /v2/ (200)"), ""),
        Some(code) => {
            let d = format!("{host} answers GET /v2/ with {code}, not 200: not an open registry");
            (Warn, d, "cargo xtask registry stop && ")
        }
        None => (Warn, format!("nothing answers on {host}"), ""),
    };
    Check::new(status, "registry", detail, &format!("{fix}cargo xtask registry start"))
}

pub fn check_local_bases(images: &Probed<Vec<String>>) -> Check {
    let missing = |i: &[String]| {
        let has = |n: &&str| i.iter().any(|i| i.split(':').next() == Some(&format!("{LOCAL}/{n}")));
        LOCAL_BASE_IMAGES.iter().copied().filter(|n| !has(n)).collect::<Vec<_>>().join(", ")
    };
    let (status, detail) = match images.as_ref().map(|i| (i, missing(i))) {
        Err(e) => (Warn, format!("cannot list images: {e}")),
        Ok((i, m)) if m.is_empty() => (OK, format!("local substitutes present: {}", i.join(", "))),
        Ok((_, m)) => (Warn, format!("local substitutes missing: {m} (under {LOCAL}/)")),
    };
    Check::new(status, "base-images", detail, "cargo xtask base-images")
}

pub fn check_disk(path: &Path, avail: Option<u64>) -> Check {
    let (at, min) = (path.display(), human_bytes(MIN_FREE_DISK));
    let (status, detail, fix) = match avail {
        Some(n) if n >= MIN_FREE_DISK => (OK, format!("{} free on {at}", human_bytes(n)), ""),
        Some(n) => {
            let detail = format!("{} free on {at}, less than {min}", human_bytes(n));
            (Warn, detail, "docker system prune --filter until=168h")
        }
        None => (Warn, format!("the free space on {at} could not be read"), "df -h"),
    };
    Check::new(status, "disk", detail, fix)
}

/// The checks a build needs on builder `name` (else `$BUILDX_BUILDER`, else the current one),
/// with what docker said: a binfmt handler for each platform no host or node runs natively.
/// A missing tool is a failed check, not an error.
pub fn preflight(
    sh: &Shell,
    platforms: &[&'static Platform],
    name: Option<&str>,
) -> Result<(Vec<Check>, Docker)> {
    let (host, remedy, d) = (Platform::host()?, setup_remedy(platforms), probe::docker(sh));
    let builder = match (&d.info, &d.buildx) {
        (Ok(_), Some(_)) => probe::builder(sh, name),
        (Err(_), _) => Err("the engine is not reachable".to_owned()),
        (_, None) => Err("no buildx".to_owned()),
    };
    let mut checks = check_docker(&d, &builder, platforms, &remedy);
    for p in platforms {
        let native = *p == host || builder.as_ref().is_ok_and(|b| b.supports(p, true));
        let probe = (!native).then(|| probe::binfmt(p));
        checks.push(check_binfmt(probe.as_ref(), p, &remedy));
    }
    Ok((checks, d))
}

/// Fails when a needed check fails.
pub fn run(sh: &Shell, args: DoctorArgs) -> Result<()> {
    let platforms = PlatformList::or_host(args.platform)?;
    let (mut checks, docker) = preflight(sh, &platforms, args.builder.as_deref())?;
    let info = docker.info;
    let registry = probe::registry_api_status(registry::Kind::Open.port());
    checks.push(check_registry(registry, probe::github_actions()));
    let ls = ["image", "ls", "--format", "{{.Repository}}:{{.Tag}}", &format!("{LOCAL}/*")];
    checks.push(match info.as_ref().map(|_| probe::stdout(sh, "docker", &ls)) {
        Ok(o) => check_local_bases(&o.map(|o| o.split_whitespace().map(str::to_owned).collect())),
        Err(_) => Check::new(Skip, "base-images", "the engine is not reachable", ""),
    });
    let upstream = "pullability of upstream bases is not probed here: `cargo xtask base-images` decides upstream vs local";
    checks.push(Check::new(Skip, "base-upstream", upstream, ""));
    let lib = Some("/var/lib/docker").filter(|d| Path::new(d).is_dir());
    let from_info = info.as_ref().map(|i| &*i.docker_root_dir).ok().filter(|d| !d.is_empty());
    let root = PathBuf::from(from_info.or(lib).unwrap_or("/"));
    checks.push(check_disk(&root, fs4::available_space(&root).ok()));
    let out =
        if args.json { serde_json::to_string_pretty(&checks)? + "\n" } else { render(&checks) };
    print!("{out}");
    let failed = checks.iter().filter(|c| c.status == Fail).count();
    let names: Vec<&str> = platforms.iter().map(|p| p.name).collect();
    ensure!(failed == 0, "{failed} needed check(s) failed for {}", names.join(", "));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::{probe::BinfmtProbe, BinfmtEntry, BinfmtHandler, Version};

    fn info(json: &str) -> Result<DockerInfo, String> {
        Ok(DockerInfo::parse(json).unwrap())
    }

    /// A probe with `info` and neither CLI, buildx nor bridge.
    fn dock(info: Probed<DockerInfo>) -> Docker {
        Docker { cli: None, client: None, info, buildx: None, bridge: Err("x".into()), host: None }
    }

    /// The check `name` of [`check_docker`].
    fn pick(name: &str, d: &Docker, b: &Probed<Builder>, ps: &[&Platform], r: &str) -> Check {
        check_docker(d, b, ps, r).into_iter().find(|c| c.name == name).unwrap()
    }

    const CONTAINERD: &str = include_str!("fixtures/docker-info-containerd.json");
    const CLASSIC: &str = include_str!("fixtures/docker-info-classic-overlay2.json");
    const OLD: &str = include_str!("fixtures/docker-info-bookworm-20.10.json");

    #[test]
    fn host_doctor_engine_and_store() {
        let r = "cargo xtask setup";
        let default = Builder::parse(include_str!("fixtures/buildx-inspect-default.txt"));
        let container =
            Builder::parse(include_str!("fixtures/buildx-inspect-container-amd64-only.txt"));
        let (default, container) =
            (default.map_err(|e| e.to_string()), container.map_err(|e| e.to_string()));
        let none: Probed<Builder> = Err("x".into());
        let engine = |d: Docker| pick("engine", &d, &none, &[], r);
        let store = |i, b: &Probed<Builder>| pick("image-store", &dock(i), b, &[], r);
        let buildx =
            |v| pick("buildx", &Docker { buildx: v, ..dock(info(CONTAINERD)) }, &none, &[], r);
        let cases: Vec<(&str, Check, Status, &str)> = vec![
            ("recorded engine", engine(dock(info(CONTAINERD))), Status::Ok, "26.1.5+dfsg1 (x86_64"),
            ("old engine", engine(dock(info(OLD))), Status::Fail, "older than 24.0.0"),
            (
                "down",
                engine(dock(Err("Cannot connect".into()))),
                Status::Fail,
                "not reachable: Cannot connect",
            ),
            (
                "DOCKER_HOST that does not answer",
                engine(Docker {
                    host: Some("tcp://10.9.9.9:2375".into()),
                    ..dock(Err("Cannot connect to the Docker daemon at tcp://10.9.9.9:2375".into()))
                }),
                Status::Fail,
                "DOCKER_HOST=tcp://10.9.9.9:2375 does not answer",
            ),
            (
                "containerd store",
                store(info(CONTAINERD), &default),
                Status::Ok,
                "containerd (snapshotter overlayfs)",
            ),
            (
                "classic + docker driver",
                store(info(CLASSIC), &default),
                Status::Fail,
                "classic (overlay2)",
            ),
            (
                "classic + container driver",
                store(info(CLASSIC), &container),
                Status::Warn,
                "classic",
            ),
            ("store unknown", store(Err("x".into()), &none), Status::Fail, "unknown"),
            ("buildx ok", buildx(Some(Version::new(0, 13, 1))), Status::Ok, "0.13.1"),
            ("buildx old", buildx(Some(Version::new(0, 8, 2))), Status::Fail, "older than 0.10.0"),
            ("no buildx", buildx(None), Status::Fail, "missing"),
            (
                "no cli",
                pick("docker-cli", &dock(info(CONTAINERD)), &none, &[], r),
                Status::Fail,
                "not on PATH",
            ),
        ];
        for (name, c, status, detail) in cases {
            assert_eq!(c.status, status, "{name}: {c:?}");
            assert!(c.detail.contains(detail), "{name}: {:?} lacks {detail:?}", c.detail);
            assert_eq!(c.remedy.is_some(), status != Status::Ok, "{name}");
        }
    }

    #[test]
    fn host_doctor_default_bridge() {
        let check_bridge = |bridge: &Probed<Option<(String, bool)>>, remote: bool| {
            let host = remote.then(|| "tcp://10.9.9.9:2375".to_owned());
            let d = Docker { bridge: bridge.clone(), host, ..dock(Err("down".into())) };
            pick("bridge", &d, &Err("x".into()), &[], "-")
        };
        let cases: Vec<(&str, Check, Status, &str)> = vec![
            (
                "docker0 up",
                check_bridge(&Ok(Some(("docker0".into(), true))), false),
                Status::Ok,
                "docker0 is up",
            ),
            (
                "docker0 deleted by a second engine's --bridge none",
                check_bridge(&Ok(Some(("docker0".into(), false))), false),
                Status::Fail,
                "default bridge docker0 is missing: every RUN step",
            ),
            (
                "engine without bridge",
                check_bridge(&Ok(None), false),
                Status::Skip,
                "--bridge none",
            ),
            (
                "remote engine",
                check_bridge(&Ok(Some(("docker0".into(), false))), true),
                Status::Skip,
                "elsewhere",
            ),
            ("engine down", check_bridge(&Err("down".into()), false), Status::Skip, "down"),
        ];
        for (name, c, status, detail) in cases {
            assert_eq!(c.status, status, "{name}: {c:?}");
            assert!(c.detail.contains(detail), "{name}: {:?} lacks {detail:?}", c.detail);
        }
        let fail = check_bridge(&Ok(Some(("docker0".into(), false))), false);
        assert!(fail.remedy.unwrap().contains("cargo xtask setup"));
        assert_eq!(
            crate::host::bridge_interface(
                r#"{"com.docker.network.bridge.default_bridge":"true","com.docker.network.bridge.name":"docker0"}"#
            )
            .unwrap(),
            "docker0"
        );
        assert_eq!(crate::host::bridge_interface("{}").unwrap(), "docker0");
        assert_eq!(
            crate::host::bridge_interface(r#"{"com.docker.network.bridge.name":"br-x"}"#).unwrap(),
            "br-x"
        );
    }

    #[test]
    fn host_doctor_builder_platforms() {
        let amd = Platform::parse("amd64").unwrap();
        let arm = Platform::parse("arm64").unwrap();
        let both = [amd, arm];
        let remedy = setup_remedy(&both);
        assert_eq!(remedy, "cargo xtask setup --platform linux/amd64,linux/arm64");
        let parse = |t: &str| Builder::parse(t).map_err(|e| e.to_string());
        let default = parse(include_str!("fixtures/buildx-inspect-default.txt"));
        let no_arm = parse(include_str!("fixtures/buildx-inspect-container-amd64-only.txt"));
        let inactive = parse(include_str!("fixtures/buildx-inspect-inactive.txt"));
        let check_builder = |b: &Probed<Builder>, ps: &[&Platform], r: &str| {
            pick("builder", &dock(Err("x".into())), b, ps, r)
        };
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
            ("inactive", check_builder(&inactive, &both, &remedy), Status::Warn, "inactive"),
            (
                "error",
                check_builder(&Err("no builder".into()), &both, &remedy),
                Status::Fail,
                "no builder",
            ),
        ];
        for (name, c, status, detail) in cases {
            assert_eq!(c.status, status, "{name}: {c:?}");
            assert!(c.detail.contains(detail), "{name}: {:?} lacks {detail:?}", c.detail);
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
        let old = BinfmtEntry { flags: "PO".into(), ..e10.clone() };
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
            assert!(c.detail.contains(detail), "{name}: {:?} lacks {detail:?}", c.detail);
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
            ("registry up", check_registry(Some(200), false), Status::Ok, "localhost:5000 answers"),
            (
                "registry down",
                check_registry(None, false),
                Status::Warn,
                "nothing answers on localhost:5000",
            ),
            ("registry wants auth", check_registry(Some(401), false), Status::Warn, "401"),
            ("registry in CI", check_registry(None, true), Status::Skip, "ghcr.io"),
            ("bases present", check_local_bases(&all), Status::Ok, "present"),
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
            assert!(c.detail.contains(detail), "{name}: {:?} lacks {detail:?}", c.detail);
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
        let r = "cargo xtask setup --platform linux/arm64";
        let checks = vec![
            Check::new(OK, "engine", "26.1.5", r),
            Check::new(Fail, "binfmt linux/arm64", "missing", r),
            Check::new(Skip, "base-upstream", "not probed", r),
        ];
        assert_eq!(
            render(&checks),
            "ok    engine              26.1.5\n\
             FAIL  binfmt linux/arm64  missing  -> fix: cargo xtask setup --platform linux/arm64\n\
             skip  base-upstream       not probed\n"
        );
        assert!(!passed(&checks));
        assert!(passed(&checks[..1]));
        assert!(passed(&[Check::new(Warn, "registry", "down", "x")]));
        let json: serde_json::Value = serde_json::to_value(&checks).unwrap();
        assert_eq!(json[1]["status"], "fail");
        assert_eq!(json[1]["remedy"], "cargo xtask setup --platform linux/arm64");
        assert_eq!(json[0]["remedy"], serde_json::Value::Null);
        assert_eq!(
            failures(&checks),
            "binfmt linux/arm64: missing (fix: cargo xtask setup --platform linux/arm64)"
        );
    }
}
