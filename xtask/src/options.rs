//! Options shared by several commands (which images, how to build them) and
//! the paths they take; each command's own options live beside its code.

use std::path::{Path, PathBuf};

use anyhow::{ensure, Context as _, Result};
use clap::{Args, ValueEnum};

use crate::{
    buildx::{CacheKind, Progress, Strategy},
    project::{parse_component_list, parse_platform_list, Component, ComponentList, PlatformList},
};

/// Options shared by the commands that build images.
#[derive(Clone, Debug, Default, Args)]
pub struct BuildOpts {
    /// Where rustc runs: `cross` compiles on the build platform for the target; `emulate` under QEMU.
    #[arg(long, value_enum, default_value_t = Strategy::Cross)]
    pub strategy: Strategy,
    /// Registry prefix of image names (`localhost:5000`, `ghcr.io/OWNER`); default:
    /// `ghcr.io/<owner>` in GitHub Actions, `localhost:5000` outside it.
    #[arg(long, env = "BROKKR_REGISTRY", value_parser = crate::project::parse_registry)]
    pub registry: Option<String>,
    /// Build cache to import and export, one scope per component and platform.
    #[arg(long, value_enum, default_value_t = CacheKind::None)]
    pub cache: CacheKind,
    /// Import the build cache (`--cache`) but never export it, as pull requests do.
    #[arg(long)]
    pub cache_read_only: bool,
    /// buildx progress output; `plain` lets xtask count cached steps.
    #[arg(long, value_enum, default_value_t = Progress::Plain)]
    pub progress: Progress,
    /// Base images: upstream (`rust:*-slim-bookworm`, distroless) or local substitutes from Debian's archive.
    #[arg(long, value_enum, default_value_t = Bases::Auto)]
    pub bases: Bases,
    /// CA bundle (PEM) that cargo trusts inside the build, for TLS-intercepting proxies; `none` for
    /// none. Default: $SSL_CERT_FILE, else the host's /etc/ssl/certs/ca-certificates.crt. Passed as a
    /// build secret, never stored in an image.
    #[arg(long, env = "BROKKR_CA_BUNDLE", value_name = "PATH|none")]
    pub ca_bundle: Option<String>,
    /// Any new value rebuilds every compile stage (the `BROKKR_CACHE_EPOCH` build argument): a
    /// cold build without pruning the builder's cache.
    #[arg(long, value_name = "STRING")]
    pub cache_epoch: Option<String>,
    /// The buildx builder to build on (a remote BuildKit, a multi-node builder, a docker context's
    /// engine); default: $BUILDX_BUILDER, else the current one.
    #[arg(long, value_name = "NAME")]
    pub builder: Option<String>,
    /// Do not install or start missing host pieces (engine, buildx, QEMU); fail with the remedy instead.
    #[arg(long)]
    pub no_setup: bool,
    /// Print the commands that would run, and run nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// Which base images the Dockerfiles use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Bases {
    /// Upstream images when their registry answers, the local substitutes otherwise.
    #[default]
    Auto,
    /// Always the upstream images (`rust:*-slim-bookworm`, distroless `cc`).
    Upstream,
    /// Always the local substitutes, built from Debian's archive when missing.
    Local,
}

/// Which images a command works on: components times platforms.
#[derive(Clone, Debug, Args)]
pub struct Selection {
    /// Components (`broker`, `agent`, a comma-separated list or `all`); default: all.
    #[arg(long, value_parser = parse_component_list)]
    pub component: Option<ComponentList>,
    /// Platforms (`arm64`, `linux/amd64,linux/arm64`, `all`); default: the host's.
    #[arg(long, value_parser = parse_platform_list)]
    pub platform: Option<PlatformList>,
}

impl Selection {
    pub fn components(&self) -> Vec<&'static Component> {
        ComponentList::or_all(self.component.clone())
    }

    pub fn platforms(&self) -> Result<Vec<&'static crate::project::Platform>> {
        PlatformList::or_host(self.platform.clone())
    }
}

/// The CA bundle to pass to builds: `--ca-bundle` / `BROKKR_CA_BUNDLE` (`none` or empty: off),
/// else `$SSL_CERT_FILE` (reported and skipped when no file), else the host's Debian/Ubuntu
/// bundle when it exists. Relative paths are from the directory xtask was started in. An error
/// when it is not a readable PEM bundle (`-----BEGIN CERTIFICATE-----`).
pub fn ca_bundle(flag: Option<&str>) -> Result<Option<PathBuf>> {
    const HOST_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";
    let env = std::env::var_os("SSL_CERT_FILE").filter(|f| !f.is_empty());
    let path = match (flag, env.map(|f| absolute(Path::new(&f)))) {
        (Some(v), _) => {
            (!v.is_empty() && !v.eq_ignore_ascii_case("none")).then(|| absolute(Path::new(v)))
        }
        (None, Some(f)) if f.is_file() => Some(f),
        (None, env) => {
            if let Some(f) = env {
                eprintln!("warning: SSL_CERT_FILE={} is not a file; using {HOST_BUNDLE} if present (--ca-bundle sets one)", f.display());
            }
            Some(PathBuf::from(HOST_BUNDLE)).filter(|p| p.is_file())
        }
    };
    let Some(path) = path else { return Ok(None) };
    let text = std::fs::read(&path).with_context(|| {
        format!("--ca-bundle {}: cannot read it; pass a PEM bundle, or `none`", path.display())
    })?;
    ensure!(
        String::from_utf8_lossy(&text).contains("-----BEGIN CERTIFICATE-----"),
        "--ca-bundle {}: {} holds no PEM certificate (`-----BEGIN CERTIFICATE-----`); pass a PEM \
             bundle such as /etc/ssl/certs/ca-certificates.crt, or `none`",
        path.display(),
        if text.is_empty() { "the file is empty and" } else { "it" }
    );
    Ok(Some(path))
}

/// `path` made absolute against the directory xtask was started in (not the workspace root).
pub fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// clap value parser for file arguments: [`absolute`].
pub fn absolute_path(s: &str) -> std::result::Result<PathBuf, String> {
    Ok(absolute(Path::new(s)))
}

#[cfg(test)]
mod tests {
    #[test]
    fn ca_bundle_must_be_pem() {
        let dir = std::env::temp_dir().join(format!("xtask-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cases = [
            ("empty.pem", "", Some("the file is empty")),
            ("der.crt", "0\u{82}\u{3}binary", Some("holds no PEM certificate")),
            ("ok.pem", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n", None),
        ];
        for (name, body, want) in cases {
            let p = dir.join(name);
            std::fs::write(&p, body).unwrap();
            match (super::ca_bundle(p.to_str()), want) {
                (Ok(Some(got)), None) => assert_eq!(got, p),
                (Err(e), Some(w)) => assert!(e.to_string().contains(w), "{name}: {e}"),
                (got, _) => panic!("{name}: {got:?}"),
            }
        }
        let err = super::ca_bundle(dir.join("absent.pem").to_str()).unwrap_err();
        assert!(err.to_string().contains("cannot read it"), "{err}");
        assert_eq!(super::ca_bundle(Some("none")).unwrap(), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
