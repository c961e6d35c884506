//! `cargo xtask workflow run`: runs a workflow's `cargo xtask` steps here, in GitHub's
//! order and environment, against the loopback registry. [`plan`] (pure) evaluates
//! `if:` and `${{ }}`/`$VAR` per job, leg and step; [`walk`] runs it as GitHub would:
//! a job's `if:` sees its needs' results, every leg runs when another failed
//! (`fail-fast: false`), a failed step skips the rest of its leg.

use std::fmt;
use std::path::PathBuf;

use anyhow::{bail, ensure, Context, Result};
use github_actions_expressions::Evaluation;
use indexmap::IndexMap;
use xshell::Shell;

use super::{
    calls, expand_matrix, glob, leg_get, leg_label, Job, Leg, Scope, Step, Text, Workflow,
};
use crate::plan::Cmd;
use crate::project::{Platform, LOCAL_REGISTRY};

#[derive(Debug, clap::Subcommand)]
pub enum WorkflowCommand {
    /// Run the workflow's `cargo xtask` steps here, in order, with GitHub's
    /// environment, against the loopback registry.
    Run(WorkflowRunArgs),
}

#[derive(Clone, Debug, clap::Args)]
pub struct WorkflowRunArgs {
    /// The event to simulate.
    #[arg(long, value_enum)]
    pub event: Event,
    /// `main`, `refs/heads/main`, `refs/tags/v1.0.0`; for pull requests
    /// `refs/pull/7/merge` or the head branch.
    #[arg(long = "ref", value_name = "REF")]
    pub git_ref: String,
    /// Run only this job (by id or name), as if the jobs it needs succeeded.
    #[arg(long, value_name = "NAME")]
    pub job: Option<String>,
    /// Rehearse a failed leg: the matrix leg holding all these values
    /// (`'agent linux/arm64'`) fails without running; repeatable.
    #[arg(long, value_name = "VALUES")]
    pub fail_leg: Vec<String>,
    /// Default: `.github/workflows/build-images.yml` in the workspace.
    #[arg(long, value_parser = crate::options::absolute_path)]
    pub file: Option<PathBuf>,
    /// The loopback registry pushes go to instead of `ghcr.io/<owner>`.
    #[arg(long, default_value = LOCAL_REGISTRY)]
    pub registry: String,
    /// Print the plan and what each job would do, run nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Event {
    Push,
    #[value(name = "pull_request")]
    PullRequest,
}

impl Event {
    pub fn name(self) -> &'static str {
        ["push", "pull_request"][self as usize]
    }
}

/// The refs GitHub gives a run: `full` (`GITHUB_REF`: `refs/heads/main`,
/// `refs/pull/7/merge`), `name` (`main`, `7/merge`), `kind` (`branch`/`tag`),
/// `head`, `base` and `pr_number` (pull requests only).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Refs {
    pub full: String,
    pub name: String,
    pub kind: &'static str,
    pub head: String,
    pub base: String,
    pub pr_number: Option<u64>,
}

impl Refs {
    /// Push: a branch (`main`, `refs/heads/main`) or `refs/tags/<tag>`. Pull
    /// request: `refs/pull/<N>/merge` (head branch `head`, else `pr-<N>`) or
    /// the head branch of pull request 1.
    pub fn parse(event: Event, given: &str, head: Option<&str>) -> Result<Refs> {
        let g = given.trim();
        let branch = g.strip_prefix("refs/heads/").unwrap_or(g);
        let push = |full: String, name: &str, kind| {
            Ok(Refs { full, name: name.to_owned(), kind, ..Refs::default() })
        };
        let (n, kind, head) = match (event, g.strip_prefix("refs/pull/"), g.strip_prefix("refs/tags/")) {
            _ if g.is_empty() => bail!("--ref is empty; give a branch (`main`), `refs/heads/<branch>`, `refs/tags/<tag>` or `refs/pull/<N>/merge`"),
            (Event::Push, Some(_), _) => bail!("`{g}` is a pull request ref, which a push never has; use `--event pull_request`, or a branch with push"),
            (Event::PullRequest, Some(rest), _) => {
                let (n, kind) = rest.split_once('/').unwrap_or((rest, "merge"));
                let Ok(n) = n.parse::<u64>() else {
                    bail!("`{g}`: the pull request number is not a number; write `refs/pull/<N>/merge`")
                };
                if kind != "merge" && kind != "head" {
                    bail!("`{g}`: pull request refs are `refs/pull/<N>/merge` (or `/head`)");
                }
                (n, kind, head.map_or_else(|| format!("pr-{n}"), str::to_owned))
            }
            (Event::PullRequest, _, Some(_)) => bail!("`{g}`: a pull request comes from a branch, not a tag"),
            (Event::PullRequest, _, _) => (1, "merge", branch.to_owned()),
            (Event::Push, _, Some(tag)) => return push(g.to_owned(), tag, "tag"),
            _ if branch.starts_with("refs/") => bail!("`{g}`: unknown ref kind; use `refs/heads/<branch>` or `refs/tags/<tag>`"),
            _ => return push(format!("refs/heads/{branch}"), branch, "branch"),
        };
        let (full, name) = (format!("refs/pull/{n}/{kind}"), format!("{n}/{kind}"));
        // `base`: the branch pull requests target.
        Ok(Refs { full, name, kind: "branch", head, base: "main".to_owned(), pr_number: Some(n) })
    }
}

/// The run the CLI asks for and what it knows beyond the workflow: `sha` is the
/// checked-out commit, `repository` `owner/name`, `runner_arch` this machine's (`X64`, `ARM64`).
#[derive(Clone, Debug)]
pub struct RunContext {
    pub args: WorkflowRunArgs,
    pub refs: Refs,
    pub sha: String,
    pub repository: String,
    pub runner_arch: &'static str,
}

