//! The rules `cargo xtask validate-workflow` checks a workflow against: the
//! xtask's own CLI, components and platforms, and the images' inputs. Each
//! rule is a case of shared/cases: workflows.md (W1-W6) and builds.md (B3,
//! B7), plus the manifest job. Messages name the line, the fault and the fix.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

use github_actions_expressions::Evaluation;
use indexmap::{IndexMap, IndexSet};
use regex::Regex;
use serde_yaml::Value;

use super::calls::{self, quoted, XtaskCall, UNKNOWN};
use super::glob::patterns_select;
use super::locate::{self, Seg};
use super::{expand_matrix, expr, leg_label, Diagnostic, Job, Leg, Rule, Scope, Step};
use super::{repo_path, Filters, Matrix, Pairs, Permissions, Text, Workflow};
use crate::buildx::Strategy;
use crate::project::{self, Component, Platform, COMPONENTS, PLATFORMS};

/// The branches pushes must build, as the project's branching model says.
pub const PUSH_BRANCHES: &[&str] = &["main", "develop"];

const TOP_KEYS: &[&str] =
    &["name", "run-name", "on", "permissions", "env", "defaults", "concurrency", "jobs"];

/// A `cargo xtask` call in a step of a matrix leg, with its line.
pub(super) struct FoundCall {
    pub job: String,
    pub step: usize,
    pub line: usize,
    pub call: XtaskCall,
}

pub(super) struct Ctx<'a> {
    pub wf: &'a Workflow,
    pub cli: &'a clap::Command,
    pub image_inputs: &'a ImageInputs,
    pub out: Vec<Diagnostic>,
    pub calls: Vec<FoundCall>,
}

impl Ctx<'_> {
    /// Adds a finding (once; its severity follows the rule).
    pub(super) fn report(&mut self, rule: Rule, line: usize, message: impl Into<String>) {
        let message = message.into().replace(UNKNOWN, "${{ }}");
        let d = Diagnostic::new(&self.wf.path, line, rule, message);
        if !self.out.contains(&d) {
            self.out.push(d);
        }
    }

    pub(super) fn calls_in<'s>(&'s self, job: &'s Job) -> impl Iterator<Item = &'s FoundCall> {
        self.calls.iter().filter(move |c| c.job == job.id)
    }
}

/// How messages name a step of a job.
pub(super) fn step_in(job: &Job, s: &Step) -> String {
    format!("{} of job `{}`", s.label(), job.id)
}

/// Whether a condition is false on a pull request run (`github.event_name`
/// and `github.ref` known, nothing else).
fn off_on_pull_requests(cond: Option<&Text>) -> bool {
    let known = [("github.event_name", "pull_request"), ("github.ref", "refs/pull/1/merge")];
    let outer = |path: &str| {
        let v = known.iter().find(|(p, _)| *p == path);
        v.map(|(_, v)| Evaluation::String((*v).to_owned()))
    };
    cond.is_some_and(|c| expr::condition(&c.0, &outer) == Ok(Some(false)))
}

pub(super) fn legs(job: &Job) -> Vec<Leg> {
    expand_matrix(job.strategy.matrix.as_ref()).unwrap_or_else(|_| vec![Vec::new()])
}

/// The scope of a step in a leg when nothing outside the matrix and env is
/// known: a check that covers every event.
fn scope<'a>(wf: &Workflow, job: &Job, step: Option<&Step>, leg: &'a Leg) -> Scope<'a> {
    Scope::of(wf, job, step, leg, &|_| None, Some(UNKNOWN)).0
}

/// Checks a workflow against the xtask's CLI (`Cli::command()`) and the image
/// inputs; diagnostics sorted by line. Rules about building images (triggers,
/// path filters, matrix, manifest) apply only to a workflow that builds or
/// pushes images; the others apply to every file.
pub fn check(wf: &Workflow, cli: &clap::Command, image_inputs: &ImageInputs) -> Vec<Diagnostic> {
    let mut cx = Ctx { wf, cli, image_inputs, out: Vec::new(), calls: Vec::new() };
    check_calls(&mut cx);
    check_top_keys(&mut cx);
    let images = wf.jobs().any(|j| job_builds(&cx, j) || !pushing_steps(&cx, j).is_empty());
    if images {
        check_triggers(&mut cx);
        super::jobs::check_manifest(&mut cx);
    }
    let pull_requests = wf.trigger("pull_request").is_some();
    for job in wf.jobs() {
        if images {
            check_matrix(&mut cx, job);
        }
        check_permissions(&mut cx, job);
        if pull_requests && !off_on_pull_requests(job.cond.as_ref()) {
            check_pull_request_guards(&mut cx, job);
        }
        check_legs(&mut cx, job);
        super::jobs::check_cache_runtime(&mut cx, job);
    }
    cx.out.sort_by(|a, b| (a.line, a.severity, &a.message).cmp(&(b.line, b.severity, &b.message)));
    cx.out
}

