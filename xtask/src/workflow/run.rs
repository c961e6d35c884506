//! `cargo xtask workflow run`: runs a GitHub workflow's `cargo xtask` steps
//! on this machine, in the order GitHub would, with the environment GitHub
//! would set, against the loopback registry.
//!
//! [`plan`] is pure: it evaluates `if:` conditions for the event and ref,
//! expands matrices, orders jobs by `needs:`, substitutes `${{ }}` and
//! `$VAR`, and turns each step into a [`PlannedStep`]: a `cargo xtask` call
//! to run, an action it stands in for, or a skip with the reason. [`run`]
//! is the command layer that reads the workflow and git state and runs the
//! plan through the plan layer ([`crate::plan::Cmd`]).

use std::fmt;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use github_actions_expressions::Evaluation;
use xshell::Shell;

use super::{calls, expand_matrix, glob, inputs, leg_label, Job, Scope, Step, Text, Workflow};
use crate::plan::Cmd;
use crate::project::{Platform, LOCAL_REGISTRY};

/// Subcommands of `workflow`.
#[derive(Debug, clap::Subcommand)]
pub enum WorkflowCommand {
    /// Run the workflow's `cargo xtask` steps here, in order, with GitHub's
    /// environment, against the loopback registry.
    Run(WorkflowRunArgs),
}

/// Options of `workflow run`.
#[derive(Debug, clap::Args)]
pub struct WorkflowRunArgs {
    /// The event to simulate.
    #[arg(long, value_enum)]
    pub event: Event,
    /// The ref: `main`, `refs/heads/main`, `refs/tags/v1.0.0`; for pull
    /// requests `refs/pull/7/merge` or the head branch.
    #[arg(long = "ref", value_name = "REF")]
    pub git_ref: String,
    /// Run only this job (by id or name), without the jobs it needs.
    #[arg(long, value_name = "NAME")]
    pub job: Option<String>,
    /// The workflow file; default: `.github/workflows/build-images.yml` in the workspace.
    #[arg(long, value_parser = super::validate::absolute_path)]
    pub file: Option<PathBuf>,
    /// The loopback registry pushes go to instead of `ghcr.io/<owner>`.
    #[arg(long, default_value = LOCAL_REGISTRY)]
    pub registry: String,
    /// Print the plan without running it.
    #[arg(long)]
    pub dry_run: bool,
}

/// The GitHub event to simulate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Event {
    /// A push to a branch or tag.
    Push,
    /// A pull request (`refs/pull/<N>/merge`).
    #[value(name = "pull_request")]
    PullRequest,
}

impl Event {
    /// The event name as in `on:` and `github.event_name`.
    pub fn name(self) -> &'static str {
        match self {
            Event::Push => "push",
            Event::PullRequest => "pull_request",
        }
    }
}

/// The refs GitHub gives a run: `GITHUB_REF` (`full`: `refs/heads/main`,
/// `refs/tags/v1.0.0`, `refs/pull/7/merge`), `GITHUB_REF_NAME` (`main`,
/// `7/merge`), `GITHUB_REF_TYPE` (`branch`/`tag`), `GITHUB_HEAD_REF` and
/// `GITHUB_BASE_REF` (empty for pushes), and the pull request number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refs {
    pub full: String,
    pub name: String,
    pub kind: &'static str,
    pub head: String,
    pub base: String,
    pub pr_number: Option<u64>,
}

/// The branch pull requests target unless told otherwise.
pub const DEFAULT_BASE: &str = "main";

