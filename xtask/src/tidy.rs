//! Tidy checks that run under `cargo test`: formatting, doc comments, help
//! text, README, and the files that must agree with `project.rs` (the
//! Dockerfiles and `docker/cargo-env.sh`).

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use clap::CommandFactory;

use crate::{
    cli::Cli,
    project::{COMPONENTS, PLATFORMS},
    project_root,
};

fn read(path: &str) -> String {
    std::fs::read_to_string(project_root().join(path))
        .unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let p = entry.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn formatting() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let out = Command::new(cargo)
        .args(["fmt", "--all", "--", "--check"])
        .current_dir(project_root())
        .output()
        .expect("running cargo fmt");
    assert!(
        out.status.success(),
        "run `cargo fmt --all`:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// Every module file opens with `//!` docs that say what it is for. Items
/// carry `///` docs where they add what the name and type don't (formats,
/// units, errors, the source of a rule); that is for review, not for a test.
#[test]
fn modules_are_documented() {
    let mut files = Vec::new();
    for dir in ["xtask/src", "broker/src", "agent/src"] {
        rust_files(&project_root().join(dir), &mut files);
    }
    let missing: Vec<String> = files
        .iter()
        .filter(|f| !f.ends_with("tests.rs"))
        .filter(|f| {
            let text = std::fs::read_to_string(f).unwrap();
            !text.trim_start().starts_with("//!")
        })
        .map(|f| f.display().to_string())
        .collect();
    assert!(missing.is_empty(), "module files without `//!` docs:\n{}", missing.join("\n"));
}

/// Every command and flag has help text (clap takes it from the doc comments).
#[test]
fn every_command_and_flag_has_help() {
    fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
        for a in cmd.get_arguments() {
            let builtin = matches!(a.get_id().as_str(), "help" | "version");
            if !builtin && a.get_help().is_none() {
                missing.push(format!("{path} {}", a.get_id()));
            }
        }
        for sub in cmd.get_subcommands() {
            let p = format!("{path} {}", sub.get_name());
            if sub.get_about().is_none() && sub.get_name() != "help" {
                missing.push(p.clone());
            }
            walk(sub, &p, missing);
        }
    }
    let cmd = Cli::command();
    cmd.clone().debug_assert();
    let mut missing = Vec::new();
    walk(&cmd, "cargo xtask", &mut missing);
    assert!(missing.is_empty(), "no help text: {missing:?}");
}

/// README.md's quick start shows the two commands and its command table
/// lists exactly the subcommands; .ci/run runs the README's test command.
#[test]
fn readme_matches_the_cli() {
    let readme = read("README.md");
    assert!(readme.contains("cargo xtask images --platform arm64"), "quick start: main command");
    assert!(readme.contains("cargo xtask ci"), "quick start: test command");
    for sub in Cli::command().get_subcommands() {
        let row = format!("| `{}` |", sub.get_name());
        assert!(readme.contains(&row), "README.md's command table lacks `{}`", sub.get_name());
    }
    let names: Vec<String> =
        Cli::command().get_subcommands().map(|c| c.get_name().to_owned()).collect();
    let table = readme.split("## Command reference").nth(1).unwrap_or_default();
    for row in table.lines().filter(|l| l.starts_with("| `")) {
        let name = row.trim_start_matches("| `").split('`').next().unwrap_or_default();
        assert!(
            names.iter().any(|n| n == name),
            "README.md's command table lists `{name}`, which `cargo xtask` lacks"
        );
    }
    assert!(
        read(".ci/run").contains("cargo xtask ci"),
        ".ci/run must run the README's test command"
    );
}

/// The Dockerfiles agree with `project.rs`, and the stages before `runtime`
/// are identical in both (so BuildKit builds them once per platform).
#[test]
fn dockerfiles_match_the_components() {
    let shared = |text: &str| -> String {
        let head = text.split("FROM ${RUNTIME_IMAGE} AS runtime").next().unwrap_or_default();
        head.lines().filter(|l| !l.trim_start().starts_with('#')).collect::<Vec<_>>().join("\n")
    };
    let first = shared(&read(COMPONENTS[0].dockerfile));
    for c in COMPONENTS {
        let text = read(c.dockerfile);
        assert_eq!(
            shared(&text),
            first,
            "{}: the stages before `runtime` differ from {}",
            c.dockerfile,
            COMPONENTS[0].dockerfile
        );
        let runtime =
            text.split("FROM ${RUNTIME_IMAGE} AS runtime").nth(1).expect("a runtime stage");
        let bin = format!("/usr/local/bin/{}", c.binary);
        for want in [
            format!("COPY --from=build /out/{} {bin}", c.binary),
            format!("EXPOSE {}", c.port),
            format!("ENTRYPOINT [\"{bin}\"]"),
            format!("CMD [\"{bin}\", \"healthcheck\"]"),
            "USER 65532:65532".to_owned(),
        ] {
            assert!(runtime.contains(&want), "{}: runtime stage lacks `{want}`", c.dockerfile);
        }
        for other in COMPONENTS {
            assert!(
                text.contains(&format!("--package {}", other.package)),
                "{}: builds {}",
                c.dockerfile,
                other.package
            );
            assert!(
                text.contains(&format!("release/{}\"", other.binary)),
                "{}: copies out {}",
                c.dockerfile,
                other.binary
            );
        }
    }
}

/// `docker/cargo-env.sh` maps each TARGETARCH to the same triple and cross
/// compiler as `project.rs`, and fails before cargo when the compiler is
/// missing (cases B8, B9) or the architecture is unknown.
#[test]
fn cargo_env_matches_the_platforms_and_fails_early() {
    let script = read("docker/cargo-env.sh");
    for p in PLATFORMS {
        let line =
            format!("{}) RUST_TARGET={}; brokkr_gnu={} ;;", p.arch, p.rust_target, p.gnu_prefix);
        assert!(script.contains(&line), "cargo-env.sh lacks `{line}`");
    }
    // A PATH holding only `tr`: no cross compiler, no rustc.
    let bin = std::env::temp_dir().join(format!("brokkr-tidy-{}", std::process::id()));
    std::fs::create_dir_all(&bin).unwrap();
    let _ = std::os::unix::fs::symlink(which::which("tr").unwrap(), bin.join("tr"));
    let source = |arch: &str| {
        Command::new("/bin/sh")
            .arg("-c")
            .arg(". ./docker/cargo-env.sh")
            .current_dir(project_root())
            .env_clear()
            .env("PATH", &bin)
            .env("TARGETARCH", arch)
            .output()
            .unwrap()
    };
    for p in PLATFORMS {
        let out = source(p.arch);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{}: must fail without a C compiler", p.arch);
        assert!(
            err.contains(&format!("{}-gcc", p.gnu_prefix)) && err.contains(p.rust_target),
            "{}: {err}",
            p.arch
        );
    }
    let out = source("riscv64");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("supported: amd64, arm64"));
    let _ = std::fs::remove_dir_all(&bin);
}

