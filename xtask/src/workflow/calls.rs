//! The commands of a `run:` script and the `cargo xtask` calls among them. Per
//! line (`\` continues one), `$VAR`/`${VAR}` are expanded outside single quotes
//! and `shlex` splits words; command substitution, redirections and lists
//! (`&&`, `;`, `|`) are reported in [`Command::problem`], not guessed at.
//! `cargo xtask` calls are parsed by the xtask's own CLI (clap).

use std::sync::LazyLock;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use regex::Regex;

/// Stands for a value not known where the script is checked (a secret, an
/// unset variable): a call holding it is not judged on it.
pub const UNKNOWN: &str = "{unknown}";

/// One simple command of a script.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Command {
    /// The words after expansion and quote removal.
    pub words: Vec<String>,
    /// 0-based line of the script on which the command starts.
    pub line: usize,
    /// Variables the environment did not set.
    pub unresolved: Vec<String>,
    /// Why this is not one plain command (`command substitution `$(...)``, ...).
    pub problem: Option<&'static str>,
}

impl Command {
    /// Leading `NAME=value` words (environment assignments for the command).
    pub fn assignments(&self) -> Vec<(String, String)> {
        static RE: LazyLock<Regex> =
            LazyLock::new(|| Regex::new(r"(?s)^([A-Za-z_][A-Za-z0-9_]*)=(.*)$").unwrap());
        let pair = |w: &String| RE.captures(w).map(|c| (c[1].to_owned(), c[2].to_owned()));
        self.words.iter().map_while(pair).collect()
    }

    /// The words after the leading assignments: the program and its arguments.
    pub fn argv(&self) -> &[String] {
        &self.words[self.assignments().len()..]
    }

    /// The arguments after `cargo xtask` when this is such a call.
    pub fn xtask_args(&self) -> Option<&[String]> {
        match self.argv() {
            [cargo, xtask, rest @ ..] if cargo == "cargo" && xtask == "xtask" => Some(rest),
            _ => None,
        }
    }

    /// Whether the program only prints (`echo`, `printf`, `true`, `:`).
    pub fn informational(&self) -> bool {
        let p = self.argv().first().map(String::as_str);
        matches!(p, Some("echo" | "printf" | "true" | ":"))
    }
}

/// The value of an environment variable; `None`: unset.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// `$NAME` and `${NAME}` replaced outside single quotes; unset names become
/// `unknown` when given, else stay as written. Returns the unset names.
fn expand(s: &str, env: Env<'_>, unknown: Option<&str>) -> (String, Vec<String>) {
    static VAR: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"^\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))").unwrap()
    });
    let (mut out, mut unset, mut quote) = (String::new(), Vec::new(), None);
    let mut chars = s.char_indices();
    while let Some((i, mut c)) = chars.next() {
        if let Some(m) = VAR.captures(&s[i..]).filter(|_| quote != Some('\'')) {
            let name = m.get(1).or(m.get(2)).map_or("", |n| n.as_str());
            match env(name) {
                Some(v) => out.push_str(&v),
                None => {
                    unset.push(name.to_owned());
                    out.push_str(unknown.unwrap_or(&m[0]));
                }
            }
            chars.nth(m[0].len() - 2);
            continue;
        }
        match (c, quote) {
            ('\'' | '"', None) => quote = Some(c),
            (_, Some(q)) if q == c => quote = None,
            ('\\', q) if q != Some('\'') => {
                out.push(c);
                let Some((_, n)) = chars.next() else { continue };
                c = n;
            }
            _ => {}
        }
        out.push(c);
    }
    (out, unset)
}

const SEPARATORS: &[&str] = &["&&", "||", "|", ";", "&"];

