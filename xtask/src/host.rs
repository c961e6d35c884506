//! The build host as data: parsers for what docker, buildx, binfmt_misc,
//! `binfmt.d`, os-release, dpkg-query and df print, and the pure decisions
//! taken from them. [`probe`] looks, [`doctor`] checks, [`setup`] provisions.

pub mod doctor;
pub mod probe;
pub mod registry;
pub mod setup;

use std::collections::BTreeMap;

use anyhow::{bail, ensure, Context, Result};
pub use semver::Version;
use serde::Deserialize;

use crate::project::Platform;

/// Oldest engine accepted: 24.0, the first with a usable containerd image
/// store (`features.containerd-snapshotter`), as issue 3 requires.
pub const MIN_ENGINE: Version = Version::new(24, 0, 0);
/// Oldest buildx accepted: 0.10, the first with `--provenance` and `--metadata-file`.
pub const MIN_BUILDX: Version = Version::new(0, 10, 0);
/// On Debian 12: bookworm's QEMU 7.2 hangs an emulated `cargo build` (environment notes).
pub const MIN_BOOKWORM_QEMU: Version = Version::new(10, 0, 0);
/// Bytes free on the engine's root below which `doctor` warns (a builder image is about 3 GB).
pub const MIN_FREE_DISK: u64 = 10 << 30;
pub const BINFMT_DIR: &str = "/proc/sys/fs/binfmt_misc";

/// The numeric core `[v]N[.N[.N]]` at the start of a tool's version, the
/// rest ignored: `26.1.5+dfsg1` is 26.1.5, `v0.18.2` is 0.18.2, `24.04` is 24.4.0.
pub fn version(s: &str) -> Option<Version> {
    let s = s.trim();
    let s = s.strip_prefix('v').unwrap_or(s);
    let rest = s.trim_start_matches(|c: char| c.is_ascii_digit() || c == '.');
    let mut n = s[..s.len() - rest.len()].split('.').map(|p| p.parse().ok());
    let major = n.next().flatten()?;
    let mut next = || n.next().flatten().unwrap_or(0);
    Some(Version::new(major, next(), next()))
}

/// The upstream part of a Debian version `[epoch:]upstream[-revision]` (deb-version(7)).
pub fn debian_version(v: &str) -> Option<Version> {
    match v.trim().split_once(':') {
        Some((epoch, rest)) if epoch.chars().all(|c| c.is_ascii_digit()) => version(rest),
        _ => version(v),
    }
}

/// `docker info --format '{{json .}}'`: empty server fields when the engine does not answer.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DockerInfo {
    pub server_version: String,
    /// Storage driver (`overlay2`) or, with the containerd store, the snapshotter (`overlayfs`).
    pub driver: String,
    pub driver_status: Option<Vec<Vec<String>>>,
    pub docker_root_dir: String,
    /// `uname -m` (`x86_64`).
    pub architecture: String,
    pub containers_running: u64,
    pub server_errors: Option<Vec<String>>,
}

/// With the snapshotter or graph driver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImageStore {
    Containerd(String),
    Classic(String),
}

impl DockerInfo {
    pub fn parse(json: &str) -> Result<DockerInfo> {
        serde_json::from_str(json.trim()).context("parsing `docker info --format '{{json .}}'`")
    }

    pub fn version(&self) -> Option<Version> {
        version(&self.server_version)
    }

    pub fn store(&self) -> ImageStore {
        let snapshotter = |kv: &Vec<String>| matches!(kv.as_slice(), [k, v, ..] if k == "driver-type" && v.starts_with("io.containerd.snapshotter"));
        let containerd = self.driver_status.iter().flatten().any(snapshotter);
        [ImageStore::Classic, ImageStore::Containerd][containerd as usize](self.driver.clone())
    }
}

/// The default bridge's host interface from `docker network inspect bridge --format
/// '{{json .Options}}'` (a string map), `docker0` when the key is absent.
pub fn bridge_interface(json: &str) -> Result<String> {
    let o: BTreeMap<String, String> =
        serde_json::from_str(json.trim()).context("parsing the bridge network's options")?;
    Ok(o.get("com.docker.network.bridge.name").cloned().unwrap_or_else(|| "docker0".to_owned()))
}

