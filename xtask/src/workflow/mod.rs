//! GitHub workflow files as typed data (the subset brokkr's checks and
//! `workflow run` use), matrix expansion, and the evaluation scope of a step.
//! serde_yaml follows YAML 1.2 (`on` is a string, only `true`/`false` are
//! booleans) and keeps no positions: line numbers come from [`locate`].

pub mod calls;
pub mod expr;
pub mod glob;
mod jobs;
pub mod locate;
pub mod rules;
pub mod run;
pub mod validate;

use std::fmt;

use github_actions_expressions::Evaluation;
use indexmap::IndexMap;
use serde::Deserialize;
use serde_yaml::Value;

use locate::Seg;

/// How bad a finding is: errors make `validate-workflow` exit 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Error,
    Warning,
}

/// Which rule produced a diagnostic (for tests and filtering; not printed).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Rule {
    Syntax,           // The file is not a readable workflow (YAML syntax, shape).
    Triggers,         // W1: triggers (`on:`), including a literal `true:` key.
    Paths,            // W2: path filters that miss an image input.
    Permissions,      // W3: pushing without `packages: write`.
    PullRequestGuard, // W4: login/push/secrets not guarded on pull requests.
    Cli,              // W5: `cargo xtask` calls the CLI does not accept.
    Matrix,           // W6: matrix components/platforms differ from the xtask's.
    CacheScope,       // B3: two matrix legs share one gha cache scope.
    Emulation,        // B7: Rust compiled under QEMU emulation.
    Manifest, // The manifest job: needs the build jobs, covers every component and platform.
    LocalRun, // A `run:` step that `workflow run` cannot reproduce.
    PullRequestToken, // R8: pull request jobs hold no token that writes packages, never export the cache.
    CacheRuntime, // The cache runtime token reaches only the step that builds with `--cache gha`.
}

/// One finding, printed `path:line: error|warning: message` (the format of
/// compilers and actionlint); the message says what is wrong and what to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub path: String,
    /// 1-based.
    pub line: usize,
    pub severity: Severity,
    pub message: String,
    pub rule: Rule,
}

impl Diagnostic {
    /// A finding of `rule`: a warning for [`Rule::LocalRun`] and [`Rule::Emulation`], else an error.
    pub fn new(path: &str, line: usize, rule: Rule, message: String) -> Diagnostic {
        let severity = match rule {
            Rule::LocalRun | Rule::Emulation => Severity::Warning,
            _ => Severity::Error,
        };
        Diagnostic { path: path.to_owned(), line, severity, message, rule }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let severity = format!("{:?}", self.severity).to_lowercase();
        write!(f, "{}:{}: {severity}: {}", self.path, self.line, self.message)
    }
}

/// Any YAML value as text: scalars as written (`true`, `3`, `""` for null),
/// sequences and mappings as JSON.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(from = "Value")]
pub struct Text(pub String);

impl From<Value> for Text {
    fn from(v: Value) -> Self {
        Text(match v {
            Value::String(s) => s,
            Value::Bool(b) => b.to_string(),
            Value::Number(n) => n.to_string(),
            Value::Null => String::new(),
            v => serde_json::to_string(&v).unwrap_or_default(),
        })
    }
}

/// A value written as one item or a list (`needs: build`, `branches: [main]`).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(from = "Value")]
pub struct List(pub Vec<String>);

impl From<Value> for List {
    fn from(v: Value) -> Self {
        List(match v {
            Value::Sequence(v) => v.into_iter().map(|v| Text::from(v).0).collect(),
            v => Some(Text::from(v).0).filter(|t| !t.is_empty()).into_iter().collect(),
        })
    }
}

pub type Pairs = IndexMap<String, Text>;

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum On {
    One(String),
    List(Vec<String>),
    /// Event names to their configuration (filters; `schedule:` is a list).
    Map(IndexMap<String, Value>),
    Other(Value),
}

/// An event's configuration: the ref and path filters brokkr checks.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "kebab-case")]
pub struct Filters {
    pub branches: Option<List>,
    pub branches_ignore: Option<List>,
    pub tags: Option<List>,
    pub tags_ignore: Option<List>,
    pub paths: Option<List>,
    pub paths_ignore: Option<List>,
}

