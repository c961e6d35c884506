//! Tests of the workflow rules: a fixture per case of
//! shared/cases/workflows.md (W1-W6) and builds.md (B3, B7), our own
//! workflow, and the pieces (matrix expansion, CLI parsing).

use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};

use super::calls::parse_xtask;
use super::rules::*;
use super::*;
use crate::buildx::Strategy;
use crate::project::{parse_component, parse_platform_list, Component, PlatformList, COMPONENTS};

// A CLI mirroring the planned `cargo xtask` surface (shared/brief), so the
// rules are tested against a realistic definition before the real one has
// every command. `real_cli_*` tests use the real `crate::cli::Cli`.

#[derive(Debug, Parser)]
#[command(name = "xtask", bin_name = "cargo xtask", version)]
struct TestCli {
    #[command(subcommand)]
    command: TestCommand,
}

#[derive(Clone, Debug, ValueEnum)]
enum Cache {
    Local,
    Registry,
    Gha,
    None,
}

#[derive(Clone, Debug, ValueEnum)]
enum Progress {
    Auto,
    Plain,
}

#[derive(Clone, Debug, ValueEnum)]
enum Bases {
    Auto,
    Upstream,
    Local,
}

#[derive(Clone, Debug, ValueEnum)]
enum Event {
    Push,
    #[value(name = "pull_request")]
    PullRequest,
}

#[derive(Debug, Subcommand)]
enum TestCommand {
    BuildImage(BuildImage),
    Images(Images),
    Push(PushArgs),
    Manifest(Manifest),
    Smoke(Lists),
    Tags(Tags),
    Doctor(Doctor),
    Setup(Lists),
    #[command(subcommand)]
    Registry(Registry),
    BaseImages(Lists),
    ValidateWorkflow(ValidateWorkflow),
    #[command(subcommand)]
    Workflow(WorkflowCmd),
    Bench(Bench),
    Ci,
}

#[derive(Debug, Args)]
struct BuildImage {
    #[arg(long, value_parser = parse_component)]
    component: &'static Component,
    #[arg(long, value_parser = parse_platform_list)]
    platform: PlatformList,
    #[arg(long, value_enum)]
    strategy: Option<Strategy>,
    #[arg(long, conflicts_with = "push")]
    load: bool,
    #[arg(long)]
    push: bool,
    #[arg(long)]
    registry: Option<String>,
    #[arg(long)]
    tag: Vec<String>,
    #[arg(long, value_enum)]
    cache: Option<Cache>,
    #[arg(long)]
    cache_read_only: bool,
    #[arg(long, value_enum)]
    progress: Option<Progress>,
    #[arg(long, value_enum)]
    bases: Option<Bases>,
    #[arg(long)]
    no_setup: bool,
    #[arg(long)]
    dry_run: bool,
}

#[derive(Debug, Args)]
struct Images {
    #[arg(long)]
    platform: Option<String>,
    #[arg(long)]
    component: Option<String>,
    #[arg(long)]
    push: bool,
    #[arg(long)]
    registry: Option<String>,
    #[arg(long, value_enum)]
    cache: Option<Cache>,
    #[arg(long, value_enum)]
    strategy: Option<Strategy>,
    #[arg(long, value_enum)]
    bases: Option<Bases>,
    #[arg(long)]
    no_setup: bool,
    #[arg(long)]
    dry_run: bool,
}

#[derive(Debug, Args)]
struct PushArgs {
    #[arg(long, value_parser = parse_component)]
    component: &'static Component,
    #[arg(long, value_parser = parse_platform_list)]
    platform: PlatformList,
    #[arg(long)]
    registry: Option<String>,
    #[arg(long)]
    dry_run: bool,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
struct Manifest {
    #[command(subcommand)]
    sub: Option<ManifestSub>,
    #[arg(long, value_parser = parse_component)]
    component: Option<&'static Component>,
    #[arg(long, value_parser = parse_platform_list)]
    platform: Option<PlatformList>,
    #[arg(long)]
    registry: Option<String>,
    #[arg(long)]
    tag: Vec<String>,
    #[arg(long)]
    dry_run: bool,
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Subcommand)]
enum ManifestSub {
    Verify {
        reference: Option<String>,
        #[arg(long)]
        platform: Option<String>,
        #[arg(long)]
        from_file: Option<String>,
    },
}