/// A job of the plan. `runs`: whether its `if:` lets it run when its needs all
/// succeeded, when one failed, when one was skipped (in none: no legs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedJob {
    pub id: String,
    pub cond: String,
    pub needs: Vec<String>,
    pub runs: Vec<bool>,
    pub legs: Vec<PlannedLeg>,
}

/// A matrix leg (`label` empty without a matrix); `fail` marks a `--fail-leg`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedLeg {
    pub values: Leg,
    pub label: String,
    pub fail: bool,
    pub steps: Vec<PlannedStep>,
}

/// One step of a leg; `step` is the step's label.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedStep {
    pub step: String,
    pub action: Action,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// `cargo xtask <argv>` (registry and cache rewritten, a note per change)
    /// with GitHub's variables, then workflow, job and step `env:`.
    Run { argv: Vec<String>, env: Vec<(String, String)>, notes: Vec<String> },
    /// A `uses:` step (`owner/repo@ref`) stood in for; `check` is a path
    /// that must exist when it runs (what upload-artifact would upload).
    StandIn { uses: String, note: String, check: Option<String> },
    /// Why the step does nothing here.
    Skip(String),
}

impl fmt::Display for PlannedStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.step)?;
        match &self.action {
            Action::Run { argv, notes, .. } => {
                let words: Vec<String> = argv.iter().map(|a| crate::plan::shell_quote(a)).collect();
                write!(f, "cargo xtask {}", words.join(" "))?;
                notes.iter().try_for_each(|n| write!(f, " ({n})"))
            }
            Action::StandIn { uses, note, .. } => write!(f, "stands in for {uses}: {note}"),
            Action::Skip(reason) => write!(f, "skipped: {reason}"),
        }
    }
}

/// What stands in locally for an action (by `owner/repo`), or `None` to skip it.
fn stand_in(action: &str) -> Option<&'static str> {
    Some(match action {
        "actions/checkout" => "the working tree as it is, uncommitted changes included",
        "dtolnay/rust-toolchain" | "actions-rust-lang/setup-rust-toolchain" => "this machine's Rust toolchain",
        "swatinem/rust-cache" | "actions/cache" => "the local target/ directory",
        "docker/setup-buildx-action" => "this machine's docker buildx (the xtask checks its builder before building)",
        "docker/setup-qemu-action" => "this host's binfmt handlers (`cargo xtask setup` registers them)",
        "crazy-max/ghaction-github-runtime" => "nothing: there is no GitHub cache service here, so `--cache gha` runs as `--cache local`",
        "docker/login-action" => "nothing: the loopback registry needs no login",
        "actions/upload-artifact" => "checks the path exists: the records stay in target/xtask/images/ for the jobs after it",
        "actions/download-artifact" => "nothing: the records the build legs wrote are in target/xtask/images/ already",
        _ => return None,
    })
}

/// The variables of a step: fixed ones, then the `github.*`/`runner.*` values of the
/// run, each named after its path (`github.ref_name`: `GITHUB_REF_NAME`).
fn github_vars(ctx: &RunContext, wf: &Workflow, job: &str) -> Vec<(&'static str, String)> {
    let owner = ctx.repository.split('/').next().unwrap_or("");
    let name = wf.name.as_ref().map_or_else(|| super::repo_path(&wf.path), |n| n.0.clone());
    let r = &ctx.refs;
    let vars = [
        // BROKKR_WORKFLOW_RUN: this machine is no GitHub runner (see host::probe::github_actions).
        ("CI", "true"),
        ("GITHUB_ACTIONS", "true"),
        ("BROKKR_WORKFLOW_RUN", "1"),
        ("github.event_name", ctx.args.event.name()),
        ("github.ref", &r.full),
        ("github.ref_name", &r.name),
        ("github.ref_type", r.kind),
        ("github.head_ref", &r.head),
        ("github.base_ref", &r.base),
        ("github.sha", &ctx.sha),
        ("github.repository", &ctx.repository),
        ("github.repository_owner", owner),
        ("github.actor", owner),
        ("github.triggering_actor", owner),
        ("github.workflow", &name),
        ("github.job", job),
        ("github.server_url", "https://github.com"),
        ("github.run_id", "1"),
        ("github.run_number", "1"),
        ("github.run_attempt", "1"),
        ("runner.os", "Linux"),
        ("runner.arch", ctx.runner_arch),
    ];
    vars.into_iter().map(|(k, v)| (k, v.to_owned())).collect()
}

/// `github.*`, `runner.*`, `secrets.*` (empty: none exist here), `vars.*`.
fn outer_value(ctx: &RunContext, wf: &Workflow, job: &str, path: &str) -> Option<Evaluation> {
    let var = github_vars(ctx, wf, job).into_iter().find(|(p, _)| *p == path);
    var.map(|(_, v)| Evaluation::String(v)).or_else(|| match path {
        "github.event.pull_request.number" | "github.event.number" => {
            ctx.refs.pr_number.map(|n| Evaluation::Number(n as f64))
        }
        p if p.starts_with("secrets.") => Some(Evaluation::String(String::new())),
        p if p.starts_with("vars.") || p.starts_with("inputs.") => Some(Evaluation::Null),
        _ => None,
    })
}

/// Rewrites a `cargo xtask` call for this machine: `--cache gha` becomes
/// `--cache local` and `--registry X` the loopback registry. Returns the new
/// words and a note per change.
pub fn rewrite(argv: &[String], registry: &str) -> (Vec<String>, Vec<String>) {
    let (mut out, mut notes) = (argv.to_vec(), Vec::new());
    for i in 0..out.len() {
        // The flag, and the word holding its value (`--flag=value` or `--flag value`).
        let (flag, at) = match out[i].split_once('=') {
            Some((f, _)) if f.starts_with("--") => (f.to_owned(), i),
            _ => (out[i].clone(), i + 1),
        };
        let Some(word) = out.get(at) else { continue };
        let value = if at == i { &word[flag.len() + 1..] } else { word.as_str() };
        let new = match (flag.as_str(), value) {
            ("--cache", "gha") => {
                notes.push("`--cache gha` runs as `--cache local`: one directory per cache scope under target/buildx-cache/, replaced on each export".to_owned());
                "local"
            }
            ("--registry", r) if r != registry => {
                notes.push(format!("`--registry {r}` runs as `--registry {registry}`"));
                registry
            }
            _ => continue,
        };
        out[at] = if at == i { format!("{flag}={new}") } else { new.to_owned() };
    }
    (out, notes)
}