/// `permissions:`: `write-all` / `read-all`, or scopes.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum Permissions {
    All(String),
    Scopes(Pairs),
    Other(Value),
}

/// `strategy.matrix`: literal axes with `include`/`exclude`, or an expression.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum Matrix {
    Literal {
        #[serde(default)]
        include: Vec<Pairs>,
        #[serde(default)]
        exclude: Vec<Pairs>,
        #[serde(flatten)]
        axes: IndexMap<String, Vec<Text>>,
    },
    /// `${{ fromJSON(...) }}` or a shape that cannot be expanded.
    Other(Value),
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
pub struct Strategy {
    pub matrix: Option<Matrix>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct Step {
    /// 0-based position in the job's `steps`.
    #[serde(skip)]
    pub index: usize,
    pub name: Option<Text>,
    #[serde(rename = "if")]
    pub cond: Option<Text>,
    pub uses: Option<String>,
    pub run: Option<Text>,
    pub with: Pairs,
    pub env: Pairs,
}

impl Step {
    /// How messages name the step: ``step `Build` `` or ``step 3 (`uses`)``.
    pub fn label(&self) -> String {
        let n = self.index + 1;
        match (&self.name, &self.uses, &self.run) {
            (Some(name), _, _) => format!("step `{}`", name.0),
            (None, Some(u), _) => format!("step {n} (`{u}`)"),
            (None, None, Some(r)) => {
                let first = r.0.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
                format!("step {n} (`{}`)", first.trim())
            }
            _ => format!("step {n}"),
        }
    }

    /// The action's `owner/repo[/path]` without `@ref`, lower-cased.
    pub fn action(&self) -> Option<String> {
        let u = self.uses.as_ref()?;
        Some(u.split('@').next().unwrap_or(u).to_ascii_lowercase())
    }

    pub fn uses_action(&self, action: &str) -> bool {
        self.action().as_deref() == Some(action)
    }

    pub fn input(&self, name: &str) -> Option<&str> {
        self.with.get(name).map(|t| t.0.as_str())
    }
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default, rename_all = "kebab-case")]
pub struct Job {
    #[serde(skip)]
    pub id: String,
    pub name: Option<Text>,
    pub needs: List,
    #[serde(rename = "if")]
    pub cond: Option<Text>,
    pub runs_on: List,
    pub permissions: Option<Permissions>,
    pub env: Pairs,
    pub strategy: Strategy,
    pub steps: Vec<Step>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct Workflow {
    #[serde(skip)]
    pub path: String,
    #[serde(skip)]
    pub text: String,
    /// The top-level keys as YAML reads them (`true` for a YAML 1.1 `on:` written back).
    #[serde(skip)]
    pub keys: Vec<Value>,
    pub name: Option<Text>,
    pub on: Option<On>,
    pub permissions: Option<Permissions>,
    pub env: Pairs,
    pub jobs: Option<IndexMap<String, Job>>,
}

impl Workflow {
    /// Parses a workflow. A YAML syntax error, a top level that is not a
    /// mapping, or a known key of the wrong shape is an error diagnostic.
    pub fn parse(path: &str, text: &str) -> Result<Workflow, Diagnostic> {
        let fail = |line, message: String| Diagnostic::new(path, line, Rule::Syntax, message);
        let yaml_error = |e: serde_yaml::Error| {
            let line = e.location().map_or(1, |l| l.line());
            fail(line, format!("not valid YAML: {e}"))
        };
        let Value::Mapping(root) = serde_yaml::from_str(text).map_err(yaml_error)? else {
            return Err(fail(1, "a workflow is a YAML mapping with `on:` and `jobs:`".to_owned()));
        };
        let mut wf: Workflow = serde_yaml::from_str(text).map_err(yaml_error)?;
        wf.path = path.to_owned();
        wf.text = text.to_owned();
        wf.keys = root.into_iter().map(|(k, _)| k).collect();
        for (id, job) in wf.jobs.iter_mut().flatten() {
            job.id.clone_from(id);
            job.steps.iter_mut().enumerate().for_each(|(i, s)| s.index = i);
        }
        Ok(wf)
    }

