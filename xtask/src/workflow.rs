//! GitHub workflow files as data, and the rules `cargo xtask validate-workflow`
//! checks them against: the xtask's own CLI, components, platforms and image
//! inputs. Pure: no file system, no commands (the caller reads files and the
//! workspace members and passes them in).
//!
//! YAML is read with serde_yaml, which follows YAML 1.2: the trigger key `on`
//! is the string `"on"` (a YAML 1.1 loader would read it as boolean `true`),
//! and only `true`/`false` are booleans. serde_yaml keeps no positions, so
//! line numbers come from [`text::locate`] on the file text.

pub mod expr;
pub mod shell;
pub mod text;

use std::collections::BTreeSet;
use std::fmt;

use serde_yaml::{Mapping, Value};

use crate::project::{self, Component, Platform, COMPONENTS, PLATFORMS};
use expr::Val;
use shell::ShellCommand;
use text::Seg;

/// How bad a finding is: errors make `validate-workflow` exit 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// The workflow is wrong: it will fail, leak, or build the wrong thing.
    Error,
    /// The workflow works but badly (e.g. hours of emulated compilation).
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

/// Which rule produced a diagnostic (for tests and filtering; not printed).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Rule {
    /// The file is not a readable workflow (YAML syntax, shape).
    Syntax,
    /// W1: triggers (`on:`), including a literal `true:` key.
    Triggers,
    /// W2: path filters that miss an image input.
    Paths,
    /// W3: pushing without `packages: write`.
    Permissions,
    /// W4: login/push/secrets not guarded on pull requests.
    PullRequestGuard,
    /// W5: `cargo xtask` calls the CLI does not accept.
    Cli,
    /// W6: matrix components/platforms differ from the xtask's.
    Matrix,
    /// B3: two matrix legs share one gha cache scope.
    CacheScope,
    /// B7: Rust compiled under QEMU emulation.
    Emulation,
    /// The manifest job: needs the build jobs, covers every component.
    Manifest,
    /// A `run:` step that `workflow run` cannot reproduce.
    LocalRun,
}

/// One finding: `path:line: error|warning: message`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// The workflow file as given on the command line.
    pub path: String,
    /// 1-based line in that file.
    pub line: usize,
    /// Error or warning.
    pub severity: Severity,
    /// What is wrong and what to do, in one line.
    pub message: String,
    /// The rule that found it.
    pub rule: Rule,
}

impl fmt::Display for Diagnostic {
    /// `path:line: error: message`, the format of compilers and actionlint.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: {}: {}",
            self.path, self.line, self.severity, self.message
        )
    }
}

/// One `on:` event and its configuration (`Null` when written without one).
#[derive(Clone, Debug, PartialEq)]
pub struct Trigger {
    /// Event name: `push`, `pull_request`, ...
    pub event: String,
    /// The event's mapping (`branches`, `paths`, ...) or `Null`.
    pub config: Value,
}

/// A step of a job.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    /// 0-based position in the job's `steps`.
    pub index: usize,
    /// `name:`.
    pub name: Option<String>,
    /// `if:` as written (a YAML boolean is kept as `true`/`false`).
    pub cond: Option<String>,
    /// `uses:` (`owner/repo@ref`).
    pub uses: Option<String>,
    /// `run:` script.
    pub run: Option<String>,
    /// `with:` inputs, values as text.
    pub with: Vec<(String, String)>,
    /// `env:`, values as text (may hold `${{ }}`).
    pub env: Vec<(String, String)>,
}

impl Step {
    /// How messages name the step: `step "Build"` or `step 3 (uses: x)`.
    pub fn label(&self) -> String {
        match (&self.name, &self.uses, &self.run) {
            (Some(n), _, _) => format!("step `{n}`"),
            (None, Some(u), _) => format!("step {} (`{u}`)", self.index + 1),
            (None, None, Some(r)) => {
                let first = r
                    .lines()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("")
                    .trim();
                format!("step {} (`{first}`)", self.index + 1)
            }
            _ => format!("step {}", self.index + 1),
        }
    }

    /// The action's `owner/repo[/path]` without `@ref`, lower-cased.
    pub fn action(&self) -> Option<String> {
        self.uses
            .as_ref()
            .map(|u| u.split('@').next().unwrap_or(u).to_ascii_lowercase())
    }

    /// A `with:` input by name.
    pub fn input(&self, name: &str) -> Option<&str> {
        self.with
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A job of the workflow.
#[derive(Clone, Debug, PartialEq)]
pub struct Job {
    /// The job's key under `jobs:`.
    pub id: String,
    /// `name:`.
    pub name: Option<String>,
    /// `needs:` as a list.
    pub needs: Vec<String>,
    /// `if:` as written.
    pub cond: Option<String>,
    /// `runs-on:` (a label, a list of labels, or an expression).
    pub runs_on: Value,
    /// `permissions:` of the job (replaces the workflow's when present).
    pub permissions: Option<Value>,
    /// `env:` of the job.
    pub env: Vec<(String, String)>,
    /// `strategy.matrix`.
    pub matrix: Option<Value>,
    /// The steps (empty for a reusable-workflow call).
    pub steps: Vec<Step>,
}

/// A parsed workflow file.
#[derive(Clone, Debug, PartialEq)]
pub struct Workflow {
    /// The path as given (for messages).
    pub path: String,
    /// The file's text (for line numbers).
    pub text: String,
    /// The top-level mapping.
    pub root: Mapping,
    /// `name:`.
    pub name: Option<String>,
    /// `permissions:` of the workflow.
    pub permissions: Option<Value>,
    /// `env:` of the workflow.
    pub env: Vec<(String, String)>,
    /// The jobs, in file order.
    pub jobs: Vec<Job>,
}

/// A scalar as text (`true`, `3`, `""` for null); `None` for sequences and mappings.
pub fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::Null => Some(String::new()),
        Value::Tagged(t) => scalar(&t.value),
        _ => None,
    }
}

fn get<'a>(m: &'a Mapping, key: &str) -> Option<&'a Value> {
    m.get(Value::String(key.to_owned()))
}

fn text_pairs(v: Option<&Value>) -> Vec<(String, String)> {
    let Some(Value::Mapping(m)) = v else {
        return Vec::new();
    };
    m.iter()
        .filter_map(|(k, v)| {
            let k = scalar(k)?;
            let v = scalar(v).unwrap_or_else(|| {
                serde_yaml::to_string(v)
                    .unwrap_or_default()
                    .trim()
                    .to_owned()
            });
            Some((k, v))
        })
        .collect()
}

fn string_list(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Sequence(s)) => s.iter().filter_map(scalar).collect(),
        Some(v) => scalar(v).filter(|s| !s.is_empty()).into_iter().collect(),
        None => Vec::new(),
    }
}

impl Workflow {
    /// Parses a workflow. A YAML syntax error or a top level that is not a
    /// mapping is an error diagnostic (at the error's line when known).
    pub fn parse(path: &str, text: &str) -> Result<Workflow, Diagnostic> {
        let fail = |line: usize, message: String| Diagnostic {
            path: path.to_owned(),
            line,
            severity: Severity::Error,
            message,
            rule: Rule::Syntax,
        };
        let value: Value = serde_yaml::from_str(text).map_err(|e| {
            let line = e.location().map_or(1, |l| l.line());
            fail(line, format!("not valid YAML: {e}"))
        })?;
        let Value::Mapping(root) = value else {
            return Err(fail(
                1,
                "a workflow is a YAML mapping with `on:` and `jobs:`".to_owned(),
            ));
        };
        let mut jobs = Vec::new();
        if let Some(Value::Mapping(js)) = get(&root, "jobs") {
            for (id, j) in js {
                let (Some(id), Value::Mapping(j)) = (scalar(id), j) else {
                    continue;
                };
                let steps = match get(j, "steps") {
                    Some(Value::Sequence(ss)) => ss
                        .iter()
                        .enumerate()
                        .filter_map(|(index, s)| {
                            let Value::Mapping(s) = s else { return None };
                            Some(Step {
                                index,
                                name: get(s, "name").and_then(scalar),
                                cond: get(s, "if").and_then(scalar),
                                uses: get(s, "uses").and_then(scalar),
                                run: get(s, "run").and_then(scalar),
                                with: text_pairs(get(s, "with")),
                                env: text_pairs(get(s, "env")),
                            })
                        })
                        .collect(),
                    _ => Vec::new(),
                };
                let matrix = match get(j, "strategy") {
                    Some(Value::Mapping(st)) => get(st, "matrix").cloned(),
                    _ => None,
                };
                jobs.push(Job {
                    id,
                    name: get(j, "name").and_then(scalar),
                    needs: string_list(get(j, "needs")),
                    cond: get(j, "if").and_then(scalar),
                    runs_on: get(j, "runs-on").cloned().unwrap_or(Value::Null),
                    permissions: get(j, "permissions").cloned(),
                    env: text_pairs(get(j, "env")),
                    matrix,
                    steps,
                });
            }
        }
        Ok(Workflow {
            path: path.to_owned(),
            text: text.to_owned(),
            name: get(&root, "name").and_then(scalar),
            permissions: get(&root, "permissions").cloned(),
            env: text_pairs(get(&root, "env")),
            jobs,
            root,
        })
    }

