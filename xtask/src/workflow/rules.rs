//! The rules `cargo xtask validate-workflow` checks a workflow against: the
//! xtask's own CLI, components and platforms, and the images' inputs. Each
//! rule is a case of shared/cases: workflows.md (W1-W6) and builds.md (B3,
//! B7), plus the manifest job. Messages name the line, the fault and the fix.

use std::collections::BTreeSet;

use github_actions_expressions::Evaluation;
use serde_yaml::Value;

use super::calls::{self, XtaskCall, UNKNOWN};
use super::inputs::{repo_path, ImageInput};
use super::locate::{self, Seg};
use super::{
    expand_matrix, leg_label, Diagnostic, Job, Leg, Rule, Scope, Severity, Step, Workflow,
};
use crate::buildx::Strategy;
use crate::project::{self, Platform, COMPONENTS, PLATFORMS};

/// What the rules compare a workflow with.
pub struct Expected<'a> {
    /// The xtask's CLI definition (`Cli::command()`).
    pub cli: &'a clap::Command,
    /// The image inputs ([`image_inputs`]); the workflow file itself is added per file.
    pub image_inputs: &'a [ImageInput],
}

/// The branches pushes must build, as the project's branching model says.
pub const PUSH_BRANCHES: &[&str] = &["main", "develop"];

const TOP_KEYS: &[&str] = &[
    "name",
    "run-name",
    "on",
    "permissions",
    "env",
    "defaults",
    "concurrency",
    "jobs",
];

/// A `cargo xtask` call in a step of a matrix leg, with its line.
pub(super) struct FoundCall {
    pub job: String,
    pub step: usize,
    pub line: usize,
    pub call: XtaskCall,
}

pub(super) struct Ctx<'a> {
    pub wf: &'a Workflow,
    pub exp: &'a Expected<'a>,
    pub out: Vec<Diagnostic>,
    pub calls: Vec<FoundCall>,
}

impl Ctx<'_> {
    fn report(&mut self, rule: Rule, severity: Severity, line: usize, message: String) {
        let path = self.wf.path.clone();
        let d = Diagnostic {
            path,
            line,
            severity,
            message: message.replace(UNKNOWN, "${{ }}"),
            rule,
        };
        if !self.out.contains(&d) {
            self.out.push(d);
        }
    }

    pub(super) fn error(&mut self, rule: Rule, line: usize, message: String) {
        self.report(rule, Severity::Error, line, message);
    }

    pub(super) fn warn(&mut self, rule: Rule, line: usize, message: String) {
        self.report(rule, Severity::Warning, line, message);
    }

    pub(super) fn calls_in(&self, job: &Job) -> impl Iterator<Item = &FoundCall> {
        let id = job.id.clone();
        self.calls.iter().filter(move |c| c.job == id)
    }
}

/// Nothing outside the matrix and env is known: a check that covers every event.
fn unknown_outer(_: &str) -> Option<Evaluation> {
    None
}

/// The context of a pull request run, as far as the guard rule needs it.
fn pull_request_outer(path: &str) -> Option<Evaluation> {
    let s = |v: &str| Some(Evaluation::String(v.to_owned()));
    match path {
        "github.event_name" => s("pull_request"),
        "github.ref" => s("refs/pull/1/merge"),
        _ => None,
    }
}

pub(super) fn legs(job: &Job) -> Vec<Leg> {
    expand_matrix(job.strategy.matrix.as_ref()).unwrap_or_else(|_| vec![Vec::new()])
}

fn scope<'a>(wf: &Workflow, job: &Job, step: Option<&Step>, leg: &'a Leg) -> Scope<'a> {
    Scope::of(wf, job, step, leg, &unknown_outer, Some(UNKNOWN)).0
}

/// Checks a workflow; diagnostics sorted by line. Rules about building
/// images (triggers, path filters, matrix, manifest) apply only to a
/// workflow that builds or pushes images; the others apply to every file.
pub fn check(wf: &Workflow, exp: &Expected<'_>) -> Vec<Diagnostic> {
    let mut cx = Ctx {
        wf,
        exp,
        out: Vec::new(),
        calls: Vec::new(),
    };
    check_calls(&mut cx);
    check_top_keys(&mut cx);
    if wf
        .jobs()
        .any(|j| job_builds(&cx, j) || !pushing_steps(&cx, j).is_empty())
    {
        check_triggers(&mut cx);
        check_paths(&mut cx);
        check_matrix(&mut cx);
        super::jobs::check_manifest(&mut cx);
    }
    check_permissions(&mut cx);
    check_pull_request_guards(&mut cx);
    check_cache_scopes(&mut cx);
    super::jobs::check_cache_runtime(&mut cx);
    check_emulation(&mut cx);
    let mut out = cx.out;
    out.sort_by(|a, b| (a.line, a.severity, &a.message).cmp(&(b.line, b.severity, &b.message)));
    out
}