fn check_top_keys(cx: &mut Ctx<'_>) {
    let wf = cx.wf;
    for k in &wf.keys {
        if let Value::Bool(b) = k {
            let spelled = if *b { ["true", "True", "TRUE"] } else { ["false", "False", "FALSE"] };
            let line = spelled.iter().find_map(|s| locate::locate(&wf.text, &[Seg::Key(s)]).ok());
            cx.report(Rule::Triggers, line.unwrap_or(1), format!(
                "the key `{b}` is the YAML boolean {b}, not the trigger key `on` (a YAML 1.1 loader reads `on:` as `true:`, and a file written back by one holds this); GitHub finds no triggers under it: write `on:`"
            ));
        } else if let Some(name) = k.as_str().filter(|n| !TOP_KEYS.contains(n)) {
            let hint = calls::did_you_mean(calls::closest(name, TOP_KEYS.iter().copied()));
            let msg = format!("unknown top-level key `{name}`{hint}");
            cx.report(Rule::Syntax, wf.line(&[Seg::Key(name)], None), msg);
        }
    }
    if wf.jobs.is_none() {
        cx.report(Rule::Syntax, 1, "no `jobs:`");
    }
}

/// W5: every `cargo xtask` call, with each matrix leg's values and `env:`
/// substituted, is one the CLI accepts; other commands cannot run locally.
/// Keeps the calls for the other rules.
fn check_calls(cx: &mut Ctx<'_>) {
    let wf = cx.wf;
    for job in wf.jobs() {
        for (n, leg) in legs(job).iter().enumerate() {
            for step in &job.steps {
                let Some(run) = &step.run else { continue };
                let cmds = scope(wf, job, Some(step), leg).commands(&run.0).unwrap_or_default();
                for cmd in cmds {
                    let (line, what) = (wf.run_line(job, step, cmd.line), step_in(job, step));
                    let fix = "`cargo xtask workflow run` cannot reproduce it locally";
                    if let (Some(p), 0) = (&cmd.problem, n) {
                        cx.report(Rule::LocalRun, line, format!("{what} uses a {p}: {fix}; keep run lines to one plain `cargo xtask` call"));
                    }
                    let Some(args) = cmd.xtask_args() else {
                        if !cmd.informational() && n == 0 {
                            let shown = cmd.argv()[..cmd.argv().len().min(3)].join(" ");
                            cx.report(Rule::LocalRun, line, format!("{what} runs `{shown}`, not a `cargo xtask` call: {fix}; move it into the xtask"));
                        }
                        continue;
                    };
                    let (call, problems) = calls::parse_xtask(cx.cli, args);
                    problems.into_iter().for_each(|p| cx.report(Rule::Cli, line, p));
                    let (job, step) = (job.id.clone(), step.index);
                    cx.calls.extend(call.map(|call| FoundCall { job, step, line, call }));
                }
            }
        }
    }
}

/// W1: the workflow runs on pull requests and on pushes to main and develop;
/// W2: their path filters keep every image input.
fn check_triggers(cx: &mut Ctx<'_>) {
    let wf = cx.wf;
    let on_line = wf.line(&[Seg::Key("on")], None);
    match &wf.on {
        None if wf.keys.contains(&Value::Bool(true)) => return,
        None => {
            let msg = "no `on:` key: the workflow has no triggers; add `on:` with `push` and `pull_request`";
            return cx.report(Rule::Triggers, 1, msg);
        }
        Some(super::On::Other(_)) => {
            let msg = "`on:` must be an event, a list of events, or a mapping of events";
            return cx.report(Rule::Triggers, on_line, msg);
        }
        Some(_) => {}
    }
    let (and, list) = (PUSH_BRANCHES.join(" and "), PUSH_BRANCHES.join(", "));
    let missing = [
        format!("no `push` trigger: pushes to {and} do not build images; add `push: {{branches: [{list}]}}`"),
        "no `pull_request` trigger: pull requests are not built before they merge; add `pull_request:`".to_owned(),
    ];
    for (event, missing) in ["push", "pull_request"].into_iter().zip(missing) {
        match wf.trigger(event) {
            None => cx.report(Rule::Triggers, on_line, missing),
            Some(f) => f.into_iter().for_each(|f| check_filters(cx, event, &f)),
        }
    }
}