    /// The triggers under the `on` key, in any of its forms: `on: push`,
    /// `on: [push, pull_request]`, or a mapping of events.
    pub fn triggers(&self) -> Vec<Trigger> {
        match get(&self.root, "on") {
            Some(Value::String(e)) => vec![Trigger {
                event: e.clone(),
                config: Value::Null,
            }],
            Some(Value::Sequence(es)) => es
                .iter()
                .filter_map(scalar)
                .map(|event| Trigger {
                    event,
                    config: Value::Null,
                })
                .collect(),
            Some(Value::Mapping(m)) => m
                .iter()
                .filter_map(|(k, v)| {
                    Some(Trigger {
                        event: scalar(k)?,
                        config: v.clone(),
                    })
                })
                .collect(),
            _ => Vec::new(),
        }
    }

    /// The job with this id.
    pub fn job(&self, id: &str) -> Option<&Job> {
        self.jobs.iter().find(|j| j.id == id)
    }

    /// Line of a node (see [`text::locate`]).
    pub fn line(&self, path: &[Seg<'_>]) -> usize {
        text::locate(&self.text, path)
    }

    /// Line of a job's key.
    pub fn job_line(&self, job: &Job) -> usize {
        self.line(&[Seg::Key("jobs"), Seg::Key(&job.id)])
    }

    /// Line of a step (its `- ` line), or of a key inside it.
    pub fn step_line(&self, job: &Job, step: &Step, key: Option<&str>) -> usize {
        let mut p = vec![
            Seg::Key("jobs"),
            Seg::Key(&job.id),
            Seg::Key("steps"),
            Seg::Index(step.index),
        ];
        if let Some(k) = key {
            p.push(Seg::Key(k));
        }
        self.line(&p)
    }

    /// Line on which a step's run script's line `n` (0-based) is written:
    /// the `run:` line itself for a one-line script, the lines after it for
    /// a block scalar (`run: |`).
    pub fn run_line(&self, job: &Job, step: &Step, n: usize) -> usize {
        let at = self.step_line(job, step, Some("run"));
        let head = self.text.lines().nth(at - 1).unwrap_or("");
        let after = head.split_once("run:").map_or("", |(_, r)| r.trim());
        if after.starts_with('|') || after.starts_with('>') || after.is_empty() {
            at + 1 + n
        } else {
            at + n
        }
    }
}

// ---------------------------------------------------------------------------
// Matrices
// ---------------------------------------------------------------------------

/// One combination of matrix values (`component=broker`, ...), in key order.
pub type Leg = Vec<(String, String)>;

/// `component=broker, platform=linux/arm64`: how messages name a leg.
pub fn leg_label(leg: &Leg) -> String {
    leg.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn leg_get<'a>(leg: &'a Leg, key: &str) -> Option<&'a str> {
    leg.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// Expands `strategy.matrix` as GitHub does ("Using a matrix for your jobs"):
/// the product of the list-valued keys (the first key varies slowest), minus
/// `exclude` entries (an entry removes every combination it matches), then
/// each `include` entry is merged into every combination whose original
/// values it matches (adding keys, never overwriting an original value), or
/// added as a combination of its own when it matches none. No matrix is one
/// empty leg. A matrix given as an expression (`fromJSON(...)`) is an error.
pub fn expand_matrix(matrix: Option<&Value>) -> Result<Vec<Leg>, String> {
    let Some(m) = matrix else {
        return Ok(vec![Vec::new()]);
    };
    let Value::Mapping(m) = m else {
        return Err(
            "the matrix is an expression; only literal matrices can be expanded".to_owned(),
        );
    };
    let mut keys: Vec<(String, Vec<String>)> = Vec::new();
    let mut include: Vec<Leg> = Vec::new();
    let mut exclude: Vec<Leg> = Vec::new();
    let entries = |v: &Value| -> Result<Vec<Leg>, String> {
        match v {
            Value::Sequence(s) => s
                .iter()
                .map(|e| match e {
                    Value::Mapping(_) => Ok(text_pairs(Some(e))),
                    _ => Err("include/exclude entries must be mappings".to_owned()),
                })
                .collect(),
            _ => Err(
                "include/exclude must be lists (or are expressions, which cannot be expanded)"
                    .to_owned(),
            ),
        }
    };
    for (k, v) in m {
        let Some(k) = scalar(k) else { continue };
        match k.as_str() {
            "include" => include = entries(v)?,
            "exclude" => exclude = entries(v)?,
            _ => match v {
                Value::Sequence(s) => keys.push((
                    k,
                    s.iter()
                        .map(|x| {
                            scalar(x)
                                .unwrap_or_else(|| serde_json::to_string(x).unwrap_or_default())
                        })
                        .collect(),
                )),
                _ => return Err(format!("matrix key `{k}` is not a list")),
            },
        }
    }
    let mut legs: Vec<Leg> = if keys.is_empty() {
        Vec::new()
    } else {
        vec![Vec::new()]
    };
    for (k, vals) in &keys {
        legs = legs
            .into_iter()
            .flat_map(|leg| {
                vals.iter().map(move |v| {
                    let mut l = leg.clone();
                    l.push((k.clone(), v.clone()));
                    l
                })
            })
            .collect();
    }
    legs.retain(|leg| {
        !exclude
            .iter()
            .any(|ex| ex.iter().all(|(k, v)| leg_get(leg, k) == Some(v.as_str())))
    });
    let originals = legs.len();
    let original_keys: Vec<&str> = keys.iter().map(|(k, _)| k.as_str()).collect();
    for inc in include {
        let mut matched = false;
        for leg in legs.iter_mut().take(originals) {
            let fits = inc
                .iter()
                .filter(|(k, _)| original_keys.contains(&k.as_str()))
                .all(|(k, v)| leg_get(leg, k) == Some(v.as_str()));
            if fits {
                matched = true;
                for (k, v) in &inc {
                    if original_keys.contains(&k.as_str()) {
                        continue;
                    }
                    match leg.iter_mut().find(|(lk, _)| lk == k) {
                        Some(slot) => slot.1 = v.clone(),
                        None => leg.push((k.clone(), v.clone())),
                    }
                }
            }
        }
        if !matched {
            legs.push(inc);
        }
    }
    if legs.is_empty() {
        return Err("the matrix has no combinations".to_owned());
    }
    Ok(legs)
}

// ---------------------------------------------------------------------------
// Evaluation scope: matrix, env, github
// ---------------------------------------------------------------------------

/// What `${{ }}` and `$VAR` resolve to for one step of one leg.
pub struct Scope<'a> {
    /// `github.*`, `runner.*`, `secrets.*`, ...: everything but `matrix` and `env`.
    pub outer: &'a dyn Fn(&str) -> Option<Val>,
    /// The leg's matrix values.
    pub leg: &'a Leg,
    /// The environment built so far (workflow, job, step `env:`).
    pub env: Vec<(String, String)>,
}

impl Scope<'_> {
    /// Resolves a context path: `matrix.x` (null when the leg has no `x`),
    /// `env.X` (null when unset), anything else through `outer`.
    pub fn resolve(&self, path: &str) -> Option<Val> {
        if let Some(k) = path.strip_prefix("matrix.") {
            return Some(leg_get(self.leg, k).map_or(Val::Null, |v| Val::Str(v.to_owned())));
        }
        if let Some(k) = path.strip_prefix("env.") {
            return Some(
                self.env_var(k)
                    .map_or(Val::Null, |v| Val::Str(v.to_owned())),
            );
        }
        (self.outer)(path)
    }

    /// An environment variable of the scope.
    pub fn env_var(&self, k: &str) -> Option<&str> {
        self.env
            .iter()
            .rev()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
    }

    /// Substitutes `${{ }}` in `s`.
    pub fn substitute(&self, s: &str) -> Result<String, String> {
        expr::substitute(s, &|p| self.resolve(p))
    }

    /// Evaluates an `if:` condition; `None` when it depends on something unknown.
    pub fn condition(&self, cond: &str) -> Result<Option<bool>, String> {
        expr::condition(cond, &|p| self.resolve(p))
    }

    /// Adds `env:` entries (substituted; an entry that cannot be evaluated is
    /// left out and its name returned).
    pub fn add_env(&mut self, entries: &[(String, String)]) -> Vec<String> {
        let mut failed = Vec::new();
        for (k, v) in entries {
            match self.substitute(v) {
                Ok(v) => self.env.push((k.clone(), v)),
                Err(_) => failed.push(k.clone()),
            }
        }
        failed
    }

    /// Splits a run script with `${{ }}` substituted and `$VAR` from the env.
    /// `Err` when an expression cannot be evaluated.
    pub fn commands(&self, script: &str) -> Result<Vec<ShellCommand>, String> {
        let s = self.substitute(script)?;
        Ok(shell::split(&s, &|k| self.env_var(k).map(str::to_owned)))
    }
}