/// No command line is handed to a shell: commands are built as values.
#[test]
fn no_shell_strings() {
    let mut files = Vec::new();
    rust_files(&project_root().join("xtask/src"), &mut files);
    let mut hits = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        for (i, l) in code.lines().enumerate() {
            let shell =
                ["Cmd::new(\"sh\")", "Cmd::new(\"bash\")", "\"sh\", \"-c\"", "\"bash\", \"-c\""];
            if shell.iter().any(|s| l.contains(s)) {
                hits.push(format!("{}:{}: {}", f.display(), i + 1, l.trim()));
            }
        }
    }
    assert!(hits.is_empty(), "shell strings in xtask:\n{}", hits.join("\n"));
}

/// The top-level modules a file's non-test code refers to: `crate::NAME`
/// paths and the first segment of each item in `use crate::{...}`.
fn crate_refs(text: &str) -> Vec<String> {
    let code: String = text
        .split("\n#[cfg(test)]")
        .next()
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let code = code.as_str();
    let mut refs: Vec<String> = code
        .match_indices("crate::")
        .map(|(i, m)| {
            code[i + m.len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect()
        })
        .collect();
    for (i, _) in code.match_indices("use crate::{") {
        let (mut depth, mut item) = (0, String::new());
        for c in code[i + "use crate::{".len()..].chars() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => break,
                '}' => depth -= 1,
                ',' if depth == 0 => refs.push(std::mem::take(&mut item)),
                _ if depth == 0 => item.push(c),
                _ => {}
            }
        }
        refs.push(item);
    }
    refs.iter()
        .map(|r| r.trim().split("::").next().unwrap_or_default().to_owned())
        .filter(|r| !r.is_empty() && r != "self")
        .collect()
}