fn check_top_keys(cx: &mut Ctx<'_>) {
    let wf = cx.wf;
    for k in &wf.keys {
        if let Value::Bool(b) = k {
            let spelled = match b {
                true => ["true", "True", "TRUE"],
                false => ["false", "False", "FALSE"],
            };
            let line = spelled
                .iter()
                .find_map(|s| locate::locate_exact(&wf.text, &[Seg::Key(s)]));
            cx.error(Rule::Triggers, line.unwrap_or(1), format!(
                "the key `{b}` is the YAML boolean {b}, not the trigger key `on` (a YAML 1.1 loader reads `on:` as `true:`, and a file written back by one holds this); GitHub finds no triggers under it: write `on:`"
            ));
        } else if let Some(name) = k.as_str().filter(|n| !TOP_KEYS.contains(n)) {
            let hint = calls::closest(name, TOP_KEYS.iter().copied())
                .map_or(String::new(), |c| format!("; did you mean `{c}`?"));
            let line = wf.line(&[Seg::Key(name)]);
            cx.error(
                Rule::Syntax,
                line,
                format!("unknown top-level key `{name}`{hint}"),
            );
        }
    }
    if wf.jobs.is_none() {
        cx.error(Rule::Syntax, 1, "no `jobs:`".to_owned());
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
                let Ok(cmds) = scope(wf, job, Some(step), leg).commands(&run.0) else {
                    continue;
                };
                for cmd in cmds {
                    let line = wf.run_line(job, step, cmd.line);
                    let what = format!("{} of job `{}`", step.label(), job.id);
                    let fix = "`cargo xtask workflow run` cannot reproduce it locally";
                    if let (Some(p), 0) = (&cmd.problem, n) {
                        cx.warn(Rule::LocalRun, line, format!("{what} uses a {p}: {fix}; keep run lines to one plain `cargo xtask` call"));
                    }
                    let Some(args) = cmd.xtask_args() else {
                        if !cmd.informational() && n == 0 {
                            let shown = cmd
                                .argv()
                                .iter()
                                .take(3)
                                .cloned()
                                .collect::<Vec<_>>()
                                .join(" ");
                            cx.warn(Rule::LocalRun, line, format!("{what} runs `{shown}`, not a `cargo xtask` call: {fix}; move it into the xtask"));
                        }
                        continue;
                    };
                    let (call, problems) = calls::parse_xtask(cx.exp.cli, args);
                    problems
                        .into_iter()
                        .for_each(|p| cx.error(Rule::Cli, line, p));
                    if let Some(call) = call {
                        let (job, step) = (job.id.clone(), step.index);
                        cx.calls.push(FoundCall {
                            job,
                            step,
                            line,
                            call,
                        });
                    }
                }
            }
        }
    }
}

/// W1: the workflow runs on pull requests and on pushes to main and develop.
fn check_triggers(cx: &mut Ctx<'_>) {
    let wf = cx.wf;
    let on_line = wf.line(&[Seg::Key("on")]);
    let add = format!("add `push: {{branches: [{}]}}`", PUSH_BRANCHES.join(", "));
    match &wf.on {
        None if wf.keys.contains(&Value::Bool(true)) => return,
        None => {
            let msg = "no `on:` key: the workflow has no triggers; add `on:` with `push` and `pull_request`";
            return cx.error(Rule::Triggers, 1, msg.to_owned());
        }
        Some(super::On::Other(_)) => {
            let msg = "`on:` must be an event, a list of events, or a mapping of events";
            return cx.error(Rule::Triggers, on_line, msg.to_owned());
        }
        Some(_) => {}
    }
    let triggers = wf.triggers();
    let find = |e: &str| triggers.iter().find(|t| t.event == e);
    match find("push") {
        None => cx.error(
            Rule::Triggers,
            on_line,
            format!(
                "no `push` trigger: pushes to {} do not build images; {add}",
                PUSH_BRANCHES.join(" and ")
            ),
        ),
        Some(t) => check_branch_filter(cx, "push", t.filters.as_ref()),
    }
    match find("pull_request") {
        None => cx.error(Rule::Triggers, on_line, "no `pull_request` trigger: pull requests are not built before they merge; add `pull_request:`".to_owned()),
        Some(t) => check_branch_filter(cx, "pull_request", t.filters.as_ref()),
    }
}