/// Splits `script` into commands; see the module docs.
pub fn commands(script: &str, env: Env<'_>, unknown: Option<&str>) -> Vec<Command> {
    let (mut out, mut text, mut line) = (Vec::new(), String::new(), 0);
    let n = script.lines().count();
    for (i, l) in script.lines().enumerate() {
        if text.is_empty() {
            line = i;
        }
        let continued = l.strip_suffix('\\');
        text.push_str(continued.unwrap_or(l));
        text.push(' ');
        if continued.is_some() && i + 1 < n {
            continue;
        }
        let text = std::mem::take(&mut text);
        let t = text.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let mut problem = match (text.contains("$("), text.contains('`')) {
            (true, _) => Some("command substitution `$(...)`"),
            (_, true) => Some("command substitution with backquotes"),
            _ => None,
        };
        let (expanded, unset) = expand(&text, env, unknown);
        let command = |words, problem| Command { words, line, unresolved: unset.clone(), problem };
        let Some(words) = shlex::split(&expanded) else {
            out.push(command(vec![t.to_owned()], Some("quote that is not closed")));
            continue;
        };
        let mut parts: Vec<Vec<String>> = vec![Vec::new()];
        for w in words {
            if w.starts_with(['<', '>']) || w.starts_with("2>") || w.starts_with("&>") {
                problem.get_or_insert("redirection");
            }
            let ends = w.len() > 1 && w.ends_with(';');
            if !SEPARATORS.contains(&w.as_str()) {
                parts.last_mut().into_iter().for_each(|p| p.push(w.trim_end_matches(';').into()));
            }
            if ends || SEPARATORS.contains(&w.as_str()) {
                parts.push(Vec::new());
            }
        }
        parts.retain(|p| !p.is_empty());
        if parts.len() > 1 {
            problem.get_or_insert("list of several commands (`&&`, `;`, `|`)");
        }
        out.extend(parts.into_iter().map(|words| command(words, problem)));
    }
    out
}

/// The candidate closest to `word` by optimal string alignment distance
/// (first wins ties), when close enough to be a plausible typo: at most 3
/// edits and at most half the longer name's length.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let (d, c) = candidates
        .into_iter()
        .map(|c| (strsim::osa_distance(word, c), c))
        .min_by_key(|(d, _)| *d)?;
    let limit = 3.min(word.chars().count().max(c.chars().count()) / 2).max(1);
    (d <= limit).then_some(c)
}

/// `` `a`, `b` ``: how messages list names.
pub fn quoted(items: &[impl AsRef<str>]) -> String {
    items.iter().map(|m| format!("`{}`", m.as_ref())).collect::<Vec<_>>().join(", ")
}

/// `; did you mean `x`?` for a suggestion, else nothing.
pub fn did_you_mean(s: Option<&str>) -> String {
    s.map_or(String::new(), |s| format!("; did you mean `{s}`?"))
}

/// A `cargo xtask` call as the CLI parsed it.
#[derive(Clone, Debug)]
pub struct XtaskCall {
    /// Subcommand names from the top (`["manifest", "verify"]`).
    pub path: Vec<String>,
    /// The innermost subcommand's matches.
    pub matches: clap::ArgMatches,
}

impl XtaskCall {
    /// Whether the subcommand path is exactly `path`.
    pub fn is(&self, path: &[&str]) -> bool {
        self.path.iter().map(String::as_str).eq(path.iter().copied())
    }

    /// The typed value of an option, when the CLI has it with type `T`.
    pub fn get<T: Clone + Send + Sync + 'static>(&self, id: &str) -> Option<&T> {
        self.matches.try_get_one::<T>(id).ok().flatten()
    }

    /// An option's value as written (any type).
    pub fn raw(&self, id: &str) -> Option<&str> {
        self.matches.try_get_raw(id).ok().flatten()?.next()?.to_str()
    }

    pub fn flag(&self, id: &str) -> bool {
        self.get::<bool>(id).copied().unwrap_or(false)
    }

    /// Whether the call writes to a registry: `build-image`/`images` with
    /// `--push`, `push`, and `manifest` (but not `manifest verify`).
    pub fn pushes(&self) -> bool {
        match self.path.first().map(String::as_str) {
            Some("build-image" | "images") => self.flag("push"),
            Some("push") => true,
            Some("manifest") => self.path.len() == 1,
            _ => false,
        }
    }
}

/// `--platform` for `--platfrom`: the closest long option of `cmd`.
fn suggest_option(cmd: &clap::Command, arg: &str) -> Option<String> {
    let longs = cmd.get_arguments().filter_map(|a| a.get_long());
    closest(arg.strip_prefix("--")?, longs).map(|l| format!("--{l}"))
}

fn context(e: &clap::Error, kind: ContextKind) -> Vec<String> {
    match e.get(kind) {
        Some(ContextValue::String(s)) => vec![s.clone()],
        Some(ContextValue::Strings(v)) => v.clone(),
        _ => Vec::new(),
    }
}