/// Whether the workflow runs for this event and ref, by its `on:` branch and
/// tag filters (path filters are not applied locally).
fn check_trigger(wf: &Workflow, ctx: &RunContext) -> Result<()> {
    let (event, path) = (ctx.args.event.name(), &wf.path);
    let Some(filters) = wf.trigger(event) else {
        bail!("{path} does not run on `{event}` (its `on:` has no `{event}`)");
    };
    let Some(f) = filters else { return Ok(()) };
    // Pull request filters apply to the base branch; push filters to the pushed ref.
    let (name, is_tag) = match ctx.args.event {
        Event::PullRequest => (ctx.refs.base.as_str(), false),
        Event::Push => (ctx.refs.name.as_str(), ctx.refs.kind == "tag"),
    };
    let (tags, branches) = ([&f.tags, &f.tags_ignore], [&f.branches, &f.branches_ignore]);
    let (refs, other) = if is_tag { (tags, branches) } else { (branches, tags) };
    let runs = match refs {
        [Some(l), _] => glob::patterns_select(&l.0, name),
        [None, Some(l)] => !glob::patterns_select(&l.0, name),
        // Filtering only the other kind of ref excludes this kind.
        [None, None] => other.iter().all(|o| o.is_none()),
    };
    if !runs {
        let full = &ctx.refs.full;
        bail!("{path} does not run on `{event}` for `{full}`: its `on.{event}` filters exclude `{name}`");
    }
    Ok(())
}

/// Jobs in an order that respects `needs:` (file order among ready jobs).
fn job_order(wf: &Workflow) -> Result<Vec<&Job>> {
    let jobs: Vec<&Job> = wf.jobs().collect();
    let mut needs = jobs.iter().flat_map(|j| j.needs.0.iter().map(move |n| (j, n)));
    if let Some((j, n)) = needs.find(|(_, n)| wf.job(n).is_none()) {
        bail!("job `{}` needs `{n}`, which is not a job of {}", j.id, wf.path);
    }
    let mut out: Vec<&Job> = Vec::new();
    while out.len() < jobs.len() {
        let done = |n: &String| out.iter().any(|d| d.id == *n);
        let Some(j) = jobs.iter().find(|j| !done(&j.id) && j.needs.0.iter().all(done)) else {
            bail!("the jobs' `needs:` form a cycle in {}", wf.path);
        };
        out.push(j);
    }
    Ok(out)
}

/// Whether a `--fail-leg` value names this leg: each of its words is one of
/// the leg's matrix values.
fn names_leg(spec: &str, leg: &Leg) -> bool {
    let mut words = spec.split_whitespace().peekable();
    words.peek().is_some() && words.all(|w| leg.iter().any(|(_, v)| v == w))
}

/// Plans a local run of `wf`: every job (or only `--job`, by id or name),
/// leg and step. Errors list all that cannot run locally: a `run:` line that
/// is not a `cargo xtask` call (or `echo`), shell features beyond words and
/// `$VAR`, unresolved values, conditions on step outputs, a `--fail-leg` naming no leg.
pub fn plan(wf: &Workflow, ctx: &RunContext) -> Result<Vec<PlannedJob>> {
    check_trigger(wf, ctx)?;
    let (mut jobs, only_job) = (job_order(wf)?, ctx.args.job.as_deref());
    if let Some(want) = only_job {
        let named = |j: &&Job| j.id == want || j.name.as_ref().is_some_and(|n| n.0 == want);
        let Some(found) = wf.jobs().find(named) else {
            let ids: Vec<&str> = wf.jobs().map(|j| j.id.as_str()).collect();
            let hint = calls::did_you_mean(calls::closest(want, ids.iter().copied()));
            bail!("{} has no job `{want}`{hint} (jobs: {})", wf.path, ids.join(", "));
        };
        jobs.retain(|j| j.id == found.id);
    }
    let mut p = Planner { wf, ctx, errors: Vec::new() };
    let planned: Vec<PlannedJob> =
        jobs.into_iter().filter_map(|j| p.job(j, only_job.is_some())).collect();
    let mut errors = p.errors;
    for spec in &ctx.args.fail_leg {
        let legs = planned.iter().flat_map(|j| &j.legs);
        if !legs.clone().any(|l| names_leg(spec, &l.values)) {
            let all = calls::quoted(&legs.map(|l| &l.label).collect::<Vec<_>>());
            errors.push(format!("--fail-leg `{spec}` names no leg that runs (legs: {all})"));
        }
    }
    ensure!(errors.is_empty(), "{} cannot run locally:\n  - {}", wf.path, errors.join("\n  - "));
    Ok(planned)
}

struct Planner<'a> {
    wf: &'a Workflow,
    ctx: &'a RunContext,
    errors: Vec<String>,
}