fn check_branch_filter(cx: &mut Ctx<'_>, event: &str, f: Option<&super::Filters>) {
    let wf = cx.wf;
    let Some(f) = f else { return };
    let line = |k: Option<&str>| {
        let mut p = vec![Seg::Key("on"), Seg::Key(event)];
        p.extend(k.map(Seg::Key));
        wf.line(&p)
    };
    if f.branches.is_some() && f.branches_ignore.is_some() {
        let msg = format!("`on.{event}` has both `branches` and `branches-ignore`, which GitHub rejects; keep one");
        return cx.error(Rule::Triggers, line(None), msg);
    }
    let tags_only = f.tags.is_some() || f.tags_ignore.is_some();
    if event == "push" && tags_only && f.branches.is_none() && f.branches_ignore.is_none() {
        let msg = format!(
            "`on.push` filters only tags, so pushes to {} do not run it; add `branches: [{}]`",
            PUSH_BRANCHES.join(" and "),
            PUSH_BRANCHES.join(", ")
        );
        return cx.error(Rule::Triggers, line(None), msg);
    }
    for b in PUSH_BRANCHES {
        if let Some(list) = &f.branches {
            if !super::glob::patterns_select(&list.0, b) {
                let who = if event == "push" {
                    "pushes"
                } else {
                    "pull requests"
                };
                let msg = format!("`on.{event}.branches` does not include `{b}`: {who} to {b} build no images; add `{b}`");
                cx.error(Rule::Triggers, line(Some("branches")), msg);
            }
        }
        if let Some(list) = &f.branches_ignore {
            if super::glob::patterns_select(&list.0, b) {
                let msg = format!("`on.{event}.branches-ignore` excludes `{b}`; remove it");
                cx.error(Rule::Triggers, line(Some("branches-ignore")), msg);
            }
        }
    }
}

/// W2: `paths` / `paths-ignore` of push and pull_request keep every image input.
fn check_paths(cx: &mut Ctx<'_>) {
    let wf = cx.wf;
    let mut inputs: Vec<ImageInput> = cx.exp.image_inputs.to_vec();
    let all: BTreeSet<String> = inputs.iter().flat_map(|i| i.images.clone()).collect();
    let all: Vec<String> = all.into_iter().collect();
    inputs.push(ImageInput {
        path: repo_path(&wf.path),
        images: all.clone(),
    });
    for t in wf.triggers() {
        let (Some(f), "push" | "pull_request") = (&t.filters, t.event.as_str()) else {
            continue;
        };
        let e = &t.event;
        let line = |k: Option<&str>| {
            let mut p = vec![Seg::Key("on"), Seg::Key(e)];
            p.extend(k.map(Seg::Key));
            wf.line(&p)
        };
        if f.paths.is_some() && f.paths_ignore.is_some() {
            let msg = format!(
                "`on.{e}` has both `paths` and `paths-ignore`, which GitHub rejects; keep one"
            );
            cx.error(Rule::Paths, line(None), msg);
            continue;
        }
        for input in &inputs {
            let whose = if input.images.len() == all.len() && all.len() > 1 {
                "every image".to_owned()
            } else {
                input.images.join(", ")
            };
            let probes = input.probes();
            let pat = input.pattern();
            let selects = |list: &super::List, p: &String| super::glob::patterns_select(&list.0, p);
            if let Some(list) = &f.paths {
                if !probes.iter().all(|p| selects(list, p)) {
                    let msg = format!("`on.{e}.paths` misses `{pat}`, an input of {whose}: changing it would not rebuild; add `{pat}` (patterns match whole paths)");
                    cx.error(Rule::Paths, line(Some("paths")), msg);
                }
            }
            if let Some(list) = &f.paths_ignore {
                if probes.iter().any(|p| selects(list, p)) {
                    let msg = format!("`on.{e}.paths-ignore` excludes `{pat}`, an input of {whose}: changing it would not rebuild; narrow the ignore pattern");
                    cx.error(Rule::Paths, line(Some("paths-ignore")), msg);
                }
            }
        }
    }
}