/// The scope of a step in a leg: workflow, job and step `env:` in that order.
pub fn step_scope<'a>(
    wf: &Workflow,
    job: &Job,
    step: Option<&Step>,
    leg: &'a Leg,
    outer: &'a dyn Fn(&str) -> Option<Val>,
) -> Scope<'a> {
    let mut s = Scope {
        outer,
        leg,
        env: Vec::new(),
    };
    s.add_env(&wf.env);
    s.add_env(&job.env);
    if let Some(step) = step {
        s.add_env(&step.env);
    }
    s
}

/// The context of a check that covers every event: nothing outside the
/// matrix and env is known.
fn unknown_outer(_: &str) -> Option<Val> {
    None
}

/// The context of a pull request run, as far as the PR guard rule needs it.
fn pull_request_outer(path: &str) -> Option<Val> {
    match path {
        "github.event_name" => Some(Val::Str("pull_request".to_owned())),
        "github.ref" => Some(Val::Str("refs/pull/1/merge".to_owned())),
        _ => None,
    }
}

// ---------------------------------------------------------------------------
// The xtask CLI: parsing `cargo xtask ...` words against a clap::Command
// ---------------------------------------------------------------------------

/// A `cargo xtask` call as the CLI would parse it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct XtaskCall {
    /// Subcommand names from the top, canonical (`["manifest", "verify"]`).
    pub subcommands: Vec<String>,
    /// Options by canonical long name (or the short letter when it has
    /// none), with their value when they take one.
    pub flags: Vec<(String, Option<String>)>,
    /// Positional arguments.
    pub positionals: Vec<String>,
    /// The words could not be followed to the end (an unknown subcommand, or
    /// an expression where a subcommand should be).
    pub incomplete: bool,
}

impl XtaskCall {
    /// Whether the option was given.
    pub fn has(&self, long: &str) -> bool {
        self.flags.iter().any(|(k, _)| k == long)
    }

    /// The last value of an option.
    pub fn value(&self, long: &str) -> Option<&str> {
        self.flags
            .iter()
            .rev()
            .find(|(k, _)| k == long)
            .and_then(|(_, v)| v.as_deref())
    }

    /// Whether the call writes to a registry: `build-image`/`images` with
    /// `--push`, `push`, and `manifest` (but not `manifest verify`).
    pub fn pushes(&self) -> bool {
        match self.subcommands.first().map(String::as_str) {
            Some("build-image" | "images") => self.has("push"),
            Some("push") => true,
            Some("manifest") => self.subcommands.len() == 1,
            _ => false,
        }
    }
}

/// Marks a `${{ }}` expression in words checked without a matrix leg.
const EXPR_MARK: &str = "\u{1}expr\u{1}";

fn is_literal(word: &str) -> bool {
    !word.contains(EXPR_MARK) && !word.contains('$')
}

/// The arguments after `cargo xtask` when `cmd` is such a call.
pub fn xtask_args(cmd: &ShellCommand) -> Option<&[String]> {
    let argv = cmd.argv();
    (argv.len() >= 2 && argv[0] == "cargo" && argv[1] == "xtask").then(|| &argv[2..])
}

/// Parses the words after `cargo xtask` against the CLI definition `cli`
/// (built, so `--help` and global options count), returning the call and a
/// message for each subcommand, option or value the CLI would reject, with
/// the closest valid name. Words holding an expression or `$VAR` are taken
/// as values and not checked.
pub fn parse_xtask(cli: &clap::Command, args: &[String]) -> (XtaskCall, Vec<String>) {
    let mut cli = cli.clone();
    cli.build();
    let mut cmd = &cli;
    let mut call = XtaskCall::default();
    let mut problems = Vec::new();
    let mut positionals_taken = 0usize;
    let name_of = |chain: &[String]| {
        if chain.is_empty() {
            "cargo xtask".to_owned()
        } else {
            format!("cargo xtask {}", chain.join(" "))
        }
    };
    let mut i = 0;
    while i < args.len() {
        let word = &args[i];
        i += 1;
        if word == "--" {
            call.positionals.extend(args[i..].iter().cloned());
            break;
        }
        if let Some(long) = word.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v.to_owned())),
                None => (long, None),
            };
            if !is_literal(name) {
                continue;
            }
            let arg = cmd.get_arguments().find(|a| {
                a.get_long() == Some(name)
                    || a.get_all_aliases().is_some_and(|al| al.contains(&name))
            });
            let Some(arg) = arg else {
                let longs: Vec<&str> = cmd
                    .get_arguments()
                    .filter_map(clap::Arg::get_long)
                    .collect();
                let near = text::closest(name, longs.iter().copied());
                let hint = match near {
                    Some(c) => format!("; did you mean `--{c}`?"),
                    None => format!(
                        "; it has: {}",
                        longs
                            .iter()
                            .map(|l| format!("--{l}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                };
                problems.push(format!(
                    "`{}` has no option `--{name}`{hint}",
                    name_of(&call.subcommands)
                ));
                // Read on as if the intended option was written, so its
                // value is not taken for a subcommand or argument.
                let near_takes_value = near
                    .and_then(|c| cmd.get_arguments().find(|a| a.get_long() == Some(c)))
                    .is_some_and(|a| a.get_action().takes_values());
                if near_takes_value
                    && inline.is_none()
                    && args.get(i).is_some_and(|w| !w.starts_with('-'))
                {
                    i += 1;
                }
                continue;
            };
            let canonical = arg.get_long().unwrap_or(name).to_owned();
            let value = take_value(arg, inline, args, &mut i, &mut problems, &canonical);
            call.flags.push((canonical, value));
        } else if word.len() > 1
            && word.starts_with('-')
            && !word.starts_with("--")
            && is_literal(word)
        {
            let letters: Vec<char> = word[1..].chars().collect();
            let mut k = 0;
            while k < letters.len() {
                let c = letters[k];
                k += 1;
                let arg = cmd.get_arguments().find(|a| {
                    a.get_short() == Some(c)
                        || a.get_all_short_aliases().is_some_and(|al| al.contains(&c))
                });
                let Some(arg) = arg else {
                    problems.push(format!(
                        "`{}` has no option `-{c}`",
                        name_of(&call.subcommands)
                    ));
                    break;
                };
                let canonical = arg.get_long().map_or_else(|| c.to_string(), str::to_owned);
                if arg.get_action().takes_values() {
                    let rest: String = letters[k..].iter().collect();
                    let inline =
                        (!rest.is_empty()).then(|| rest.trim_start_matches('=').to_owned());
                    let value = take_value(arg, inline, args, &mut i, &mut problems, &canonical);
                    call.flags.push((canonical, value));
                    break;
                }
                call.flags.push((canonical, None));
            }
        } else {
            // A subcommand, or a positional value.
            if cmd.has_subcommands() && positionals_taken == 0 {
                if !is_literal(word) {
                    call.incomplete = true;
                    break;
                }
                let sub = cmd
                    .get_subcommands()
                    .find(|s| s.get_name() == word || s.get_all_aliases().any(|a| a == word));
                if let Some(sub) = sub {
                    call.subcommands.push(sub.get_name().to_owned());
                    cmd = sub;
                    positionals_taken = 0;
                    continue;
                }
                if cmd.get_positionals().next().is_none() {
                    let names: Vec<&str> = cmd
                        .get_subcommands()
                        .map(clap::Command::get_name)
                        .filter(|n| *n != "help")
                        .collect();
                    let hint = match text::closest(word, names.iter().copied()) {
                        Some(c) => format!("; did you mean `{c}`?"),
                        None => format!("; it has: {}", names.join(", ")),
                    };
                    problems.push(format!(
                        "`{}` has no subcommand `{word}`{hint}",
                        name_of(&call.subcommands)
                    ));
                    call.incomplete = true;
                    break;
                }
            }
            let positionals: Vec<&clap::Arg> = cmd.get_positionals().collect();
            let fits = positionals_taken < positionals.len()
                || positionals
                    .last()
                    .is_some_and(|a| a.get_num_args().is_some_and(|r| r.max_values() > 1));
            if !fits {
                problems.push(format!(
                    "`{}` takes no argument `{word}`",
                    name_of(&call.subcommands)
                ));
            }
            positionals_taken += 1;
            call.positionals.push(word.clone());
        }
    }
    // What clap would miss: only for a call read to its end without other
    // problems (a misspelled option usually is the missing one).
    let helped = call
        .flags
        .iter()
        .any(|(k, _)| k == "help" || k == "version");
    if problems.is_empty() && !call.incomplete && !helped {
        let here = name_of(&call.subcommands);
        if cmd.is_subcommand_required_set() {
            let names: Vec<&str> = cmd
                .get_subcommands()
                .map(clap::Command::get_name)
                .filter(|n| *n != "help")
                .collect();
            problems.push(format!("`{here}` needs a subcommand: {}", names.join(", ")));
        }
        for a in cmd.get_arguments() {
            if !a.is_required_set() || a.get_env().is_some() || !a.get_default_values().is_empty() {
                continue;
            }
            let given = match (a.get_index(), a.get_long()) {
                (Some(index), _) => positionals_taken >= index,
                (None, Some(long)) => call.has(long),
                (None, None) => a.get_short().is_some_and(|c| call.has(&c.to_string())),
            };
            if !given {
                let shown = match (a.get_long(), a.get_short()) {
                    (Some(l), _) => format!("--{l}"),
                    (None, Some(c)) => format!("-{c}"),
                    (None, None) => format!("<{}>", a.get_id().as_str().to_ascii_uppercase()),
                };
                problems.push(format!("`{here}` needs `{shown}`"));
            }
        }
    }
    (call, problems)
}

/// The value of an option that was just read: inline (`--x=v`), the next
/// word(s), or none for a switch; checks possible values when it can.
fn take_value(
    arg: &clap::Arg,
    inline: Option<String>,
    args: &[String],
    i: &mut usize,
    problems: &mut Vec<String>,
    canonical: &str,
) -> Option<String> {
    if !arg.get_action().takes_values() {
        if let Some(v) = inline {
            problems.push(format!(
                "option `--{canonical}` takes no value, but was given `{v}`"
            ));
        }
        return None;
    }
    let range = arg.get_num_args();
    let min = range.map_or(1, |r| r.min_values());
    let value = match inline {
        Some(v) => Some(v),
        None if min == 0 => None,
        None => {
            let v = args.get(*i).cloned();
            if v.is_some() {
                *i += 1;
            } else {
                problems.push(format!("option `--{canonical}` needs a value"));
            }
            v
        }
    };
    if let Some(v) = &value {
        let possible = arg.get_possible_values();
        if !possible.is_empty() && is_literal(v) {
            let parts: Vec<&str> = match arg.get_value_delimiter() {
                Some(d) => v.split(d).collect(),
                None => vec![v.as_str()],
            };
            for part in parts {
                let ok = possible.iter().any(|p| {
                    if arg.is_ignore_case_set() {
                        p.get_name_and_aliases()
                            .any(|n| n.eq_ignore_ascii_case(part))
                    } else {
                        p.get_name_and_aliases().any(|n| n == part)
                    }
                });
                if !ok {
                    let names: Vec<&str> = possible
                        .iter()
                        .map(clap::builder::PossibleValue::get_name)
                        .collect();
                    let hint = text::closest(part, names.iter().copied())
                        .map_or(String::new(), |c| format!("; did you mean `{c}`?"));
                    problems.push(format!(
                        "`--{canonical} {part}` is not one of {}{hint}",
                        names.join(", ")
                    ));
                }
            }
        }
    }
    value
}

// ---------------------------------------------------------------------------
// What the images depend on
// ---------------------------------------------------------------------------

/// A path an image is built from: a file (`Cargo.lock`) or a directory
/// (`broker/`, trailing slash), with the images that depend on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageInput {
    /// Repository-relative path; directories end with `/`.
    pub path: String,
    /// Image names (`brokkr-broker`) that depend on it.
    pub images: Vec<String>,
}