impl Refs {
    /// The refs for `--ref` under `event`. Push: `main` or `refs/heads/main`
    /// (a branch), `refs/tags/v1` (a tag). Pull request: `refs/pull/7/merge`
    /// (number 7; head branch `head`, else `pr-7`), or a branch name or
    /// `refs/heads/x`, taken as the head branch of pull request 1. The base
    /// is [`DEFAULT_BASE`]. A pull request ref with `push` is an error.
    pub fn parse(event: Event, given: &str, head: Option<&str>) -> Result<Refs> {
        let g = given.trim();
        let refs = |full: String, name: &str, kind, head: String, pr_number: Option<u64>| Refs {
            full,
            name: name.to_owned(),
            kind,
            head,
            base: pr_number.map_or_else(String::new, |_| DEFAULT_BASE.to_owned()),
            pr_number,
        };
        if g.is_empty() {
            bail!("--ref is empty; give a branch (`main`), `refs/heads/<branch>`, `refs/tags/<tag>` or `refs/pull/<N>/merge`");
        }
        if let Some(rest) = g.strip_prefix("refs/pull/") {
            if event == Event::Push {
                bail!("`{g}` is a pull request ref, which a push never has; use `--event pull_request`, or a branch with push")
            }
            let (n, kind) = rest.split_once('/').unwrap_or((rest, "merge"));
            let Ok(n) = n.parse::<u64>() else {
                bail!("`{g}`: the pull request number is not a number; write `refs/pull/<N>/merge`")
            };
            if kind != "merge" && kind != "head" {
                bail!("`{g}`: pull request refs are `refs/pull/<N>/merge` (or `/head`)");
            }
            let head = head.map_or_else(|| format!("pr-{n}"), str::to_owned);
            let full = format!("refs/pull/{n}/{kind}");
            return Ok(refs(full, &format!("{n}/{kind}"), "branch", head, Some(n)));
        }
        match (event, g.strip_prefix("refs/tags/")) {
            (Event::PullRequest, Some(_)) => {
                bail!("`{g}`: a pull request comes from a branch, not a tag")
            }
            (Event::Push, Some(tag)) => {
                return Ok(refs(g.to_owned(), tag, "tag", String::new(), None))
            }
            _ => {}
        }
        let branch = g.strip_prefix("refs/heads/").unwrap_or(g);
        match event {
            Event::PullRequest => {
                let pr = "refs/pull/1/merge".to_owned();
                Ok(refs(pr, "1/merge", "branch", branch.to_owned(), Some(1)))
            }
            Event::Push if branch.starts_with("refs/") => {
                bail!("`{g}`: unknown ref kind; use `refs/heads/<branch>` or `refs/tags/<tag>`")
            }
            Event::Push => {
                let full = format!("refs/heads/{branch}");
                Ok(refs(full, branch, "branch", String::new(), None))
            }
        }
    }
}

/// Everything about the simulated run that is not in the workflow:
/// `GITHUB_SHA` (the checked-out commit), `GITHUB_REPOSITORY` (`owner/name`),
/// the loopback registry set as `BROKKR_REGISTRY` instead of GitHub's
/// `ghcr.io/<owner>`, and `RUNNER_ARCH` of this machine (`X64`, `ARM64`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunContext {
    pub event: Event,
    pub refs: Refs,
    pub sha: String,
    pub repository: String,
    pub registry: String,
    pub runner_arch: &'static str,
}

/// One step of the plan, for one matrix leg (`component=broker, ...`;
/// empty without a matrix); `step` is the step's label, or `job`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedStep {
    pub job: String,
    pub leg: String,
    pub step: String,
    pub action: Action,
}

/// What a planned step does here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Run `cargo xtask <argv>` (registry and cache rewritten, each change
    /// with a note) with GitHub's variables, then workflow, job and step `env:`.
    Run {
        argv: Vec<String>,
        env: Vec<(String, String)>,
        notes: Vec<String>,
    },
    /// A `uses:` step (`owner/repo@ref`) this machine stands in for.
    StandIn { uses: String, note: String },
    /// Not run, with the reason.
    Skip { reason: String },
}

impl fmt::Display for PlannedStep {
    /// One line: `[job leg] step: what`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (job, leg, step) = (&self.job, &self.leg, &self.step);
        match leg.is_empty() {
            true => write!(f, "[{job}] {step}: ")?,
            false => write!(f, "[{job} {leg}] {step}: ")?,
        }
        match &self.action {
            Action::Run { argv, notes, .. } => {
                let words: Vec<String> = argv.iter().map(|a| crate::plan::shell_quote(a)).collect();
                write!(f, "cargo xtask {}", words.join(" "))?;
                notes.iter().try_for_each(|n| write!(f, " ({n})"))
            }
            Action::StandIn { uses, note } => write!(f, "stands in for {uses}: {note}"),
            Action::Skip { reason } => write!(f, "skipped: {reason}"),
        }
    }
}

/// What stands in locally for an action (by `owner/repo`), or `None` to skip it.
fn stand_in(action: &str, registry: &str) -> Option<String> {
    Some(match action {
        "actions/checkout" => "the working tree as it is, uncommitted changes included".to_owned(),
        "dtolnay/rust-toolchain" | "actions-rust-lang/setup-rust-toolchain" => "this machine's Rust toolchain".to_owned(),
        "swatinem/rust-cache" | "actions/cache" => "the local target/ directory".to_owned(),
        "docker/setup-buildx-action" => "this machine's docker buildx (the xtask checks its builder before building)".to_owned(),
        "docker/setup-qemu-action" => "this host's binfmt handlers (`cargo xtask setup` registers them)".to_owned(),
        "crazy-max/ghaction-github-runtime" => "nothing: there is no GitHub cache service here, so `--cache gha` runs as `--cache local`".to_owned(),
        "docker/login-action" => format!("nothing: the loopback registry {registry} needs no login"),
        _ => return None,
    })
}