/// The branch (W1) and path (W2) filters of `on.<event>`.
fn check_filters(cx: &mut Ctx<'_>, event: &str, f: &Filters) {
    let wf = cx.wf;
    let line = |k: Option<&str>| wf.line(&[Seg::Key("on"), Seg::Key(event)], k);
    let both = |k: &str| {
        format!("`on.{event}` has both `{k}` and `{k}-ignore`, which GitHub rejects; keep one")
    };
    if f.branches.is_some() && f.branches_ignore.is_some() {
        cx.report(Rule::Triggers, line(None), both("branches"));
    } else if event == "push"
        && (f.tags.is_some() || f.tags_ignore.is_some())
        && f.branches.is_none()
        && f.branches_ignore.is_none()
    {
        let (and, list) = (PUSH_BRANCHES.join(" and "), PUSH_BRANCHES.join(", "));
        cx.report(Rule::Triggers, line(None), format!("`on.push` filters only tags, so pushes to {and} do not run it; add `branches: [{list}]`"));
    } else {
        let who = if event == "push" { "pushes" } else { "pull requests" };
        for b in PUSH_BRANCHES {
            if f.branches.as_ref().is_some_and(|l| !patterns_select(&l.0, b)) {
                cx.report(Rule::Triggers, line(Some("branches")), format!("`on.{event}.branches` does not include `{b}`: {who} to {b} build no images; add `{b}`"));
            }
            if f.branches_ignore.as_ref().is_some_and(|l| patterns_select(&l.0, b)) {
                let msg = format!("`on.{event}.branches-ignore` excludes `{b}`; remove it");
                cx.report(Rule::Triggers, line(Some("branches-ignore")), msg);
            }
        }
    }
    if f.paths.is_some() && f.paths_ignore.is_some() {
        return cx.report(Rule::Paths, line(None), both("paths"));
    }
    let mut inputs = cx.image_inputs.clone();
    let all: BTreeSet<String> = inputs.values().flatten().cloned().collect();
    let n = all.len();
    inputs.insert(repo_path(&wf.path), all.into_iter().collect());
    for (p, images) in &inputs {
        let every = images.len() == n && n > 1;
        let whose = if every { "every image".to_owned() } else { images.join(", ") };
        let dir = p.strip_suffix('/');
        let pat = dir.map_or_else(|| p.clone(), |d| format!("{d}/**"));
        // A directory stands for a manifest, a source file and a nested file in it.
        let files = ["Cargo.toml", "src/main.rs", "a/b/c.txt"].map(|f| format!("{p}{f}"));
        let probes = if dir.is_some() { files.to_vec() } else { vec![p.clone()] };
        let selects = |l: &super::List, p: &String| patterns_select(&l.0, p);
        if f.paths.as_ref().is_some_and(|l| !probes.iter().all(|p| selects(l, p))) {
            cx.report(Rule::Paths, line(Some("paths")), format!("`on.{event}.paths` misses `{pat}`, an input of {whose}: changing it would not rebuild; add `{pat}` (patterns match whole paths)"));
        }
        if f.paths_ignore.as_ref().is_some_and(|l| probes.iter().any(|p| selects(l, p))) {
            cx.report(Rule::Paths, line(Some("paths-ignore")), format!("`on.{event}.paths-ignore` excludes `{pat}`, an input of {whose}: changing it would not rebuild; narrow the ignore pattern"));
        }
    }
}

/// The paths the images are built from, a file (`Cargo.lock`) or a directory
/// (`broker/`, trailing slash), each with the image names that depend on it.
pub type ImageInputs = IndexMap<String, Vec<String>>;