impl ImageInput {
    /// The filter pattern that covers it: `Cargo.lock`, `broker/**`.
    pub fn pattern(&self) -> String {
        match self.path.strip_suffix('/') {
            Some(d) => format!("{d}/**"),
            None => self.path.clone(),
        }
    }

    /// Sample files standing for the input when matching filters: the file,
    /// or for a directory a manifest, a source file and a nested file.
    fn probes(&self) -> Vec<String> {
        if self.path.ends_with('/') {
            ["Cargo.toml", "src/main.rs", "a/b/c.txt"]
                .iter()
                .map(|f| format!("{}{f}", self.path))
                .collect()
        } else {
            vec![self.path.clone()]
        }
    }
}

/// The sources of `COPY`/`ADD` lines of a Dockerfile (not `--from=` copies),
/// `./` prefixes removed, `.` for the whole build context.
pub fn dockerfile_sources(dockerfile: &str) -> Vec<String> {
    let joined = dockerfile.replace("\\\r\n", " ").replace("\\\n", " ");
    let mut out = Vec::new();
    for line in joined.lines() {
        let t = line.trim();
        let mut words = t.split_whitespace();
        let Some(instr) = words.next() else { continue };
        if !instr.eq_ignore_ascii_case("COPY") && !instr.eq_ignore_ascii_case("ADD") {
            continue;
        }
        let rest: Vec<&str> = words.collect();
        if rest.iter().any(|w| w.starts_with("--from=")) {
            continue;
        }
        let args: Vec<String> = if rest.iter().any(|w| w.starts_with('[')) {
            let json = rest.join(" ");
            let start = json.find('[').unwrap_or(0);
            serde_json::from_str::<Vec<String>>(&json[start..]).unwrap_or_default()
        } else {
            rest.iter()
                .filter(|w| !w.starts_with("--"))
                .map(|w| (*w).to_owned())
                .collect()
        };
        if args.len() < 2 {
            continue;
        }
        for src in &args[..args.len() - 1] {
            let s = src.trim_start_matches("./");
            out.push(if s.is_empty() || s == "." {
                ".".to_owned()
            } else {
                s.to_owned()
            });
        }
    }
    out
}

/// Everything the images are built from, per component: the root
/// `Cargo.toml` and `Cargo.lock`, `.cargo/`, `rust-toolchain.toml`,
/// `.dockerignore`, `docker/` (helper scripts), the component's Dockerfile,
/// and what the Dockerfile copies: every workspace member for `COPY . .`
/// (also assumed when the Dockerfile text is not given), else each copied
/// path. `members` are directory paths relative to the root, as `cargo
/// metadata` reports them; `dockerfiles` pairs each component with its
/// Dockerfile's text when the file exists.
pub fn image_inputs(
    members: &[String],
    dockerfiles: &[(&Component, Option<&str>)],
) -> Vec<ImageInput> {
    let mut inputs: Vec<ImageInput> = Vec::new();
    let mut add = |path: String, image: &str| match inputs.iter_mut().find(|i| i.path == path) {
        Some(i) => {
            if !i.images.iter().any(|x| x == image) {
                i.images.push(image.to_owned());
            }
        }
        None => inputs.push(ImageInput {
            path,
            images: vec![image.to_owned()],
        }),
    };
    for (c, text) in dockerfiles {
        let image = c.image_name();
        for p in [
            "Cargo.toml",
            "Cargo.lock",
            ".cargo/",
            "rust-toolchain.toml",
            ".dockerignore",
            "docker/",
        ] {
            add(p.to_owned(), &image);
        }
        add(c.dockerfile.to_owned(), &image);
        let sources = text.map_or_else(|| vec![".".to_owned()], dockerfile_sources);
        for s in sources {
            if s == "." {
                for m in members {
                    add(format!("{}/", m.trim_end_matches('/')), &image);
                }
            } else if members
                .iter()
                .any(|m| m.trim_end_matches('/') == s.trim_end_matches('/'))
                || s.ends_with('/')
            {
                add(format!("{}/", s.trim_end_matches('/')), &image);
            } else {
                add(s, &image);
            }
        }
    }
    inputs
}

