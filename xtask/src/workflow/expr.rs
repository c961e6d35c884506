//! GitHub Actions expressions (`${{ ... }}` and `if:`), the subset brokkr's
//! workflows use: context paths (`github.event_name`, `matrix.platform`,
//! `env.X`, `runner.arch`, `matrix['x']`), string/number/boolean/null
//! literals, `== != < <= > >=`, `! && ||`, parentheses, and the functions
//! `success() always() failure() cancelled() contains() startsWith()
//! endsWith() format()`. Semantics follow GitHub's "Expressions" reference:
//! string comparison ignores case, `&&`/`||` return an operand, and values
//! of mixed types compare as numbers.
//!
//! A context the caller cannot resolve evaluates to [`Val::Unknown`], which
//! propagates like SQL's NULL (`false && unknown` is false, `true || unknown`
//! is true): the rules use this to decide "is this step off on pull requests
//! whatever the matrix is".

use std::fmt;

/// An expression value.
#[derive(Clone, Debug, PartialEq)]
pub enum Val {
    /// `null`, or a missing property.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// A number (GitHub numbers are doubles).
    Num(f64),
    /// A string.
    Str(String),
    /// Not known to the caller (e.g. the event in a check that covers all events).
    Unknown,
}

impl Val {
    /// GitHub's truthiness: `false`, `0`, `-0`, `""`, `null` and NaN are false;
    /// `None` when unknown.
    pub fn truthy(&self) -> Option<bool> {
        match self {
            Val::Null => Some(false),
            Val::Bool(b) => Some(*b),
            Val::Num(n) => Some(*n != 0.0 && !n.is_nan()),
            Val::Str(s) => Some(!s.is_empty()),
            Val::Unknown => None,
        }
    }

    /// The value as GitHub interpolates it into text: `null` is empty,
    /// integers print without a fraction. `None` when unknown.
    pub fn to_text(&self) -> Option<String> {
        match self {
            Val::Null => Some(String::new()),
            Val::Bool(b) => Some(b.to_string()),
            Val::Num(n) if n.fract() == 0.0 && n.abs() < 1e15 => Some(format!("{}", *n as i64)),
            Val::Num(n) => Some(n.to_string()),
            Val::Str(s) => Some(s.clone()),
            Val::Unknown => None,
        }
    }

    fn to_num(&self) -> f64 {
        match self {
            Val::Null => 0.0,
            Val::Bool(b) => f64::from(u8::from(*b)),
            Val::Num(n) => *n,
            Val::Str(s) if s.trim().is_empty() => 0.0,
            Val::Str(s) => {
                let t = s.trim();
                if let Some(hex) = t.strip_prefix("0x") {
                    i64::from_str_radix(hex, 16).map_or(f64::NAN, |v| v as f64)
                } else {
                    t.parse().unwrap_or(f64::NAN)
                }
            }
            Val::Unknown => f64::NAN,
        }
    }
}

impl fmt::Display for Val {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.to_text() {
            Some(t) => f.write_str(&t),
            None => f.write_str("<unknown>"),
        }
    }
}