/// `docker buildx inspect [NAME]` (text: buildx 0.13 has no JSON for it).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Builder {
    pub name: String,
    pub driver: String,
    /// The first node's (`running`, `inactive`), as `buildkit` (`v0.18.2`).
    pub status: String,
    pub buildkit: String,
    /// Of all nodes, without the `*` of user-set ones; empty while inactive.
    pub platforms: Vec<String>,
    /// Per node, the first platform not set by the user (BuildKit lists its own first).
    pub native: Vec<String>,
}

impl Builder {
    /// Unindented `Key: value` lines, first one wins (`Buildkit` in older buildx).
    pub fn parse(text: &str) -> Result<Builder> {
        let mut b = Builder::default();
        let lines = text.lines().filter(|l| !l.starts_with(char::is_whitespace));
        for (key, value) in lines.filter_map(|l| l.split_once(':')) {
            let value = value.trim().to_owned();
            let field = match key.trim() {
                "Name" => &mut b.name,
                "Driver" => &mut b.driver,
                "Status" => &mut b.status,
                "BuildKit version" | "Buildkit" => &mut b.buildkit,
                "Platforms" => {
                    let all: Vec<&str> = value.split(',').map(str::trim).collect();
                    let own = all.iter().find(|p| !p.ends_with('*')).or(all.first());
                    b.native.extend(own.filter(|p| !p.is_empty()).map(|p| p.to_string()));
                    for p in all.iter().map(|p| p.trim_end_matches('*')) {
                        if !p.is_empty() && !b.platforms.iter().any(|q| q == p) {
                            b.platforms.push(p.to_owned());
                        }
                    }
                    continue;
                }
                _ => continue,
            };
            if field.is_empty() {
                *field = value;
            }
        }
        ensure!(!b.name.is_empty(), "no `Name:` line in `docker buildx inspect` output:\n{text}");
        Ok(b)
    }

    /// Whether a node lists `p`, or (`native`) runs it natively.
    pub fn supports(&self, p: &Platform, native: bool) -> bool {
        let list = if native { &self.native } else { &self.platforms };
        list.iter().any(|s| Platform::parse(s).is_ok_and(|q| q == p))
    }
}

/// From `github.com/docker/buildx 0.13.1+ds1 0.13.1+ds1-3` or `... v0.19.3 48d6a39`.
pub fn parse_buildx_version(text: &str) -> Option<Version> {
    text.split_whitespace().nth(1).and_then(version)
}

/// From `Docker version 26.1.5+dfsg1, build 411e817` (`dockerd --version`).
pub fn parse_dockerd_version(text: &str) -> Option<Version> {
    version(text.split_once("version ")?.1)
}

/// The file `/proc/sys/fs/binfmt_misc/<name>` (kernel doc admin-guide/binfmt-misc.rst).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BinfmtEntry {
    pub enabled: bool,
    pub interpreter: String,
    pub flags: String,
}

impl BinfmtEntry {
    pub fn parse(text: &str) -> BinfmtEntry {
        let mut e = BinfmtEntry::default();
        for line in text.lines().map(str::trim) {
            e.enabled |= line == "enabled";
            if let Some(i) = line.strip_prefix("interpreter ") {
                e.interpreter = i.trim().to_owned();
            } else if let Some(f) = line.strip_prefix("flags:") {
                e.flags = f.trim().to_owned();
            }
        }
        e
    }

    /// `F`: the kernel opened the interpreter at registration, so it runs in containers.
    pub fn usable(&self) -> bool {
        self.enabled && self.flags.contains('F')
    }
}

/// A handler definition from a `binfmt.d` file (binfmt.d(5)): `:name:type:offset:magic:mask:
/// interpreter:flags`, the whole `line` being what is written to `binfmt_misc/register`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BinfmtHandler {
    pub name: String,
    pub interpreter: String,
    pub flags: String,
    pub line: String,
}