#[derive(Debug, Args)]
struct Lists {
    #[arg(long)]
    component: Option<String>,
    #[arg(long)]
    platform: Option<String>,
    #[arg(long)]
    registry: Option<String>,
}

#[derive(Debug, Args)]
struct Tags {
    #[arg(long)]
    component: Option<String>,
    #[arg(long)]
    registry: Option<String>,
    #[arg(long)]
    tag: Vec<String>,
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct Doctor {
    #[arg(long)]
    platform: Option<String>,
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Subcommand)]
enum Registry {
    Start {
        #[arg(long)]
        auth: bool,
    },
    Stop,
    Status,
}

#[derive(Debug, Args)]
struct ValidateWorkflow {
    paths: Vec<String>,
}

#[derive(Debug, Subcommand)]
enum WorkflowCmd {
    Run {
        #[arg(long, value_enum)]
        event: Event,
        #[arg(long = "ref")]
        git_ref: String,
        #[arg(long)]
        job: Option<String>,
    },
}

#[derive(Debug, Args)]
struct Bench {
    #[arg(long)]
    quick: bool,
    #[arg(long)]
    json: bool,
}

fn test_cli() -> clap::Command {
    TestCli::command()
}

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/workflows/");
const MEMBERS: &[&str] = &["broker", "agent", "xtask"];

fn inputs() -> ImageInputs {
    let members: Vec<String> = MEMBERS.iter().map(|m| m.to_string()).collect();
    let dockerfiles: Vec<(&Component, Option<&str>)> =
        COMPONENTS.iter().map(|c| (c, None)).collect();
    image_inputs(&members, &dockerfiles)
}

fn check_file(path: &str, cli: &clap::Command) -> Vec<Diagnostic> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let wf = match Workflow::parse(path, &text) {
        Ok(wf) => wf,
        Err(d) => return vec![d],
    };
    let inputs = inputs();
    check(&wf, cli, &inputs)
}

fn fixture(name: &str) -> Vec<Diagnostic> {
    check_file(&format!("{FIXTURES}{name}"), &test_cli())
}

/// (rule, severity, line, text the message contains)
type Want<'a> = (Rule, Severity, usize, &'a str);

use Rule::*;
use Severity::{Error as E, Warning as W};