/// A parsed expression.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    /// A literal.
    Lit(Val),
    /// A context path, lower-cased context name first: `github.event_name`.
    Ctx(String),
    /// `!e`.
    Not(Box<Expr>),
    /// `a && b`.
    And(Box<Expr>, Box<Expr>),
    /// `a || b`.
    Or(Box<Expr>, Box<Expr>),
    /// A comparison: operator (`==`, `!=`, `<`, `<=`, `>`, `>=`) and operands.
    Cmp(&'static str, Box<Expr>, Box<Expr>),
    /// A function call, name lower-cased.
    Call(String, Vec<Expr>),
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Num(f64),
    Op(&'static str),
}

fn lex(src: &str) -> Result<Vec<Tok>, String> {
    let cs: Vec<char> = src.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    while i < cs.len() {
        let c = cs[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '\'' {
            let mut s = String::new();
            i += 1;
            loop {
                match cs.get(i) {
                    None => return Err(format!("unterminated string in `{src}`")),
                    Some('\'') if cs.get(i + 1) == Some(&'\'') => {
                        s.push('\'');
                        i += 2;
                    }
                    Some('\'') => {
                        i += 1;
                        break;
                    }
                    Some(&ch) => {
                        s.push(ch);
                        i += 1;
                    }
                }
            }
            out.push(Tok::Str(s));
        } else if c.is_ascii_digit()
            || (c == '-' && cs.get(i + 1).is_some_and(char::is_ascii_digit))
        {
            let start = i;
            i += 1;
            while i < cs.len() && (cs[i].is_ascii_alphanumeric() || cs[i] == '.') {
                i += 1;
            }
            let text: String = cs[start..i].iter().collect();
            let n = Val::Str(text.clone()).to_num();
            if n.is_nan() {
                return Err(format!("bad number `{text}` in `{src}`"));
            }
            out.push(Tok::Num(n));
        } else if c.is_ascii_alphabetic() || c == '_' {
            let mut s = String::new();
            while i < cs.len() {
                let ch = cs[i];
                if ch.is_ascii_alphanumeric() || ch == '_' || ch == '-' || ch == '.' || ch == '*' {
                    s.push(ch);
                    i += 1;
                } else if ch == '[' {
                    // `matrix['x']` is `matrix.x`.
                    let close = cs[i..].iter().position(|&x| x == ']').map(|p| p + i);
                    let Some(close) = close else {
                        return Err(format!("unclosed `[` in `{src}`"));
                    };
                    let inner: String = cs[i + 1..close].iter().collect();
                    let key = inner.trim().trim_matches('\'');
                    s.push('.');
                    s.push_str(key);
                    i = close + 1;
                } else {
                    break;
                }
            }
            out.push(Tok::Ident(s));
        } else {
            let two: String = cs[i..(i + 2).min(cs.len())].iter().collect();
            let op = ["==", "!=", "<=", ">=", "&&", "||"]
                .into_iter()
                .find(|o| *o == two);
            if let Some(op) = op {
                out.push(Tok::Op(op));
                i += 2;
            } else {
                let op = match c {
                    '!' => "!",
                    '<' => "<",
                    '>' => ">",
                    '(' => "(",
                    ')' => ")",
                    ',' => ",",
                    _ => return Err(format!("unexpected `{c}` in `{src}`")),
                };
                out.push(Tok::Op(op));
                i += 1;
            }
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
    src: String,
}

impl Parser {
    fn peek_op(&self) -> Option<&'static str> {
        match self.toks.get(self.pos) {
            Some(Tok::Op(o)) => Some(o),
            _ => None,
        }
    }

    fn eat(&mut self, op: &str) -> bool {
        if self.peek_op() == Some(op) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn or(&mut self) -> Result<Expr, String> {
        let mut e = self.and()?;
        while self.eat("||") {
            e = Expr::Or(Box::new(e), Box::new(self.and()?));
        }
        Ok(e)
    }

    fn and(&mut self) -> Result<Expr, String> {
        let mut e = self.cmp()?;
        while self.eat("&&") {
            e = Expr::And(Box::new(e), Box::new(self.cmp()?));
        }
        Ok(e)
    }

    fn cmp(&mut self) -> Result<Expr, String> {
        let mut e = self.unary()?;
        while let Some(op) = self
            .peek_op()
            .filter(|o| ["==", "!=", "<", "<=", ">", ">="].contains(o))
        {
            self.pos += 1;
            e = Expr::Cmp(op, Box::new(e), Box::new(self.unary()?));
        }
        Ok(e)
    }

    fn unary(&mut self) -> Result<Expr, String> {
        if self.eat("!") {
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr, String> {
        let tok = self.toks.get(self.pos).cloned();
        self.pos += 1;
        match tok {
            Some(Tok::Op("(")) => {
                let e = self.or()?;
                if !self.eat(")") {
                    return Err(format!("missing `)` in `{}`", self.src));
                }
                Ok(e)
            }
            Some(Tok::Str(s)) => Ok(Expr::Lit(Val::Str(s))),
            Some(Tok::Num(n)) => Ok(Expr::Lit(Val::Num(n))),
            Some(Tok::Ident(id)) => match id.as_str() {
                "true" => Ok(Expr::Lit(Val::Bool(true))),
                "false" => Ok(Expr::Lit(Val::Bool(false))),
                "null" => Ok(Expr::Lit(Val::Null)),
                _ if self.eat("(") => {
                    let mut args = Vec::new();
                    if !self.eat(")") {
                        loop {
                            args.push(self.or()?);
                            if self.eat(")") {
                                break;
                            }
                            if !self.eat(",") {
                                return Err(format!("expected `,` or `)` in `{}`", self.src));
                            }
                        }
                    }
                    Ok(Expr::Call(id.to_ascii_lowercase(), args))
                }
                _ => {
                    let (head, rest) = id.split_once('.').unwrap_or((&id, ""));
                    let mut path = head.to_ascii_lowercase();
                    if !rest.is_empty() {
                        path.push('.');
                        path.push_str(rest);
                    }
                    Ok(Expr::Ctx(path))
                }
            },
            _ => Err(format!("expected a value in `{}`", self.src)),
        }
    }
}

/// Parses an expression (without the `${{ }}`). Errors name the expression.
pub fn parse(src: &str) -> Result<Expr, String> {
    let toks = lex(src)?;
    let mut p = Parser {
        toks,
        pos: 0,
        src: src.to_owned(),
    };
    let e = p.or()?;
    if p.pos < p.toks.len() {
        return Err(format!("unexpected text after the expression in `{src}`"));
    }
    Ok(e)
}

fn eq(a: &Val, b: &Val) -> Option<bool> {
    match (a, b) {
        (Val::Unknown, _) | (_, Val::Unknown) => None,
        (Val::Str(x), Val::Str(y)) => Some(x.eq_ignore_ascii_case(y)),
        (Val::Null, Val::Null) => Some(true),
        (Val::Bool(x), Val::Bool(y)) => Some(x == y),
        _ => Some(a.to_num() == b.to_num()),
    }
}

fn ord(a: &Val, b: &Val) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Val::Unknown, _) | (_, Val::Unknown) => None,
        (Val::Str(x), Val::Str(y)) => Some(x.to_ascii_lowercase().cmp(&y.to_ascii_lowercase())),
        _ => a.to_num().partial_cmp(&b.to_num()),
    }
}

/// Evaluates `e`; `resolve` maps a context path (`matrix.platform`) to its
/// value, `None` meaning unknown. Status functions assume every earlier
/// step succeeded (`success()` and `always()` true, `failure()` false).
pub fn eval(e: &Expr, resolve: &dyn Fn(&str) -> Option<Val>) -> Val {
    match e {
        Expr::Lit(v) => v.clone(),
        Expr::Ctx(p) => resolve(p).unwrap_or(Val::Unknown),
        Expr::Not(x) => match eval(x, resolve).truthy() {
            Some(b) => Val::Bool(!b),
            None => Val::Unknown,
        },
        Expr::And(a, b) => {
            let va = eval(a, resolve);
            match va.truthy() {
                Some(false) => va,
                Some(true) => eval(b, resolve),
                None => match eval(b, resolve).truthy() {
                    Some(false) => Val::Bool(false),
                    _ => Val::Unknown,
                },
            }
        }
        Expr::Or(a, b) => {
            let va = eval(a, resolve);
            match va.truthy() {
                Some(true) => va,
                Some(false) => eval(b, resolve),
                None => match eval(b, resolve).truthy() {
                    Some(true) => Val::Bool(true),
                    _ => Val::Unknown,
                },
            }
        }
        Expr::Cmp(op, a, b) => {
            let (va, vb) = (eval(a, resolve), eval(b, resolve));
            let r = match *op {
                "==" => eq(&va, &vb),
                "!=" => eq(&va, &vb).map(|x| !x),
                "<" => ord(&va, &vb).map(|o| o.is_lt()),
                "<=" => ord(&va, &vb).map(|o| o.is_le()),
                ">" => ord(&va, &vb).map(|o| o.is_gt()),
                _ => ord(&va, &vb).map(|o| o.is_ge()),
            };
            r.map_or(Val::Unknown, Val::Bool)
        }
        Expr::Call(name, args) => {
            let vals: Vec<Val> = args.iter().map(|a| eval(a, resolve)).collect();
            call(name, &vals)
        }
    }
}

fn call(name: &str, args: &[Val]) -> Val {
    let text = |i: usize| {
        args.get(i)
            .and_then(Val::to_text)
            .map(|s| s.to_ascii_lowercase())
    };
    match (name, args.len()) {
        ("success" | "always", 0) => Val::Bool(true),
        ("failure" | "cancelled", 0) => Val::Bool(false),
        ("contains", 2) => match (text(0), text(1)) {
            (Some(a), Some(b)) => Val::Bool(a.contains(&b)),
            _ => Val::Unknown,
        },
        ("startswith", 2) => match (text(0), text(1)) {
            (Some(a), Some(b)) => Val::Bool(a.starts_with(&b)),
            _ => Val::Unknown,
        },
        ("endswith", 2) => match (text(0), text(1)) {
            (Some(a), Some(b)) => Val::Bool(a.ends_with(&b)),
            _ => Val::Unknown,
        },
        ("format", n) if n >= 1 => {
            let Some(fmt) = args[0].to_text() else {
                return Val::Unknown;
            };
            let mut out = fmt;
            for (i, a) in args[1..].iter().enumerate() {
                let Some(t) = a.to_text() else {
                    return Val::Unknown;
                };
                out = out.replace(&format!("{{{i}}}"), &t);
            }
            Val::Str(out.replace("{{", "{").replace("}}", "}"))
        }
        _ => Val::Unknown,
    }
}

/// Strips one `${{ ... }}` wrapping the whole of `s` (as `if:` allows).
pub fn unwrap_braces(s: &str) -> &str {
    let t = s.trim();
    match t.strip_prefix("${{").and_then(|r| r.strip_suffix("}}")) {
        Some(inner) if !inner.contains("${{") => inner.trim(),
        _ => t,
    }
}

/// Evaluates an `if:` condition (with or without `${{ }}`) to true, false,
/// or `None` when it depends on something unknown. Parse errors are `Err`.
pub fn condition(src: &str, resolve: &dyn Fn(&str) -> Option<Val>) -> Result<Option<bool>, String> {
    let e = parse(unwrap_braces(src))?;
    Ok(eval(&e, resolve).truthy())
}

/// The `${{ ... }}` spans of `s`: (start byte, end byte after `}}`, inner text).
pub fn spans(s: &str) -> Vec<(usize, usize, &str)> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(open) = s[from..].find("${{").map(|p| p + from) {
        // Find the closing `}}` outside of '...' string literals.
        let bytes = s.as_bytes();
        let mut i = open + 3;
        let mut in_str = false;
        let mut close = None;
        while i < bytes.len() {
            match bytes[i] {
                b'\'' => in_str = !in_str,
                b'}' if !in_str && bytes.get(i + 1) == Some(&b'}') => {
                    close = Some(i);
                    break;
                }
                _ => {}
            }
            i += 1;
        }
        let Some(close) = close else { break };
        out.push((open, close + 2, s[open + 3..close].trim()));
        from = close + 2;
    }
    out
}

/// Replaces every `${{ expr }}` in `s` with its value as text. An
/// expression that does not parse or evaluates to unknown is an error
/// naming it.
pub fn substitute(s: &str, resolve: &dyn Fn(&str) -> Option<Val>) -> Result<String, String> {
    let mut out = String::new();
    let mut last = 0;
    for (start, end, inner) in spans(s) {
        out.push_str(&s[last..start]);
        let v = eval(&parse(inner)?, resolve);
        match v.to_text() {
            Some(t) => out.push_str(&t),
            None => return Err(format!("cannot evaluate `${{{{ {inner} }}}}` here")),
        }
        last = end;
    }
    out.push_str(&s[last..]);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(path: &str) -> Option<Val> {
        let s = |v: &str| Some(Val::Str(v.to_owned()));
        match path {
            "github.event_name" => s("pull_request"),
            "github.ref" => s("refs/pull/7/merge"),
            "matrix.platform" => s("linux/arm64"),
            "matrix.component" => s("broker"),
            "matrix.n" => Some(Val::Num(2.0)),
            "runner.arch" => s("X64"),
            _ => None,
        }
    }

    #[test]
    fn conditions() {
        let cases: &[(&str, Option<bool>)] = &[
            ("github.event_name == 'pull_request'", Some(true)),
            ("github.event_name != 'pull_request'", Some(false)),
            ("${{ github.event_name != 'pull_request' }}", Some(false)),
            ("github.event_name == 'PULL_REQUEST'", Some(true)),
            ("!(github.event_name == 'push')", Some(true)),
            (
                "github.ref == 'refs/heads/main' || github.event_name == 'pull_request'",
                Some(true),
            ),
            ("github.ref == 'refs/heads/main' && success()", Some(false)),
            ("always()", Some(true)),
            ("failure()", Some(false)),
            (
                "matrix.platform == 'linux/arm64' && runner.arch != 'ARM64'",
                Some(true),
            ),
            ("startsWith(github.ref, 'refs/pull/')", Some(true)),
            ("contains(matrix.platform, 'ARM')", Some(true)),
            ("matrix.n == '2'", Some(true)),
            ("matrix.n > 1", Some(true)),
            ("matrix['component'] == 'broker'", Some(true)),
            ("steps.x.outputs.y == 'a'", None),
            (
                "github.event_name != 'pull_request' && steps.x.outputs.y",
                Some(false),
            ),
            (
                "github.event_name == 'pull_request' || steps.x.outputs.y",
                Some(true),
            ),
            (
                "steps.x.outputs.y || github.event_name == 'pull_request'",
                Some(true),
            ),
            ("!steps.x.outputs.y", None),
            ("''", Some(false)),
            ("null", Some(false)),
            ("0", Some(false)),
            ("'x'", Some(true)),
        ];
        for (src, want) in cases {
            assert_eq!(condition(src, &ctx), Ok(*want), "{src}");
        }
    }

    #[test]
    fn parse_errors_are_errors() {
        for bad in ["github.event_name ==", "(a", "a b", "'open", "a = b", "x[0"] {
            assert!(condition(bad, &ctx).is_err(), "{bad}");
        }
    }

    #[test]
    fn substitution() {
        let cases: &[(&str, &str)] = &[
            ("plain", "plain"),
            ("${{ matrix.component }}", "broker"),
            (
                "--platform ${{matrix.platform}} x",
                "--platform linux/arm64 x",
            ),
            ("${{ matrix.n }}", "2"),
            ("${{ github.event_name == 'push' }}", "false"),
            ("${{ github.event_name == 'push' && 'a' || 'b' }}", "b"),
            (
                "${{ format('{0}-{1}', matrix.component, matrix.n) }}",
                "broker-2",
            ),
            ("a ${{ '}}' }} b", "a }} b"),
            (
                "${{ matrix.component }}/${{ matrix.platform }}",
                "broker/linux/arm64",
            ),
        ];
        for (src, want) in cases {
            assert_eq!(substitute(src, &ctx).as_deref(), Ok(*want), "{src}");
        }
        let err = substitute("${{ secrets.TOKEN }}", &ctx).unwrap_err();
        assert!(err.contains("secrets.TOKEN"), "{err}");
    }
}