/// The path GitHub knows a workflow by: `.github/workflows/<file>` (a
/// fixture elsewhere stands for a workflow of that name).
pub fn repo_path(path: &str) -> String {
    let norm = path.replace('\\', "/");
    if let Some(pos) = norm.find(".github/workflows/") {
        return norm[pos..].to_owned();
    }
    let file = norm.rsplit('/').next().unwrap_or(&norm);
    format!(".github/workflows/{file}")
}

// ---------------------------------------------------------------------------
// Rules
// ---------------------------------------------------------------------------

/// What the rules compare a workflow with.
pub struct Expected<'a> {
    /// The xtask's CLI definition (`Cli::command()`).
    pub cli: &'a clap::Command,
    /// The image inputs ([`image_inputs`]); the workflow file itself is added per file.
    pub image_inputs: &'a [ImageInput],
}

/// The branches pushes must build, as the project's branching model says.
pub const PUSH_BRANCHES: &[&str] = &["main", "develop"];

struct Ctx<'a> {
    wf: &'a Workflow,
    exp: &'a Expected<'a>,
    out: Vec<Diagnostic>,
}

impl Ctx<'_> {
    fn report(&mut self, rule: Rule, severity: Severity, line: usize, message: String) {
        let d = Diagnostic {
            path: self.wf.path.clone(),
            line,
            severity,
            message,
            rule,
        };
        if !self.out.contains(&d) {
            self.out.push(d);
        }
    }

    fn error(&mut self, rule: Rule, line: usize, message: String) {
        self.report(rule, Severity::Error, line, message);
    }

    fn warn(&mut self, rule: Rule, line: usize, message: String) {
        self.report(rule, Severity::Warning, line, message);
    }
}

/// A `cargo xtask` call in a step, with where it is.
struct FoundCall {
    job: usize,
    step: usize,
    line: usize,
    call: XtaskCall,
}

/// Checks a workflow; diagnostics sorted by line. Rules about building
/// images (triggers, path filters, matrix, manifest) apply only to a
/// workflow that builds or pushes images; the others apply to every file.
pub fn check(wf: &Workflow, exp: &Expected<'_>) -> Vec<Diagnostic> {
    let mut cx = Ctx {
        wf,
        exp,
        out: Vec::new(),
    };
    let calls = check_cli(&mut cx);
    check_top_keys(&mut cx);
    let builds = wf
        .jobs
        .iter()
        .enumerate()
        .any(|(ji, j)| job_builds(j, ji, &calls) || job_pushes(j, ji, &calls).is_some());
    if builds {
        check_triggers(&mut cx);
        check_paths(&mut cx);
        check_matrix(&mut cx);
        check_manifest(&mut cx, &calls);
    }
    check_permissions(&mut cx, &calls);
    check_pull_request_guards(&mut cx, &calls);
    check_cache_scopes(&mut cx);
    check_emulation(&mut cx, &calls);
    let mut out = cx.out;
    out.sort_by(|a, b| (a.line, a.severity, &a.message).cmp(&(b.line, b.severity, &b.message)));
    out
}

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

fn check_top_keys(cx: &mut Ctx<'_>) {
    let wf = cx.wf;
    for k in wf.root.keys() {
        match k {
            Value::Bool(b) => {
                let spelled = if *b {
                    ["true", "True", "TRUE"]
                } else {
                    ["false", "False", "FALSE"]
                };
                let line = spelled
                    .iter()
                    .find_map(|s| text::locate_exact(&wf.text, &[Seg::Key(s)]))
                    .unwrap_or(1);
                cx.error(
                    Rule::Triggers,
                    line,
                    format!(
                        "the key `{b}` is the YAML boolean {b}, not the trigger key `on` (a YAML 1.1 loader reads `on:` as `true:`, and a file written back by one holds this); GitHub finds no triggers under it: write `on:`"
                    ),
                );
            }
            _ => {
                let Some(name) = scalar(k) else { continue };
                if !TOP_KEYS.contains(&name.as_str()) {
                    let hint = text::closest(&name, TOP_KEYS.iter().copied())
                        .map_or(String::new(), |c| format!("; did you mean `{c}`?"));
                    cx.error(
                        Rule::Syntax,
                        wf.line(&[Seg::Key(&name)]),
                        format!("unknown top-level key `{name}`{hint}"),
                    );
                }
            }
        }
    }
    if get(&wf.root, "jobs").is_none() {
        cx.error(Rule::Syntax, 1, "no `jobs:`".to_owned());
    }
}

/// W5: every `cargo xtask` call is one the CLI accepts. Returns the calls
/// (parsed as far as possible) for the other rules.
fn check_cli(cx: &mut Ctx<'_>) -> Vec<FoundCall> {
    let wf = cx.wf;
    let mut found = Vec::new();
    for (ji, job) in wf.jobs.iter().enumerate() {
        for step in &job.steps {
            let Some(run) = &step.run else { continue };
            // Expressions stand for values here; legs are not expanded.
            let mut marked = String::new();
            let mut last = 0;
            for (s, e, _) in expr::spans(run) {
                marked.push_str(&run[last..s]);
                marked.push_str(EXPR_MARK);
                last = e;
            }
            marked.push_str(&run[last..]);
            for cmd in shell::split(&marked, &|_| None) {
                let line = wf.run_line(job, step, cmd.line);
                let Some(args) = xtask_args(&cmd) else {
                    let argv = cmd.argv();
                    let informational = argv
                        .first()
                        .is_some_and(|p| ["echo", "printf", "true", ":"].contains(&p.as_str()));
                    if !informational && !argv.is_empty() {
                        cx.warn(
                            Rule::LocalRun,
                            line,
                            format!(
                                "{} of job `{}` runs `{}`, not a `cargo xtask` call: `cargo xtask workflow run` cannot reproduce it locally; move it into the xtask",
                                step.label(),
                                job.id,
                                argv.iter().take(3).cloned().collect::<Vec<_>>().join(" ").replace(EXPR_MARK, "${{ }}")
                            ),
                        );
                    }
                    continue;
                };
                let (call, problems) = parse_xtask(cx.exp.cli, args);
                for p in problems {
                    cx.error(Rule::Cli, line, p.replace(EXPR_MARK, "${{ }}"));
                }
                found.push(FoundCall {
                    job: ji,
                    step: step.index,
                    line,
                    call,
                });
            }
        }
    }
    found
}

/// W1: the workflow runs on pull requests and on pushes to main and develop.
fn check_triggers(cx: &mut Ctx<'_>) {
    let wf = cx.wf;
    let on_line = wf.line(&[Seg::Key("on")]);
    let has_on = get(&wf.root, "on").is_some();
    if !has_on {
        let has_true = wf.root.keys().any(|k| matches!(k, Value::Bool(true)));
        if !has_true {
            cx.error(Rule::Triggers, 1, "no `on:` key: the workflow has no triggers; add `on:` with `push` and `pull_request`".to_owned());
        }
        return;
    }
    if !matches!(
        get(&wf.root, "on"),
        Some(Value::String(_) | Value::Sequence(_) | Value::Mapping(_))
    ) {
        cx.error(
            Rule::Triggers,
            on_line,
            "`on:` must be an event, a list of events, or a mapping of events".to_owned(),
        );
        return;
    }
    let triggers = wf.triggers();
    let find = |e: &str| triggers.iter().find(|t| t.event == e);
    match find("push") {
        None => cx.error(
            Rule::Triggers,
            on_line,
            format!("no `push` trigger: pushes to {} do not build images; add `push: {{branches: [{}]}}`", PUSH_BRANCHES.join(" and "), PUSH_BRANCHES.join(", ")),
        ),
        Some(t) => check_branch_filter(cx, "push", &t.config),
    }
    match find("pull_request") {
        None => cx.error(Rule::Triggers, on_line, "no `pull_request` trigger: pull requests are not built before they merge; add `pull_request:`".to_owned()),
        Some(t) => check_branch_filter(cx, "pull_request", &t.config),
    }
}

