//! Splits a `run:` script into simple commands and words the way `bash`
//! would for the plain lines brokkr's workflows use: quotes, backslash
//! escapes and backslash-newline continuations, `#` comments, command
//! separators (newline `;` `&&` `||` `|` `&`), `$VAR`/`${VAR}` expansion
//! with field splitting of unquoted expansions. Anything beyond that
//! (command substitution, redirections, here-documents) is reported in
//! [`ShellCommand::unsupported`] rather than guessed at.

/// One simple command of a script.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ShellCommand {
    /// The words after quote removal and expansion.
    pub words: Vec<String>,
    /// 0-based line of the script on which the command starts.
    pub line: usize,
    /// Variables that `lookup` did not know; their `$NAME` text stays in the words.
    pub unresolved: Vec<String>,
    /// The first shell feature this splitter does not interpret, if any
    /// (`$(...)`, a redirection, ...).
    pub unsupported: Option<String>,
}

impl ShellCommand {
    /// Leading `NAME=value` words (environment assignments for the command).
    pub fn assignments(&self) -> Vec<(String, String)> {
        self.words
            .iter()
            .map_while(|w| {
                let (k, v) = w.split_once('=')?;
                let ok = !k.is_empty()
                    && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    && !k.starts_with(|c: char| c.is_ascii_digit());
                ok.then(|| (k.to_owned(), v.to_owned()))
            })
            .collect()
    }

    /// The words after the leading assignments: the program and its arguments.
    pub fn argv(&self) -> &[String] {
        &self.words[self.assignments().len()..]
    }
}

struct Splitter<'a> {
    cs: Vec<char>,
    i: usize,
    line: usize,
    lookup: &'a dyn Fn(&str) -> Option<String>,
    out: Vec<ShellCommand>,
    cur: ShellCommand,
    word: Option<String>,
    /// Line on which the word being read started.
    cur_line_of_word: usize,
}

impl Splitter<'_> {
    fn end_word(&mut self) {
        if let Some(w) = self.word.take() {
            if self.cur.words.is_empty() {
                self.cur.line = self.cur_line_of_word;
            }
            self.cur.words.push(w);
        }
    }

    fn end_command(&mut self) {
        self.end_word();
        let cmd = std::mem::take(&mut self.cur);
        if !cmd.words.is_empty() || cmd.unsupported.is_some() {
            self.out.push(cmd);
        }
    }

    fn push_char(&mut self, c: char) {
        if self.word.is_none() {
            self.cur_line_of_word = self.line;
        }
        self.word.get_or_insert_with(String::new).push(c);
    }

    fn start_word(&mut self) {
        if self.word.is_none() {
            self.cur_line_of_word = self.line;
            self.word = Some(String::new());
        }
    }

    fn unsupported(&mut self, what: &str) {
        if self.cur.unsupported.is_none() {
            self.cur.unsupported = Some(what.to_owned());
        }
    }

    /// Reads a `$...` expansion at `self.i` (which is at `$`); returns the
    /// expanded text, or the literal text when unknown, and whether it was known.
    fn expansion(&mut self) -> Option<(String, bool)> {
        let next = self.cs.get(self.i + 1).copied();
        let (name, len) = match next {
            Some('{') => {
                let close = self.cs[self.i..].iter().position(|&c| c == '}')?;
                let name: String = self.cs[self.i + 2..self.i + close].iter().collect();
                if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') || name.is_empty() {
                    self.unsupported("parameter expansion `${...}` with an operator");
                }
                (name, close + 1)
            }
            Some('(') => {
                self.unsupported("command substitution `$(...)`");
                return None;
            }
            Some(c) if c.is_ascii_alphabetic() || c == '_' => {
                let n = self.cs[self.i + 1..]
                    .iter()
                    .take_while(|c| c.is_ascii_alphanumeric() || **c == '_')
                    .count();
                (self.cs[self.i + 1..self.i + 1 + n].iter().collect(), n + 1)
            }
            Some(c) if c.is_ascii_digit() || "@*#?$!-".contains(c) => {
                self.unsupported("special parameter");
                (c.to_string(), 2)
            }
            _ => return None,
        };
        let literal: String = self.cs[self.i..self.i + len].iter().collect();
        self.i += len;
        match (self.lookup)(&name) {
            Some(v) => Some((v, true)),
            None => {
                if !self.cur.unresolved.contains(&name) {
                    self.cur.unresolved.push(name);
                }
                Some((literal, false))
            }
        }
    }
}