/// One line saying what the CLI refuses in a call, naming the subcommand
/// and the closest valid name.
fn describe(cli: &clap::Command, args: &[String], e: &clap::Error) -> String {
    let (call, cmd) = lenient(cli, args);
    let names = call.map(|c| c.path).unwrap_or_default();
    let here = format!("cargo xtask{}", names.iter().map(|n| format!(" {n}")).collect::<String>());
    let first = |k| context(e, k).into_iter().next().unwrap_or_default();
    let subs = || {
        let n: Vec<&str> =
            cmd.get_subcommands().map(|s| s.get_name()).filter(|n| *n != "help").collect();
        n.join(", ")
    };
    match e.kind() {
        ErrorKind::InvalidSubcommand => {
            let bad = first(ContextKind::InvalidSubcommand);
            let names = cmd.get_subcommands().map(|s| s.get_name());
            let hint = closest(&bad, names)
                .map_or_else(|| format!("; it has: {}", subs()), |c| did_you_mean(Some(c)));
            format!("`{here}` has no subcommand `{bad}`{hint}")
        }
        ErrorKind::UnknownArgument => {
            let arg = first(ContextKind::InvalidArg);
            let arg = arg.split('=').next().unwrap_or_default();
            if !arg.starts_with('-') {
                return format!("`{here}` takes no argument `{arg}`");
            }
            let hint = did_you_mean(suggest_option(cmd, arg).as_deref());
            format!("`{here}` has no option `{arg}`{hint}")
        }
        ErrorKind::InvalidValue => {
            let arg = first(ContextKind::InvalidArg);
            let flag = arg.split_whitespace().next().unwrap_or_default();
            let (valid, bad) =
                (context(e, ContextKind::ValidValue), first(ContextKind::InvalidValue));
            let hint = did_you_mean(closest(&bad, valid.iter().map(String::as_str)));
            format!("`{flag} {bad}` is not one of {}{hint}", valid.join(", "))
        }
        ErrorKind::MissingRequiredArgument => {
            let args = context(e, ContextKind::InvalidArg);
            let missing: Vec<&str> =
                args.iter().filter_map(|a| a.split_whitespace().next()).collect();
            let are = if missing.len() > 1 { "are" } else { "is" };
            format!("`{here}` needs {}, which {are} required", quoted(&missing))
        }
        k if MISSING[1..].contains(&k) => format!("`{here}` needs a subcommand: {}", subs()),
        _ => {
            let text = e.to_string();
            let line = text.lines().next().unwrap_or_default();
            format!("`{here}` is refused by the CLI: {}", line.trim_start_matches("error: "))
        }
    }
}

/// The call as far as clap reads it when told to ignore errors, and its innermost subcommand.
fn lenient<'c>(cli: &'c clap::Command, words: &[String]) -> (Option<XtaskCall>, &'c clap::Command) {
    let argv = std::iter::once("cargo xtask".to_owned()).chain(words.iter().cloned());
    let Ok(mut m) = cli.clone().ignore_errors(true).try_get_matches_from(argv) else {
        return (None, cli);
    };
    let (mut path, mut cmd) = (Vec::new(), cli);
    while let Some((name, sub)) = m.remove_subcommand() {
        cmd = cmd.find_subcommand(&name).unwrap_or(cmd);
        path.push(name);
        m = sub;
    }
    (Some(XtaskCall { path, matches: m }), cmd)
}

const DONE: [ErrorKind; 2] = [ErrorKind::DisplayHelp, ErrorKind::DisplayVersion];
const MISSING: [ErrorKind; 3] = [
    ErrorKind::MissingRequiredArgument,
    ErrorKind::MissingSubcommand,
    ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand,
];