pub(super) fn quoted(items: &[impl AsRef<str>]) -> String {
    let q: Vec<String> = items.iter().map(|m| format!("`{}`", m.as_ref())).collect();
    q.join(", ")
}

/// W6: matrix `component` / `platform` values are exactly the xtask's.
fn check_matrix(cx: &mut Ctx<'_>) {
    let wf = cx.wf;
    for job in wf.jobs() {
        let Some(super::Matrix::Literal { include, axes, .. }) = &job.strategy.matrix else {
            continue;
        };
        for key in ["component", "platform"] {
            let mut values: Vec<String> = axes
                .get(key)
                .map_or_else(Vec::new, |v| v.iter().map(|t| t.0.clone()).collect());
            values.extend(
                include
                    .iter()
                    .filter_map(|e| e.get(key))
                    .map(|t| t.0.clone()),
            );
            if values.is_empty() || values.iter().any(|v| v.contains('$')) {
                continue;
            }
            let known = |v: &String| match key {
                "component" => project::component(v).ok().map(|c| c.name),
                _ => Platform::parse(v).ok().map(|p| p.name),
            };
            let all: Vec<&str> = match key {
                "component" => COMPONENTS.iter().map(|c| c.name).collect(),
                _ => PLATFORMS.iter().map(|p| p.name).collect(),
            };
            let found: Vec<&str> = values.iter().filter_map(known).collect();
            let unknown: Vec<&String> = values.iter().filter(|v| known(v).is_none()).collect();
            let missing: Vec<&str> = all.iter().copied().filter(|n| !found.contains(n)).collect();
            let mut parts = Vec::new();
            if !missing.is_empty() {
                parts.push(format!("missing {}", quoted(&missing)));
            }
            if !unknown.is_empty() {
                parts.push(format!("not known to the xtask: {}", quoted(&unknown)));
            }
            if parts.is_empty() {
                continue;
            }
            let mut p = vec![
                Seg::Key("jobs"),
                Seg::Key(&job.id),
                Seg::Key("strategy"),
                Seg::Key("matrix"),
            ];
            if axes.contains_key(key) {
                p.push(Seg::Key(key));
            }
            cx.error(Rule::Matrix, wf.line(&p), format!(
                "matrix `{key}` of job `{}` differs from the xtask's {key}s ({}): {}; list exactly the ones in xtask/src/project.rs",
                job.id, all.join(", "), parts.join("; ")
            ));
        }
    }
}

fn is_build_action(s: &Step) -> bool {
    matches!(
        s.action().as_deref(),
        Some("docker/build-push-action" | "docker/bake-action")
    )
}

/// Whether a job builds images (a build step of any kind).
pub(super) fn job_builds(cx: &Ctx<'_>, job: &Job) -> bool {
    cx.calls_in(job)
        .any(|c| c.call.is(&["build-image"]) || c.call.is(&["images"]))
        || job.steps.iter().any(|s| {
            let raw = s.run.as_ref().is_some_and(|r| {
                r.0.contains("docker buildx build") || r.0.contains("docker build ")
            });
            is_build_action(s) || raw
        })
}

/// The words of each command of a script as written (no substitution).
pub(super) fn raw_commands(run: &str) -> Vec<Vec<String>> {
    calls::commands(run, &|_| None, None)
        .into_iter()
        .map(|c| c.argv().to_vec())
        .collect()
}

/// Whether a run script pushes with docker directly.
fn run_pushes_raw(run: &str) -> bool {
    raw_commands(run).iter().any(|c| {
        let a: Vec<&str> = c.iter().map(String::as_str).collect();
        match a.as_slice() {
            ["docker", "push", ..]
            | ["docker", "manifest", "push", ..]
            | ["docker", "buildx", "imagetools", "create", ..] => true,
            ["docker", "buildx", "build" | "bake", rest @ ..] => rest.iter().any(|w| {
                *w == "--push" || w.starts_with("--output=type=registry") || w.contains("push=true")
            }),
            _ => false,
        }
    })
}