/// The sources of `COPY`/`ADD` lines of a Dockerfile (not `--from=` copies),
/// `./` prefixes removed, `.` for the whole build context.
pub fn dockerfile_sources(dockerfile: &str) -> Vec<String> {
    let joined = dockerfile.replace("\\\r\n", " ").replace("\\\n", " ");
    let mut out = Vec::new();
    for line in joined.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let Some((instr, rest)) = words.split_first() else { continue };
        let copy = instr.eq_ignore_ascii_case("COPY") || instr.eq_ignore_ascii_case("ADD");
        if !copy || rest.iter().any(|w| w.starts_with("--from=")) {
            continue;
        }
        let args: Vec<String> = match rest.iter().position(|w| w.starts_with('[')) {
            Some(i) => serde_json::from_str(&rest[i..].join(" ")).unwrap_or_default(),
            None => rest.iter().filter(|w| !w.starts_with("--")).map(|w| w.to_string()).collect(),
        };
        for src in args.iter().take(args.len().saturating_sub(1)) {
            let s = src.trim_start_matches("./");
            out.push(if s.is_empty() { ".".to_owned() } else { s.to_owned() });
        }
    }
    out
}

/// The workspace files every image is built from.
const COMMON_INPUTS: &[&str] =
    &["Cargo.toml", "Cargo.lock", ".cargo/", "rust-toolchain.toml", ".dockerignore", "docker/"];

/// Everything the images are built from, per component: [`COMMON_INPUTS`],
/// the component's Dockerfile, and what the Dockerfile copies: every workspace member for `COPY . .` (also assumed
/// when the Dockerfile text is not given), else each copied path. `members`
/// are directories relative to the root, as `cargo metadata` reports them.
pub fn image_inputs(members: &[String], dockerfiles: &[(&Component, Option<&str>)]) -> ImageInputs {
    let mut inputs = ImageInputs::new();
    let mut add = |path: String, image: &String| {
        let images = inputs.entry(path).or_default();
        images.extend((!images.contains(image)).then(|| image.clone()));
    };
    let dir = |m: &str| format!("{}/", m.trim_end_matches('/'));
    for (c, text) in dockerfiles {
        let image = c.image_name();
        for p in COMMON_INPUTS.iter().copied().chain([c.dockerfile]) {
            add(p.to_owned(), &image);
        }
        for s in text.map_or_else(|| vec![".".to_owned()], dockerfile_sources) {
            if s == "." {
                members.iter().for_each(|m| add(dir(m), &image));
            } else if s.ends_with('/') || members.iter().any(|m| dir(m) == dir(&s)) {
                add(dir(&s), &image);
            } else {
                add(s, &image);
            }
        }
    }
    inputs
}

/// W6: matrix `component` / `platform` values are exactly the xtask's.
fn check_matrix(cx: &mut Ctx<'_>, job: &Job) {
    type Known = fn(&str) -> Option<&'static str>;
    let axes: [(&str, Vec<&str>, Known); 2] = [
        ("component", COMPONENTS.iter().map(|c| c.name).collect(), |v| {
            project::component(v).ok().map(|c| c.name)
        }),
        ("platform", PLATFORMS.iter().map(|p| p.name).collect(), |v| {
            Platform::parse(v).ok().map(|p| p.name)
        }),
    ];
    let Some(Matrix::Literal { include, axes: listed, .. }) = &job.strategy.matrix else { return };
    for (key, all, known) in &axes {
        let from_include = include.iter().filter_map(|e| e.get(*key));
        let values: Vec<&str> =
            listed.get(*key).into_iter().flatten().chain(from_include).map(|v| &*v.0).collect();
        if values.is_empty() || values.iter().any(|v| v.contains('$')) {
            continue;
        }
        let found: Vec<&str> = values.iter().filter_map(|v| known(v)).collect();
        let unknown: Vec<&&str> = values.iter().filter(|v| known(v).is_none()).collect();
        let missing: Vec<&&str> = all.iter().filter(|n| !found.contains(n)).collect();
        let parts = [("missing", missing), ("not known to the xtask:", unknown)];
        let parts = parts.iter().filter(|(_, l)| !l.is_empty());
        let parts: Vec<String> = parts.map(|(w, l)| format!("{w} {}", quoted(l))).collect();
        if parts.is_empty() {
            continue;
        }
        let p = [Seg::Key("jobs"), Seg::Key(&job.id), Seg::Key("strategy"), Seg::Key("matrix")];
        let line = cx.wf.line(&p, listed.contains_key(*key).then_some(*key));
        cx.report(Rule::Matrix, line, format!(
            "matrix `{key}` of job `{}` differs from the xtask's {key}s ({}): {}; list exactly the ones in xtask/src/project.rs",
            job.id, all.join(", "), parts.join("; ")
        ));
    }
}