/// `github.*`, `runner.*`, `secrets.*` for the simulated run.
fn outer_value(ctx: &RunContext, wf: &Workflow, job: &str, path: &str) -> Option<Evaluation> {
    let s = |v: &str| Some(Evaluation::String(v.to_owned()));
    let owner = ctx.repository.split('/').next().unwrap_or("");
    match path {
        "github.event_name" => s(ctx.event.name()),
        "github.ref" => s(&ctx.refs.full),
        "github.ref_name" => s(&ctx.refs.name),
        "github.ref_type" => s(ctx.refs.kind),
        "github.head_ref" => s(&ctx.refs.head),
        "github.base_ref" => s(&ctx.refs.base),
        "github.sha" => s(&ctx.sha),
        "github.repository" => s(&ctx.repository),
        "github.repository_owner" => s(owner),
        "github.actor" | "github.triggering_actor" => s(owner),
        "github.workflow" => s(&workflow_name(wf)),
        "github.job" => s(job),
        "github.server_url" => s("https://github.com"),
        "github.run_id" | "github.run_number" | "github.run_attempt" => s("1"),
        "github.event.pull_request.number" | "github.event.number" => {
            ctx.refs.pr_number.map(|n| Evaluation::Number(n as f64))
        }
        "runner.os" => s("Linux"),
        "runner.arch" => s(ctx.runner_arch),
        // No secrets exist locally; steps that need them are skipped or stood in for.
        p if p.starts_with("secrets.") => s(""),
        p if p.starts_with("vars.") || p.starts_with("inputs.") => Some(Evaluation::Null),
        _ => None,
    }
}

fn workflow_name(wf: &Workflow) -> String {
    let name = wf.name.as_ref().map(|n| n.0.clone());
    name.unwrap_or_else(|| inputs::repo_path(&wf.path))
}

/// The environment GitHub sets for every step of `job`.
pub fn github_env(ctx: &RunContext, wf: &Workflow, job: &str) -> Vec<(String, String)> {
    let owner = ctx.repository.split('/').next().unwrap_or("").to_owned();
    [
        ("CI", "true".to_owned()),
        ("GITHUB_ACTIONS", "true".to_owned()),
        // host setup: this machine is no GitHub runner (see host::probe::github_actions)
        ("BROKKR_WORKFLOW_RUN", "1".to_owned()),
        ("GITHUB_EVENT_NAME", ctx.event.name().to_owned()),
        ("GITHUB_REF", ctx.refs.full.clone()),
        ("GITHUB_REF_NAME", ctx.refs.name.clone()),
        ("GITHUB_REF_TYPE", ctx.refs.kind.to_owned()),
        ("GITHUB_HEAD_REF", ctx.refs.head.clone()),
        ("GITHUB_BASE_REF", ctx.refs.base.clone()),
        ("GITHUB_SHA", ctx.sha.clone()),
        ("GITHUB_REPOSITORY", ctx.repository.clone()),
        ("GITHUB_REPOSITORY_OWNER", owner.clone()),
        ("GITHUB_ACTOR", owner),
        ("GITHUB_WORKFLOW", workflow_name(wf)),
        ("GITHUB_JOB", job.to_owned()),
        ("RUNNER_OS", "Linux".to_owned()),
        ("RUNNER_ARCH", ctx.runner_arch.to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// Rewrites a `cargo xtask` call for this machine: `--cache gha` becomes
/// `--cache local` (no GitHub cache service here) and `--registry X`
/// becomes the loopback registry. Returns the new words and a note per change.
pub fn rewrite(argv: &[String], registry: &str) -> (Vec<String>, Vec<String>) {
    let mut out = Vec::with_capacity(argv.len());
    let mut notes = Vec::new();
    let mut i = 0;
    while i < argv.len() {
        let w = &argv[i];
        let (flag, inline) = match w.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_owned())),
            _ => (w.as_str(), None),
        };
        let value = inline.clone().or_else(|| argv.get(i + 1).cloned());
        let replaced = match (flag, value.as_deref()) {
            ("--cache", Some("gha")) => {
                notes.push(
                    "`--cache gha` runs as `--cache local`: no GitHub cache service here"
                        .to_owned(),
                );
                Some("local".to_owned())
            }
            ("--registry", Some(r)) if r != registry => {
                notes.push(format!("`--registry {r}` runs as `--registry {registry}`"));
                Some(registry.to_owned())
            }
            _ => None,
        };
        match replaced {
            Some(v) if inline.is_some() => out.push(format!("{flag}={v}")),
            Some(v) => {
                out.push(flag.to_owned());
                out.push(v);
                i += 1;
            }
            None => out.push(w.clone()),
        }
        i += 1;
    }
    (out, notes)
}

