//! The one declaration of what brokkr ships: its components and the platforms
//! they are built for. Everything else (CLI help, Dockerfile checks, the
//! workflow matrix check, plans) reads these tables; nothing copies them.

use std::fmt;

use anyhow::{anyhow, ensure, Result};

/// A service shipped as a container image.
#[derive(Debug, PartialEq, Eq)]
pub struct Component {
    /// Short name on the command line and in the workflow matrix (`broker`).
    pub name: &'static str,
    pub package: &'static str,
    /// Binary target inside the package; also the image's entrypoint.
    pub binary: &'static str,
    /// Relative to the workspace root, which is the build context.
    pub dockerfile: &'static str,
    /// TCP port the service listens on inside the container (`EXPOSE`).
    pub port: u16,
    /// The `org.opencontainers.image.description` label when Cargo.toml has none.
    pub description: &'static str,
}

impl Component {
    /// `brokkr-<name>`.
    pub fn image_name(&self) -> String {
        format!("brokkr-{}", self.name)
    }
}

impl fmt::Display for Component {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

pub static COMPONENTS: &[Component] = &[
    Component {
        name: "broker",
        package: "brokkr-broker",
        binary: "brokkr-broker",
        dockerfile: "Dockerfile.broker",
        port: 3000,
        description: "Brokkr control-plane broker",
    },
    Component {
        name: "agent",
        package: "brokkr-agent",
        binary: "brokkr-agent",
        dockerfile: "Dockerfile.agent",
        port: 8080,
        description: "Brokkr agent that watches the broker",
    },
];

/// The default `--registry` outside GitHub Actions.
pub const LOCAL_REGISTRY: &str = "localhost:5000";
/// Port of the password-protected loopback registry (`registry start --auth`).
pub const AUTH_PORT: u16 = 5001;
pub const LOCAL_BASE_PREFIX: &str = "brokkr.local/base";

/// A target platform in OCI terms (`os/arch[/variant]`) with what building for it needs.
#[derive(Debug, PartialEq, Eq)]
pub struct Platform {
    /// `linux/arm64`.
    pub name: &'static str,
    /// Docker's `TARGETARCH`, Debian's architecture name, the per-commit reference's suffix.
    pub arch: &'static str,
    pub rust_target: &'static str,
    /// GNU tool prefix of the C cross compiler and linker (`aarch64-linux-gnu` gives
    /// `aarch64-linux-gnu-gcc`), as Debian's `gcc-<prefix>` packages install it.
    pub gnu_prefix: &'static str,
    /// Architecture as `uname -m` and `--version` of our binaries report it.
    pub machine: &'static str,
    pub aliases: &'static [&'static str],
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

pub static PLATFORMS: &[Platform] = &[
    Platform {
        name: "linux/amd64",
        arch: "amd64",
        rust_target: "x86_64-unknown-linux-gnu",
        gnu_prefix: "x86_64-linux-gnu",
        machine: "x86_64",
        aliases: &["amd64", "x86_64", "x86-64"],
    },
    Platform {
        name: "linux/arm64",
        arch: "arm64",
        rust_target: "aarch64-unknown-linux-gnu",
        gnu_prefix: "aarch64-linux-gnu",
        machine: "aarch64",
        aliases: &["arm64", "aarch64", "linux/arm64/v8", "arm64/v8"],
    },
];

impl Platform {
    /// The platform this xtask runs on (the build platform).
    pub fn host() -> Result<&'static Platform> {
        let arch = std::env::consts::ARCH;
        PLATFORMS.iter().find(|p| p.machine == arch).ok_or_else(|| {
            anyhow!("this host's architecture `{arch}` is not a supported build platform; supported: {}", platform_names())
        })
    }

    /// One platform name or alias, case-insensitive.
    pub fn parse(s: &str) -> Result<&'static Platform> {
        let wanted = s.trim().to_ascii_lowercase();
        let found = PLATFORMS.iter().find(|p| p.name == wanted || p.aliases.contains(&&*wanted));
        let aliases = PLATFORMS.iter().flat_map(|p| p.aliases.to_vec()).collect::<Vec<_>>();
        let (names, aliases) = (platform_names(), aliases.join(", "));
        found.ok_or_else(|| {
            anyhow!("unknown platform `{s}`; supported: {names} (or `all`; aliases: {aliases})")
        })
    }
}