/// Parses the words after `cargo xtask` with `cli` (`Cli::command()`): the call
/// and a message per refusal. An unknown option is read as its suggestion (or
/// dropped) to check the rest; other refusals end the check, and the call is
/// what clap reads ignoring errors. Refusals involving [`UNKNOWN`] are none.
pub fn parse_xtask(cli: &clap::Command, args: &[String]) -> (Option<XtaskCall>, Vec<String>) {
    // `words` reads an unknown option as its suggestion, to check the rest;
    // `call` drops it, so the call holds only what was written.
    let (mut words, mut call) = (args.to_vec(), args.to_vec());
    let mut problems = Vec::new();
    for _ in 0..16 {
        let argv = std::iter::once("cargo xtask".to_owned()).chain(words.iter().cloned());
        let e = match cli.clone().try_get_matches_from(argv) {
            Err(e) if !e.to_string().contains(UNKNOWN) && !DONE.contains(&e.kind()) => e,
            _ => break,
        };
        // What is missing is often the option already reported as misspelled.
        if MISSING.contains(&e.kind()) && !problems.is_empty() {
            break;
        }
        problems.push(describe(cli, &words, &e));
        let bad = context(&e, ContextKind::InvalidArg).into_iter().next().unwrap_or_default();
        let at = words.iter().position(|w| *w == bad || w.starts_with(&format!("{bad}=")));
        let Some(at) = at else { break };
        if e.kind() != ErrorKind::UnknownArgument {
            // `--push=yes`: read on as `--push`.
            let Some(flag) = words[at].split_once('=').map(|(f, _)| f.to_owned()) else { break };
            call.iter_mut().filter(|w| **w == words[at]).for_each(|w| w.clone_from(&flag));
            words[at] = flag;
            continue;
        }
        call.retain(|w| *w != words[at]);
        match suggest_option(lenient(cli, &words).1, &bad) {
            Some(s) => words[at] = words[at].replacen(&bad, &s, 1),
            None => drop(words.remove(at)),
        }
    }
    (lenient(cli, &call).0, problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "COMPONENT" => Some("broker".into()),
            "TWO" => Some("a b".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    fn words(script: &str) -> Vec<Vec<String>> {
        commands(script, &env, None).into_iter().map(|c| c.words).collect()
    }

    fn w(v: &[&[&str]]) -> Vec<Vec<String>> {
        v.iter().map(|c| c.iter().map(|s| s.to_string()).collect()).collect()
    }

    #[test]
    fn splits_words_and_commands() {
        let cases: &[(&str, &[&[&str]])] = &[
            ("cargo xtask ci", &[&["cargo", "xtask", "ci"]]),
            (
                "cargo xtask build-image \\\n  --component broker \\\n  --push",
                &[&["cargo", "xtask", "build-image", "--component", "broker", "--push"]],
            ),
            ("a; b && c || d | e & f", &[&["a"], &["b"], &["c"], &["d"], &["e"], &["f"]]),
            ("# comment\ncargo xtask ci # trailing\n\n", &[&["cargo", "xtask", "ci"]]),
            ("echo a#b", &[&["echo", "a#b"]]),
            ("x 'a b' \"c d\" e\\ f ''", &[&["x", "a b", "c d", "e f", ""]]),
            (
                "x \"$COMPONENT\" ${COMPONENT} '$COMPONENT'",
                &[&["x", "broker", "broker", "$COMPONENT"]],
            ),
            ("x --component=$COMPONENT", &[&["x", "--component=broker"]]),
            ("x $TWO \"$TWO\"", &[&["x", "a", "b", "a b"]]),
            ("x $EMPTY y \"$EMPTY\"", &[&["x", "y", ""]]),
            ("x \"a\\\"b\\$c\\n\"", &[&["x", "a\"b$c\\n"]]),
            ("FOO=1 BAR=\"x y\" cargo xtask ci", &[&["FOO=1", "BAR=x y", "cargo", "xtask", "ci"]]),
            ("x $", &[&["x", "$"]]),
        ];
        for (script, want) in cases {
            assert_eq!(words(script), w(want), "{script:?}");
        }
    }

    #[test]
    fn lines_unresolved_and_unsupported() {
        let cmds = commands(
            "echo start\n\ncargo xtask a \\\n  --b $NOPE\ncargo xtask c $(date) > out\n",
            &env,
            None,
        );
        assert_eq!(cmds.len(), 3);
        assert_eq!(cmds[0].line, 0);
        assert_eq!(cmds[1].line, 2);
        assert_eq!(cmds[1].words, ["cargo", "xtask", "a", "--b", "$NOPE"]);
        assert_eq!(cmds[1].unresolved, ["NOPE"]);
        assert_eq!(cmds[2].line, 4);
        assert_eq!(cmds[2].problem, Some("command substitution `$(...)`"));
    }

    #[test]
    fn assignments_and_argv() {
        let cmds = commands("A=1 B_2=x cargo xtask ci --x=y", &env, None);
        assert_eq!(
            cmds[0].assignments(),
            [("A".to_string(), "1".to_string()), ("B_2".to_string(), "x".to_string())]
        );
        assert_eq!(cmds[0].argv(), ["cargo", "xtask", "ci", "--x=y"]);
    }

    #[test]
    fn closest_names() {
        let subs = ["build-image", "images", "push", "manifest", "smoke", "tags", "doctor"];
        let cases: &[(&str, Option<&str>)] = &[
            ("buidl-image", Some("build-image")),
            ("build-images", Some("build-image")),
            ("imgaes", Some("images")),
            ("manifset", Some("manifest")),
            ("psuh", Some("push")),
            ("deploy", None),
            ("x", None),
        ];
        for (w, want) in cases {
            assert_eq!(closest(w, subs), *want, "{w}");
        }
        assert_eq!(strsim::osa_distance("kitten", "sitting"), 3);
        assert_eq!(strsim::osa_distance("", "abc"), 3);
        assert_eq!(strsim::osa_distance("jbo", "job"), 1);
        assert_eq!(closest("jbo", ["job", "event", "ref"]), Some("job"));
    }
}