/// Whether the workflow runs for this event and ref, by its `on:` filters
/// (branch/tag filters; path filters are not applied locally).
fn check_trigger(wf: &Workflow, ctx: &RunContext) -> Result<()> {
    let event = ctx.event.name();
    let Some(t) = wf.triggers().into_iter().find(|t| t.event == event) else {
        bail!(
            "{} does not run on `{event}` (its `on:` has no `{event}`)",
            wf.path
        );
    };
    let Some(f) = &t.filters else {
        return Ok(());
    };
    // Pull request filters apply to the base branch; push filters to the pushed ref.
    let (name, is_tag) = match ctx.event {
        Event::PullRequest => (ctx.refs.base.as_str(), false),
        Event::Push => (ctx.refs.name.as_str(), ctx.refs.kind == "tag"),
    };
    let (refs, other) = match is_tag {
        true => ([&f.tags, &f.tags_ignore], [&f.branches, &f.branches_ignore]),
        false => ([&f.branches, &f.branches_ignore], [&f.tags, &f.tags_ignore]),
    };
    let runs = match refs {
        [Some(l), _] => glob::patterns_select(&l.0, name),
        [None, Some(l)] => !glob::patterns_select(&l.0, name),
        // Filtering only the other kind of ref excludes this kind.
        [None, None] => other.iter().all(|o| o.is_none()),
    };
    if !runs {
        bail!(
            "{} does not run on `{event}` for `{}`: its `on.{event}` filters exclude `{name}`",
            wf.path,
            ctx.refs.full
        );
    }
    Ok(())
}

/// Jobs in an order that respects `needs:` (file order among ready jobs).
fn job_order(wf: &Workflow) -> Result<Vec<&Job>> {
    let jobs: Vec<&Job> = wf.jobs().collect();
    for j in &jobs {
        for n in &j.needs.0 {
            if wf.job(n).is_none() {
                bail!(
                    "job `{}` needs `{n}`, which is not a job of {}",
                    j.id,
                    wf.path
                );
            }
        }
    }
    let mut done: Vec<&str> = Vec::new();
    let mut out = Vec::new();
    while out.len() < jobs.len() {
        let next = jobs.iter().find(|j| {
            !done.contains(&j.id.as_str()) && j.needs.0.iter().all(|n| done.contains(&n.as_str()))
        });
        let Some(j) = next else {
            bail!("the jobs' `needs:` form a cycle in {}", wf.path);
        };
        done.push(&j.id);
        out.push(*j);
    }
    Ok(out)
}

/// Plans a local run of `wf` for `ctx`: every job (or only `only_job`, by
/// id or name, without its `needs`), every matrix leg, every step in order.
/// Errors list everything that cannot run locally: a `run:` line that is not
/// a `cargo xtask` call (or a plain `echo`), shell features beyond words
/// and `$VAR`, variables or expressions that cannot be resolved, and
/// conditions that depend on outputs of earlier steps.
pub fn plan(wf: &Workflow, ctx: &RunContext, only_job: Option<&str>) -> Result<Vec<PlannedStep>> {
    check_trigger(wf, ctx)?;
    let mut jobs = job_order(wf)?;
    if let Some(want) = only_job {
        let named = |j: &&Job| j.id == want || j.name.as_ref().is_some_and(|n| n.0 == want);
        let Some(found) = wf.jobs().find(named) else {
            let ids: Vec<&str> = wf.jobs().map(|j| j.id.as_str()).collect();
            let hint = calls::closest(want, ids.iter().copied())
                .map_or(String::new(), |c| format!("; did you mean `{c}`?"));
            bail!(
                "{} has no job `{want}`{hint} (jobs: {})",
                wf.path,
                ids.join(", ")
            );
        };
        jobs.retain(|j| j.id == found.id);
    }
    let mut p = Planner {
        wf,
        ctx,
        steps: Vec::new(),
        errors: Vec::new(),
    };
    jobs.into_iter().for_each(|job| p.job(job));
    if !p.errors.is_empty() {
        bail!(
            "{} cannot run locally:\n  - {}",
            wf.path,
            p.errors.join("\n  - ")
        );
    }
    Ok(p.steps)
}

struct Planner<'a> {
    wf: &'a Workflow,
    ctx: &'a RunContext,
    steps: Vec<PlannedStep>,
    errors: Vec<String>,
}