/// `linux/amd64, linux/arm64`, for messages.
pub fn platform_names() -> String {
    PLATFORMS.iter().map(|p| p.name).collect::<Vec<_>>().join(", ")
}

/// `broker, agent`, for messages.
pub fn component_names() -> String {
    COMPONENTS.iter().map(|c| c.name).collect::<Vec<_>>().join(", ")
}

/// A comma-separated list of names (`one`) or `all`, in `table`'s order, without duplicates.
fn pick<T: PartialEq>(
    s: &str,
    table: &'static [T],
    one: impl Fn(&str) -> Result<&'static T>,
) -> Result<Vec<&'static T>> {
    let mut picked = Vec::new();
    for part in s.split(',').map(str::trim) {
        let all = part.eq_ignore_ascii_case("all");
        picked.extend(if all { table.iter().collect() } else { vec![one(part)?] });
    }
    Ok(table.iter().filter(|x| picked.contains(x)).collect())
}

/// Platforms as given on the command line: names, aliases or `all`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlatformList(pub Vec<&'static Platform>);

impl PlatformList {
    pub fn or_host(list: Option<PlatformList>) -> Result<Vec<&'static Platform>> {
        list.map_or_else(|| Ok(vec![Platform::host()?]), |l| Ok(l.0))
    }

    pub fn or_all(list: Option<PlatformList>) -> Vec<&'static Platform> {
        list.map_or_else(|| PLATFORMS.iter().collect(), |l| l.0)
    }
}

/// Components: names, package names (`brokkr-agent`) or `all`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ComponentList(pub Vec<&'static Component>);

impl ComponentList {
    pub fn or_all(list: Option<ComponentList>) -> Vec<&'static Component> {
        list.map_or_else(|| COMPONENTS.iter().collect(), |l| l.0)
    }
}

/// One component by name or package name, case-insensitive.
pub fn component(s: &str) -> Result<&'static Component> {
    let wanted = s.trim().to_ascii_lowercase();
    let found = COMPONENTS.iter().find(|c| c.name == wanted || c.package == wanted);
    found.ok_or_else(|| anyhow!("unknown component `{s}`; supported: {}", component_names()))
}

// clap value parsers (clap shows an error's message).
pub use self::component as parse_component;

pub fn parse_platform_list(s: &str) -> Result<PlatformList> {
    let one = |p: &str| {
        ensure!(!p.is_empty(), "empty platform in `{s}`; supported: {}", platform_names());
        Platform::parse(p)
    };
    Ok(PlatformList(pick(s, PLATFORMS, one)?))
}

pub fn parse_component_list(s: &str) -> Result<ComponentList> {
    let one = |c: &str| component(c).map_err(|e| anyhow!("{e} (or `all`)"));
    Ok(ComponentList(pick(s, COMPONENTS, one)?))
}

/// One `--component` of `build-image`: `all` or a list points to `images`.
pub fn parse_one_component(s: &str) -> Result<&'static Component> {
    ensure!(
        !s.eq_ignore_ascii_case("all") && !s.contains(','),
        "build-image builds one component (one of: {}); for `{s}` use `cargo xtask images --component {s}`",
        component_names()
    );
    component(s)
}