impl Planner<'_> {
    /// `cond` in `scope`; `None` (an error noted) when it cannot be evaluated here.
    fn test(&mut self, whr: &str, scope: &Scope<'_>, cond: &str) -> Option<bool> {
        let e = match super::expr::condition(cond, &|p| scope.resolve(p)) {
            Ok(Some(b)) => return Some(b),
            Ok(None) => format!("{whr}: cannot evaluate `if: {cond}` locally"),
            Err(e) => format!("{whr}: {e}"),
        };
        self.errors.push(e);
        None
    }

    fn job(&mut self, job: &Job, alone: bool) -> Option<PlannedJob> {
        let (wf, ctx) = (self.wf, self.ctx);
        let whr = format!("job `{}`", job.id);
        let cond = job.cond.as_ref().map_or("success()", |c| c.0.as_str());
        let outer = |p: &str| outer_value(ctx, wf, &job.id, p);
        // needs: all succeeded, one failed, one skipped
        let scenarios = [(true, false), (false, true), (false, false)].into_iter();
        let runs = scenarios.map(|(ok, failed)| {
            let status = |p: &str| match p {
                "success()" => Some(Evaluation::Boolean(ok)),
                "failure()" => Some(Evaluation::Boolean(failed)),
                _ => outer(p),
            };
            self.test(&whr, &Scope::of(wf, job, None, &[], &status, None).0, cond)
        });
        let runs: Vec<bool> = runs.collect::<Option<_>>()?;
        let needs = if alone { Vec::new() } else { job.needs.0.clone() };
        let (id, cond) = (job.id.clone(), cond.to_owned());
        let mut planned = PlannedJob { id, cond, needs, runs, legs: Vec::new() };
        if !planned.runs.contains(&true) {
            return Some(planned);
        }
        let legs = expand_matrix(job.strategy.matrix.as_ref());
        for values in legs.map_err(|e| self.errors.push(format!("{whr}: {e}"))).ok()? {
            let label = leg_label(&values);
            let fail = ctx.args.fail_leg.iter().any(|s| names_leg(s, &values));
            let whr = format!("{whr} ({})", if label.is_empty() { "no matrix" } else { &label });
            let steps = job.steps.iter().flat_map(|s| self.step(&whr, job, s, &values)).collect();
            planned.legs.push(PlannedLeg { values, label, fail, steps });
        }
        Some(planned)
    }

    /// What a step does here in `leg`, per command; what cannot run locally is an error at `whr`.
    fn step(&mut self, whr: &str, job: &Job, step: &Step, leg: &Leg) -> Vec<PlannedStep> {
        let planned = |action| PlannedStep { step: step.label(), action };
        let (wf, ctx, registry) = (self.wf, self.ctx, &self.ctx.args.registry);
        let outer = |p: &str| outer_value(ctx, wf, &job.id, p);
        let (scope, failed) = Scope::of(wf, job, Some(step), leg, &outer, None);
        let whr = format!("{whr} {}", step.label());
        if !failed.is_empty() {
            self.errors.push(format!("{whr}: cannot evaluate env {}", failed.join(", ")));
            return Vec::new();
        }
        if let Some(Text(c)) = &step.cond {
            let Some(ok) = self.test(&whr, &scope, c) else { return Vec::new() };
            if !ok {
                let (e, r) = (ctx.args.event.name(), &ctx.refs.full);
                return vec![planned(Action::Skip(format!("`if: {c}` is false for {e} {r}")))];
            }
        }
        if let Some(uses) = &step.uses {
            let action = step.action().unwrap_or_default();
            let path = step.input("path").filter(|_| action == "actions/upload-artifact");
            let check = path.map(|p| scope.substitute(p).unwrap_or_else(|_| p.to_owned()));
            let uses = uses.clone();
            return vec![planned(match stand_in(&action) {
                Some(note) => Action::StandIn { uses, note: note.to_owned(), check },
                None => Action::Skip(format!("no local stand-in for `{uses}`")),
            })];
        }
        let Some(Text(run)) = &step.run else { return Vec::new() };
        let plan = |cmd: calls::Command| {
            match (&cmd.problem, &cmd.unresolved[..], cmd.xtask_args()) {
                (Some(u), _, _) => Err(format!("uses a {u}; keep run lines to plain `cargo xtask` calls")),
                (None, [_, ..], _) => Err(format!("uses ${} which neither the workflow nor GitHub sets", cmd.unresolved.join(", $"))),
                _ if cmd.informational() => Ok(Action::Skip(format!("informational `{}`", cmd.argv()[0]))),
                (None, [], None) => Err(format!("`{}` is not a `cargo xtask` call; every working step is one, so it runs the same here and on GitHub", cmd.argv().join(" "))),
                (None, [], Some(args)) => {
                    let (argv, notes) = rewrite(args, registry);
                    let github = github_vars(ctx, wf, &job.id).into_iter();
                    let github = github.map(|(k, v)| (k.to_uppercase().replace('.', "_"), v));
                    let all = github.chain(scope.env.clone()).chain(cmd.assignments());
                    // Last one wins, as in the shell; the first position stays, for reading.
                    let env: IndexMap<String, String> =
                        all.chain([("BROKKR_REGISTRY".to_owned(), registry.clone())]).collect();
                    Ok(Action::Run { argv, env: env.into_iter().collect(), notes })
                }
            }
        };
        let actions = scope.commands(run).map(|c| c.into_iter().map(plan).collect());
        let actions: Vec<_> = actions.unwrap_or_else(|e| vec![Err(e)]);
        let mut ok = |a: Result<_, _>| a.map_err(|e| self.errors.push(format!("{whr}: {e}"))).ok();
        actions.into_iter().filter_map(|a| ok(a).map(planned)).collect()
    }
}

/// `owner/name` from a GitHub URL (`https://github.com/o/n(.git)`, `git@github.com:o/n.git`).
pub fn repository_from_url(url: &str) -> Option<String> {
    let (_, rest) = url.trim().split_once("github.com")?;
    let rest = rest.trim_start_matches([':', '/']).trim_end_matches('/').trim_end_matches(".git");
    let (o, n) = rest.split_once('/')?;
    let n = n.split('/').next()?;
    (!o.is_empty() && !n.is_empty()).then(|| format!("{o}/{n}"))
}

