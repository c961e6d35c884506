//! The rules on how the jobs fit together: the manifest job waits for the
//! build legs and publishes each component on its own (cases R4, M4), and
//! the cache runtime token reaches only the step that builds with it.

use std::collections::BTreeSet;

use super::calls::quoted;
use super::locate::Seg;
use super::rules::{job_builds, legs, pushing_steps, raw_commands, step_in, Ctx, FoundCall};
use super::{Job, Rule, Step};
use crate::project::{self, Component, PlatformList, COMPONENTS, PLATFORMS};

const RUNTIME_ACTION: &str = "crazy-max/ghaction-github-runtime";

/// The manifest job(s) `needs:` (directly or through other jobs) every job
/// that pushes per-platform images and still runs when a leg failed
/// (`!cancelled()`); each call publishes one component, together every
/// component, never narrowing `--platform` (final tags cover every platform).
pub(super) fn check_manifest(cx: &mut Ctx<'_>) {
    let wf = cx.wf;
    let manifest = |cx: &Ctx<'_>, j: &Job| cx.calls_in(j).any(|c| c.call.is(&["manifest"]));
    let per_platform = |cx: &Ctx<'_>, j: &Job| {
        let xtask = cx.calls_in(j).any(|c| c.call.pushes() && !c.call.is(&["manifest"]));
        xtask || (job_builds(cx, j) && !pushing_steps(cx, j).is_empty() && !manifest(cx, j))
    };
    let builds: Vec<&Job> = wf.jobs().filter(|j| per_platform(cx, j)).collect();
    let manifests: Vec<&Job> = wf.jobs().filter(|j| manifest(cx, j)).collect();
    if manifests.is_empty() {
        let per_platform = |c: &&FoundCall| c.call.is(&["build-image"]) || c.call.is(&["push"]);
        if cx.calls.iter().filter(per_platform).any(|c| c.call.pushes()) {
            cx.report(Rule::Manifest, wf.line(&[Seg::Key("jobs")], None), "the workflow pushes per-platform images but no job runs `cargo xtask manifest`, so no multi-arch tag is ever written; add a `create-manifest` job that `needs:` the build job");
        }
        return;
    }
    for job in &manifests {
        let mut reach: BTreeSet<&str> = BTreeSet::new();
        let mut todo: Vec<&String> = job.needs.0.iter().collect();
        while let Some(n) = todo.pop() {
            if reach.insert(n) {
                todo.extend(wf.job(n).iter().flat_map(|j| &j.needs.0));
            }
        }
        let needed_legs: usize =
            job.needs.0.iter().filter_map(|n| wf.job(n)).map(|j| legs(j).len()).sum();
        let cond = job.cond.as_ref().map_or(String::new(), |c| c.0.to_ascii_lowercase());
        if needed_legs > 1
            && !["always()", "cancelled()", "failure()"].iter().any(|f| cond.contains(f))
        {
            let line = wf.job_line(job, Some(if job.cond.is_some() { "if" } else { "needs" }));
            cx.report(Rule::Manifest, line, format!("manifest job `{}` runs only when every leg it needs succeeded, so one failed leg holds back every component; add `if: ${{{{ !cancelled() && ... }}}}` (manifest refuses a component whose records are missing)", job.id));
        }
        for b in builds.iter().filter(|b| !reach.contains(b.id.as_str())) {
            let line = wf.job_line(job, (!job.needs.0.is_empty()).then_some("needs"));
            cx.report(Rule::Manifest, line, format!("manifest job `{}` does not `needs:` the build job `{}`, so it can run before the per-platform images exist; add `needs: {}`", job.id, b.id, b.id));
        }
    }
    let mut covered: BTreeSet<&str> = BTreeSet::new();
    let manifest = cx.calls.iter().filter(|c| c.call.is(&["manifest"]));
    for (line, call) in manifest.map(|c| (c.line, c.call.clone())).collect::<Vec<_>>() {
        let Some(component) = call.get::<&'static Component>("component") else {
            return cx.report(Rule::Manifest, line, "`cargo xtask manifest` without `--component`: publish each component on its own (a matrix over `component`, `--component \"$COMPONENT\"`) so one component's failed leg does not hold back the other");
        };
        covered.insert(component.name);
        let given = call.get::<PlatformList>("platform");
        let left_out = |p: &&str| given.is_some_and(|l| !l.0.iter().any(|x| x.name == *p));
        let missing: Vec<&str> = PLATFORMS.iter().map(|p| p.name).filter(left_out).collect();
        if !missing.is_empty() {
            cx.report(Rule::Manifest, line, format!("`cargo xtask manifest --platform` leaves out {}: the final tags must cover every platform the project declares ({}); drop `--platform`", quoted(&missing), project::platform_names()));
        }
    }
    let missing: Vec<&str> =
        COMPONENTS.iter().map(|c| c.name).filter(|n| !covered.contains(n)).collect();
    if !missing.is_empty() {
        let first = manifests[0];
        cx.report(Rule::Manifest, wf.job_line(first, None), format!("the manifest job `{}` never combines {}: those images get per-platform tags but no multi-arch tag; cover every component ({})", first.id, quoted(&missing), project::component_names()));
    }
}

/// The cache runtime variables (ACTIONS_RUNTIME_TOKEN, through GITHUB_ENV)
/// reach every later step of a job: the action exposing them comes after
/// the xtask is compiled, directly before the one `run:` step that builds
/// with `--cache gha`, and only artifact uploads follow that step.
pub(super) fn check_cache_runtime(cx: &mut Ctx<'_>, job: &Job) {
    let wf = cx.wf;
    let gha: BTreeSet<usize> =
        cx.calls_in(job).filter(|c| c.call.raw("cache") == Some("gha")).map(|c| c.step).collect();
    let at = |i: usize| wf.step_line(job, &job.steps[i], None);
    let what = |i: usize| step_in(job, &job.steps[i]);
    let Some(rt) = job.steps.iter().position(|s| s.uses_action(RUNTIME_ACTION)) else {
        let first = cx.calls_in(job).find(|c| gha.contains(&c.step)).map(|c| c.line);
        if let Some(line) = first {
            cx.report(Rule::CacheRuntime, line, format!("`--cache gha` needs ACTIONS_RUNTIME_TOKEN, which `run:` steps do not get: add `uses: {RUNTIME_ACTION}` directly before this step"));
        }
        return;
    };
    let cargo = |s: &Step| raw_commands(s).iter().any(|a| a.first().is_some_and(|w| w == "cargo"));
    if !job.steps[..rt].iter().any(cargo) {
        cx.report(Rule::CacheRuntime, at(rt), format!("{}: no `cargo xtask` step before it, so the xtask is compiled after ACTIONS_RUNTIME_TOKEN is exposed (its build scripts would see it); compile it in an earlier step: `run: cargo xtask --version`", what(rt)));
    }
    if !gha.contains(&(rt + 1)) || gha.len() > 1 {
        cx.report(Rule::CacheRuntime, at(rt), format!("{} must be directly followed by the one `run:` step that builds with `--cache gha` (the variables reach every later step)", what(rt)));
    }
    let upload = |i: &usize| job.steps[*i].uses_action("actions/upload-artifact");
    for i in (rt + 2..job.steps.len()).filter(|i| !upload(i)) {
        cx.report(Rule::CacheRuntime, at(i), format!("{} comes after `{RUNTIME_ACTION}`, so ACTIONS_RUNTIME_TOKEN reaches it; only artifact uploads may follow the build step: move it before", what(i)));
    }
}