/// `--registry HOST[:PORT][/PATH]`: not empty, a port from 1 to 65535; the reference grammar is
/// checked on use (`metadata::check_registry`).
pub fn parse_registry(s: &str) -> Result<String> {
    let r = s.trim().trim_end_matches('/');
    ensure!(
        !r.is_empty(),
        "the registry is empty; give HOST[:PORT][/PATH] such as `{LOCAL_REGISTRY}` or `ghcr.io/owner`, \
         or leave --registry (and BROKKR_REGISTRY) out for the default"
    );
    let host = r.split('/').next().unwrap_or_default();
    if let Some((_, port)) = host.rsplit_once(':').filter(|_| !host.starts_with('[')) {
        ensure!(
            matches!(port.parse::<u16>(), Ok(1..)),
            "invalid port `{port}` in registry `{r}`: a port is a number from 1 to 65535"
        );
    }
    Ok(r.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(l: &PlatformList) -> Vec<&'static str> {
        l.0.iter().map(|p| p.name).collect()
    }

    #[test]
    fn platform_spellings() {
        let cases: &[(&str, &[&str])] = &[
            ("arm64", &["linux/arm64"]),
            ("aarch64", &["linux/arm64"]),
            ("linux/arm64", &["linux/arm64"]),
            ("linux/arm64/v8", &["linux/arm64"]),
            ("ARM64", &["linux/arm64"]),
            ("amd64", &["linux/amd64"]),
            ("x86_64", &["linux/amd64"]),
            ("x86-64", &["linux/amd64"]),
            ("linux/amd64", &["linux/amd64"]),
            ("arm64,amd64", &["linux/amd64", "linux/arm64"]),
            ("amd64, linux/amd64", &["linux/amd64"]),
            ("all", &["linux/amd64", "linux/arm64"]),
            ("all,arm64", &["linux/amd64", "linux/arm64"]),
        ];
        for (input, want) in cases {
            let got = parse_platform_list(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(names(&got), *want, "input {input}");
        }
    }

    #[test]
    fn platform_errors_list_the_supported_ones() {
        for bad in ["riscv64", "linux/arm/v7", "", "arm64,", "windows/amd64"] {
            let err = parse_platform_list(bad).expect_err(bad).to_string();
            assert!(
                err.contains("linux/amd64, linux/arm64"),
                "{bad}: error does not list platforms: {err}"
            );
        }
    }

    #[test]
    fn components() {
        let cases: &[(&str, &[&str])] = &[
            ("broker", &["broker"]),
            ("agent,broker", &["broker", "agent"]),
            ("brokkr-agent", &["agent"]),
            ("all", &["broker", "agent"]),
        ];
        for (input, want) in cases {
            let got: Vec<_> = parse_component_list(input)
                .unwrap_or_else(|e| panic!("{input}: {e}"))
                .0
                .iter()
                .map(|c| c.name)
                .collect();
            assert_eq!(got, *want, "input {input}");
        }
        for bad in ["agent-ui", "brokr", ""] {
            let err = parse_component_list(bad).expect_err(bad).to_string();
            assert!(err.contains("broker, agent"), "{bad}: {err}");
        }
    }

    #[test]
    fn host_is_supported_here() {
        assert!(Platform::host().is_ok());
    }

    #[test]
    fn declarations_are_consistent() {
        for p in PLATFORMS {
            assert_eq!(p.name, format!("linux/{}", p.arch));
            assert!(p.rust_target.starts_with(p.machine));
            assert!(p.rust_target.ends_with("-linux-gnu"));
        }
        for c in COMPONENTS {
            assert_eq!(c.package, format!("brokkr-{}", c.name));
            assert_eq!(c.image_name(), c.package);
            assert_eq!(c.dockerfile, format!("Dockerfile.{}", c.name));
        }
    }

    #[test]
    fn registries_checked_at_parse_time() {
        assert_eq!(parse_registry("localhost:5000/").unwrap(), "localhost:5000");
        assert_eq!(parse_registry("ghcr.io/acme").unwrap(), "ghcr.io/acme");
        assert_eq!(parse_registry("localhost:65535").unwrap(), "localhost:65535");
        for (bad, want) in [
            ("", "the registry is empty"),
            ("  ", "the registry is empty"),
            ("localhost:0", "invalid port `0`"),
            ("localhost:99999", "invalid port `99999`"),
            ("localhost:", "invalid port ``"),
            ("localhost:50a0/x", "invalid port `50a0`"),
        ] {
            let err = parse_registry(bad).unwrap_err().to_string();
            assert!(err.contains(want), "{bad:?}: {err}");
        }
    }

    #[test]
    fn build_image_takes_one_component() {
        assert_eq!(parse_one_component("agent").unwrap().name, "agent");
        for s in ["all", "broker,agent"] {
            let err = parse_one_component(s).unwrap_err().to_string();
            assert!(err.contains(&format!("cargo xtask images --component {s}")), "{err}");
        }
    }
}