/// Goes through the plan as GitHub would (see the module docs), printing a
/// line per job, leg and step; runs each step with `sh` (`None`: dry run,
/// every step succeeds). Returns the lines and the failed legs.
pub fn walk(
    jobs: &[PlannedJob],
    ctx: &RunContext,
    sh: Option<&Shell>,
) -> (Vec<String>, Vec<String>) {
    let (mut lines, mut failed) = (Vec::new(), Vec::new());
    let mut say = |l: String| {
        println!("{l}");
        lines.push(l);
    };
    // Each job's outcome: Some(true) succeeded, Some(false) failed, None skipped.
    let mut results: Vec<(&str, Option<bool>)> = Vec::new();
    for job in jobs {
        let of = |n: &String| results.iter().find(|(id, _)| id == n).and_then(|r| r.1);
        let needs: Vec<Option<bool>> = job.needs.iter().map(of).collect();
        let list = job.needs.join(", ");
        let (scenario, why) = if needs.contains(&Some(false)) {
            (1, format!("a job it needs failed ({list})"))
        } else if needs.iter().all(|n| *n == Some(true)) {
            (0, format!("{} {}", ctx.args.event.name(), ctx.refs.full))
        } else {
            (2, format!("a job it needs was skipped ({list})"))
        };
        if !job.runs[scenario] {
            say(format!("[{}] job: skipped: `if: {}` is false for {why}", job.id, job.cond));
            results.push((&job.id, None));
            continue;
        }
        let mut ok = true;
        for leg in &job.legs {
            let at = format!("[{}]", [job.id.as_str(), &leg.label].join(" ").trim());
            if leg.fail {
                say(format!("{at} fails: rehearsed with --fail-leg, no step runs and the leg leaves no record"));
                if let Some(Err(e)) = sh.map(|_| forget_record(&leg.values, &ctx.args.registry)) {
                    say(format!("{at} warning: {e:#}"));
                }
                failed.push(format!("{at} (rehearsed with --fail-leg)"));
                ok = false;
                continue;
            }
            let mut broken = None;
            for s in &leg.steps {
                if broken.is_some() {
                    say(format!("{at} {}: skipped: an earlier step of this leg failed", s.step));
                    continue;
                }
                say(format!("{at} {s}"));
                if let Some(Err(e)) = sh.map(|sh| run_step(sh, s)) {
                    say(format!("{at} {}: failed: {e:#}", s.step));
                    broken = Some(format!("{at} {}", s.step));
                }
            }
            ok &= broken.is_none();
            failed.extend(broken);
        }
        results.push((&job.id, Some(ok)));
    }
    (lines, failed)
}