fn check_branch_filter(cx: &mut Ctx<'_>, event: &str, config: &Value) {
    let wf = cx.wf;
    let Value::Mapping(m) = config else { return };
    let line = wf.line(&[Seg::Key("on"), Seg::Key(event)]);
    let branches = get(m, "branches").map(|v| string_list(Some(v)));
    let ignore = get(m, "branches-ignore").map(|v| string_list(Some(v)));
    let tags = get(m, "tags").is_some() || get(m, "tags-ignore").is_some();
    if branches.is_some() && ignore.is_some() {
        cx.error(Rule::Triggers, line, format!("`on.{event}` has both `branches` and `branches-ignore`, which GitHub rejects; keep one"));
        return;
    }
    if event == "push" && tags && branches.is_none() && ignore.is_none() {
        cx.error(
            Rule::Triggers,
            line,
            format!(
                "`on.push` filters only tags, so pushes to {} do not run it; add `branches: [{}]`",
                PUSH_BRANCHES.join(" and "),
                PUSH_BRANCHES.join(", ")
            ),
        );
        return;
    }
    for b in PUSH_BRANCHES {
        if let Some(list) = &branches {
            if !text::patterns_select(list, b) {
                let l = wf.line(&[Seg::Key("on"), Seg::Key(event), Seg::Key("branches")]);
                cx.error(Rule::Triggers, l, format!("`on.{event}.branches` does not include `{b}`: {} to {b} build no images; add `{b}`", if event == "push" { "pushes" } else { "pull requests" }));
            }
        }
        if let Some(list) = &ignore {
            let neg: Vec<String> = list.clone();
            if text::patterns_select(&neg, b) {
                let l = wf.line(&[Seg::Key("on"), Seg::Key(event), Seg::Key("branches-ignore")]);
                cx.error(
                    Rule::Triggers,
                    l,
                    format!("`on.{event}.branches-ignore` excludes `{b}`; remove it"),
                );
            }
        }
    }
}