impl Planner<'_> {
    fn push(&mut self, job: &str, leg: &str, step: String, action: Action) {
        let (job, leg) = (job.to_owned(), leg.to_owned());
        self.steps.push(PlannedStep {
            job,
            leg,
            step,
            action,
        });
    }

    /// Whether an `if:` lets a job or step run; a false one is planned as
    /// a skip, one that cannot be evaluated here is an error (`whr` says where).
    fn runs(&mut self, scope: &Scope<'_>, cond: Option<&Text>, at: [&str; 3], whr: &str) -> bool {
        let Some(Text(c)) = cond else { return true };
        match scope.condition(c) {
            Ok(Some(b)) => {
                if !b {
                    let (event, r) = (self.ctx.event.name(), &self.ctx.refs.full);
                    let reason = format!("`if: {c}` is false for {event} {r}");
                    self.push(at[0], at[1], at[2].to_owned(), Action::Skip { reason });
                }
                b
            }
            Ok(None) => {
                let e = format!("{whr}: cannot evaluate `if: {c}` locally");
                self.errors.push(e);
                false
            }
            Err(e) => {
                self.errors.push(format!("{whr}: {e}"));
                false
            }
        }
    }

    fn job(&mut self, job: &Job) {
        let (wf, ctx) = (self.wf, self.ctx);
        let outer = |p: &str| outer_value(ctx, wf, &job.id, p);
        let none = Vec::new();
        let (scope, _) = Scope::of(wf, job, None, &none, &outer, None);
        let whr = format!("job `{}`", job.id);
        if !self.runs(&scope, job.cond.as_ref(), [&job.id, "", "job"], &whr) {
            return;
        }
        let legs = match expand_matrix(job.strategy.matrix.as_ref()) {
            Ok(l) => l,
            Err(e) => return self.errors.push(format!("{whr}: {e}")),
        };
        for leg in &legs {
            let label = leg_label(leg);
            let leg_name = if label.is_empty() {
                "no matrix"
            } else {
                &label
            };
            for step in &job.steps {
                let (scope, failed) = Scope::of(wf, job, Some(step), leg, &outer, None);
                let whr = format!("{whr} ({leg_name}) {}", step.label());
                if !failed.is_empty() {
                    let e = format!("{whr}: cannot evaluate env {}", failed.join(", "));
                    self.errors.push(e);
                    continue;
                }
                let at = [job.id.as_str(), &label, &step.label()];
                if self.runs(&scope, step.cond.as_ref(), at, &whr) {
                    self.step(job, &label, step, &scope, &whr);
                }
            }
        }
    }

    fn step(&mut self, job: &Job, leg: &str, step: &Step, scope: &Scope<'_>, whr: &str) {
        let (id, label, registry) = (&job.id, step.label(), &self.ctx.registry);
        if let Some(uses) = &step.uses {
            let action = match stand_in(&step.action().unwrap_or_default(), registry) {
                Some(note) => Action::StandIn {
                    uses: uses.clone(),
                    note,
                },
                None => Action::Skip {
                    reason: format!("no local stand-in for `{uses}`"),
                },
            };
            return self.push(id, leg, label, action);
        }
        let Some(run) = &step.run else { return };
        let cmds = match scope.commands(&run.0) {
            Ok(c) => c,
            Err(e) => return self.errors.push(format!("{whr}: {e}")),
        };
        for cmd in cmds {
            let args = match (&cmd.problem, &cmd.unresolved[..], cmd.xtask_args()) {
                (Some(u), _, _) => Err(format!(
                    "uses a {u}; keep run lines to plain `cargo xtask` calls"
                )),
                (None, [_, ..], _) => Err(format!(
                    "uses ${} which neither the workflow nor GitHub sets",
                    cmd.unresolved.join(", $")
                )),
                _ if cmd.informational() => {
                    let reason = format!("informational `{}`", cmd.argv()[0]);
                    self.push(id, leg, label.clone(), Action::Skip { reason });
                    continue;
                }
                (None, [], None) => Err(format!("`{}` is not a `cargo xtask` call; every working step is one, so it runs the same here and on GitHub", cmd.argv().join(" "))),
                (None, [], Some(args)) => Ok(args),
            };
            let args = match args {
                Ok(a) => a,
                Err(e) => {
                    self.errors.push(format!("{whr}: {e}"));
                    continue;
                }
            };
            let (argv, notes) = rewrite(args, registry);
            let registry = ("BROKKR_REGISTRY".to_owned(), registry.clone());
            let all = github_env(self.ctx, self.wf, id).into_iter();
            let all = all
                .chain(scope.env.iter().cloned())
                .chain(cmd.assignments());
            // Last one wins, as in the shell; keep the first position for reading.
            let mut env: Vec<(String, String)> = Vec::new();
            for (k, v) in all.chain([registry]) {
                match env.iter_mut().find(|(dk, _)| *dk == k) {
                    Some(slot) => slot.1 = v,
                    None => env.push((k, v)),
                }
            }
            self.push(id, leg, label.clone(), Action::Run { argv, env, notes });
        }
    }
}