impl BinfmtHandler {
    /// The first line not blank nor a `#`/`;` comment; its first character separates fields.
    pub fn parse(text: &str) -> Result<BinfmtHandler> {
        let line = (text.lines().map(str::trim))
            .find(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with(';'))
            .context("no handler line in binfmt.d file")?;
        let sep = line.chars().next().unwrap_or(':');
        let f: Vec<&str> = line[sep.len_utf8()..].split(sep).collect();
        if f.len() < 6 || f[0].is_empty() || f[5].is_empty() {
            bail!("malformed binfmt.d line (want :name:type:offset:magic:mask:interpreter:flags): {line}");
        }
        let (name, interpreter) = (f[0].to_owned(), f[5].to_owned());
        let flags = f.get(6).copied().unwrap_or("").to_owned();
        Ok(BinfmtHandler { name, interpreter, flags, line: line.to_owned() })
    }
}

/// Most specific first (binfmt.d(5)); `-static` is Ubuntu's and Arch's qemu-user-static.
pub fn binfmt_handler_paths(machine: &str) -> Vec<String> {
    let suffix = |d| ["", "-static"].map(|s| format!("{d}/qemu-{machine}{s}.conf"));
    ["/etc/binfmt.d", "/usr/lib/binfmt.d"].into_iter().flat_map(suffix).collect()
}

/// `/etc/os-release` (os-release(5)).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OsRelease {
    pub id: String,
    pub id_like: Vec<String>,
    /// `12`, `24.04`; empty on Debian testing/unstable.
    pub version_id: String,
    pub codename: String,
    pub pretty_name: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Distro {
    Debian,
    Ubuntu,
    Other,
}

impl OsRelease {
    pub fn parse(text: &str) -> OsRelease {
        let mut o = OsRelease::default();
        for (k, v) in text.lines().filter_map(|l| l.trim().split_once('=')) {
            let v = v.trim();
            let unquoted = |q: char| v.strip_prefix(q).and_then(|s| s.strip_suffix(q));
            let v = unquoted('"').or_else(|| unquoted('\'')).unwrap_or(v).to_owned();
            match k.trim() {
                "ID" => o.id = v,
                "ID_LIKE" => o.id_like = v.split_whitespace().map(str::to_owned).collect(),
                "VERSION_ID" => o.version_id = v,
                "VERSION_CODENAME" => o.codename = v,
                "PRETTY_NAME" => o.pretty_name = v,
                _ => {}
            }
        }
        o
    }

    pub fn distro(&self) -> Distro {
        let is = |name: &str| self.id == name || self.id_like.iter().any(|l| l == name);
        match () {
            _ if self.id == "ubuntu" || (self.id != "debian" && is("ubuntu")) => Distro::Ubuntu,
            _ if is("debian") => Distro::Debian,
            _ => Distro::Other,
        }
    }