/// W2: `paths` / `paths-ignore` of push and pull_request keep every image input.
fn check_paths(cx: &mut Ctx<'_>) {
    let wf = cx.wf;
    let mut inputs: Vec<ImageInput> = cx.exp.image_inputs.to_vec();
    let all_images: Vec<String> = inputs
        .iter()
        .flat_map(|i| i.images.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    inputs.push(ImageInput {
        path: repo_path(&wf.path),
        images: all_images.clone(),
    });
    for t in wf.triggers() {
        if t.event != "push" && t.event != "pull_request" {
            continue;
        }
        let Value::Mapping(m) = &t.config else {
            continue;
        };
        let paths = get(m, "paths").map(|v| string_list(Some(v)));
        let ignore = get(m, "paths-ignore").map(|v| string_list(Some(v)));
        if paths.is_some() && ignore.is_some() {
            let l = wf.line(&[Seg::Key("on"), Seg::Key(&t.event)]);
            cx.error(
                Rule::Paths,
                l,
                format!(
                    "`on.{}` has both `paths` and `paths-ignore`, which GitHub rejects; keep one",
                    t.event
                ),
            );
            continue;
        }
        for input in &inputs {
            let whose = if input.images.len() == all_images.len() && all_images.len() > 1 {
                "every image".to_owned()
            } else {
                input.images.join(", ")
            };
            let probes = input.probes();
            if let Some(list) = &paths {
                if !probes.iter().all(|p| text::patterns_select(list, p)) {
                    let l = wf.line(&[Seg::Key("on"), Seg::Key(&t.event), Seg::Key("paths")]);
                    cx.error(
                        Rule::Paths,
                        l,
                        format!(
                            "`on.{}.paths` misses `{}`, an input of {whose}: changing it would not rebuild; add `{}` (patterns match whole paths)",
                            t.event,
                            input.pattern(),
                            input.pattern()
                        ),
                    );
                }
            }
            if let Some(list) = &ignore {
                if probes.iter().any(|p| text::patterns_select(list, p)) {
                    let l =
                        wf.line(&[Seg::Key("on"), Seg::Key(&t.event), Seg::Key("paths-ignore")]);
                    cx.error(
                        Rule::Paths,
                        l,
                        format!("`on.{}.paths-ignore` excludes `{}`, an input of {whose}: changing it would not rebuild; narrow the ignore pattern", t.event, input.pattern()),
                    );
                }
            }
        }
    }
}

/// W6: matrix `component` / `platform` values are exactly the xtask's.
fn check_matrix(cx: &mut Ctx<'_>) {
    let wf = cx.wf;
    for job in &wf.jobs {
        let Some(Value::Mapping(m)) = &job.matrix else {
            continue;
        };
        for key in ["component", "platform"] {
            let mut values: Vec<String> = string_list(get(m, key));
            let mut from_include = false;
            if let Some(Value::Sequence(inc)) = get(m, "include") {
                for e in inc {
                    if let Value::Mapping(e) = e {
                        if let Some(v) = get(e, key).and_then(scalar) {
                            from_include = true;
                            values.push(v);
                        }
                    }
                }
            }
            if values.is_empty() && !from_include && get(m, key).is_none() {
                continue;
            }
            if values.iter().any(|v| !is_literal(v) || v.contains("${{")) {
                continue;
            }
            let line = {
                let l = wf.line(&[
                    Seg::Key("jobs"),
                    Seg::Key(&job.id),
                    Seg::Key("strategy"),
                    Seg::Key("matrix"),
                    Seg::Key(key),
                ]);
                if get(m, key).is_some() {
                    l
                } else {
                    wf.line(&[
                        Seg::Key("jobs"),
                        Seg::Key(&job.id),
                        Seg::Key("strategy"),
                        Seg::Key("matrix"),
                    ])
                }
            };
            let (known, unknown): (Vec<&str>, Vec<String>) = if key == "component" {
                let mut known = Vec::new();
                let mut unknown = Vec::new();
                for v in &values {
                    match project::component(v) {
                        Ok(c) => known.push(c.name),
                        Err(_) => unknown.push(v.clone()),
                    }
                }
                (known, unknown)
            } else {
                let mut known = Vec::new();
                let mut unknown = Vec::new();
                for v in &values {
                    match Platform::parse(v) {
                        Ok(p) => known.push(p.name),
                        Err(_) => unknown.push(v.clone()),
                    }
                }
                (known, unknown)
            };
            let all: Vec<&str> = if key == "component" {
                COMPONENTS.iter().map(|c| c.name).collect()
            } else {
                PLATFORMS.iter().map(|p| p.name).collect()
            };
            let missing: Vec<&str> = all.iter().copied().filter(|n| !known.contains(n)).collect();
            if missing.is_empty() && unknown.is_empty() {
                continue;
            }
            let mut parts = Vec::new();
            if !missing.is_empty() {
                parts.push(format!(
                    "missing {}",
                    missing
                        .iter()
                        .map(|m| format!("`{m}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            if !unknown.is_empty() {
                parts.push(format!(
                    "not known to the xtask: {}",
                    unknown
                        .iter()
                        .map(|m| format!("`{m}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            cx.error(
                Rule::Matrix,
                line,
                format!(
                    "matrix `{key}` of job `{}` differs from the xtask's {key}s ({}): {}; list exactly the ones in xtask/src/project.rs",
                    job.id,
                    all.join(", "),
                    parts.join("; ")
                ),
            );
        }
    }
}

/// Whether a job builds images (a build step of any kind).
fn job_builds(job: &Job, ji: usize, calls: &[FoundCall]) -> bool {
    calls.iter().any(|c| {
        c.job == ji
            && matches!(
                c.call.subcommands.first().map(String::as_str),
                Some("build-image" | "images")
            )
    }) || job.steps.iter().any(|s| {
        is_build_action(s)
            || s.run
                .as_deref()
                .is_some_and(|r| r.contains("docker buildx build") || r.contains("docker build "))
    })
}

fn is_build_action(s: &Step) -> bool {
    matches!(
        s.action().as_deref(),
        Some("docker/build-push-action" | "docker/bake-action")
    )
}

/// Whether a run script pushes with docker directly.
fn run_pushes_raw(run: &str) -> bool {
    shell::split(run, &|_| None).iter().any(|c| {
        let a: Vec<&str> = c.argv().iter().map(String::as_str).collect();
        match a.as_slice() {
            ["docker", "push", ..]
            | ["docker", "manifest", "push", ..]
            | ["docker", "buildx", "imagetools", "create", ..] => true,
            ["docker", "buildx", "build", rest @ ..] | ["docker", "buildx", "bake", rest @ ..] => {
                rest.iter().any(|w| {
                    *w == "--push"
                        || w.starts_with("--output=type=registry")
                        || w.contains("push=true")
                })
            }
            _ => false,
        }
    })
}

/// A pushing step: (step index, whether the push itself is guarded by a
/// `push:` input that is false on pull requests).
fn pushing_steps(job: &Job, ji: usize, calls: &[FoundCall]) -> Vec<(usize, bool)> {
    let mut out = Vec::new();
    for s in &job.steps {
        if is_build_action(s) {
            if let Some(p) = s.input("push") {
                let leg = Vec::new();
                let outer = pull_request_outer;
                let scope = Scope {
                    outer: &outer,
                    leg: &leg,
                    env: Vec::new(),
                };
                match scope.condition(p) {
                    Ok(Some(false)) if !p.contains("${{") => {}
                    Ok(Some(false)) => out.push((s.index, true)),
                    _ => out.push((s.index, false)),
                }
            }
            continue;
        }
        let xtask_push = calls
            .iter()
            .any(|c| c.job == ji && c.step == s.index && c.call.pushes());
        if xtask_push || s.run.as_deref().is_some_and(run_pushes_raw) {
            out.push((s.index, false));
        }
    }
    out
}

fn job_pushes(job: &Job, ji: usize, calls: &[FoundCall]) -> Option<usize> {
    pushing_steps(job, ji, calls).first().map(|(i, _)| *i)
}

/// Whether a `permissions:` value grants `packages: write`.
fn grants_packages_write(p: &Value) -> bool {
    match p {
        Value::String(s) => s == "write-all",
        Value::Mapping(m) => get(m, "packages").and_then(scalar).as_deref() == Some("write"),
        _ => false,
    }
}

/// W3: a job that pushes has `packages: write` (job-level `permissions`
/// replace the workflow's, as GitHub applies them).
fn check_permissions(cx: &mut Ctx<'_>, calls: &[FoundCall]) {
    let wf = cx.wf;
    for (ji, job) in wf.jobs.iter().enumerate() {
        let Some(si) = job_pushes(job, ji, calls) else {
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
        if effective.is_some_and(grants_packages_write) {
            continue;
        }
        let line = if job.permissions.is_some() {
            wf.line(&[Seg::Key("jobs"), Seg::Key(&job.id), Seg::Key("permissions")])
        } else {
            wf.job_line(job)
        };
        cx.error(
            Rule::Permissions,
            line,
            format!(
                "job `{}` pushes images ({}) but its GITHUB_TOKEN has no `packages: write` under {whose}; add `permissions: {{contents: read, packages: write}}` to the job",
                job.id,
                job.steps[si].label()
            ),
        );
    }
}

fn is_login(s: &Step) -> bool {
    s.action().as_deref() == Some("docker/login-action")
        || s.run.as_deref().is_some_and(|r| {
            shell::split(r, &|_| None).iter().any(|c| {
                let a = c.argv();
                a.len() >= 2 && a[0] == "docker" && a[1] == "login"
            })
        })
}

/// The names of secrets a step uses other than `GITHUB_TOKEN`.
fn secrets_used(s: &Step) -> Vec<String> {
    let mut texts: Vec<&str> = s
        .with
        .iter()
        .chain(&s.env)
        .map(|(_, v)| v.as_str())
        .collect();
    if let Some(r) = &s.run {
        texts.push(r);
    }
    let mut out = Vec::new();
    for t in texts {
        for (_, _, inner) in expr::spans(t) {
            let mut rest = inner;
            while let Some(p) = rest.find("secrets.") {
                let name: String = rest[p + 8..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !name.eq_ignore_ascii_case("GITHUB_TOKEN") && !out.contains(&name) {
                    out.push(name);
                }
                rest = &rest[p + 8..];
            }
        }
    }
    out
}

/// W4: on a workflow that runs on pull requests, registry logins, steps
/// using secrets, and pushes are skipped on pull requests (forks get no
/// secrets and a read-only token, so those steps fail there).
fn check_pull_request_guards(cx: &mut Ctx<'_>, calls: &[FoundCall]) {
    let wf = cx.wf;
    if !wf.triggers().iter().any(|t| t.event == "pull_request") {
        return;
    }
    let leg: Leg = Vec::new();
    let outer = pull_request_outer;
    let off_on_prs = |cond: &Option<String>| -> bool {
        let scope = Scope {
            outer: &outer,
            leg: &leg,
            env: Vec::new(),
        };
        cond.as_deref()
            .is_some_and(|c| matches!(scope.condition(c), Ok(Some(false))))
    };
    const FIX: &str = "add `if: github.event_name != 'pull_request'` to the step or its job";
    for (ji, job) in wf.jobs.iter().enumerate() {
        if off_on_prs(&job.cond) {
            continue;
        }
        let pushes = pushing_steps(job, ji, calls);
        for s in &job.steps {
            if off_on_prs(&s.cond) {
                continue;
            }
            let line = wf.step_line(job, s, None);
            if is_login(s) {
                cx.error(
                    Rule::PullRequestGuard,
                    line,
                    format!("{} of job `{}` logs in to a registry on pull requests too, where forks get no secrets; pull requests should only build: {FIX}", s.label(), job.id),
                );
            } else {
                let secrets = secrets_used(s);
                if !secrets.is_empty() {
                    cx.error(
                        Rule::PullRequestGuard,
                        line,
                        format!("{} of job `{}` uses secret(s) {} on pull requests too, where forks get none: {FIX}", s.label(), job.id, secrets.join(", ")),
                    );
                }
            }
            if pushes.iter().any(|(i, guarded)| *i == s.index && !guarded) {
                cx.error(
                    Rule::PullRequestGuard,
                    line,
                    format!("{} of job `{}` pushes images on pull requests too; pull requests should only build: {FIX}", s.label(), job.id),
                );
            }
        }
    }
}

/// The words of each `docker buildx build` call in a `run:` script (none
/// when the script cannot be split).
fn buildx_build_calls(scope: &Scope<'_>, run: &str) -> Vec<Vec<String>> {
    let Ok(cmds) = scope.commands(run) else {
        return Vec::new();
    };
    cmds.into_iter()
        .map(|c| c.argv().to_vec())
        .filter(|a| a.len() >= 3 && a[0] == "docker" && a[1] == "buildx" && a[2] == "build")
        .collect()
}

/// The values of `flag` in `argv`, as `--flag value` or `--flag=value`.
fn flag_values(argv: &[String], flag: &str) -> Vec<String> {
    let prefix = format!("{flag}=");
    argv.iter()
        .enumerate()
        .filter_map(|(k, w)| {
            if w == flag {
                argv.get(k + 1).cloned()
            } else {
                w.strip_prefix(&prefix).map(str::to_owned)
            }
        })
        .collect()
}

/// B3: in a job with several legs, a `type=gha` cache entry of a build
/// step (`cache-from` / `cache-to` inputs, `--cache-from` / `--cache-to`
/// of `docker buildx build`) resolves to a different scope per leg.
/// `cargo xtask build-image --cache gha` is fine: it derives the scope from
/// component and platform.
fn check_cache_scopes(cx: &mut Ctx<'_>) {
    let wf = cx.wf;
    for job in &wf.jobs {
        let Ok(legs) = expand_matrix(job.matrix.as_ref()) else {
            continue;
        };
        if legs.len() < 2 {
            continue;
        }
        for s in &job.steps {
            // (what, entry text) -> first leg using it
            let mut seen: Vec<(String, String, String)> = Vec::new();
            let mut reported: BTreeSet<String> = BTreeSet::new();
            for leg in &legs {
                let outer = unknown_outer;
                let scope = step_scope(wf, job, Some(s), leg, &outer);
                let mut entries: Vec<(String, String)> = Vec::new();
                if is_build_action(s) {
                    for what in ["cache-from", "cache-to"] {
                        if let Some(v) = s.input(what) {
                            let Ok(v) = scope.substitute(v) else { continue };
                            for e in v
                                .lines()
                                .flat_map(|l| l.split(';'))
                                .map(str::trim)
                                .filter(|e| !e.is_empty())
                            {
                                entries.push((what.to_owned(), e.to_owned()));
                            }
                        }
                    }
                } else if let Some(run) = &s.run {
                    for a in buildx_build_calls(&scope, run) {
                        for what in ["--cache-from", "--cache-to"] {
                            for v in flag_values(&a, what) {
                                entries.push((what.trim_start_matches('-').to_owned(), v));
                            }
                        }
                    }
                }
                for (what, e) in entries {
                    let attrs: Vec<&str> = e.split(',').map(str::trim).collect();
                    if !attrs.contains(&"type=gha") {
                        continue;
                    }
                    let scope_name = attrs
                        .iter()
                        .find_map(|a| a.strip_prefix("scope="))
                        .unwrap_or("buildkit")
                        .to_owned();
                    let label = leg_label(leg);
                    if let Some((_, _, first)) = seen
                        .iter()
                        .find(|(w, sc, l)| *w == what && *sc == scope_name && *l != label)
                    {
                        if reported.insert(format!("{what}/{scope_name}")) {
                            let line = wf.step_line(
                                job,
                                s,
                                if is_build_action(s) {
                                    Some("with")
                                } else {
                                    Some("run")
                                },
                            );
                            cx.error(
                                Rule::CacheScope,
                                line,
                                format!(
                                    "{} of job `{}`: legs `{first}` and `{label}` share the gha cache scope `{scope_name}` in `{what}`, so {}; add `scope=` naming both `${{{{ matrix.component }}}}` and `${{{{ matrix.platform }}}}` (e.g. `scope=brokkr-${{{{ matrix.component }}}}-${{{{ matrix.platform }}}}`)",
                                    s.label(),
                                    job.id,
                                    if what == "cache-to" {
                                        "each leg's export overwrites the other's"
                                    } else {
                                        "each leg imports the other's cache (another platform's layers, missed hits)"
                                    }
                                ),
                            );
                        }
                    } else if !seen
                        .iter()
                        .any(|(w, sc, _)| *w == what && *sc == scope_name)
                    {
                        seen.push((what, scope_name, label));
                    }
                }
            }
        }
    }
}

/// The CPU architecture (`amd64`/`arm64`) of a runner label list: labels
/// naming ARM (`ubuntu-24.04-arm`, `ARM64`) are arm64, others amd64.
pub fn runner_arch(labels: &[String]) -> &'static str {
    let arm = labels.iter().any(|l| {
        let l = l.to_ascii_lowercase();
        l.ends_with("-arm") || l.contains("arm64") || l.contains("aarch64") || l.contains("-arm-")
    });
    if arm {
        "arm64"
    } else {
        "amd64"
    }
}

/// B7: Rust compiled under emulation. `cargo xtask ... --strategy emulate`
/// anywhere, and a leg that builds for a platform other than its runner's
/// architecture with a builder that emulates (build-push-action, `docker
/// buildx build`), are warnings; the xtask's default cross strategy
/// compiles natively and cross-compiles.
fn check_emulation(cx: &mut Ctx<'_>, calls: &[FoundCall]) {
    let wf = cx.wf;
    for c in calls {
        if c.call.value("strategy") == Some("emulate") {
            cx.warn(
                Rule::Emulation,
                c.line,
                "`--strategy emulate` compiles Rust under QEMU: an arm64 leg takes 1-2 hours instead of minutes; drop it to use the default cross strategy".to_owned(),
            );
        }
    }
    for job in &wf.jobs {
        let Ok(legs) = expand_matrix(job.matrix.as_ref()) else {
            continue;
        };
        let has_qemu = job
            .steps
            .iter()
            .any(|s| s.action().as_deref() == Some("docker/setup-qemu-action"));
        for leg in &legs {
            let outer = unknown_outer;
            let job_scope = step_scope(wf, job, None, leg, &outer);
            let labels: Vec<String> = match &job.runs_on {
                Value::Sequence(s) => s.iter().filter_map(scalar).collect(),
                v => scalar(v).into_iter().collect(),
            };
            let Ok(labels) = labels
                .iter()
                .map(|l| job_scope.substitute(l))
                .collect::<Result<Vec<_>, _>>()
            else {
                continue;
            };
            let arch = runner_arch(&labels);
            for s in &job.steps {
                let scope = step_scope(wf, job, Some(s), leg, &outer);
                let mut targets: Vec<String> = Vec::new();
                if is_build_action(s) {
                    if let Some(p) = s.input("platforms").and_then(|p| scope.substitute(p).ok()) {
                        targets.extend(
                            p.split([',', '\n'])
                                .map(|x| x.trim().to_owned())
                                .filter(|x| !x.is_empty()),
                        );
                    }
                } else if let Some(run) = &s.run {
                    // The xtask's own strategies are checked above.
                    for a in buildx_build_calls(&scope, run) {
                        for v in flag_values(&a, "--platform") {
                            targets.extend(v.split(',').map(str::to_owned));
                        }
                    }
                }
                for t in targets {
                    let Ok(p) = Platform::parse(&t) else { continue };
                    if p.arch != arch {
                        let runner = labels.join(", ");
                        cx.warn(
                            Rule::Emulation,
                            wf.step_line(job, s, None),
                            format!(
                                "{} of job `{}` (leg `{}`) builds {} on an {arch} runner (`{runner}`){}: Rust compiled under emulation takes 1-2 hours; run the leg on a native runner (`ubuntu-24.04-arm` for arm64) or build with `cargo xtask build-image` (cross strategy)",
                                s.label(),
                                job.id,
                                leg_label(leg),
                                p.name,
                                if has_qemu { " through QEMU" } else { "" }
                            ),
                        );
                    }
                }
            }
        }
    }
}

/// The manifest job(s): each `needs:` (directly or through other jobs)
/// every job that pushes per-platform images, and together their legs
/// combine every component.
fn check_manifest(cx: &mut Ctx<'_>, calls: &[FoundCall]) {
    let wf = cx.wf;
    let is_manifest_call = |c: &FoundCall| c.call.subcommands == ["manifest"];
    let build_jobs: Vec<&Job> = wf
        .jobs
        .iter()
        .enumerate()
        .filter(|(ji, j)| {
            job_builds(j, *ji, calls) && !calls.iter().any(|c| c.job == *ji && is_manifest_call(c))
        })
        .map(|(_, j)| j)
        .collect();
    let manifest_jobs: Vec<(usize, &Job)> = wf
        .jobs
        .iter()
        .enumerate()
        .filter(|(ji, _)| calls.iter().any(|c| c.job == *ji && is_manifest_call(c)))
        .collect();
    let pushes_per_platform = wf.jobs.iter().enumerate().any(|(ji, _)| {
        calls.iter().any(|c| {
            c.job == ji
                && c.call.pushes()
                && matches!(
                    c.call.subcommands.first().map(String::as_str),
                    Some("build-image" | "push")
                )
        })
    });
    if manifest_jobs.is_empty() {
        if pushes_per_platform {
            cx.error(
                Rule::Manifest,
                wf.line(&[Seg::Key("jobs")]),
                "the workflow pushes per-platform images but no job runs `cargo xtask manifest`, so no multi-arch tag is ever written; add a `create-manifest` job that `needs:` the build job".to_owned(),
            );
        }
        return;
    }
    let mut covered: BTreeSet<&'static str> = BTreeSet::new();
    let mut unknown = false;
    for (ji, job) in &manifest_jobs {
        // needs, transitively
        let mut reach: BTreeSet<String> = BTreeSet::new();
        let mut todo: Vec<String> = job.needs.clone();
        while let Some(n) = todo.pop() {
            if reach.insert(n.clone()) {
                if let Some(j) = wf.job(&n) {
                    todo.extend(j.needs.iter().cloned());
                }
            }
        }
        for b in &build_jobs {
            if !reach.contains(&b.id) {
                let line = if job.needs.is_empty() {
                    wf.job_line(job)
                } else {
                    wf.line(&[Seg::Key("jobs"), Seg::Key(&job.id), Seg::Key("needs")])
                };
                cx.error(
                    Rule::Manifest,
                    line,
                    format!("manifest job `{}` does not `needs:` the build job `{}`, so it can run before the per-platform images exist; add `needs: {}`", job.id, b.id, b.id),
                );
            }
        }
        let Ok(legs) = expand_matrix(job.matrix.as_ref()) else {
            unknown = true;
            continue;
        };
        for leg in &legs {
            let outer = unknown_outer;
            for s in &job.steps {
                if !calls
                    .iter()
                    .any(|c| c.job == *ji && c.step == s.index && is_manifest_call(c))
                {
                    continue;
                }
                let scope = step_scope(wf, job, Some(s), leg, &outer);
                let Some(Ok(cmds)) = s.run.as_deref().map(|r| scope.commands(r)) else {
                    unknown = true;
                    continue;
                };
                for c in cmds {
                    let Some(args) = xtask_args(&c) else { continue };
                    let (call, _) = parse_xtask(cx.exp.cli, args);
                    if call.subcommands != ["manifest"] {
                        continue;
                    }
                    match call.value("component") {
                        Some(v) if is_literal(v) => match project::ComponentList::parse(v) {
                            Ok(l) => covered.extend(l.0.iter().map(|c| c.name)),
                            Err(_) => unknown = true,
                        },
                        _ => unknown = true,
                    }
                }
            }
        }
    }
    if unknown {
        return;
    }
    let missing: Vec<&str> = COMPONENTS
        .iter()
        .map(|c| c.name)
        .filter(|n| !covered.contains(n))
        .collect();
    if !missing.is_empty() {
        let (_, job) = manifest_jobs[0];
        cx.error(
            Rule::Manifest,
            wf.job_line(job),
            format!(
                "the manifest job `{}` never combines {}: those images get per-platform tags but no multi-arch tag; cover every component ({})",
                job.id,
                missing.iter().map(|m| format!("`{m}`")).collect::<Vec<_>>().join(", "),
                project::component_names()
            ),
        );
    }
}

#[cfg(test)]
mod tests;