fn is_build_action(s: &Step) -> bool {
    s.uses_action("docker/build-push-action") || s.uses_action("docker/bake-action")
}

/// Whether a job builds images (a build step of any kind).
pub(super) fn job_builds(cx: &Ctx<'_>, job: &Job) -> bool {
    let raw = |r: &Text| r.0.contains("docker buildx build") || r.0.contains("docker build ");
    cx.calls_in(job).any(|c| c.call.is(&["build-image"]) || c.call.is(&["images"]))
        || job.steps.iter().any(|s| is_build_action(s) || s.run.as_ref().is_some_and(raw))
}

/// The words of each command of a step's script as written (no substitution).
pub(super) fn raw_commands(s: &Step) -> Vec<Vec<String>> {
    let run = s.run.as_ref().map_or("", |r| r.0.as_str());
    let cmds = calls::commands(run, &|_| None, None);
    cmds.into_iter().map(|c| c.argv().to_vec()).collect()
}

/// The pushing steps of a job: (step index, whether the push itself is
/// guarded by a `push:` input that is false on pull requests).
pub(super) fn pushing_steps(cx: &Ctx<'_>, job: &Job) -> Vec<(usize, bool)> {
    let pushes = |s: &Step| match (is_build_action(s), s.with.get("push")) {
        (true, None) => None,
        (true, Some(p)) => {
            let off = off_on_pull_requests(Some(p));
            (!off || p.0.contains("${{")).then_some(off)
        }
        (false, _) => {
            let xtask = cx.calls_in(job).any(|c| c.step == s.index && c.call.pushes());
            let docker = raw_commands(s).into_iter().any(|c| {
                match c.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
                    ["docker", "push", ..]
                    | ["docker", "manifest", "push", ..]
                    | ["docker", "buildx", "imagetools", "create", ..] => true,
                    ["docker", "buildx", "build" | "bake", rest @ ..] => rest.iter().any(|w| {
                        *w == "--push"
                            || w.starts_with("--output=type=registry")
                            || w.contains("push=true")
                    }),
                    _ => false,
                }
            });
            (xtask || docker).then_some(false)
        }
    };
    job.steps.iter().filter_map(|s| Some((s.index, pushes(s)?))).collect()
}

fn packages_write(p: &Permissions) -> bool {
    let scope = |m: &Pairs| m.get("packages").is_some_and(|v| v.0 == "write");
    matches!(p, Permissions::All(s) if s == "write-all")
        || matches!(p, Permissions::Scopes(m) if scope(m))
}

/// The line to fix a job's `permissions:` at.
fn permissions_line(wf: &Workflow, job: &Job) -> usize {
    wf.job_line(job, job.permissions.as_ref().map(|_| "permissions"))
}

/// W3: a job that pushes has `packages: write` (job-level `permissions`
/// replace the workflow's, as GitHub applies them).
fn check_permissions(cx: &mut Ctx<'_>, job: &Job) {
    let wf = cx.wf;
    let Some(&(si, _)) = pushing_steps(cx, job).first() else { return };
    let (effective, whose) = match (&job.permissions, &wf.permissions) {
        (Some(p), _) => (Some(p), "the job's `permissions:` (which replace the workflow's)"),
        (None, Some(p)) => (Some(p), "the workflow's `permissions:`"),
        (None, None) => (None, "no `permissions:` (the repository default may be read-only)"),
    };
    if !effective.is_some_and(packages_write) {
        cx.report(Rule::Permissions, permissions_line(wf, job), format!(
            "job `{}` pushes images ({}) but its GITHUB_TOKEN has no `packages: write` under {whose}; add `permissions: {{contents: read, packages: write}}` to the job",
            job.id, job.steps[si].label()
        ));
    }
}