/// `owner/name` from a GitHub URL (`https://github.com/o/n(.git)`, `git@github.com:o/n.git`).
pub fn repository_from_url(url: &str) -> Option<String> {
    let rest = url.trim().split_once("github.com").map(|(_, r)| r)?;
    let rest = rest
        .trim_start_matches([':', '/'])
        .trim_end_matches('/')
        .trim_end_matches(".git");
    let mut parts = rest.split('/');
    let (o, n) = (parts.next()?, parts.next()?);
    (!o.is_empty() && !n.is_empty()).then(|| format!("{o}/{n}"))
}

/// Runs each planned `cargo xtask` call in order with its environment;
/// prints every step (stand-ins and skips too). Stops at the first failure.
pub fn execute(sh: &Shell, steps: &[PlannedStep], dry_run: bool) -> Result<()> {
    for s in steps {
        println!("{s}");
        let (Action::Run { argv, env, .. }, false) = (&s.action, dry_run) else {
            continue;
        };
        let cmd = Cmd::new("cargo").arg("xtask").args(argv.iter().cloned());
        let cmd = env.iter().fold(cmd, |c, (k, v)| c.env(k, v.clone()));
        let at = format!("[{} {}] {}", s.job, s.leg, s.step);
        cmd.run(sh).with_context(|| at)?;
    }
    Ok(())
}