    pub fn jobs(&self) -> impl Iterator<Item = &Job> {
        self.jobs.iter().flat_map(|j| j.values())
    }

    pub fn job(&self, id: &str) -> Option<&Job> {
        self.jobs.as_ref()?.get(id)
    }

    /// Whether `on:` (in any of its forms) has `event`, and its filters if any.
    pub fn trigger(&self, event: &str) -> Option<Option<Filters>> {
        match &self.on {
            Some(On::One(e)) => (e == event).then_some(None),
            Some(On::List(es)) => es.iter().any(|e| e == event).then_some(None),
            Some(On::Map(m)) => m.get(event).map(|c| serde_yaml::from_value(c.clone()).ok()),
            _ => None,
        }
    }

    /// Line of the node at `path`, or of `key` under it (see [`locate::locate`]).
    pub fn line(&self, path: &[Seg<'_>], key: Option<&str>) -> usize {
        let path: Vec<Seg<'_>> = path.iter().copied().chain(key.map(Seg::Key)).collect();
        locate::locate(&self.text, &path).unwrap_or_else(|l| l)
    }

    /// Line of a key under a job (`None`: the job's own line).
    pub fn job_line(&self, job: &Job, key: Option<&str>) -> usize {
        self.line(&[Seg::Key("jobs"), Seg::Key(&job.id)], key)
    }

    /// Line of a step (its `- ` line), or of a key inside it.
    pub fn step_line(&self, job: &Job, step: &Step, key: Option<&str>) -> usize {
        let p = [Seg::Key("jobs"), Seg::Key(&job.id), Seg::Key("steps"), Seg::Index(step.index)];
        self.line(&p, key)
    }

    /// Line on which line `n` (0-based) of a step's run script is written:
    /// the `run:` line itself for a one-line script, the lines after it for
    /// a block scalar (`run: |`).
    pub fn run_line(&self, job: &Job, step: &Step, n: usize) -> usize {
        let at = self.step_line(job, step, Some("run"));
        let head = self.text.lines().nth(at - 1).unwrap_or("");
        let after = head.split_once("run:").map_or("", |(_, r)| r.trim());
        at + n + usize::from(after.starts_with(['|', '>']) || after.is_empty())
    }
}

/// The path GitHub knows a workflow by: `.github/workflows/<file>` (a
/// fixture elsewhere stands for a workflow of that name).
pub fn repo_path(path: &str) -> String {
    let norm = path.replace('\\', "/");
    let file = || format!(".github/workflows/{}", norm.rsplit('/').next().unwrap_or(&norm));
    norm.find(".github/workflows/").map_or_else(file, |pos| norm[pos..].to_owned())
}

/// One combination of matrix values (`component=broker`, ...), in key order.
pub type Leg = Vec<(String, String)>;

/// `component=broker, platform=linux/arm64`: how messages name a leg.
pub fn leg_label(leg: &Leg) -> String {
    leg.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", ")
}

pub(super) fn leg_get<'a>(leg: &'a [(String, String)], key: &str) -> Option<&'a str> {
    leg.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// Expands `strategy.matrix` as GitHub does ("Using a matrix for your jobs"): the