/// W4, for a job that runs on pull requests: registry logins, steps using
/// secrets, and pushes are skipped there (forks get no secrets and a
/// read-only token, so those steps fail). R8: pull request jobs hold no
/// token that writes packages, never export the cache.
fn check_pull_request_guards(cx: &mut Ctx<'_>, job: &Job) {
    const FIX: &str = "add `if: github.event_name != 'pull_request'` to the step or its job";
    // The secrets a step uses other than `GITHUB_TOKEN`.
    static SECRET: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"secrets\.([A-Za-z0-9_]*)").expect("a valid regex"));
    let wf = cx.wf;
    let pushes = pushing_steps(cx, job);
    let perms = job.permissions.as_ref().or(wf.permissions.as_ref());
    if job_builds(cx, job) && perms.is_some_and(packages_write) {
        cx.report(Rule::PullRequestToken, permissions_line(wf, job), format!("job `{}` builds on pull requests with a token that has `packages: write`; a pull request's token must not write packages: give pull request legs a job of their own with `permissions: {{contents: read}}`", job.id));
    }
    let on_prs = |c: &&FoundCall| !off_on_pull_requests(job.steps[c.step].cond.as_ref());
    let gha = cx.calls_in(job).filter(|c| c.call.raw("cache") == Some("gha")).filter(on_prs);
    let exports: Vec<_> = gha.filter(|c| !c.call.flag("cache_read_only")).map(|c| c.line).collect();
    for line in exports {
        cx.report(Rule::PullRequestToken, line, "`--cache gha` on pull requests exports to the cache other runs import; add `--cache-read-only` (pull requests import the cache, never export)");
    }
    for s in job.steps.iter().filter(|s| !off_on_pull_requests(s.cond.as_ref())) {
        let (line, what) = (wf.step_line(job, s, None), step_in(job, s));
        let texts = s.with.values().chain(s.env.values()).chain(s.run.as_ref());
        let spans = texts.flat_map(|t| expr::spans(&t.0)).map(|(_, _, inner)| inner);
        let names = spans.flat_map(|i| SECRET.captures_iter(i).map(|c| c[1].to_owned()));
        let secrets: IndexSet<String> =
            names.filter(|n| !n.eq_ignore_ascii_case("GITHUB_TOKEN")).collect();
        let login =
            raw_commands(s).iter().any(|c| c.starts_with(&["docker".into(), "login".into()]));
        if s.uses_action("docker/login-action") || login {
            cx.report(Rule::PullRequestGuard, line, format!("{what} logs in to a registry on pull requests too, where forks get no secrets; pull requests should only build: {FIX}"));
        } else if !secrets.is_empty() {
            let secrets = secrets.into_iter().collect::<Vec<_>>().join(", ");
            cx.report(Rule::PullRequestGuard, line, format!("{what} uses secret(s) {secrets} on pull requests too, where forks get none: {FIX}"));
        }
        if pushes.contains(&(s.index, false)) {
            cx.report(Rule::PullRequestGuard, line, format!("{what} pushes images on pull requests too; pull requests should only build: {FIX}"));
        }
    }
}

/// A build step's values of a build option: the action's `input`, or `flag` of each
/// `docker buildx build` of its script, split at `seps` (xtask calls are typed).
fn build_values(sc: &Scope<'_>, s: &Step, input: &str, flag: &str, seps: &[char]) -> Vec<String> {
    let mut vals = Vec::new();
    if is_build_action(s) {
        vals.extend(s.input(input).and_then(|v| sc.substitute(v).ok()));
    } else if let Some(run) = &s.run {
        let prefix = format!("{flag}=");
        for c in sc.commands(&run.0).unwrap_or_default() {
            let a = c.argv();
            if a.len() < 3 || a[..3] != ["docker", "buildx", "build"] {
                continue;
            }
            for (i, w) in a.iter().enumerate() {
                let v = if w == flag { a.get(i + 1) } else { None };
                vals.extend(v.cloned().or_else(|| Some(w.strip_prefix(&prefix)?.to_owned())));
            }
        }
    }
    let split = vals.iter().flat_map(|v| v.split(seps)).map(str::trim);
    split.filter(|e| !e.is_empty()).map(str::to_owned).collect()
}