/// `cargo xtask workflow run`: reads the workflow and this checkout's
/// commit, branch and repository, plans, and executes.
pub fn run(sh: &Shell, args: &WorkflowRunArgs) -> Result<()> {
    let file = args
        .file
        .clone()
        .unwrap_or_else(|| PathBuf::from(".github/workflows/build-images.yml"));
    if !crate::diagnose::registry_is_loopback(&args.registry) {
        bail!(
            "--registry {}: `workflow run` pushes only to a loopback registry (localhost:PORT), never with your \
             credentials to a remote one",
            args.registry
        );
    }
    let path = file.display().to_string();
    let text = sh
        .read_file(&file)
        .with_context(|| format!("reading {path}"))?;
    let wf = Workflow::parse(&path, &text).map_err(|d| anyhow::anyhow!("{d}"))?;
    let sha = Cmd::new("git")
        .args(["rev-parse", "HEAD"])
        .read_quiet(sh)
        .context("reading the commit (git rev-parse HEAD)")?;
    let branch = Cmd::new("git")
        .args(["rev-parse", "--abbrev-ref", "HEAD"])
        .read_quiet(sh)
        .ok()
        .filter(|b| b != "HEAD");
    let repository = Cmd::new("git")
        .args(["remote", "get-url", "origin"])
        .read_quiet(sh)
        .ok()
        .and_then(|u| repository_from_url(&u))
        .or_else(|| {
            let meta = super::validate::cargo_metadata(sh).ok()?;
            let urls = meta.packages.iter().filter_map(|p| p.repository.as_deref());
            urls.into_iter().find_map(repository_from_url)
        })
        .unwrap_or_else(|| "local/brokkr".to_owned());
    let runner_arch = match Platform::host()?.arch {
        "arm64" => "ARM64",
        _ => "X64",
    };
    let ctx = RunContext {
        event: args.event,
        refs: Refs::parse(args.event, &args.git_ref, branch.as_deref())?,
        sha,
        repository,
        registry: args.registry.clone(),
        runner_arch,
    };
    let steps = plan(&wf, &ctx, args.job.as_deref())?;
    execute(sh, &steps, args.dry_run)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OURS: &str = include_str!("../../../.github/workflows/build-images.yml");

    fn ctx(event: Event, r: &str) -> RunContext {
        RunContext {
            event,
            refs: Refs::parse(event, r, Some("feature/x")).unwrap(),
            sha: "0123456789abcdef0123456789abcdef01234567".to_owned(),
            repository: "Brokkr-Dev/brokkr".to_owned(),
            registry: "localhost:5000".to_owned(),
            runner_arch: "X64",
        }
    }

    fn ours() -> Workflow {
        Workflow::parse(".github/workflows/build-images.yml", OURS).unwrap()
    }

    fn runs(steps: &[PlannedStep]) -> Vec<String> {
        steps
            .iter()
            .filter_map(|s| match s {
                PlannedStep {
                    job,
                    leg,
                    action: Action::Run { argv, .. },
                    ..
                } => Some(format!("{job} [{leg}] {}", argv.join(" "))),
                _ => None,
            })
            .collect()
    }

    fn env_of<'a>(s: &'a PlannedStep, k: &str) -> Option<&'a str> {
        match &s.action {
            Action::Run { env, .. } => env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str()),
            _ => None,
        }
    }

    #[test]
    fn refs_forms() {
        let cases: &[(Event, &str, &str, &str, &str, &str)] = &[
            (Event::Push, "main", "refs/heads/main", "main", "", ""),
            (
                Event::Push,
                "refs/heads/develop",
                "refs/heads/develop",
                "develop",
                "",
                "",
            ),
            (
                Event::Push,
                "refs/tags/v1.2.0",
                "refs/tags/v1.2.0",
                "v1.2.0",
                "",
                "",
            ),
            (
                Event::PullRequest,
                "refs/pull/7/merge",
                "refs/pull/7/merge",
                "7/merge",
                "feature/x",
                "main",
            ),
            (
                Event::PullRequest,
                "feature/y",
                "refs/pull/1/merge",
                "1/merge",
                "feature/y",
                "main",
            ),
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
            assert_eq!(
                (
                    r.full.as_str(),
                    r.name.as_str(),
                    r.head.as_str(),
                    r.base.as_str()
                ),
                (*full, *name, *head, *base),
                "{given}"
            );
        }
        assert_eq!(
            Refs::parse(Event::PullRequest, "refs/pull/9/merge", None)
                .unwrap()
                .head,
            "pr-9"
        );
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
    fn workflow_run_push_to_main_builds_pushes_and_combines() {
        let steps = plan(&ours(), &ctx(Event::Push, "main"), None).unwrap();
        let r = runs(&steps);
        let want = [
            "build [component=broker, platform=linux/amd64, runner=ubuntu-24.04] build-image --component broker --platform linux/amd64 --push --cache local --progress plain",
            "build [component=broker, platform=linux/arm64, runner=ubuntu-24.04-arm] build-image --component broker --platform linux/arm64 --push --cache local --progress plain",
            "build [component=agent, platform=linux/amd64, runner=ubuntu-24.04] build-image --component agent --platform linux/amd64 --push --cache local --progress plain",
            "build [component=agent, platform=linux/arm64, runner=ubuntu-24.04-arm] build-image --component agent --platform linux/arm64 --push --cache local --progress plain",
            "create-manifest [component=broker] manifest --component broker",
            "create-manifest [component=agent] manifest --component agent",
        ];
        assert_eq!(r, want);
        let first = steps
            .iter()
            .find(|s| matches!(s.action, Action::Run { .. }))
            .unwrap();
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
            assert_eq!(env_of(first, k), Some(v), "{k}");
        }
        let shown = first.to_string();
        assert!(
            shown.contains("(`--cache gha` runs as `--cache local`"),
            "{shown}"
        );
        // The pull-request-only step is named as skipped; stand-ins are named.
        let text: Vec<String> = steps.iter().map(ToString::to_string).collect();
        assert!(text.iter().any(|t| t.contains("step `Build the image (pull request, no push)`: skipped: `if: github.event_name == 'pull_request'` is false for push refs/heads/main")), "{text:#?}");
        assert!(
            text.iter().any(|t| t
                .contains("step `Log in to ghcr.io`: stands in for docker/login-action@")
                && t.contains("localhost:5000 needs no login")),
            "{text:#?}"
        );
        assert!(
            text.iter()
                .any(|t| t.contains("step `Check out`: stands in for actions/checkout@")),
            "{text:#?}"
        );
        // QEMU: the arm64 legs on this amd64 machine need it, the amd64 legs do not.
        assert!(text.iter().any(|t| t.starts_with("[build component=broker, platform=linux/arm64, runner=ubuntu-24.04-arm] step `Set up QEMU`: stands in")), "{text:#?}");
        assert!(text.iter().any(|t| t.starts_with("[build component=broker, platform=linux/amd64, runner=ubuntu-24.04] step `Set up QEMU`: skipped")), "{text:#?}");
    }

    #[test]
    fn workflow_run_pull_request_only_builds() {
        let steps = plan(&ours(), &ctx(Event::PullRequest, "refs/pull/7/merge"), None).unwrap();
        let r = runs(&steps);
        assert_eq!(r.len(), 4, "{r:#?}");
        assert!(
            r.iter().all(|l| l.starts_with("build ")
                && !l.contains("--push")
                && !l.contains("--cache")),
            "{r:#?}"
        );
        let text: Vec<String> = steps.iter().map(ToString::to_string).collect();
        assert!(text.iter().any(|t| t == "[create-manifest] job: skipped: `if: github.event_name != 'pull_request'` is false for pull_request refs/pull/7/merge"), "{text:#?}");
        assert!(
            text.iter()
                .any(|t| t.contains("step `Log in to ghcr.io`: skipped")),
            "{text:#?}"
        );
        let first = steps
            .iter()
            .find(|s| matches!(s.action, Action::Run { .. }))
            .unwrap();
        assert_eq!(env_of(first, "GITHUB_REF"), Some("refs/pull/7/merge"));
        assert_eq!(env_of(first, "GITHUB_REF_NAME"), Some("7/merge"));
        assert_eq!(env_of(first, "GITHUB_HEAD_REF"), Some("feature/x"));
        assert_eq!(env_of(first, "GITHUB_BASE_REF"), Some("main"));
    }

    #[test]
    fn workflow_run_one_job_and_filters() {
        let wf = ours();
        let steps = plan(&wf, &ctx(Event::Push, "develop"), Some("create-manifest")).unwrap();
        assert_eq!(
            runs(&steps),
            [
                "create-manifest [component=broker] manifest --component broker",
                "create-manifest [component=agent] manifest --component agent"
            ]
        );
        let err = plan(&wf, &ctx(Event::Push, "main"), Some("biuld"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("no job `biuld`; did you mean `build`?"),
            "{err}"
        );
        let err = plan(&wf, &ctx(Event::Push, "feature/x"), None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("filters exclude `feature/x`"), "{err}");
        // release tags run the whole workflow (the semver tags come from them)
        let steps = plan(&wf, &ctx(Event::Push, "refs/tags/v1.0.0"), None).unwrap();
        assert!(steps
            .iter()
            .any(|s| s.to_string().contains("manifest --component broker")));
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
        let err = plan(&wf, &ctx(Event::Push, "main"), None)
            .unwrap_err()
            .to_string();
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
        let good = r#"
on: [push]
env:
  GLOBAL: g
jobs:
  a:
    runs-on: ubuntu-24.04
    steps:
      - run: echo "hello"
      - uses: some/action@0123456789012345678901234567890123456789
      - env:
          LOCAL: l
        run: |
          FOO=1 cargo xtask tags --registry ghcr.io/brokkr-dev --tag "$GLOBAL-$LOCAL" \
            --tag ${{ github.sha }}
"#;
        let wf = Workflow::parse("t.yml", good).unwrap();
        let steps = plan(&wf, &ctx(Event::Push, "main"), None).unwrap();
        let text: Vec<String> = steps.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            [
                "[a] step 1 (`echo \"hello\"`): skipped: informational `echo`",
                "[a] step 2 (`some/action@0123456789012345678901234567890123456789`): skipped: no local stand-in for `some/action@0123456789012345678901234567890123456789`",
                "[a] step 3 (`FOO=1 cargo xtask tags --registry ghcr.io/brokkr-dev --tag \"$GLOBAL-$LOCAL\" \\`): cargo xtask tags --registry localhost:5000 --tag g-l --tag 0123456789abcdef0123456789abcdef01234567 (`--registry ghcr.io/brokkr-dev` runs as `--registry localhost:5000`)",
            ],
            "{text:#?}"
        );
        let run = steps
            .iter()
            .find(|s| matches!(s.action, Action::Run { .. }))
            .unwrap();
        assert_eq!(env_of(run, "FOO"), Some("1"));
        assert_eq!(env_of(run, "GLOBAL"), Some("g"));
    }

    #[test]
    fn rewrites_cache_and_registry() {
        let w = |s: &str| s.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
        let cases: &[(&str, &str, usize)] = &[
            (
                "build-image --cache gha --push",
                "build-image --cache local --push",
                1,
            ),
            ("build-image --cache=gha", "build-image --cache=local", 1),
            (
                "build-image --cache registry",
                "build-image --cache registry",
                0,
            ),
            (
                "manifest --registry ghcr.io/o --component broker",
                "manifest --registry localhost:5000 --component broker",
                1,
            ),
            (
                "manifest --registry=localhost:5000",
                "manifest --registry=localhost:5000",
                0,
            ),
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
            (
                "https://github.com/brokkr-dev/brokkr",
                Some("brokkr-dev/brokkr"),
            ),
            (
                "https://github.com/brokkr-dev/brokkr.git",
                Some("brokkr-dev/brokkr"),
            ),
            (
                "git@github.com:brokkr-dev/brokkr.git",
                Some("brokkr-dev/brokkr"),
            ),
            ("/work/main", None),
        ];
        for (url, want) in cases {
            assert_eq!(repository_from_url(url).as_deref(), *want, "{url}");
        }
    }
}