/// Splits `script` into commands. `lookup` resolves `$NAME`; unknown names
/// are listed in [`ShellCommand::unresolved`] and kept as written.
pub fn split(script: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Vec<ShellCommand> {
    let mut s = Splitter {
        cs: script.chars().collect(),
        i: 0,
        line: 0,
        lookup,
        out: Vec::new(),
        cur: ShellCommand::default(),
        word: None,
        cur_line_of_word: 0,
    };
    while s.i < s.cs.len() {
        let c = s.cs[s.i];
        match c {
            '\n' => {
                s.end_command();
                s.line += 1;
                s.i += 1;
            }
            ' ' | '\t' | '\r' => {
                s.end_word();
                s.i += 1;
            }
            '#' if s.word.is_none() => {
                while s.i < s.cs.len() && s.cs[s.i] != '\n' {
                    s.i += 1;
                }
            }
            ';' => {
                s.end_command();
                s.i += 1;
            }
            '&' | '|' => {
                s.end_command();
                s.i += if s.cs.get(s.i + 1) == Some(&c) { 2 } else { 1 };
            }
            '<' | '>' => {
                s.unsupported("redirection");
                s.push_char(c);
                s.i += 1;
            }
            '`' => {
                s.unsupported("command substitution with backquotes");
                s.push_char(c);
                s.i += 1;
            }
            '\\' => {
                match s.cs.get(s.i + 1) {
                    Some('\n') => s.line += 1,
                    Some(&n) => s.push_char(n),
                    None => {}
                }
                s.i += 2;
            }
            '\'' => {
                s.start_word();
                s.i += 1;
                while s.i < s.cs.len() && s.cs[s.i] != '\'' {
                    if s.cs[s.i] == '\n' {
                        s.line += 1;
                    }
                    let ch = s.cs[s.i];
                    s.push_char(ch);
                    s.i += 1;
                }
                s.i += 1;
            }
            '"' => {
                s.start_word();
                s.i += 1;
                while s.i < s.cs.len() && s.cs[s.i] != '"' {
                    let ch = s.cs[s.i];
                    match ch {
                        '\\' => {
                            match s.cs.get(s.i + 1) {
                                Some('\n') => s.line += 1,
                                Some(&n) if "$`\"\\".contains(n) => s.push_char(n),
                                Some(&n) => {
                                    s.push_char('\\');
                                    s.push_char(n);
                                }
                                None => {}
                            }
                            s.i += 2;
                        }
                        '$' => match s.expansion() {
                            Some((text, _)) => text.chars().for_each(|t| s.push_char(t)),
                            None => {
                                s.push_char('$');
                                s.i += 1;
                            }
                        },
                        '`' => {
                            s.unsupported("command substitution with backquotes");
                            s.push_char(ch);
                            s.i += 1;
                        }
                        _ => {
                            if ch == '\n' {
                                s.line += 1;
                            }
                            s.push_char(ch);
                            s.i += 1;
                        }
                    }
                }
                s.i += 1;
            }
            '$' => match s.expansion() {
                // Unquoted: the value is split into fields on blanks.
                Some((text, true)) => {
                    let starts_blank = text.starts_with([' ', '\t', '\n']);
                    let ends_blank = text.ends_with([' ', '\t', '\n']);
                    let fields: Vec<&str> = text.split_whitespace().collect();
                    if starts_blank {
                        s.end_word();
                    }
                    for (k, f) in fields.iter().enumerate() {
                        if k > 0 {
                            s.end_word();
                        }
                        f.chars().for_each(|t| s.push_char(t));
                    }
                    if ends_blank && !fields.is_empty() {
                        s.end_word();
                    }
                }
                Some((text, false)) => text.chars().for_each(|t| s.push_char(t)),
                None => {
                    s.push_char('$');
                    s.i += 1;
                }
            },
            _ => {
                s.push_char(c);
                s.i += 1;
            }
        }
    }
    s.end_command();
    s.out
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
        split(script, &env).into_iter().map(|c| c.words).collect()
    }

    fn w(v: &[&[&str]]) -> Vec<Vec<String>> {
        v.iter()
            .map(|c| c.iter().map(|s| s.to_string()).collect())
            .collect()
    }

    #[test]
    fn splits_words_and_commands() {
        let cases: &[(&str, &[&[&str]])] = &[
            ("cargo xtask ci", &[&["cargo", "xtask", "ci"]]),
            (
                "cargo xtask build-image \\\n  --component broker \\\n  --push",
                &[&[
                    "cargo",
                    "xtask",
                    "build-image",
                    "--component",
                    "broker",
                    "--push",
                ]],
            ),
            (
                "a; b && c || d | e & f",
                &[&["a"], &["b"], &["c"], &["d"], &["e"], &["f"]],
            ),
            (
                "# comment\ncargo xtask ci # trailing\n\n",
                &[&["cargo", "xtask", "ci"]],
            ),
            ("echo a#b", &[&["echo", "a#b"]]),
            (
                "x 'a b' \"c d\" e\\ f ''",
                &[&["x", "a b", "c d", "e f", ""]],
            ),
            (
                "x \"$COMPONENT\" ${COMPONENT} '$COMPONENT'",
                &[&["x", "broker", "broker", "$COMPONENT"]],
            ),
            ("x --component=$COMPONENT", &[&["x", "--component=broker"]]),
            ("x $TWO \"$TWO\"", &[&["x", "a", "b", "a b"]]),
            ("x $EMPTY y \"$EMPTY\"", &[&["x", "y", ""]]),
            ("x \"a\\\"b\\$c\\n\"", &[&["x", "a\"b$c\\n"]]),
            (
                "FOO=1 BAR=\"x y\" cargo xtask ci",
                &[&["FOO=1", "BAR=x y", "cargo", "xtask", "ci"]],
            ),
            ("x $", &[&["x", "$"]]),
        ];
        for (script, want) in cases {
            assert_eq!(words(script), w(want), "{script:?}");
        }
    }

    #[test]
    fn lines_unresolved_and_unsupported() {
        let cmds = split(
            "echo start\n\ncargo xtask a \\\n  --b $NOPE\ncargo xtask c $(date) > out\n",
            &env,
        );
        assert_eq!(cmds.len(), 3);
        assert_eq!(cmds[0].line, 0);
        assert_eq!(cmds[1].line, 2);
        assert_eq!(cmds[1].words, ["cargo", "xtask", "a", "--b", "$NOPE"]);
        assert_eq!(cmds[1].unresolved, ["NOPE"]);
        assert_eq!(cmds[2].line, 4);
        assert_eq!(
            cmds[2].unsupported.as_deref(),
            Some("command substitution `$(...)`")
        );
    }

    #[test]
    fn assignments_and_argv() {
        let cmds = split("A=1 B_2=x cargo xtask ci --x=y", &env);
        assert_eq!(
            cmds[0].assignments(),
            [
                ("A".to_string(), "1".to_string()),
                ("B_2".to_string(), "x".to_string())
            ]
        );
        assert_eq!(cmds[0].argv(), ["cargo", "xtask", "ci", "--x=y"]);
    }
}