/// The CPU architecture (`amd64`/`arm64`) of a runner label list: labels
/// naming ARM (`ubuntu-24.04-arm`, `ARM64`) are arm64, others amd64.
pub fn runner_arch(labels: &[String]) -> &'static str {
    let arm = labels.iter().map(|l| l.to_ascii_lowercase()).any(|l| {
        l.ends_with("-arm") || l.contains("arm64") || l.contains("aarch64") || l.contains("-arm-")
    });
    ["amd64", "arm64"][usize::from(arm)]
}

/// The build steps of each leg of a job, from their options (build action
/// inputs, `docker buildx build` flags). B3: with several legs, each
/// `type=gha` entry of `cache-from`/`cache-to` resolves to a scope per leg
/// (`build-image --cache gha` derives it from component and platform). B7:
/// Rust compiled under emulation: `--strategy emulate`, and a leg building
/// for a platform other than its runner's with an emulating builder, are warnings.
fn check_legs(cx: &mut Ctx<'_>, job: &Job) {
    let wf = cx.wf;
    let emulate = |c: &&FoundCall| c.call.get::<Strategy>("strategy") == Some(&Strategy::Emulate);
    for line in cx.calls_in(job).filter(emulate).map(|c| c.line).collect::<Vec<_>>() {
        cx.report(Rule::Emulation, line, "`--strategy emulate` compiles Rust under QEMU: an arm64 leg takes 1-2 hours instead of minutes; drop it to use the default cross strategy");
    }
    let qemu = job.steps.iter().any(|s| s.uses_action("docker/setup-qemu-action"));
    let qemu = if qemu { " through QEMU" } else { "" };
    let legs = legs(job);
    // (step, what, scope) -> first leg using it, whether reported
    let mut seen: BTreeMap<(usize, &str, String), (String, bool)> = BTreeMap::new();
    for leg in &legs {
        let label = leg_label(leg);
        let job_scope = scope(wf, job, None, leg);
        let labels: Vec<_> =
            job.runs_on.0.iter().filter_map(|l| job_scope.substitute(l).ok()).collect();
        let known =
            labels.len() == job.runs_on.0.len() && !labels.iter().any(|l| l.contains(UNKNOWN));
        let arch = runner_arch(&labels);
        for s in &job.steps {
            let scope = scope(wf, job, Some(s), leg);
            let targets = build_values(&scope, s, "platforms", "--platform", &[',', '\n']);
            let foreign = targets.iter().filter_map(|t| Platform::parse(t).ok());
            for p in foreign.filter(|p| known && p.arch != arch) {
                cx.report(Rule::Emulation, wf.step_line(job, s, None), format!(
                    "{} (leg `{label}`) builds {} on an {arch} runner (`{}`){qemu}: Rust compiled under emulation takes 1-2 hours; run the leg on a native runner (`ubuntu-24.04-arm` for arm64) or build with `cargo xtask build-image` (cross strategy)",
                    step_in(job, s), p.name, labels.join(", ")
                ));
            }
            for what in ["cache-from", "cache-to"].into_iter().filter(|_| legs.len() > 1) {
                for e in build_values(&scope, s, what, &format!("--{what}"), &['\n', ';']) {
                    if e.contains(UNKNOWN) || !e.split(',').any(|a| a.trim() == "type=gha") {
                        continue;
                    }
                    let name = e.split(',').find_map(|a| a.trim().strip_prefix("scope="));
                    let name = name.unwrap_or("buildkit").to_owned();
                    let (first, reported) =
                        seen.entry((s.index, what, name.clone())).or_insert((label.clone(), false));
                    if *first == label || std::mem::replace(reported, true) {
                        continue;
                    }
                    let at = Some(if is_build_action(s) { "with" } else { "run" });
                    let effect = if what == "cache-to" {
                        "each leg's export overwrites the other's"
                    } else {
                        "each leg imports the other's cache (another platform's layers, missed hits)"
                    };
                    cx.report(Rule::CacheScope, wf.step_line(job, s, at), format!(
                        "{}: legs `{first}` and `{label}` share the gha cache scope `{}` in `{what}`, so {effect}; add `scope=` naming both `${{{{ matrix.component }}}}` and `${{{{ matrix.platform }}}}` (e.g. `scope=brokkr-${{{{ matrix.component }}}}-${{{{ matrix.platform }}}}`)",
                        step_in(job, s), name
                    ));
                }
            }
        }
    }
}