/// Commands sit above shared logic, shared logic above plumbing: the
/// top-level modules of the xtask (`main.rs` and tests aside) form no cycle.
#[test]
fn no_module_cycles() {
    use std::collections::{BTreeMap, BTreeSet};
    let src = project_root().join("xtask/src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut deps: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in &files {
        let rel = f.strip_prefix(&src).unwrap();
        let top = rel.components().next().unwrap().as_os_str().to_string_lossy();
        let top = top.trim_end_matches(".rs").to_owned();
        if ["main", "tidy"].contains(&top.as_str()) || f.ends_with("tests.rs") {
            continue;
        }
        let refs = crate_refs(&std::fs::read_to_string(f).unwrap());
        let entry = deps.entry(top.clone()).or_default();
        entry.extend(refs.into_iter().filter(|r| *r != top));
    }
    // Depth-first search; a back edge closes a cycle.
    fn visit(
        m: &str,
        deps: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| p == m) {
            let mut cycle = path[i..].to_vec();
            cycle.push(m.to_owned());
            return Some(cycle);
        }
        if !done.insert(m.to_owned()) {
            return None;
        }
        path.push(m.to_owned());
        for d in deps.get(m).into_iter().flatten() {
            if deps.contains_key(d) {
                if let Some(c) = visit(d, deps, path, done) {
                    return Some(c);
                }
            }
        }
        path.pop();
        None
    }
    let mut done = BTreeSet::new();
    for m in deps.keys() {
        if let Some(cycle) = visit(m, &deps, &mut Vec::new(), &mut done) {
            panic!("module cycle: {}", cycle.join(" -> "));
        }
    }
}

/// Issue 11's measures, watched as features land: the code before a file's
/// first `#[cfg(test)]` (tests.rs and this file aside) is at most
/// [`MAX_LINES`] in all and [`MAX_FILE_LINES`] per file, and no function in it
/// is longer than [`MAX_FN_LINES`] (from its `fn` line to the `}` at its indentation).
#[test]
fn size_budget() {
    const MAX_LINES: usize = 9_500;
    const MAX_FILE_LINES: usize = 900;
    const MAX_FN_LINES: usize = 150;
    let src = project_root().join("xtask/src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let fn_start = regex::Regex::new(r"^\s*(pub(\([a-z]+\))? )?(const |async )?fn \w+").unwrap();
    let (mut total, mut problems) = (0, Vec::new());
    for f in files.iter().filter(|f| !f.ends_with("tests.rs") && !f.ends_with("tidy.rs")) {
        let text = std::fs::read_to_string(f).unwrap();
        let lines: Vec<&str> =
            text.lines().take_while(|l| !l.starts_with("#[cfg(test)]")).collect();
        let name = f.strip_prefix(&src).unwrap().display();
        total += lines.len();
        if lines.len() > MAX_FILE_LINES {
            problems.push(format!("{name}: {} lines (at most {MAX_FILE_LINES})", lines.len()));
        }
        let indent = |l: &str| l.len() - l.trim_start().len();
        for (i, l) in lines.iter().enumerate().filter(|(_, l)| fn_start.is_match(l)) {
            let end = lines[i..]
                .iter()
                .position(|e| e.trim_start().starts_with('}') && indent(e) == indent(l));
            if let Some(len) = end.map(|e| e + 1).filter(|n| *n > MAX_FN_LINES) {
                problems.push(format!(
                    "{name}:{}: a function of {len} lines (at most {MAX_FN_LINES})",
                    i + 1
                ));
            }
        }
    }
    if total > MAX_LINES {
        problems.push(format!("{total} lines outside tests in xtask/src (at most {MAX_LINES})"));
    }
    assert!(problems.is_empty(), "split or simplify:\n{}", problems.join("\n"));
}