/// The pushing steps of a job: (step index, whether the push itself is
/// guarded by a `push:` input that is false on pull requests).
pub(super) fn pushing_steps(cx: &Ctx<'_>, job: &Job) -> Vec<(usize, bool)> {
    let mut out = Vec::new();
    for s in &job.steps {
        if is_build_action(s) {
            let Some(p) = s.input("push") else { continue };
            let none = Vec::new();
            let pr = Scope {
                outer: &pull_request_outer,
                leg: &none,
                env: Vec::new(),
                unknown: None,
            };
            match pr.condition(p) {
                Ok(Some(false)) if !p.contains("${{") => {}
                Ok(Some(false)) => out.push((s.index, true)),
                _ => out.push((s.index, false)),
            }
        } else if cx
            .calls_in(job)
            .any(|c| c.step == s.index && c.call.pushes())
            || s.run.as_ref().is_some_and(|r| run_pushes_raw(&r.0))
        {
            out.push((s.index, false));
        }
    }
    out
}

/// W3: a job that pushes has `packages: write` (job-level `permissions`
/// replace the workflow's, as GitHub applies them).
fn check_permissions(cx: &mut Ctx<'_>) {
    let wf = cx.wf;
    for job in wf.jobs() {
        let Some(&(si, _)) = pushing_steps(cx, job).first() else {
            continue;
        };
        let (effective, whose) = match (&job.permissions, &wf.permissions) {
            (Some(p), _) => (
                Some(p),
                "the job's `permissions:` (which replace the workflow's)",
            ),
            (None, Some(p)) => (Some(p), "the workflow's `permissions:`"),
            (None, None) => (
                None,
                "no `permissions:` (the repository default may be read-only)",
            ),
        };
        if effective.is_some_and(super::Permissions::packages_write) {
            continue;
        }
        let line = wf.job_line(job, job.permissions.as_ref().map(|_| "permissions"));
        cx.error(Rule::Permissions, line, format!(
            "job `{}` pushes images ({}) but its GITHUB_TOKEN has no `packages: write` under {whose}; add `permissions: {{contents: read, packages: write}}` to the job",
            job.id, job.steps[si].label()
        ));
    }
}

fn is_login(s: &Step) -> bool {
    s.action().as_deref() == Some("docker/login-action")
        || s.run.as_ref().is_some_and(|r| {
            raw_commands(&r.0)
                .iter()
                .any(|a| a.len() >= 2 && a[0] == "docker" && a[1] == "login")
        })
}

/// The names of secrets a step uses other than `GITHUB_TOKEN`.
fn secrets_used(s: &Step) -> Vec<String> {
    let texts = s.with.values().chain(s.env.values()).chain(s.run.as_ref());
    let mut out: Vec<String> = Vec::new();
    for t in texts {
        for (_, _, inner) in super::expr::spans(&t.0) {
            for (p, _) in inner.match_indices("secrets.") {
                let rest = &inner[p + 8..];
                let n = rest
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(rest.len());
                let name = &rest[..n];
                if !name.eq_ignore_ascii_case("GITHUB_TOKEN") && !out.iter().any(|x| x == name) {
                    out.push(name.to_owned());
                }
            }
        }
    }
    out
}

/// W4: on a workflow that runs on pull requests, registry logins, steps
/// using secrets, and pushes are skipped on pull requests (forks get no
/// secrets and a read-only token, so those steps fail there).
fn check_pull_request_guards(cx: &mut Ctx<'_>) {
    let wf = cx.wf;
    if !wf.triggers().iter().any(|t| t.event == "pull_request") {
        return;
    }
    let none: Leg = Vec::new();
    let pr = Scope {
        outer: &pull_request_outer,
        leg: &none,
        env: Vec::new(),
        unknown: None,
    };
    let off_on_prs = |cond: &Option<super::Text>| {
        cond.as_ref()
            .is_some_and(|c| pr.condition(&c.0) == Ok(Some(false)))
    };
    const FIX: &str = "add `if: github.event_name != 'pull_request'` to the step or its job";
    for job in wf.jobs().filter(|j| !off_on_prs(&j.cond)) {
        let pushes = pushing_steps(cx, job);
        let perms = job.permissions.as_ref().or(wf.permissions.as_ref());
        if job_builds(cx, job) && perms.is_some_and(super::Permissions::packages_write) {
            let line = wf.job_line(job, job.permissions.as_ref().map(|_| "permissions"));
            cx.error(Rule::PullRequestToken, line, format!("job `{}` builds on pull requests with a token that has `packages: write`; a pull request's token must not write packages: give pull request legs a job of their own with `permissions: {{contents: read}}`", job.id));
        }
        let exports: Vec<usize> = cx
            .calls_in(job)
            .filter(|c| c.call.raw("cache") == Some("gha") && !c.call.flag("cache_read_only"))
            .filter(|c| !off_on_prs(&job.steps[c.step].cond))
            .map(|c| c.line)
            .collect();
        for line in exports {
            cx.error(Rule::PullRequestToken, line, "`--cache gha` on pull requests exports to the cache other runs import; add `--cache-read-only` (pull requests import the cache, never export)".to_owned());
        }
        for s in job.steps.iter().filter(|s| !off_on_prs(&s.cond)) {
            let line = wf.step_line(job, s, None);
            let what = format!("{} of job `{}`", s.label(), job.id);
            let secrets = secrets_used(s);
            if is_login(s) {
                cx.error(Rule::PullRequestGuard, line, format!("{what} logs in to a registry on pull requests too, where forks get no secrets; pull requests should only build: {FIX}"));
            } else if !secrets.is_empty() {
                cx.error(Rule::PullRequestGuard, line, format!("{what} uses secret(s) {} on pull requests too, where forks get none: {FIX}", secrets.join(", ")));
            }
            if pushes.contains(&(s.index, false)) {
                cx.error(Rule::PullRequestGuard, line, format!("{what} pushes images on pull requests too; pull requests should only build: {FIX}"));
            }
        }
    }
}