/// product of the axes (the first varies slowest) minus `exclude` matches; each
/// `include` extends the combinations whose original values it matches (never
/// overwriting one) or is a combination of its own. No matrix is one empty leg;
/// a matrix given as an expression (`fromJSON(...)`) is an error.
pub fn expand_matrix(matrix: Option<&Matrix>) -> Result<Vec<Leg>, String> {
    let Some(matrix) = matrix else { return Ok(vec![Vec::new()]) };
    let Matrix::Literal { include, exclude, axes } = matrix else {
        return Err("the matrix is an expression or not a mapping of lists; only literal matrices can be expanded".to_owned());
    };
    let mut legs: Vec<Leg> = vec![Vec::new(); usize::from(!axes.is_empty())];
    for (k, vals) in axes {
        let with = |leg: &Leg, v: &Text| [leg.clone(), vec![(k.clone(), v.0.clone())]].concat();
        legs = legs.iter().flat_map(|leg| vals.iter().map(|v| with(leg, v))).collect();
    }
    let fits = |leg: &Leg, e: &Pairs, only_axes: bool| {
        e.iter()
            .filter(|(k, _)| !only_axes || axes.contains_key(*k))
            .all(|(k, v)| leg_get(leg, k) == Some(v.0.as_str()))
    };
    legs.retain(|leg| !exclude.iter().any(|ex| fits(leg, ex, false)));
    let originals = legs.len();
    for inc in include {
        let mut matched = false;
        for leg in legs.iter_mut().take(originals).filter(|l| fits(l, inc, true)) {
            matched = true;
            for (k, v) in inc.iter().filter(|(k, _)| !axes.contains_key(*k)) {
                match leg.iter_mut().find(|(lk, _)| lk == k) {
                    Some(slot) => slot.1.clone_from(&v.0),
                    None => leg.push((k.clone(), v.0.clone())),
                }
            }
        }
        if !matched {
            legs.push(inc.iter().map(|(k, v)| (k.clone(), v.0.clone())).collect());
        }
    }
    (!legs.is_empty()).then_some(legs).ok_or_else(|| "the matrix has no combinations".to_owned())
}

/// What `${{ }}` and `$VAR` resolve to for one step of one leg.
pub struct Scope<'a> {
    /// Resolves `github.*`, `runner.*`, `secrets.*`, ...; `None`: unknown.
    pub outer: expr::Resolve<'a>,
    pub leg: &'a [(String, String)],
    /// The environment built so far (workflow, job, step `env:`; the last setting wins).
    pub env: IndexMap<String, String>,
    /// What an unknown value becomes ([`calls::UNKNOWN`]); `None`: an error.
    pub unknown: Option<&'a str>,
}

impl<'a> Scope<'a> {
    /// The scope of a step (or of the job when `step` is `None`) in a leg:
    /// workflow, job and step `env:` in that order. Returns the names of
    /// `env:` entries that could not be evaluated (left out).
    pub fn of(
        wf: &Workflow,
        job: &Job,
        step: Option<&Step>,
        leg: &'a [(String, String)],
        outer: expr::Resolve<'a>,
        unknown: Option<&'a str>,
    ) -> (Scope<'a>, Vec<String>) {
        let mut s = Scope { outer, leg, env: IndexMap::new(), unknown };
        let mut failed = Vec::new();
        let pairs = [Some(&wf.env), Some(&job.env), step.map(|s| &s.env)];
        for (k, v) in pairs.into_iter().flatten().flatten() {
            match s.substitute(&v.0) {
                Ok(v) => drop(s.env.insert(k.clone(), v)),
                Err(_) => failed.push(k.clone()),
            }
        }
        (s, failed)
    }

    /// A context path: `matrix.x` (null when the leg has no `x`), `env.X`
    /// (null when unset), anything else through `outer`.
    pub fn resolve(&self, path: &str) -> Option<Evaluation> {
        let v = match path.split_once('.') {
            Some(("matrix", k)) => leg_get(self.leg, k),
            Some(("env", k)) => self.env.get(k).map(String::as_str),
            _ => return (self.outer)(path),
        };
        Some(v.map_or(Evaluation::Null, |v| Evaluation::String(v.to_owned())))
    }

    /// `s` with every `${{ }}` replaced.
    pub fn substitute(&self, s: &str) -> Result<String, String> {
        expr::substitute(s, &|p| self.resolve(p), self.unknown)
    }

    /// The commands of a run script, `${{ }}` and `$VAR` taken from this scope.
    pub fn commands(&self, script: &str) -> Result<Vec<calls::Command>, String> {
        let s = self.substitute(script)?;
        let env = |k: &str| self.env.get(k).cloned();
        Ok(calls::commands(&s, &env, self.unknown))
    }
}

#[cfg(test)]
mod tests;