fn run_step(sh: &Shell, s: &PlannedStep) -> Result<()> {
    match &s.action {
        Action::Run { argv, env, .. } => {
            let cmd = Cmd::new("cargo").arg("xtask").args(argv.iter().cloned());
            env.iter().fold(cmd, |c, (k, v)| c.env(k, v.clone())).run(sh)
        }
        Action::StandIn { check: Some(p), .. } => {
            // `target/...` is cargo's target directory ($CARGO_TARGET_DIR when set).
            let local = match p.strip_prefix("target/") {
                Some(rest) => crate::target_dir().join(rest),
                None => sh.current_dir().join(p),
            };
            ensure!(local.exists(), "`{p}` does not exist: there is nothing to upload");
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Removes the record a failed leg would not have uploaded (one left by an
/// earlier run), so the manifest job sees that platform missing.
fn forget_record(values: &Leg, registry: &str) -> Result<()> {
    let (Some(c), Some(p)) = (leg_get(values, "component"), leg_get(values, "platform")) else {
        return Ok(());
    };
    let (c, p) = (crate::project::component(c)?, Platform::parse(p)?);
    let path = crate::record::path(&format!("{registry}/{}", c.image_name()), c, p);
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("removing {}", path.display()))
        }
        _ => Ok(()),
    }
}

/// `cargo xtask workflow run`: reads the workflow and this checkout's
/// commit, branch and repository, plans, and walks the plan.
pub fn run(sh: &Shell, args: &WorkflowRunArgs) -> Result<()> {
    let file = args.file.clone().unwrap_or_else(|| ".github/workflows/build-images.yml".into());
    ensure!(crate::diagnose::registry_is_loopback(&args.registry), "--registry {}: `workflow run` pushes only to a loopback registry (localhost:PORT), never with your credentials to a remote one", args.registry);
    let path = file.display().to_string();
    let text = sh.read_file(&file).with_context(|| format!("reading {path}"))?;
    let wf = Workflow::parse(&path, &text).map_err(|d| anyhow::anyhow!("{d}"))?;
    let git = |a: &[&str]| Cmd::new("git").args(a.iter().copied()).read_quiet(sh);
    let sha = git(&["rev-parse", "HEAD"]).context("reading the commit (git rev-parse HEAD)")?;
    let branch = git(&["rev-parse", "--abbrev-ref", "HEAD"]).ok().filter(|b| b != "HEAD");
    let from_cargo = || {
        let meta = crate::tags::cargo_metadata(sh).ok()?;
        meta.packages.into_iter().find_map(|p| repository_from_url(&p.repository?))
    };
    let origin = git(&["remote", "get-url", "origin"]).ok();
    let repository = origin.and_then(|u| repository_from_url(&u)).or_else(from_cargo);
    let ctx = RunContext {
        refs: Refs::parse(args.event, &args.git_ref, branch.as_deref())?,
        sha,
        repository: repository.unwrap_or_else(|| "local/brokkr".to_owned()),
        runner_arch: if Platform::host()?.arch == "arm64" { "ARM64" } else { "X64" },
        args: args.clone(),
    };
    let jobs = plan(&wf, &ctx)?;
    let (_, failed) = walk(&jobs, &ctx, (!args.dry_run).then_some(sh));
    ensure!(failed.is_empty(), "the workflow run failed: {}", failed.join("; "));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const OURS: &str = include_str!("../../../.github/workflows/build-images.yml");

    fn ctx(event: Event, r: &str) -> RunContext {
        RunContext {
            args: WorkflowRunArgs {
                event,
                git_ref: r.to_owned(),
                job: None,
                fail_leg: Vec::new(),
                file: None,
                registry: "localhost:5000".to_owned(),
                dry_run: true,
            },
            refs: Refs::parse(event, r, Some("feature/x")).unwrap(),
            sha: "0123456789abcdef0123456789abcdef01234567".to_owned(),
            repository: "Brokkr-Dev/brokkr".to_owned(),
            runner_arch: "X64",
        }
    }

    /// `ctx` with `--job`.
    fn only(mut ctx: RunContext, job: Option<&str>) -> RunContext {
        ctx.args.job = job.map(str::to_owned);
        ctx
    }

    fn ours() -> Workflow {
        Workflow::parse(".github/workflows/build-images.yml", OURS).unwrap()
    }

    /// The dry run's lines and failed legs.
    fn dry(wf: &Workflow, ctx: &RunContext, job: Option<&str>) -> (Vec<String>, Vec<String>) {
        walk(&plan(wf, &only(ctx.clone(), job)).unwrap(), ctx, None)
    }

    /// `job [leg] argv` of each `cargo xtask` call.
    fn runs(jobs: &[PlannedJob]) -> Vec<String> {
        let mut out = Vec::new();
        for j in jobs {
            for l in &j.legs {
                for s in &l.steps {
                    if let Action::Run { argv, .. } = &s.action {
                        out.push(format!("{} [{}] {}", j.id, l.label, argv.join(" ")));
                    }
                }
            }
        }
        out
    }

    fn env_of<'a>(s: &'a PlannedStep, k: &str) -> Option<&'a str> {
        match &s.action {
            Action::Run { env, .. } => env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str()),
            _ => None,
        }
    }

    fn first_run(jobs: &[PlannedJob], argv0: &str) -> PlannedStep {
        let steps = jobs.iter().flat_map(|j| &j.legs).flat_map(|l| &l.steps);
        let mut runs =
            steps.filter(|s| matches!(&s.action, Action::Run { argv, .. } if argv[0] == argv0));
        runs.next().unwrap().clone()
    }

    #[test]
    fn refs_forms() {
        let cases: &[(Event, &str, &str, &str, &str, &str)] = &[
            (Event::Push, "main", "refs/heads/main", "main", "", ""),
            (Event::Push, "refs/heads/develop", "refs/heads/develop", "develop", "", ""),
            (Event::Push, "refs/tags/v1.2.0", "refs/tags/v1.2.0", "v1.2.0", "", ""),
            (
                Event::PullRequest,
                "refs/pull/7/merge",
                "refs/pull/7/merge",
                "7/merge",
                "feature/x",
                "main",
            ),
            (Event::PullRequest, "feature/y", "refs/pull/1/merge", "1/merge", "feature/y", "main"),
            (
                Event::PullRequest,
                "refs/heads/feature/y",
                "refs/pull/1/merge",
                "1/merge",
                "feature/y",
                "main",
            ),
        ];
        for (e, given, full, name, head, base) in cases {
            let r = Refs::parse(*e, given, Some("feature/x")).unwrap();
            let got = (r.full.as_str(), r.name.as_str(), r.head.as_str(), r.base.as_str());
            assert_eq!(got, (*full, *name, *head, *base), "{given}");
        }
        let r = Refs::parse(Event::PullRequest, "refs/pull/9/merge", None).unwrap();
        assert_eq!(r.head, "pr-9");
        for (e, bad) in [
            (Event::Push, "refs/pull/7/merge"),
            (Event::PullRequest, "refs/pull/x/merge"),
            (Event::PullRequest, "refs/tags/v1"),
            (Event::Push, ""),
            (Event::Push, "refs/remotes/x"),
        ] {
            assert!(Refs::parse(e, bad, None).is_err(), "{bad}");
        }
    }

    #[test]
    fn workflow_run_push_to_main_builds_pushes_and_publishes_per_component() {
        let c = ctx(Event::Push, "main");
        let jobs = plan(&ours(), &c).unwrap();
        let leg = |c: &str, p: &str, r: &str| {
            format!(
                "build [component={c}, platform={p}, runner={r}, os_arch={}]",
                p.replace('/', "-")
            )
        };
        let build = |c: &str, p: &str, r: &str| {
            format!("{} build-image --component {c} --platform {p} --push --cache local --progress plain", leg(c, p, r))
        };
        let mut want = Vec::new();
        for c in ["broker", "agent"] {
            for (p, r) in [("linux/amd64", "ubuntu-24.04"), ("linux/arm64", "ubuntu-24.04-arm")] {
                want.push(format!("{} --version", leg(c, p, r)));
                want.push(build(c, p, r));
            }
        }
        for c in ["broker", "agent"] {
            want.push(format!("manifest [component={c}] --version"));
            want.push(format!("manifest [component={c}] manifest --component {c}"));
        }
        assert_eq!(runs(&jobs), want);
        let first = first_run(&jobs, "build-image");
        for (k, v) in [
            ("GITHUB_ACTIONS", "true"),
            ("CI", "true"),
            ("GITHUB_EVENT_NAME", "push"),
            ("GITHUB_REF", "refs/heads/main"),
            ("GITHUB_REF_NAME", "main"),
            ("GITHUB_SHA", "0123456789abcdef0123456789abcdef01234567"),
            ("GITHUB_REPOSITORY", "Brokkr-Dev/brokkr"),
            ("GITHUB_REPOSITORY_OWNER", "Brokkr-Dev"),
            ("GITHUB_HEAD_REF", ""),
            ("GITHUB_WORKFLOW", "build-images"),
            ("GITHUB_JOB", "build"),
            ("RUNNER_OS", "Linux"),
            ("COMPONENT", "broker"),
            ("PLATFORM", "linux/amd64"),
            ("BROKKR_REGISTRY", "localhost:5000"),
        ] {
            assert_eq!(env_of(&first, k), Some(v), "{k}");
        }
        let (text, failed) = walk(&jobs, &c, None);
        assert!(failed.is_empty(), "{failed:?}");
        let has = |want: &str| assert!(text.iter().any(|t| t.contains(want)), "{want}: {text:#?}");
        has("step `Build and push the per-platform image`: cargo xtask build-image --component broker --platform linux/amd64 --push --cache local --progress plain (`--cache gha` runs as `--cache local`: one directory per cache scope under target/buildx-cache/, replaced on each export)");
        has("[build-pull-request] job: skipped: `if: github.event_name == 'pull_request'` is false for push refs/heads/main");
        has("step `Log in to ghcr.io`: stands in for docker/login-action@");
        has("step `Check out`: stands in for actions/checkout@");
        has("step `Upload the build record`: stands in for actions/upload-artifact@bbbca2ddaa5d8feaa63e36b76fdaad77386f024f: checks the path exists");
        has("[manifest component=agent] step `Download the build records`: stands in for actions/download-artifact@");
        // QEMU: the arm64 legs on this amd64 machine need it, the amd64 legs do not.
        has("[build component=broker, platform=linux/arm64, runner=ubuntu-24.04-arm, os_arch=linux-arm64] step `Set up QEMU`: stands in");
        has("[build component=broker, platform=linux/amd64, runner=ubuntu-24.04, os_arch=linux-amd64] step `Set up QEMU`: skipped");
    }

    #[test]
    fn workflow_run_pull_request_imports_the_cache_read_only_and_pushes_nothing() {
        let c = ctx(Event::PullRequest, "refs/pull/7/merge");
        let jobs = plan(&ours(), &c).unwrap();
        let r: Vec<String> =
            runs(&jobs).into_iter().filter(|l| !l.ends_with("--version")).collect();
        assert_eq!(r.len(), 4, "{r:#?}");
        for l in &r {
            assert!(
                l.starts_with("build-pull-request ")
                    && !l.contains("--push")
                    && l.contains("--cache local --cache-read-only"),
                "{l}"
            );
        }
        let (text, failed) = walk(&jobs, &c, None);
        assert!(failed.is_empty());
        for want in [
            "[build] job: skipped: `if: github.event_name != 'pull_request'` is false for pull_request refs/pull/7/merge",
            "[manifest] job: skipped: `if: ${{ !cancelled() && github.event_name != 'pull_request' }}` is false for a job it needs was skipped (build)",
        ] {
            assert!(text.iter().any(|t| t == want), "{want}: {text:#?}");
        }
        assert!(!text.iter().any(|t| t.contains("login-action")), "{text:#?}");
        let first = first_run(&jobs, "build-image");
        assert_eq!(env_of(&first, "GITHUB_REF"), Some("refs/pull/7/merge"));
        assert_eq!(env_of(&first, "GITHUB_REF_NAME"), Some("7/merge"));
        assert_eq!(env_of(&first, "GITHUB_HEAD_REF"), Some("feature/x"));
        assert_eq!(env_of(&first, "GITHUB_BASE_REF"), Some("main"));
    }

    #[test]
    fn workflow_run_a_failed_leg_still_publishes_the_other_component() {
        let mut c = ctx(Event::Push, "main");
        c.args.fail_leg = vec!["agent linux/arm64".to_owned()];
        let (text, failed) = dry(&ours(), &c, None);
        assert_eq!(failed, ["[build component=agent, platform=linux/arm64, runner=ubuntu-24.04-arm, os_arch=linux-arm64] (rehearsed with --fail-leg)"]);
        let has = |want: &str| assert!(text.iter().any(|t| t.contains(want)), "{want}: {text:#?}");
        has("[build component=agent, platform=linux/arm64, runner=ubuntu-24.04-arm, os_arch=linux-arm64] fails: rehearsed with --fail-leg");
        has("[build component=agent, platform=linux/amd64, runner=ubuntu-24.04, os_arch=linux-amd64] step `Build and push the per-platform image`: cargo xtask build-image --component agent");
        // `!cancelled()`: the manifest job runs for each component after a failed leg.
        has("[manifest component=broker] step `Publish the multi-arch index`: cargo xtask manifest --component broker");
        has("[manifest component=agent] step `Publish the multi-arch index`: cargo xtask manifest --component agent");
        let err = plan(&ours(), &ctx_failing("agent linux/s390x")).unwrap_err().to_string();
        assert!(err.contains("--fail-leg `agent linux/s390x` names no leg that runs"), "{err}");
    }

    fn ctx_failing(spec: &str) -> RunContext {
        let mut c = ctx(Event::Push, "main");
        c.args.fail_leg = vec![spec.to_owned()];
        c
    }

    #[test]
    fn workflow_run_job_conditions_see_the_needs_results() {
        let y = r#"
on: [push]
jobs:
  a:
    runs-on: ubuntu-24.04
    strategy: {matrix: {n: [x, y]}}
    steps:
      - run: cargo xtask tags
  plain:
    needs: a
    runs-on: ubuntu-24.04
    steps:
      - run: cargo xtask tags
  on-failure:
    needs: a
    if: failure()
    runs-on: ubuntu-24.04
    steps:
      - run: cargo xtask tags
  always:
    needs: plain
    if: always()
    runs-on: ubuntu-24.04
    steps:
      - run: cargo xtask tags
"#;
        let wf = Workflow::parse("t.yml", y).unwrap();
        let (ok, _) = dry(&wf, &ctx(Event::Push, "main"), None);
        let mut c = ctx(Event::Push, "main");
        c.args.fail_leg = vec!["y".to_owned()];
        let (bad, failed) = dry(&wf, &c, None);
        assert_eq!(failed.len(), 1);
        let skipped = |t: &[String], job: &str| {
            t.iter().any(|l| l.starts_with(&format!("[{job}] job: skipped")))
        };
        let table = [("plain", false, true), ("on-failure", true, false), ("always", false, false)];
        for (job, skipped_ok, skipped_bad) in table {
            assert_eq!(
                (skipped(&ok, job), skipped(&bad, job)),
                (skipped_ok, skipped_bad),
                "{job}: {ok:#?} {bad:#?}"
            );
        }
        assert!(
            bad.contains(&"[a n=x] step 1 (`cargo xtask tags`): cargo xtask tags".to_owned()),
            "{bad:#?}"
        );
    }

    #[test]
    fn workflow_run_one_job_and_filters() {
        let wf = ours();
        let jobs = plan(&wf, &only(ctx(Event::Push, "develop"), Some("manifest"))).unwrap();
        let r: Vec<String> =
            runs(&jobs).into_iter().filter(|l| !l.ends_with("--version")).collect();
        assert_eq!(
            r,
            [
                "manifest [component=broker] manifest --component broker",
                "manifest [component=agent] manifest --component agent"
            ]
        );
        let err =
            plan(&wf, &only(ctx(Event::Push, "main"), Some("biuld"))).unwrap_err().to_string();
        assert!(err.contains("no job `biuld`; did you mean `build`?"), "{err}");
        let err = plan(&wf, &ctx(Event::Push, "feature/x")).unwrap_err().to_string();
        assert!(err.contains("filters exclude `feature/x`"), "{err}");
        // release tags run the whole workflow (the semver tags come from them)
        let jobs = plan(&wf, &ctx(Event::Push, "refs/tags/v1.0.0")).unwrap();
        assert!(runs(&jobs).iter().any(|s| s.contains("manifest --component broker")));
    }

    #[test]
    fn workflow_run_refuses_what_it_cannot_reproduce() {
        let y = r#"
on: [push]
env:
  GLOBAL: g
jobs:
  a:
    runs-on: ubuntu-24.04
    steps:
      - run: echo "hello"
      - run: docker build .
      - run: cargo xtask tags $(git rev-parse HEAD)
      - run: cargo xtask tags --tag "$NOPE"
      - if: steps.x.outputs.y == 'z'
        run: cargo xtask ci
      - uses: some/action@0123456789012345678901234567890123456789
      - env:
          LOCAL: l
        run: |
          FOO=1 cargo xtask tags --registry ghcr.io/brokkr-dev --tag "$GLOBAL-$LOCAL" \
            --tag ${{ github.sha }}
"#;
        let wf = Workflow::parse("t.yml", y).unwrap();
        let err = plan(&wf, &ctx(Event::Push, "main")).unwrap_err().to_string();
        for want in [
            "`docker build .` is not a `cargo xtask` call",
            "uses a command substitution `$(...)`",
            "uses $NOPE which neither the workflow nor GitHub sets",
            "cannot evaluate `if: steps.x.outputs.y == 'z'` locally",
        ] {
            assert!(err.contains(want), "{want}: {err}");
        }
        assert_eq!(err.matches("\n  - ").count(), 4, "{err}");
        // The steps it can reproduce plan.
        let lines: Vec<&str> = y.lines().collect();
        let good = [&lines[..9], &lines[14..]].concat().join("\n");
        let wf = Workflow::parse("t.yml", &good).unwrap();
        let (text, _) = dry(&wf, &ctx(Event::Push, "main"), None);
        assert_eq!(
            text,
            [
                "[a] step 1 (`echo \"hello\"`): skipped: informational `echo`",
                "[a] step 2 (`some/action@0123456789012345678901234567890123456789`): skipped: no local stand-in for `some/action@0123456789012345678901234567890123456789`",
                "[a] step 3 (`FOO=1 cargo xtask tags --registry ghcr.io/brokkr-dev --tag \"$GLOBAL-$LOCAL\" \\`): cargo xtask tags --registry localhost:5000 --tag g-l --tag 0123456789abcdef0123456789abcdef01234567 (`--registry ghcr.io/brokkr-dev` runs as `--registry localhost:5000`)",
            ],
            "{text:#?}"
        );
        let run = first_run(&plan(&wf, &ctx(Event::Push, "main")).unwrap(), "tags");
        assert_eq!(env_of(&run, "FOO"), Some("1"));
        assert_eq!(env_of(&run, "GLOBAL"), Some("g"));
    }

    #[test]
    fn rewrites_cache_and_registry() {
        let w = |s: &str| s.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
        let cases: &[(&str, &str, usize)] = &[
            ("build-image --cache gha --push", "build-image --cache local --push", 1),
            ("build-image --cache=gha", "build-image --cache=local", 1),
            (
                "build-image --cache gha --cache-read-only",
                "build-image --cache local --cache-read-only",
                1,
            ),
            ("build-image --cache registry", "build-image --cache registry", 0),
            (
                "manifest --registry ghcr.io/o --component broker",
                "manifest --registry localhost:5000 --component broker",
                1,
            ),
            ("manifest --registry=localhost:5000", "manifest --registry=localhost:5000", 0),
        ];
        for (input, want, n) in cases {
            let (out, notes) = rewrite(&w(input), "localhost:5000");
            assert_eq!(out.join(" "), *want);
            assert_eq!(notes.len(), *n, "{input}");
        }
    }

    #[test]
    fn repository_urls() {
        let cases: &[(&str, Option<&str>)] = &[
            ("https://github.com/brokkr-dev/brokkr", Some("brokkr-dev/brokkr")),
            ("https://github.com/brokkr-dev/brokkr.git", Some("brokkr-dev/brokkr")),
            ("git@github.com:brokkr-dev/brokkr.git", Some("brokkr-dev/brokkr")),
            ("/work/main", None),
        ];
        for (url, want) in cases {
            assert_eq!(repository_from_url(url).as_deref(), *want, "{url}");
        }
    }
}
