//! docker/metadata-action's own test cases, restated as data in
//! `xtask/tests/fixtures/metadata-action-cases.json` (source commit named
//! there), run against [`super::eval`]; plus the tag rows of
//! `shared/cases/tags.md` that need rules as data (T11 to T13).

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::Deserialize;

use super::{eval::evaluate, Context, Payload, Rules};

#[derive(Deserialize)]
struct Fixture {
    commit: String,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    group: String,
    name: String,
    env: BTreeMap<String, String>,
    #[serde(default)]
    payload: Option<Payload>,
    tags_input: Vec<String>,
    #[serde(default)]
    flavor_input: Vec<String>,
    version: String,
    tags: Vec<String>,
    revision: String,
}

/// Cases where brokkr deliberately differs, with the reason; each must
/// fail with an error (never a different tag). Every other case must agree
/// exactly (version, tag names, revision). The other deliberate difference,
/// tags that are not valid Docker tags, occurs in none of these cases: see
/// `invalid_docker_tags_are_repaired_with_a_message` below.
const DIFFERENCES: &[(&str, &str)] = &[
    ("null/null01", "no GITHUB_EVENT_NAME / GITHUB_SHA: an error here (the run cannot be tagged); metadata-action gives no tags"),
    ("null/null02", "no GITHUB_EVENT_NAME / GITHUB_SHA: an error here (the run cannot be tagged); metadata-action gives no tags"),
    ("push/push12", "type=pep440 is not supported: an error naming the valid types"),
    ("push/push14", "type=pep440 is not supported: an error naming the valid types"),
    ("tag/tag23", "type=pep440 is not supported: an error naming the valid types"),
    ("tag/tag24", "type=pep440 is not supported: an error naming the valid types"),
    ("tag/tag25", "type=pep440 is not supported: an error naming the valid types"),
    ("tag/tag26", "type=pep440 is not supported: an error naming the valid types"),
    ("tag/tag27", "type=pep440 is not supported: an error naming the valid types"),
    ("tag/tag28", "type=pep440 is not supported: an error naming the valid types"),
    ("tag/tag29", "type=pep440 is not supported: an error naming the valid types"),
    ("tag/tag30", "type=pep440 is not supported: an error naming the valid types"),
    ("tag/tag32", "type=pep440 is not supported: an error naming the valid types"),
    ("tag/tag33", "type=pep440 is not supported: an error naming the valid types"),
    ("tag/push35", "type=pep440 is not supported: an error naming the valid types"),
    ("pr/pr12", "an unquoted {{commit_date FORMAT}} is an error asking for quotes; handlebars reads FORMAT as a missing variable and moment then uses its default ISO format"),
    ("pr-head-sha/pr12", "an unquoted {{commit_date FORMAT}} is an error asking for quotes; handlebars reads FORMAT as a missing variable and moment then uses its default ISO format"),
];

fn run(case: &Case) -> anyhow::Result<(String, Vec<String>, String)> {
    let mut env = case.env.clone();
    env.entry("GITHUB_REPOSITORY".into())
        .or_insert_with(|| "docker/repo".into());
    let mut ctx = Context::from_github(|k| env.get(k).cloned(), case.payload.as_ref())?;
    let fixed: Timestamp = "2020-01-10T00:30:00Z".parse()?;
    ctx.now = fixed;
    ctx.commit_date = Some(fixed);
    ctx.default_branch.get_or_insert_with(|| "master".into());
    let rules = Rules::parse(&case.tags_input.join("\n"), &case.flavor_input.join("\n"))?;
    let t = evaluate(&rules, &ctx, &[])?;
    Ok((t.version, t.tags, ctx.sha))
}

#[test]
fn metadata_action_cases() {
    let text = include_str!("../../tests/fixtures/metadata-action-cases.json");
    let fixture: Fixture = serde_json::from_str(text).unwrap();
    assert_eq!(fixture.commit.len(), 40);
    let mut failures = Vec::new();
    let mut agreed = 0;
    for case in &fixture.cases {
        let id = format!("{}/{}", case.group, case.name);
        let want = (case.version.clone(), case.tags.clone(), case.revision.clone());
        let got = run(case).map_err(|e| format!("{e:#}"));
        let differs = DIFFERENCES.iter().find(|(n, _)| *n == id);
        match (got, differs) {
            (Ok(g), None) if g == want => agreed += 1,
            (Ok(g), Some(_)) if g == want => failures.push(format!("{id}: now agrees, drop it from DIFFERENCES")),
            (Ok(g), Some((_, why))) => failures.push(format!("{id} ({why}): gave {g:?}, not an error")),
            (Err(_), Some(_)) => {}
            (got, None) => failures.push(format!("{id}: want {want:?}\n   got {got:?}")),
        }
    }
    assert!(failures.is_empty(), "{} agreed; failures:\n{}", agreed, failures.join("\n"));
}