/// The values of `flag` in the words of each `docker buildx build` of a script.
fn buildx_flag(scope: &Scope<'_>, run: &str, flag: &str) -> Vec<String> {
    let cmds = scope.commands(run).unwrap_or_default();
    let builds = cmds
        .iter()
        .map(|c| c.argv())
        .filter(|a| a.len() >= 3 && a[..3] == ["docker", "buildx", "build"]);
    let prefix = format!("{flag}=");
    builds
        .flat_map(|a| {
            let pairs = a.iter().zip(a.iter().skip(1).map(Some).chain([None]));
            pairs
                .filter_map(|(w, next)| {
                    if w == flag {
                        next.cloned()
                    } else {
                        w.strip_prefix(&prefix).map(str::to_owned)
                    }
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The gha cache entries (`cache-from`/`cache-to`) of a step in one leg.
fn gha_entries(scope: &Scope<'_>, s: &Step) -> Vec<(String, String)> {
    let mut entries = Vec::new();
    for what in ["cache-from", "cache-to"] {
        if is_build_action(s) {
            let v = s
                .input(what)
                .and_then(|v| scope.substitute(v).ok())
                .unwrap_or_default();
            let split = v
                .lines()
                .flat_map(|l| l.split(';'))
                .map(str::trim)
                .filter(|e| !e.is_empty());
            entries.extend(split.map(|e| (what.to_owned(), e.to_owned())));
        } else if let Some(run) = &s.run {
            let vals = buildx_flag(scope, &run.0, &format!("--{what}"));
            entries.extend(vals.into_iter().map(|v| (what.to_owned(), v)));
        }
    }
    entries.retain(|(_, e)| !e.contains(UNKNOWN) && e.split(',').any(|a| a.trim() == "type=gha"));
    entries
}

/// B3: in a job with several legs, a `type=gha` cache entry of a build
/// step (`cache-from` / `cache-to` inputs, `--cache-from` / `--cache-to`
/// of `docker buildx build`) resolves to a different scope per leg.
/// `cargo xtask build-image --cache gha` derives the scope from component and platform.
fn check_cache_scopes(cx: &mut Ctx<'_>) {
    let wf = cx.wf;
    for job in wf.jobs() {
        let legs = legs(job);
        for s in job.steps.iter().filter(|_| legs.len() > 1) {
            // (what, scope, first leg using it)
            let mut seen: Vec<(String, String, String)> = Vec::new();
            let mut reported: BTreeSet<String> = BTreeSet::new();
            for leg in &legs {
                let label = leg_label(leg);
                for (what, e) in gha_entries(&scope(wf, job, Some(s), leg), s) {
                    let name = e
                        .split(',')
                        .find_map(|a| a.trim().strip_prefix("scope="))
                        .unwrap_or("buildkit")
                        .to_owned();
                    let first = seen
                        .iter()
                        .find(|(w, sc, _)| *w == what && *sc == name)
                        .map(|(_, _, l)| l.clone());
                    match first {
                        None => seen.push((what, name, label.clone())),
                        Some(first)
                            if first != label && reported.insert(format!("{what}/{name}")) =>
                        {
                            let line = wf.step_line(
                                job,
                                s,
                                Some(if is_build_action(s) { "with" } else { "run" }),
                            );
                            let effect = if what == "cache-to" {
                                "each leg's export overwrites the other's"
                            } else {
                                "each leg imports the other's cache (another platform's layers, missed hits)"
                            };
                            cx.error(Rule::CacheScope, line, format!(
                                "{} of job `{}`: legs `{first}` and `{label}` share the gha cache scope `{name}` in `{what}`, so {effect}; add `scope=` naming both `${{{{ matrix.component }}}}` and `${{{{ matrix.platform }}}}` (e.g. `scope=brokkr-${{{{ matrix.component }}}}-${{{{ matrix.platform }}}}`)",
                                s.label(), job.id
                            ));
                        }
                        Some(_) => {}
                    }
                }
            }
        }
    }
}

/// The CPU architecture (`amd64`/`arm64`) of a runner label list: labels
/// naming ARM (`ubuntu-24.04-arm`, `ARM64`) are arm64, others amd64.
pub fn runner_arch(labels: &[String]) -> &'static str {
    let arm = labels.iter().map(|l| l.to_ascii_lowercase()).any(|l| {
        l.ends_with("-arm") || l.contains("arm64") || l.contains("aarch64") || l.contains("-arm-")
    });
    if arm {
        "arm64"
    } else {
        "amd64"
    }
}

/// The target platforms a step builds for with a builder that emulates.
fn emulated_targets(scope: &Scope<'_>, s: &Step) -> Vec<String> {
    let text = if is_build_action(s) {
        s.input("platforms")
            .and_then(|p| scope.substitute(p).ok())
            .unwrap_or_default()
    } else if let Some(run) = &s.run {
        // The xtask's own strategies are checked on its calls.
        buildx_flag(scope, &run.0, "--platform").join(",")
    } else {
        String::new()
    };
    text.split([',', '\n'])
        .map(|x| x.trim().to_owned())
        .filter(|x| !x.is_empty())
        .collect()
}

/// B7: Rust compiled under emulation. `cargo xtask ... --strategy emulate`
/// anywhere, and a leg that builds for a platform other than its runner's
/// architecture with a builder that emulates (build-push-action, `docker
/// buildx build`), are warnings; the xtask's default cross strategy
/// compiles natively and cross-compiles.
fn check_emulation(cx: &mut Ctx<'_>) {
    let wf = cx.wf;
    let emulate: Vec<usize> = cx
        .calls
        .iter()
        .filter(|c| c.call.get::<Strategy>("strategy") == Some(&Strategy::Emulate))
        .map(|c| c.line)
        .collect();
    for line in emulate {
        cx.warn(Rule::Emulation, line, "`--strategy emulate` compiles Rust under QEMU: an arm64 leg takes 1-2 hours instead of minutes; drop it to use the default cross strategy".to_owned());
    }
    for job in wf.jobs() {
        let has_qemu = job
            .steps
            .iter()
            .any(|s| s.action().as_deref() == Some("docker/setup-qemu-action"));
        for leg in &legs(job) {
            let job_scope = scope(wf, job, None, leg);
            let labels: Vec<String> = job
                .runs_on
                .0
                .iter()
                .filter_map(|l| job_scope.substitute(l).ok())
                .collect();
            if labels.len() != job.runs_on.0.len() || labels.iter().any(|l| l.contains(UNKNOWN)) {
                continue;
            }
            let arch = runner_arch(&labels);
            for s in &job.steps {
                for t in emulated_targets(&scope(wf, job, Some(s), leg), s) {
                    let Ok(p) = Platform::parse(&t) else { continue };
                    if p.arch == arch {
                        continue;
                    }
                    cx.warn(Rule::Emulation, wf.step_line(job, s, None), format!(
                        "{} of job `{}` (leg `{}`) builds {} on an {arch} runner (`{}`){}: Rust compiled under emulation takes 1-2 hours; run the leg on a native runner (`ubuntu-24.04-arm` for arm64) or build with `cargo xtask build-image` (cross strategy)",
                        s.label(), job.id, leg_label(leg), p.name, labels.join(", "),
                        if has_qemu { " through QEMU" } else { "" }
                    ));
                }
            }
        }
    }
}