    pub fn name(&self) -> &str {
        Some(&self.pretty_name).filter(|n| !n.is_empty()).unwrap_or(&self.id)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EngineSource {
    /// Debian 12 (docker.io 20.10): trixie's .debs with bookworm's `runc` (trixie's
    /// needs glibc 2.38), QEMU from bookworm-backports (environment notes).
    Bookworm,
    /// Debian 13+, Ubuntu 22.04+: the distribution's `docker.io` and `docker-buildx`.
    Archive,
    Unsupported(String),
}

pub fn engine_source(os: &OsRelease) -> EngineSource {
    let v = version(&os.version_id);
    let major = |f: fn(u64) -> bool| v.as_ref().is_some_and(|v| f(v.major));
    let name = os.name();
    match os.distro() {
        Distro::Debian if os.codename == "bookworm" || major(|m| m == 12) => EngineSource::Bookworm,
        Distro::Debian if major(|m| m < 12) => EngineSource::Unsupported(format!(
            "{name} has no Docker >= 24 package and glibc older than 2.34 (trixie's .debs need it); \
             upgrade to Debian 12 or later"
        )),
        Distro::Ubuntu if os.id == "ubuntu" && v.as_ref().is_some_and(|v| *v < Version::new(22, 4, 0)) => {
            EngineSource::Unsupported(format!("{name} has no Docker >= 24 package; use Ubuntu 22.04 or later"))
        }
        Distro::Debian | Distro::Ubuntu => EngineSource::Archive,
        Distro::Other => EngineSource::Unsupported(format!(
            "{name} is neither Debian nor Ubuntu: setup only automates those"
        )),
    }
}

/// `dpkg-query -W -f '${Package}\t${db:Status-Status}\t${Version}\n'`: the installed ones.
pub fn parse_dpkg_query(out: &str) -> BTreeMap<String, String> {
    let row = |l: &str| match l.split('\t').collect::<Vec<_>>()[..] {
        [name, "installed", version, ..] => Some((name.to_owned(), version.to_owned())),
        _ => None,
    };
    out.lines().filter_map(row).collect()
}

pub fn human_bytes(n: u64) -> String {
    format!("{:.1} GiB", n as f64 / f64::from(1u32 << 30))
}

/// `/etc/docker/daemon.json` (absent or blank: `{}`) with `features.containerd-snapshotter`
/// on, other keys kept; `None` when it is on already. Errors name the file to fix.
pub fn merge_daemon_json(existing: Option<&str>) -> Result<Option<String>> {
    type Object = serde_json::Map<String, serde_json::Value>;
    let text = existing.map(str::trim).filter(|t| !t.is_empty()).unwrap_or("{}");
    let mut obj: Object = serde_json::from_str(text)
        .context("/etc/docker/daemon.json is not a JSON object: fix or remove it, then rerun")?;
    let features = obj.remove("features").unwrap_or(Object::new().into());
    let mut features: Object = serde_json::from_value(features)
        .context("`features` in /etc/docker/daemon.json is not an object: fix it, then rerun")?;
    let on = features.insert("containerd-snapshotter".to_owned(), true.into()) == Some(true.into());
    obj.insert("features".to_owned(), features.into());
    Ok((!on).then(|| serde_json::to_string_pretty(&obj).unwrap_or_default() + "\n"))
}

/// `HTTP/1.1 401 Unauthorized` is 401.
pub fn parse_http_status(response: &str) -> Option<u16> {
    let mut parts = response.lines().next()?.split_whitespace();
    parts.next()?.starts_with("HTTP/").then_some(())?;
    parts.next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::project::Platform;

    const INFO_CONTAINERD: &str = include_str!("host/fixtures/docker-info-containerd.json");
    const INFO_DOWN: &str = include_str!("host/fixtures/docker-info-down.json");
    const INFO_CLASSIC: &str = include_str!("host/fixtures/docker-info-classic-overlay2.json");
    const INFO_BOOKWORM_20: &str = include_str!("host/fixtures/docker-info-bookworm-20.10.json");
    const INSPECT_DEFAULT: &str = include_str!("host/fixtures/buildx-inspect-default.txt");
    const INSPECT_NO_ARM: &str =
        include_str!("host/fixtures/buildx-inspect-container-amd64-only.txt");
    const INSPECT_OLD: &str = include_str!("host/fixtures/buildx-inspect-old-buildkit-label.txt");
    const INSPECT_INACTIVE: &str = include_str!("host/fixtures/buildx-inspect-inactive.txt");

    type Triple = Option<(u64, u64, u64)>;

    #[test]
    fn host_versions() {
        let cases: &[(&str, Triple)] = &[
            ("26.1.5+dfsg1", Some((26, 1, 5))),
            ("20.10.24+dfsg1", Some((20, 10, 24))),
            ("v0.18.2", Some((0, 18, 2))),
            ("v0.0.0+unknown", Some((0, 0, 0))),
            ("24", Some((24, 0, 0))),
            ("28.0", Some((28, 0, 0))),
            (" 1.7.24~ds1 ", Some((1, 7, 24))),
            ("", None),
            ("dev", None),
        ];
        for (s, want) in cases {
            let got = version(s).map(|v| (v.major, v.minor, v.patch));
            assert_eq!(got, *want, "{s:?}");
        }
        let debs: &[(&str, Triple)] = &[
            ("1:10.0.2+ds-2+deb13u1~bpo12+1", Some((10, 0, 2))),
            ("1:7.2+dfsg-7+deb12u18+b3", Some((7, 2, 0))),
            ("26.1.5+dfsg1-9+deb13u1+b1", Some((26, 1, 5))),
            ("2.8.2+ds1-1", Some((2, 8, 2))),
        ];
        for (s, want) in debs {
            let got = debian_version(s).map(|v| (v.major, v.minor, v.patch));
            assert_eq!(got, *want, "{s:?}");
        }
        assert!(Version::new(24, 0, 0) > Version::new(20, 10, 24));
        assert!(Version::new(0, 13, 1) > MIN_BUILDX);
    }

    #[test]
    fn host_docker_info_samples() {
        struct Case {
            name: &'static str,
            json: &'static str,
            answered: bool,
            version: Option<Version>,
            store: ImageStore,
            root: &'static str,
        }
        let cases = [
            Case {
                name: "recorded: trixie 26.1.5 with the containerd store",
                json: INFO_CONTAINERD,
                answered: true,
                version: Some(Version::new(26, 1, 5)),
                store: ImageStore::Containerd("overlayfs".into()),
                root: "/var/lib/docker",
            },
            Case {
                name: "recorded: engine not reachable",
                json: INFO_DOWN,
                answered: false,
                version: None,
                store: ImageStore::Classic(String::new()),
                root: "",
            },
            Case {
                name: "classic overlay2 store, 24.0.7",
                json: INFO_CLASSIC,
                answered: true,
                version: Some(Version::new(24, 0, 7)),
                store: ImageStore::Classic("overlay2".into()),
                root: "/var/lib/docker",
            },
            Case {
                name: "bookworm's 20.10",
                json: INFO_BOOKWORM_20,
                answered: true,
                version: Some(Version::new(20, 10, 24)),
                store: ImageStore::Classic("overlay2".into()),
                root: "/var/lib/docker",
            },
        ];
        for c in cases {
            let info = DockerInfo::parse(c.json).unwrap_or_else(|e| panic!("{}: {e:#}", c.name));
            assert_eq!(!info.server_version.is_empty(), c.answered, "{}", c.name);
            assert_eq!(info.version(), c.version, "{}", c.name);
            assert_eq!(info.store(), c.store, "{}", c.name);
            assert_eq!(info.docker_root_dir, c.root, "{}", c.name);
        }
        assert!(DockerInfo::parse("Cannot connect").is_err());
    }

    #[test]
    fn host_buildx_inspect_samples() {
        let amd = Platform::parse("linux/amd64").unwrap();
        let arm = Platform::parse("linux/arm64").unwrap();
        struct Case {
            name: &'static str,
            text: &'static str,
            builder: &'static str,
            driver: &'static str,
            status: &'static str,
            buildkit: &'static str,
            platforms: &'static [&'static str],
            amd64: bool,
            arm64: bool,
        }
        let cases = [
            Case {
                name: "recorded: default docker driver with qemu-aarch64",
                text: INSPECT_DEFAULT,
                builder: "default",
                driver: "docker",
                status: "running",
                buildkit: "v0.0.0+unknown",
                platforms: &["linux/amd64", "linux/amd64/v2", "linux/amd64/v3", "linux/arm64"],
                amd64: true,
                arm64: true,
            },
            Case {
                name: "docker-container builder without emulation",
                text: INSPECT_NO_ARM,
                builder: "builder-5d3f1c",
                driver: "docker-container",
                status: "running",
                buildkit: "v0.18.2",
                platforms: &[
                    "linux/amd64",
                    "linux/amd64/v2",
                    "linux/amd64/v3",
                    "linux/amd64/v4",
                    "linux/386",
                ],
                amd64: true,
                arm64: false,
            },
            Case {
                name: "older buildx: `Buildkit:` and starred platforms",
                text: INSPECT_OLD,
                builder: "multi",
                driver: "docker-container",
                status: "running",
                buildkit: "v0.11.6",
                platforms: &["linux/amd64", "linux/arm64/v8", "linux/386"],
                amd64: true,
                arm64: true,
            },
            Case {
                name: "inactive builder: no platforms yet",
                text: INSPECT_INACTIVE,
                builder: "ci",
                driver: "docker-container",
                status: "inactive",
                buildkit: "",
                platforms: &[],
                amd64: false,
                arm64: false,
            },
        ];
        for c in cases {
            let b = Builder::parse(c.text).unwrap_or_else(|e| panic!("{}: {e:#}", c.name));
            assert_eq!(b.name, c.builder, "{}", c.name);
            assert_eq!(b.driver, c.driver, "{}", c.name);
            assert_eq!(b.status, c.status, "{}", c.name);
            assert_eq!(b.buildkit, c.buildkit, "{}", c.name);
            assert_eq!(b.platforms, c.platforms, "{}", c.name);
            assert_eq!(b.supports(amd, false), c.amd64, "{}", c.name);
            assert_eq!(b.supports(arm, false), c.arm64, "{}", c.name);
        }
        assert!(Builder::parse("ERROR: no builder \"x\" found").is_err());
    }

    #[test]
    fn host_tool_versions() {
        let recorded = include_str!("host/fixtures/buildx-version.txt");
        assert_eq!(parse_buildx_version(recorded), Some(Version::new(0, 13, 1)));
        assert_eq!(
            parse_buildx_version("github.com/docker/buildx v0.19.3 48d6a39"),
            Some(Version::new(0, 19, 3))
        );
        assert_eq!(parse_buildx_version("docker: 'buildx' is not a docker command."), None);
        let dockerd = include_str!("host/fixtures/dockerd-version.txt");
        assert_eq!(parse_dockerd_version(dockerd), Some(Version::new(26, 1, 5)));
        assert_eq!(
            parse_dockerd_version("Docker version 20.10.24+dfsg1, build 297e128"),
            Some(Version::new(20, 10, 24))
        );
    }

    #[test]
    fn host_binfmt_entries_and_handlers() {
        let recorded = BinfmtEntry::parse(include_str!("host/fixtures/binfmt-qemu-aarch64-10.txt"));
        assert_eq!(
            recorded,
            BinfmtEntry {
                enabled: true,
                interpreter: "/usr/libexec/qemu-binfmt/aarch64-binfmt-P".into(),
                flags: "POF".into()
            }
        );
        assert!(recorded.usable());
        let h10 = BinfmtHandler::parse(include_str!("host/fixtures/binfmt-d-qemu-aarch64-10.conf"))
            .unwrap();
        assert_eq!(h10.name, "qemu-aarch64");
        assert_eq!(h10.interpreter, "/usr/libexec/qemu-binfmt/aarch64-binfmt-P");
        assert_eq!(h10.flags, "OPF");
        assert!(h10.line.starts_with(":qemu-aarch64:M::\\x7f\\x45"));
        let h72 =
            BinfmtHandler::parse(include_str!("host/fixtures/binfmt-d-qemu-aarch64-7.2.conf"))
                .unwrap();
        assert_eq!(h72.flags, "OP");
        let arch = BinfmtHandler::parse(
            "# comment\n\n:aarch64:M::\\x7fELF\\x02:\\xff\\xff:/usr/bin/qemu-aarch64-static:FPC\n",
        )
        .unwrap();
        assert_eq!((arch.name.as_str(), arch.flags.as_str()), ("aarch64", "FPC"));
        assert!(BinfmtHandler::parse(":qemu-aarch64:M::\\x7f").is_err());
        assert!(BinfmtHandler::parse("# only a comment\n").is_err());

        let entry = |enabled: bool, interp: &str, flags: &str| BinfmtEntry {
            enabled,
            interpreter: interp.into(),
            flags: flags.into(),
        };
        let p = "/usr/libexec/qemu-binfmt/aarch64-binfmt-P";
        let cases: Vec<(&str, Option<BinfmtEntry>, Option<&BinfmtHandler>, &str)> = vec![
            ("recorded, matches qemu 10's file", Some(recorded.clone()), Some(&h10), "ready"),
            (
                "registered by other means",
                Some(entry(true, "/usr/bin/qemu-aarch64", "POCF")),
                None,
                "ready",
            ),
            ("missing", None, Some(&h10), "missing"),
            ("missing, nothing installed", None, None, "missing"),
            ("disabled", Some(entry(false, p, "POF")), Some(&h10), "unusable"),
            ("7.2 registration lacks F", Some(entry(true, p, "PO")), Some(&h10), "unusable"),
            (
                "binfmt-support 7.2 static, qemu 10 installed",
                Some(entry(true, "/usr/bin/qemu-aarch64-static", "PF")),
                Some(&h10),
                "stale",
            ),
        ];
        for (name, entry, h, want) in cases {
            let probe = probe::BinfmtProbe {
                platform: Platform::parse("arm64").unwrap(),
                mounted: true,
                handler: h.map(|h| (String::new(), h.clone())),
                entry_name: String::new(),
                entry,
            };
            let got = match probe.status() {
                probe::BinfmtStatus::Ready => "ready",
                probe::BinfmtStatus::Stale { .. } => "stale",
                probe::BinfmtStatus::Unusable(_) => "unusable",
                probe::BinfmtStatus::Missing => "missing",
            };
            assert_eq!(got, want, "{name}");
        }
        assert_eq!(
            binfmt_handler_paths("aarch64"),
            [
                "/etc/binfmt.d/qemu-aarch64.conf",
                "/etc/binfmt.d/qemu-aarch64-static.conf",
                "/usr/lib/binfmt.d/qemu-aarch64.conf",
                "/usr/lib/binfmt.d/qemu-aarch64-static.conf"
            ]
        );
    }

    #[test]
    fn host_os_release_and_engine_source() {
        let bookworm = OsRelease::parse(include_str!("host/fixtures/os-release-bookworm"));
        assert_eq!(bookworm.id, "debian");
        assert_eq!(bookworm.codename, "bookworm");
        assert_eq!(bookworm.pretty_name, "Debian GNU/Linux 12 (bookworm)");
        let os = |text: &str| OsRelease::parse(text);
        let cases: Vec<(&str, OsRelease, Distro, &str)> = vec![
            ("recorded bookworm", bookworm.clone(), Distro::Debian, "bookworm"),
            (
                "trixie",
                os("ID=debian\nVERSION_ID=\"13\"\nVERSION_CODENAME=trixie"),
                Distro::Debian,
                "archive",
            ),
            (
                "sid has no VERSION_ID",
                os("ID=debian\nPRETTY_NAME=\"Debian GNU/Linux trixie/sid\""),
                Distro::Debian,
                "archive",
            ),
            (
                "bullseye",
                os("ID=debian\nVERSION_ID=\"11\"\nVERSION_CODENAME=bullseye"),
                Distro::Debian,
                "unsupported",
            ),
            (
                "noble",
                os("ID=ubuntu\nID_LIKE=debian\nVERSION_ID=\"24.04\"\nVERSION_CODENAME=noble"),
                Distro::Ubuntu,
                "archive",
            ),
            (
                "jammy",
                os("ID=ubuntu\nID_LIKE=debian\nVERSION_ID=\"22.04\""),
                Distro::Ubuntu,
                "archive",
            ),
            (
                "focal",
                os("ID=ubuntu\nID_LIKE=debian\nVERSION_ID=\"20.04\""),
                Distro::Ubuntu,
                "unsupported",
            ),
            (
                "mint",
                os("ID=linuxmint\nID_LIKE=\"ubuntu debian\"\nVERSION_ID=\"21.3\""),
                Distro::Ubuntu,
                "archive",
            ),
            (
                "raspbian bookworm",
                os("ID=raspbian\nID_LIKE=debian\nVERSION_CODENAME=bookworm"),
                Distro::Debian,
                "bookworm",
            ),
            ("fedora", os("ID=fedora\nVERSION_ID=40"), Distro::Other, "unsupported"),
            ("alpine single quotes", os("ID='alpine'"), Distro::Other, "unsupported"),
        ];
        for (name, o, distro, source) in cases {
            assert_eq!(o.distro(), distro, "{name}");
            let got = match engine_source(&o) {
                EngineSource::Bookworm => "bookworm",
                EngineSource::Archive => "archive",
                EngineSource::Unsupported(_) => "unsupported",
            };
            assert_eq!(got, source, "{name}");
        }
        assert_eq!(os("ID='alpine'").id, "alpine");
    }

    #[test]
    fn host_dpkg_and_df() {
        let recorded = parse_dpkg_query(include_str!("host/fixtures/dpkg-query.txt"));
        assert_eq!(
            recorded.get("docker.io").map(String::as_str),
            Some("26.1.5+dfsg1-9+deb13u1+b1")
        );
        assert_eq!(
            recorded.get("qemu-user-binfmt").map(String::as_str),
            Some("1:10.0.2+ds-2+deb13u1~bpo12+1")
        );
        assert!(!recorded.contains_key("apache2-utils"));
        let partial =
            parse_dpkg_query("runc\tconfig-files\t1.1.5\ntini\tinstalled\t0.19.0-1\nbroken line\n");
        assert_eq!(partial.keys().collect::<Vec<_>>(), ["tini"]);
        assert_eq!(human_bytes(MIN_FREE_DISK), "10.0 GiB");
    }

    #[test]
    fn host_daemon_json_merge() {
        let want = serde_json::json!({"features": {"containerd-snapshotter": true}});
        let cases: &[(&str, Option<&str>, Option<serde_json::Value>)] = &[
            ("absent", None, Some(want.clone())),
            ("blank", Some("  \n"), Some(want.clone())),
            ("recorded, already on", Some(r#"{"features":{"containerd-snapshotter":true}}"#), None),
            (
                "other keys kept",
                Some(r#"{"log-driver":"local","features":{"buildkit":true}}"#),
                Some(
                    serde_json::json!({"log-driver":"local","features":{"buildkit":true,"containerd-snapshotter":true}}),
                ),
            ),
            (
                "explicitly off",
                Some(r#"{"features":{"containerd-snapshotter":false}}"#),
                Some(want.clone()),
            ),
        ];
        for (name, input, expect) in cases {
            let got = merge_daemon_json(*input).unwrap_or_else(|e| panic!("{name}: {e:#}"));
            let got: Option<serde_json::Value> = got.map(|s| {
                assert!(s.ends_with('\n'), "{name}");
                serde_json::from_str(&s).unwrap()
            });
            assert_eq!(&got, expect, "{name}");
        }
        for bad in ["[1]", "{", r#"{"features":[]}"#] {
            let err = merge_daemon_json(Some(bad)).expect_err(bad).to_string();
            assert!(err.contains("/etc/docker/daemon.json"), "{bad}: {err}");
        }
    }

    #[test]
    fn host_http_status_and_password() {
        assert_eq!(parse_http_status("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"), Some(200));
        assert_eq!(parse_http_status("HTTP/1.0 401 Unauthorized\r\n"), Some(401));
        assert_eq!(parse_http_status("SSH-2.0-OpenSSH_9.2\r\n"), None);
        assert_eq!(parse_http_status(""), None);
    }

    #[test]
    fn host_tail() {
        let f = std::env::temp_dir().join(format!("xtask-host-tail-{}", std::process::id()));
        for (text, n, want) in [("a\nb\nc\n", 2, "b\nc"), ("a", 5, "a")] {
            std::fs::write(&f, text).unwrap();
            assert_eq!(probe::log_tail(&f, n), want);
        }
        std::fs::remove_file(&f).unwrap();
        assert!(probe::log_tail(&f, 1).starts_with("(cannot read "));
    }
}