/// Every wanted diagnostic is there, and the fixture's rules report nothing else.
fn assert_diagnostics(name: &str, want: &[Want<'_>], strict_rules: &[Rule]) {
    let got = fixture(name);
    let shown = got.iter().map(|d| format!("  {d}  [{:?}]", d.rule)).collect::<Vec<_>>().join("\n");
    for (rule, sev, line, text) in want {
        assert!(
            got.iter().any(|d| d.rule == *rule
                && d.severity == *sev
                && d.line == *line
                && d.message.contains(text)),
            "{name}: missing {sev:?} at line {line} ({rule:?}) containing {text:?}; got:\n{shown}"
        );
    }
    for d in &got {
        if strict_rules.contains(&d.rule) {
            assert!(
                want.iter().any(|(rule, sev, line, text)| d.rule == *rule
                    && d.severity == *sev
                    && d.line == *line
                    && d.message.contains(text)),
                "{name}: unexpected {d} [{:?}]; got:\n{shown}",
                d.rule
            );
        }
    }
}

const ALL_RULES: &[Rule] = &[
    Syntax,
    Triggers,
    Paths,
    Permissions,
    PullRequestGuard,
    Cli,
    Matrix,
    CacheScope,
    Emulation,
    Manifest,
    LocalRun,
];

#[test]
fn workflow_w1_trigger_key_forms() {
    // Accepted spellings: no diagnostics at all.
    for name in ["w1-on-key.yml", "w1-on-quoted.yml", "w1-on-list.yml"] {
        assert_diagnostics(name, &[], ALL_RULES);
    }
    let cases: &[(&str, &[Want<'_>])] = &[
        ("w1-on-string.yml", &[(Triggers, E, 3, "no `pull_request` trigger")]),
        (
            "w1-true-key.yml",
            &[(
                Triggers,
                E,
                4,
                "the key `true` is the YAML boolean true, not the trigger key `on`",
            )],
        ),
        ("w1-branches.yml", &[(Triggers, E, 5, "`on.push.branches` does not include `develop`")]),
        (
            "w1-tags-only.yml",
            &[
                (Triggers, E, 4, "`on.push` filters only tags"),
                (Triggers, E, 7, "`on.pull_request.branches-ignore` excludes `develop`"),
            ],
        ),
    ];
    for (name, want) in cases {
        assert_diagnostics(name, want, ALL_RULES);
    }
}

#[test]
fn workflow_w2_path_filters_cover_every_image_input() {
    let inputs = [
        "Cargo.toml",
        "Cargo.lock",
        ".cargo/**",
        "rust-toolchain.toml",
        ".dockerignore",
        "docker/**",
        "Dockerfile.broker",
        "Dockerfile.agent",
        "agent/**",
        "xtask/**",
        ".github/workflows/w2-paths.yml",
    ];
    let push: Vec<String> =
        inputs.iter().map(|i| format!("`on.push.paths` misses `{i}`")).collect();
    let pr: Vec<String> =
        inputs.iter().map(|i| format!("`on.pull_request.paths` misses `{i}`")).collect();
    let mut want: Vec<Want<'_>> = push.iter().map(|m| (Paths, E, 7, m.as_str())).collect();
    want.extend(pr.iter().map(|m| (Paths, E, 10, m.as_str())));
    assert_diagnostics("w2-paths.yml", &want, ALL_RULES);
    // `broker/**` is listed: not reported.
    assert!(!fixture("w2-paths.yml").iter().any(|d| d.message.contains("misses `broker/**`")));
    assert_diagnostics(
        "w2-paths-ignore.yml",
        &[(Paths, E, 6, "`on.push.paths-ignore` excludes `Cargo.lock`")],
        ALL_RULES,
    );
    assert_diagnostics("w2-paths-ok.yml", &[], ALL_RULES);
}

#[test]
fn workflow_w3_pushing_needs_packages_write() {
    assert_diagnostics(
        "w3-permissions.yml",
        &[
            (Permissions, E, 10, "job `build` pushes images (step 3 (`cargo xtask images --platform all --push`)) but its GITHUB_TOKEN has no `packages: write` under the workflow's"),
            (Permissions, E, 25, "job `action` pushes images"),
            (Permissions, E, 25, "the job's `permissions:` (which replace the workflow's)"),
        ],
        &[Permissions],
    );
}

#[test]
fn workflow_w4_login_and_push_are_guarded_on_pull_requests() {
    assert_diagnostics(
        "w4-unguarded.yml",
        &[
            (
                PullRequestGuard,
                E,
                16,
                "step `Log in` of job `build` logs in to a registry on pull requests too",
            ),
            (
                PullRequestGuard,
                E,
                22,
                "step `Push` of job `build` pushes images on pull requests too",
            ),
            (PullRequestGuard, E, 24, "step `Notify` of job `build` uses secret(s) SLACK_TOKEN"),
        ],
        &[PullRequestGuard],
    );
}

#[test]
fn workflow_w5_xtask_calls_match_the_cli() {
    assert_diagnostics(
        "w5-cli.yml",
        &[
            (Cli, E, 17, "`cargo xtask` has no subcommand `buidl-image`; did you mean `build-image`?"),
            (Cli, E, 20, "`cargo xtask build-image` has no option `--platfrom`; did you mean `--platform`?"),
            (Cli, E, 20, "`cargo xtask build-image` has no option `--pussh`; did you mean `--push`?"),
            (Cli, E, 24, "`cargo xtask` has no subcommand `manifset`; did you mean `manifest`?"),
            (Cli, E, 24, "`--cache ghaa` is not one of local, registry, gha, none; did you mean `gha`?"),
            (Cli, E, 25, "`cargo xtask manifest verify` has no option `--platfrom`; did you mean `--platform`?"),
            (Cli, E, 28, "`cargo xtask registry` has no subcommand `strat`; did you mean `start`?"),
            (Cli, E, 29, "`cargo xtask workflow run` has no option `--jbo`; did you mean `--job`?"),
            (Cli, E, 30, "`cargo xtask smoke` has no option `-x`"),
            (Cli, E, 31, "`cargo xtask build-image` needs `--component`"),
            (Cli, E, 32, "`cargo xtask registry` needs a subcommand: start, stop, status"),
        ],
        &[Cli],
    );
}

#[test]
fn workflow_w6_matrix_matches_components_and_platforms() {
    assert_diagnostics(
        "w6-matrix.yml",
        &[
            (Matrix, E, 15, "matrix `component` of job `build` differs from the xtask's components (broker, agent): missing `agent`; not known to the xtask: `ui`"),
            (
                Matrix,
                E,
                16,
                "matrix `platform` of job `build` differs from the xtask's platforms (linux/amd64, linux/arm64): missing `linux/arm64`; not known to the xtask: `linux/arm/v7`",
            ),
        ],
        &[Matrix],
    );
}

#[test]
fn workflow_b3_cache_scopes_are_per_leg() {
    assert_diagnostics(
        "b3-cache-scope.yml",
        &[
            (CacheScope, E, 24, "step `No scope` of job `build`: legs `component=broker, platform=linux/amd64, runner=ubuntu-24.04` and `component=broker, platform=linux/arm64, runner=ubuntu-24.04-arm` share the gha cache scope `buildkit` in `cache-from`"),
            (CacheScope, E, 24, "share the gha cache scope `buildkit` in `cache-to`"),
            (CacheScope, E, 32, "step `Scope without the platform` of job `build`: legs `component=broker, platform=linux/amd64, runner=ubuntu-24.04` and `component=broker, platform=linux/arm64, runner=ubuntu-24.04-arm` share the gha cache scope `broker` in `cache-to`"),
            (CacheScope, E, 32, "legs `component=agent, platform=linux/amd64, runner=ubuntu-24.04` and `component=agent, platform=linux/arm64, runner=ubuntu-24.04-arm` share the gha cache scope `agent` in `cache-to`"),
            (CacheScope, E, 46, "step `Raw buildx` of job `build`: legs"),
        ],
        &[CacheScope],
    );
}

#[test]
fn workflow_b7_rust_under_emulation_warns() {
    assert_diagnostics(
        "b7-emulation.yml",
        &[
            (Emulation, W, 18, "step `Build with the action` of job `build` (leg `component=broker, platform=linux/arm64`) builds linux/arm64 on an amd64 runner (`ubuntu-latest`) through QEMU"),
            (Emulation, W, 18, "(leg `component=agent, platform=linux/arm64`)"),
            (Emulation, W, 25, "`--strategy emulate` compiles Rust under QEMU"),
        ],
        &[Emulation],
    );
}

#[test]
fn workflow_manifest_job_needs_build_and_covers_components() {
    assert_diagnostics(
        "manifest-needs.yml",
        &[
            (Manifest, E, 26, "manifest job `create-manifest` does not `needs:` the build job `build`"),
            (Manifest, E, 26, "the manifest job `create-manifest` never combines `agent`"),
            (Matrix, E, 31, "matrix `component` of job `create-manifest` differs from the xtask's components (broker, agent): missing `agent`"),
        ],
        &[Manifest, Matrix],
    );
}

#[test]
fn workflow_ours_passes_with_the_planned_cli() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../.github/workflows/build-images.yml");
    let got = check_file(path, &test_cli());
    assert!(
        got.is_empty(),
        "{}",
        got.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")
    );
}

/// Passes once `crate::cli::Cli` has the Docker-side commands the workflow
/// calls (`build-image`, `manifest`); until the lead merges them it fails
/// with W5 errors naming exactly what is missing.
#[test]
fn workflow_ours_passes_with_the_real_cli() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../.github/workflows/build-images.yml");
    let got = check_file(path, &crate::cli::Cli::command());
    assert!(
        got.is_empty(),
        "{}",
        got.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")
    );
}

#[test]
fn workflow_w5_expanded_calls_are_parsed_by_the_real_cli() {
    const OURS: &str = include_str!("../../../.github/workflows/build-images.yml");
    let cli = crate::cli::Cli::command();
    let inputs = inputs();
    let cli_errors = |wf: &Workflow| -> Vec<Diagnostic> {
        check(wf, &cli, &inputs).into_iter().filter(|d| d.rule == Rule::Cli).collect()
    };
    let ours = Workflow::parse(".github/workflows/build-images.yml", OURS).unwrap();
    assert_eq!(cli_errors(&ours), Vec::new());
    let cases: &[(&str, &str, &str)] = &[
        // (replace in our workflow, with, expected in the message)
        (
            r#"--platform "$PLATFORM" --push"#,
            "--platform riscv64 --push",
            "unknown platform `riscv64`",
        ),
        (
            r#"--component "$COMPONENT" --platform "$PLATFORM" --push"#,
            r#"--component agent-ui --platform "$PLATFORM" --push"#,
            "unknown component `agent-ui`",
        ),
        ("--push --cache gha", "--push --tag v1 --cache gha", "cannot be used with"),
        (r#"manifest --component "$COMPONENT""#, "manifest verify", "required"),
    ];
    for (from, to, want) in cases {
        assert!(OURS.contains(from), "fixture text `{from}` not in the workflow");
        let wf = Workflow::parse("bad.yml", &OURS.replacen(from, to, 1)).unwrap();
        let errs = cli_errors(&wf);
        assert!(!errs.is_empty(), "{to}: no error");
        assert!(errs.iter().all(|d| d.severity == Severity::Error));
        assert!(errs.iter().any(|d| d.message.contains(want)), "{to}: {errs:#?}");
        let line = OURS.lines().position(|l| l.contains(from)).unwrap() + 1;
        assert!(
            errs.iter().any(|d| d.line + 1 == line || d.line == line),
            "{to}: line {line}: {errs:#?}"
        );
    }
}

#[test]
fn workflow_diagnostic_format() {
    let d = Diagnostic {
        path: "a.yml".into(),
        line: 3,
        severity: Severity::Warning,
        message: "m".into(),
        rule: Emulation,
    };
    assert_eq!(d.to_string(), "a.yml:3: warning: m");
    // YAML 1.2: only true/True/TRUE are booleans; `on`, `yes`, `On` are strings.
    let wf = Workflow::parse("c.yml", "On: 1\nyes: 2\non: push\nTrue: 3\njobs: {}\n").unwrap();
    assert_eq!(
        wf.keys,
        [
            Value::from("On"),
            Value::from("yes"),
            Value::from("on"),
            Value::Bool(true),
            Value::from("jobs")
        ]
    );
    let bad = Workflow::parse("b.yml", "on: [push\njobs: {}\n").unwrap_err();
    assert!(bad.to_string().starts_with("b.yml:"), "{bad}");
    assert!(bad.to_string().contains(": error: not valid YAML"), "{bad}");
}

#[test]
fn workflow_matrix_expansion() {
    let m = |y: &str| -> Vec<String> {
        let v: super::Matrix = serde_yaml::from_str(y).unwrap();
        expand_matrix(Some(&v)).unwrap().iter().map(leg_label).collect()
    };
    assert_eq!(
        m("component: [broker, agent]\nplatform: [amd64, arm64]"),
        [
            "component=broker, platform=amd64",
            "component=broker, platform=arm64",
            "component=agent, platform=amd64",
            "component=agent, platform=arm64"
        ]
    );
    assert_eq!(
        m("component: [broker, agent]\nplatform: [amd64, arm64]\nexclude:\n  - {component: agent, platform: arm64}"),
        ["component=broker, platform=amd64", "component=broker, platform=arm64", "component=agent, platform=amd64"]
    );
    // include: extends matching legs, never overwrites an original value,
    // and adds a leg when it matches none.
    assert_eq!(
        m("platform: [amd64, arm64]\ninclude:\n  - {platform: arm64, runner: arm}\n  - {runner: x}\n  - {platform: riscv, runner: r}"),
        ["platform=amd64, runner=x", "platform=arm64, runner=x", "platform=riscv, runner=r"]
    );
    assert_eq!(m("include:\n  - {a: 1}\n  - {a: 2}"), ["a=1", "a=2"]);
    assert_eq!(expand_matrix(None).unwrap(), vec![Vec::new()]);
    let expr: super::Matrix = serde_yaml::from_str("'${{ fromJSON(needs.a.outputs.m) }}'").unwrap();
    assert!(expand_matrix(Some(&expr)).is_err());
}

#[test]
fn workflow_xtask_parse_follows_the_cli() {
    let cli = test_cli();
    let words = |s: &str| -> Vec<String> { s.split_whitespace().map(str::to_owned).collect() };
    // (words, subcommands, options with values, number of problems)
    type Case<'a> = (&'a str, &'a str, &'a [(&'a str, Option<&'a str>)], usize);
    let cases: &[Case<'_>] = &[
        (
            "build-image --component broker --platform arm64 --push",
            "build-image",
            &[("component", Some("broker")), ("platform", Some("arm64")), ("push", None)],
            0,
        ),
        (
            "build-image --tag manifest --registry=push --component broker --platform arm64",
            "build-image",
            &[
                ("tag", Some("manifest")),
                ("registry", Some("push")),
                ("component", Some("broker")),
                ("platform", Some("arm64")),
            ],
            0,
        ),
        (
            "manifest verify ghcr.io/x:1 --platform all",
            "manifest verify",
            &[("platform", Some("all"))],
            0,
        ),
        ("manifest --component broker", "manifest", &[("component", Some("broker"))], 0),
        ("registry start --auth", "registry start", &[("auth", None)], 0),
        (
            "workflow run --event pull_request --ref refs/pull/7/merge",
            "workflow run",
            &[("event", Some("pull_request")), ("ref", Some("refs/pull/7/merge"))],
            0,
        ),
        ("--help", "", &[("help", None)], 0),
        ("validate-workflow a.yml b.yml", "validate-workflow", &[], 0),
        ("ci extra", "ci", &[], 1),
        ("", "", &[], 1),
        ("build-image --platform arm64", "build-image", &[("platform", Some("arm64"))], 1),
        ("build-image --push=yes", "build-image", &[("push", None)], 1),
        ("build-image --component", "build-image", &[("component", None)], 1),
    ];
    // The options given on the command line, by long name, from clap's matches.
    let given = |call: &calls::XtaskCall| -> Vec<(String, Option<String>)> {
        let mut cmd = &cli;
        for p in &call.path {
            cmd = cmd.find_subcommand(p).unwrap();
        }
        let mut out: Vec<(String, Option<String>)> = cmd
            .get_arguments()
            .filter(|a| a.get_long().is_some())
            .filter(|a| {
                call.matches.value_source(a.get_id().as_str())
                    == Some(clap::parser::ValueSource::CommandLine)
            })
            .map(|a| {
                let id = a.get_id().as_str();
                let value = a.get_action().takes_values().then(|| {
                    let raw = call.matches.get_raw(id).into_iter().flatten().last();
                    raw.map(|v| v.to_string_lossy().into_owned())
                });
                (a.get_long().unwrap().to_owned(), value.flatten())
            })
            .collect();
        out.sort();
        out
    };
    for (args, command, flags, n_problems) in cases {
        let (call, problems) = parse_xtask(&cli, &words(args));
        let (path, got) =
            call.map_or((String::new(), Vec::new()), |c| (c.path.join(" "), given(&c)));
        let mut want: Vec<(String, Option<String>)> =
            flags.iter().map(|(k, v)| (k.to_string(), v.map(str::to_owned))).collect();
        want.sort();
        // `--help` prints help: clap gives no call, and it is no problem.
        if *args != "--help" {
            assert_eq!(path, *command, "{args}");
            assert_eq!(got, want, "{args}");
        }
        assert_eq!(problems.len(), *n_problems, "{args}: {problems:?}");
    }
    let pushes = |s: &str| parse_xtask(&cli, &words(s)).0.is_some_and(|c| c.pushes());
    assert!(pushes("build-image --component broker --platform arm64 --push"));
    assert!(pushes("images --push"));
    assert!(pushes("push --component broker --platform arm64"));
    assert!(pushes("manifest --component broker"));
    assert!(!pushes("manifest verify x"));
    assert!(!pushes("build-image --component broker --platform arm64 --load"));
}

#[test]
fn workflow_image_inputs_follow_the_dockerfiles() {
    let members: Vec<String> = MEMBERS.iter().map(|m| m.to_string()).collect();
    let broker = &COMPONENTS[0];
    let copy_all = "FROM rust AS build\nCOPY . .\nCOPY --from=build /x /y\n";
    let narrow = "FROM rust\nCOPY Cargo.toml Cargo.lock ./\nCOPY [\"broker/\", \"/src/broker/\"]\nADD --chmod=755 \\\n  docker/entry.sh /usr/local/bin/\n";
    let paths = |df: &str| -> Vec<String> {
        image_inputs(&members, &[(broker, Some(df))]).into_keys().collect()
    };
    let all = paths(copy_all);
    for p in [
        "Cargo.toml",
        "Cargo.lock",
        ".cargo/",
        "rust-toolchain.toml",
        ".dockerignore",
        "docker/",
        "Dockerfile.broker",
        "broker/",
        "agent/",
        "xtask/",
    ] {
        assert!(all.contains(&p.to_owned()), "{p} in {all:?}");
    }
    let n = paths(narrow);
    assert!(
        n.contains(&"broker/".to_owned()) && n.contains(&"docker/entry.sh".to_owned()),
        "{n:?}"
    );
    assert!(!n.contains(&"agent/".to_owned()), "{n:?}");
    assert_eq!(
        dockerfile_sources(narrow),
        ["Cargo.toml", "Cargo.lock", "broker/", "docker/entry.sh"]
    );
    assert_eq!(
        repo_path("xtask/tests/fixtures/workflows/w2-paths.yml"),
        ".github/workflows/w2-paths.yml"
    );
    assert_eq!(
        repo_path("/r/.github/workflows/build-images.yml"),
        ".github/workflows/build-images.yml"
    );
}

#[test]
fn workflow_runner_arch() {
    let l = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    assert_eq!(runner_arch(&l(&["ubuntu-24.04-arm"])), "arm64");
    assert_eq!(runner_arch(&l(&["self-hosted", "linux", "ARM64"])), "arm64");
    assert_eq!(runner_arch(&l(&["ubuntu-latest"])), "amd64");
    assert_eq!(runner_arch(&l(&["ubuntu-24.04"])), "amd64");
}

#[test]
fn workflow_manifest_platform_subset_is_reported() {
    const OURS: &str = include_str!("../../../.github/workflows/build-images.yml");
    let from = r#"manifest --component "$COMPONENT""#;
    let line = OURS.lines().position(|l| l.contains(from)).unwrap() + 1;
    let inputs = inputs();
    let cli = crate::cli::Cli::command();
    for (platform, reported) in [("linux/amd64", true), ("all", false), ("amd64,arm64", false)] {
        let text = OURS.replace(from, &format!("{from} --platform {platform}"));
        let wf = Workflow::parse(".github/workflows/build-images.yml", &text).unwrap();
        let got: Vec<Diagnostic> = check(&wf, &cli, &inputs);
        let hit = got.iter().any(|d| {
            d.rule == Manifest && d.line == line && d.message.contains("leaves out `linux/arm64`")
        });
        assert_eq!(hit, reported, "{platform}: {got:#?}");
        assert_eq!(got.len(), usize::from(reported), "{platform}: {got:#?}");
    }
}

#[test]
fn workflow_r8_pull_request_jobs_are_read_only() {
    assert_diagnostics(
        "r8-pull-requests.yml",
        &[
            (PullRequestToken, E, 13, "job `build-pull-request` builds on pull requests with a token that has `packages: write`"),
            (PullRequestToken, E, 22, "`--cache gha` on pull requests exports to the cache other runs import; add `--cache-read-only`"),
        ],
        &[PullRequestToken, CacheRuntime, PullRequestGuard],
    );
}

#[test]
fn workflow_cache_runtime_reaches_only_the_gha_build() {
    assert_diagnostics(
        "cache-runtime.yml",
        &[
            (CacheRuntime, E, 16, "no `cargo xtask` step before it, so the xtask is compiled after ACTIONS_RUNTIME_TOKEN is exposed"),
            (CacheRuntime, E, 16, "must be directly followed by the one `run:` step that builds with `--cache gha`"),
            (CacheRuntime, E, 18, "step 3 (`cargo xtask build-image"),
            (CacheRuntime, E, 19, "step 4 (`cargo xtask tags`) of job `build` comes after `crazy-max/ghaction-github-runtime`"),
            (CacheRuntime, E, 27, "`--cache gha` needs ACTIONS_RUNTIME_TOKEN, which `run:` steps do not get"),
        ],
        &[CacheRuntime],
    );
}

#[test]
fn workflow_manifest_runs_per_component_after_failed_legs() {
    assert_diagnostics(
        "manifest-per-component.yml",
        &[
            (Manifest, E, 24, "manifest job `manifest` runs only when every leg it needs succeeded, so one failed leg holds back every component; add `if: ${{ !cancelled() && ... }}`"),
            (Manifest, E, 27, "`cargo xtask manifest` without `--component`: publish each component on its own"),
        ],
        &[Manifest],
    );
}
