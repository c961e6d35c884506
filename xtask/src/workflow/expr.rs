//! GitHub Actions expressions (`${{ ... }}`, `if:`): parsed by
//! `github-actions-expressions`, evaluated here as GitHub's "Expressions"
//! reference says. An unknown context is `None`, propagating like SQL's NULL
//! (`false && unknown` is false): "is this step off on pull requests anyway".

use github_actions_expressions::call::{Call, Function};
use github_actions_expressions::context::Context;
use github_actions_expressions::literal::Literal;
use github_actions_expressions::op::{BinOp, UnOp};
use github_actions_expressions::{Evaluation, Expr, Origin, SpannedExpr};

/// Maps a context path (`matrix.platform`, `github.event_name`) to its value;
/// `None`: unknown.
pub type Resolve<'a> = &'a dyn Fn(&str) -> Option<Evaluation>;

/// `github.event_name` for `github.event_name`, `GITHUB.ref` and `github['ref']`;
/// the context name lower-cased. `None` for computed parts.
fn path(ctx: &Context<'_>) -> Option<String> {
    let part = |p: &SpannedExpr<'_>| match &p.inner {
        Expr::Identifier(id) => Some(id.as_str().to_owned()),
        Expr::Index(ix) => match &ix.inner {
            Expr::Literal(Literal::String(s)) => Some(s.to_string()),
            _ => None,
        },
        _ => None,
    };
    let mut parts: Vec<String> = ctx.parts.iter().map(part).collect::<Option<_>>()?;
    parts.iter_mut().take(1).for_each(|h| h.make_ascii_lowercase());
    Some(parts.join("."))
}

fn truthy(v: &Option<Evaluation>) -> Option<bool> {
    v.as_ref().map(Evaluation::as_boolean)
}

/// Evaluates `e`. `success()` and `failure()` ask `resolve` (paths
/// `success()`, `failure()`), else assume every earlier step succeeded;
/// `always()` is true and `cancelled()` false (nothing is cancelled locally).
/// Other functions are the crate's constant evaluation of the arguments' values.
pub fn eval(e: &SpannedExpr<'_>, resolve: Resolve<'_>) -> Option<Evaluation> {
    match &e.inner {
        Expr::Literal(_) => e.consteval(),
        Expr::Context(c) => resolve(&path(c)?),
        Expr::UnExpr { op: UnOp::Not, expr } => {
            truthy(&eval(expr, resolve)).map(|b| Evaluation::Boolean(!b))
        }
        Expr::BinExpr(b) if matches!(b.op, BinOp::And | BinOp::Or) => {
            let (l, stop) = (eval(&b.lhs, resolve), b.op == BinOp::Or);
            match truthy(&l) {
                Some(t) if t == stop => l,
                Some(_) => eval(&b.rhs, resolve),
                None => (truthy(&eval(&b.rhs, resolve)) == Some(stop))
                    .then_some(Evaluation::Boolean(stop)),
            }
        }
        Expr::BinExpr(b) => {
            let (l, r) = (eval(&b.lhs, resolve)?, eval(&b.rhs, resolve)?);
            let (l, r) = (l.sema(), r.sema());
            Some(Evaluation::Boolean(match b.op {
                BinOp::Eq => l == r,
                BinOp::Neq => l != r,
                BinOp::Lt => l < r,
                BinOp::Le => l <= r,
                BinOp::Gt => l > r,
                _ => l >= r,
            }))
        }
        Expr::Call(call) => match call.func {
            Function::Success => resolve("success()").or(Some(Evaluation::Boolean(true))),
            Function::Failure => resolve("failure()").or(Some(Evaluation::Boolean(false))),
            Function::Always => Some(Evaluation::Boolean(true)),
            Function::Cancelled => Some(Evaluation::Boolean(false)),
            func => {
                let literal = |a| {
                    let inner = match eval(a, resolve)? {
                        Evaluation::String(s) => Expr::from(s),
                        Evaluation::Number(n) => Expr::from(n),
                        Evaluation::Boolean(b) => Expr::from(b),
                        Evaluation::Null => Expr::Literal(Literal::Null),
                        _ => return None,
                    };
                    Some(SpannedExpr { origin: Origin::new(0..0, ""), inner })
                };
                let args = call.args.iter().map(literal).collect::<Option<_>>()?;
                Expr::Call(Call { func, args }).consteval()
            }
        },
        _ => None,
    }
}

/// Parses `src` (without `${{ }}`); errors name the expression.
fn parse(src: &str) -> Result<SpannedExpr<'_>, String> {
    Expr::parse(src).map_err(|e| format!("`{src}` is not a valid expression: {e}"))
}

/// Evaluates an `if:` condition (with or without `${{ }}`) to true, false,
/// or `None` when it depends on something unknown. Without a status function
/// it means `success() && (...)`, as GitHub applies it.
pub fn condition(src: &str, resolve: Resolve<'_>) -> Result<Option<bool>, String> {
    let t = src.trim();
    let inner = match t.strip_prefix("${{").and_then(|r| r.strip_suffix("}}")) {
        Some(inner) if !inner.contains("${{") => inner.trim(),
        _ => t,
    };
    let value = truthy(&eval(&parse(inner)?, resolve));
    let lower = inner.to_ascii_lowercase();
    let status =
        ["success(", "failure(", "always(", "cancelled("].iter().any(|f| lower.contains(f));
    let ok = resolve("success()").is_none_or(|s| s.as_boolean());
    Ok(if ok || status { value } else { Some(false) })
}

/// The `${{ ... }}` spans of `s`: (start byte, end byte after `}}`, inner text).
pub fn spans(s: &str) -> Vec<(usize, usize, &str)> {
    let (mut out, mut from) = (Vec::new(), 0);
    while let Some(open) = s[from..].find("${{").map(|p| p + from) {
        // The closing `}}` outside of '...' string literals.
        let mut in_str = false;
        let close = (open + 3..s.len().saturating_sub(1)).find(|&i| {
            let b = s.as_bytes();
            in_str ^= b[i] == b'\'';
            !in_str && b[i] == b'}' && b[i + 1] == b'}'
        });
        let Some(close) = close else { break };
        out.push((open, close + 2, s[open + 3..close].trim()));
        from = close + 2;
    }
    out
}

/// Replaces every `${{ expr }}` in `s` with its value as text. An expression
/// that does not parse is an error; one whose value is unknown becomes
/// `unknown` when given, else is an error naming it.
pub fn substitute(s: &str, resolve: Resolve<'_>, unknown: Option<&str>) -> Result<String, String> {
    let (mut out, mut last) = (String::new(), 0);
    for (start, end, inner) in spans(s) {
        out.push_str(&s[last..start]);
        match (eval(&parse(inner)?, resolve), unknown) {
            (Some(v), _) => out.push_str(&v.sema().to_string()),
            (None, Some(u)) => out.push_str(u),
            (None, None) => return Err(format!("cannot evaluate `${{{{ {inner} }}}}` here")),
        }
        last = end;
    }
    out.push_str(&s[last..]);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(path: &str) -> Option<Evaluation> {
        let s = |v: &str| Some(Evaluation::String(v.to_owned()));
        match path {
            "github.event_name" => s("pull_request"),
            "github.ref" => s("refs/pull/7/merge"),
            "matrix.platform" => s("linux/arm64"),
            "matrix.component" => s("broker"),
            "matrix.n" => Some(Evaluation::Number(2.0)),
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
            ("github.ref == 'refs/heads/main' || github.event_name == 'pull_request'", Some(true)),
            ("github.ref == 'refs/heads/main' && success()", Some(false)),
            ("always()", Some(true)),
            ("failure()", Some(false)),
            ("matrix.platform == 'linux/arm64' && runner.arch != 'ARM64'", Some(true)),
            ("startsWith(github.ref, 'refs/pull/')", Some(true)),
            ("contains(matrix.platform, 'ARM')", Some(true)),
            ("matrix.n == '2'", Some(true)),
            ("matrix.n > 1", Some(true)),
            ("matrix['component'] == 'broker'", Some(true)),
            ("steps.x.outputs.y == 'a'", None),
            ("github.event_name != 'pull_request' && steps.x.outputs.y", Some(false)),
            ("github.event_name == 'pull_request' || steps.x.outputs.y", Some(true)),
            ("steps.x.outputs.y || github.event_name == 'pull_request'", Some(true)),
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
            ("--platform ${{matrix.platform}} x", "--platform linux/arm64 x"),
            ("${{ matrix.n }}", "2"),
            ("${{ github.event_name == 'push' }}", "false"),
            ("${{ github.event_name == 'push' && 'a' || 'b' }}", "b"),
            ("${{ format('{0}-{1}', matrix.component, matrix.n) }}", "broker-2"),
            ("a ${{ '}}' }} b", "a }} b"),
            ("${{ matrix.component }}/${{ matrix.platform }}", "broker/linux/arm64"),
        ];
        for (src, want) in cases {
            assert_eq!(substitute(src, &ctx, None).as_deref(), Ok(*want), "{src}");
        }
        let err = substitute("${{ secrets.TOKEN }}", &ctx, None).unwrap_err();
        assert!(err.contains("secrets.TOKEN"), "{err}");
        assert_eq!(substitute("a ${{ secrets.TOKEN }}", &ctx, Some("?")).as_deref(), Ok("a ?"));
    }
}
