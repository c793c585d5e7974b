//! The part of MLflow's search syntax the file store evaluates: conjunctions
//! (`and`) of comparisons. Anything else is a typed `Unsupported` error rather
//! than a guess.
//!
//! Runs: `metrics.<key>` with `= != < <= > >=` and a number; `params.<key>`,
//! `tags.<key>` and the attributes `status`, `run_name`, `run_id`,
//! `artifact_uri` with `= != LIKE ILIKE` and a quoted string; the attributes
//! `start_time` (`created`) and `end_time` with numeric comparators. Keys with
//! spaces are quoted with backticks or double quotes (``metrics.`f1 score` ``).
//! Model versions: `name` and `run_id` with `= != LIKE ILIKE`.

use super::err;
use crate::error::{ErrorKind, Result};
use crate::hooks::mlflow::types::{ModelVersion, Run, RunStatus};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Cmp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Like,
    ILike,
}

impl Cmp {
    fn numeric(self) -> bool {
        !matches!(self, Cmp::Like | Cmp::ILike)
    }

    fn stringy(self) -> bool {
        matches!(self, Cmp::Eq | Cmp::Ne | Cmp::Like | Cmp::ILike)
    }

    fn num(self, a: f64, b: f64) -> bool {
        match self {
            Cmp::Eq => a == b,
            Cmp::Ne => a != b,
            Cmp::Lt => a < b,
            Cmp::Le => a <= b,
            Cmp::Gt => a > b,
            Cmp::Ge => a >= b,
            Cmp::Like | Cmp::ILike => false,
        }
    }

    fn text(self, a: &str, b: &str) -> bool {
        match self {
            Cmp::Eq => a == b,
            Cmp::Ne => a != b,
            Cmp::Like => like(a, b),
            Cmp::ILike => like(&a.to_lowercase(), &b.to_lowercase()),
            _ => false,
        }
    }
}

/// SQL `LIKE`: `%` any run, `_` any one character.
fn like(text: &str, pattern: &str) -> bool {
    let t: Vec<char> = text.chars().collect();
    let p: Vec<char> = pattern.chars().collect();
    // dp[j]: pattern[..j] matches text[..i]
    let mut dp = vec![false; p.len() + 1];
    dp[0] = true;
    for j in 1..=p.len() {
        dp[j] = dp[j - 1] && p[j - 1] == '%';
    }
    for &tc in &t {
        let mut next = vec![false; p.len() + 1];
        for j in 1..=p.len() {
            next[j] = match p[j - 1] {
                '%' => next[j - 1] || dp[j],
                '_' => dp[j - 1],
                c => dp[j - 1] && c == tc,
            };
        }
        dp = next;
    }
    dp[p.len()]
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Num(f64),
    Op(Cmp),
    And,
}

fn unsupported(op: &str, filter: &str, what: &str) -> crate::Error {
    err(
        ErrorKind::Unsupported,
        op,
        format!("the file store's search does not support {what}; use a conjunction ('and') of simple comparisons"),
    )
    .with("filter", filter)
}

fn invalid(op: &str, filter: &str, what: String) -> crate::Error {
    err(ErrorKind::InvalidInput, op, what).with("filter", filter)
}

fn tokenize(op: &str, filter: &str) -> Result<Vec<Tok>> {
    let chars: Vec<char> = filter.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    let quoted = |i: &mut usize, q: char| -> Result<String> {
        let start = *i + 1;
        let end = chars[start..]
            .iter()
            .position(|c| *c == q)
            .map(|p| start + p)
            .ok_or_else(|| invalid(op, filter, format!("unterminated {q} quote")))?;
        *i = end + 1;
        Ok(chars[start..end].iter().collect())
    };
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '\'' || c == '"' {
            out.push(Tok::Str(quoted(&mut i, c)?));
        } else if c == '`' {
            out.push(Tok::Ident(quoted(&mut i, '`')?));
        } else if matches!(c, '=' | '!' | '<' | '>') {
            let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
            let (cmp, len) = match two.as_str() {
                "!=" | "<>" => (Cmp::Ne, 2),
                "<=" => (Cmp::Le, 2),
                ">=" => (Cmp::Ge, 2),
                "==" => (Cmp::Eq, 2),
                _ => match c {
                    '=' => (Cmp::Eq, 1),
                    '<' => (Cmp::Lt, 1),
                    '>' => (Cmp::Gt, 1),
                    _ => return Err(invalid(op, filter, "a lone '!'".into())),
                },
            };
            out.push(Tok::Op(cmp));
            i += len;
        } else if matches!(c, '(' | ')' | ',') {
            return Err(unsupported(op, filter, "parentheses or lists"));
        } else {
            let start = i;
            while i < chars.len()
                && !chars[i].is_whitespace()
                && !matches!(
                    chars[i],
                    '=' | '!' | '<' | '>' | '(' | ')' | ',' | '\'' | '"' | '`'
                )
            {
                i += 1;
            }
            let mut word: String = chars[start..i].iter().collect();
            // `metrics.` followed by a quoted key
            if word.ends_with('.') && i < chars.len() && matches!(chars[i], '`' | '"') {
                let q = chars[i];
                word.push_str(&quoted(&mut i, q)?);
            }
            let lower = word.to_ascii_lowercase();
            let starts_numeric = word
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_digit() || matches!(c, '-' | '+' | '.'));
            out.push(match lower.as_str() {
                "and" => Tok::And,
                "like" => Tok::Op(Cmp::Like),
                "ilike" => Tok::Op(Cmp::ILike),
                "or" => return Err(unsupported(op, filter, "'or'")),
                "in" | "not" | "is" | "null" => {
                    return Err(unsupported(op, filter, &format!("'{lower}'")));
                }
                _ if starts_numeric => Tok::Num(
                    word.parse()
                        .map_err(|_| invalid(op, filter, format!("{word:?} is not a number")))?,
                ),
                _ => Tok::Ident(word),
            });
        }
    }
    Ok(out)
}

/// `(identifier, comparator, value)` triples joined by `and`.
fn clauses(op: &str, filter: &str) -> Result<Vec<(String, Cmp, Tok)>> {
    let toks = tokenize(op, filter)?;
    let mut out = Vec::new();
    let mut it = toks.into_iter().peekable();
    while it.peek().is_some() {
        let ident = match it.next() {
            Some(Tok::Ident(s)) => s,
            other => {
                return Err(invalid(
                    op,
                    filter,
                    format!("expected a key, found {other:?}"),
                ));
            }
        };
        let cmp = match it.next() {
            Some(Tok::Op(c)) => c,
            other => {
                return Err(invalid(
                    op,
                    filter,
                    format!("expected a comparator after {ident:?}, found {other:?}"),
                ));
            }
        };
        let value = match it.next() {
            Some(v @ (Tok::Str(_) | Tok::Num(_))) => v,
            other => {
                return Err(invalid(
                    op,
                    filter,
                    format!("expected a value after {ident:?}, found {other:?}"),
                ));
            }
        };
        out.push((ident, cmp, value));
        match it.next() {
            None => break,
            Some(Tok::And) if it.peek().is_some() => {}
            other => {
                return Err(invalid(
                    op,
                    filter,
                    format!("expected 'and' between comparisons, found {other:?}"),
                ));
            }
        }
    }
    Ok(out)
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Attr {
    Status,
    RunName,
    RunId,
    ArtifactUri,
    StartTime,
    EndTime,
}

#[derive(Debug, Clone, PartialEq)]
enum Clause {
    Metric(String, Cmp, f64),
    Param(String, Cmp, String),
    Tag(String, Cmp, String),
    Text(Attr, Cmp, String),
    Time(Attr, Cmp, f64),
}

/// A parsed run filter.
#[derive(Debug, Default)]
pub(super) struct RunFilter {
    clauses: Vec<Clause>,
}

fn status_name(s: RunStatus) -> &'static str {
    match s {
        RunStatus::Running => "RUNNING",
        RunStatus::Scheduled => "SCHEDULED",
        RunStatus::Finished => "FINISHED",
        RunStatus::Failed => "FAILED",
        RunStatus::Killed => "KILLED",
    }
}

impl RunFilter {
    pub(super) fn parse(op: &str, filter: &str) -> Result<Self> {
        let mut out = RunFilter::default();
        for (ident, cmp, value) in clauses(op, filter)? {
            let (entity, key) = match ident.split_once('.') {
                Some((e, k)) => (e.to_ascii_lowercase(), k.trim_matches('`').to_string()),
                None => ("attribute".to_string(), ident.clone()),
            };
            let text = |what: &str| match (&value, cmp.stringy()) {
                (Tok::Str(s), true) => Ok(s.clone()),
                _ => Err(invalid(
                    op,
                    filter,
                    format!("{what} {key:?} is compared with = != LIKE ILIKE and a quoted string"),
                )),
            };
            let number = |what: &str| match (&value, cmp.numeric()) {
                (Tok::Num(n), true) => Ok(*n),
                _ => Err(invalid(
                    op,
                    filter,
                    format!("{what} {key:?} is compared with = != < <= > >= and a number"),
                )),
            };
            let clause = match entity.as_str() {
                "metric" | "metrics" => Clause::Metric(key.clone(), cmp, number("metric")?),
                "param" | "params" | "parameter" | "parameters" => {
                    Clause::Param(key.clone(), cmp, text("param")?)
                }
                "tag" | "tags" => Clause::Tag(key.clone(), cmp, text("tag")?),
                "attribute" | "attributes" | "attr" | "run" => match key.as_str() {
                    "status" => Clause::Text(Attr::Status, cmp, text("attribute")?),
                    "run_name" | "run name" | "Run name" | "Run Name" => {
                        Clause::Text(Attr::RunName, cmp, text("attribute")?)
                    }
                    "run_id" => Clause::Text(Attr::RunId, cmp, text("attribute")?),
                    "artifact_uri" => Clause::Text(Attr::ArtifactUri, cmp, text("attribute")?),
                    "start_time" | "created" | "Created" => {
                        Clause::Time(Attr::StartTime, cmp, number("attribute")?)
                    }
                    "end_time" => Clause::Time(Attr::EndTime, cmp, number("attribute")?),
                    "user_id" => return Err(unsupported(op, filter, "attribute user_id")),
                    other => {
                        return Err(invalid(
                            op,
                            filter,
                            format!("invalid attribute key {other:?}"),
                        ));
                    }
                },
                "dataset" | "datasets" => return Err(unsupported(op, filter, "dataset filters")),
                other => {
                    return Err(invalid(
                        op,
                        filter,
                        format!(
                            "invalid entity type {other:?} (metrics, params, tags, attributes)"
                        ),
                    ));
                }
            };
            out.clauses.push(clause);
        }
        Ok(out)
    }

    /// Whether `run` satisfies every comparison (a missing metric, param or tag
    /// satisfies none, as in MLflow).
    pub(super) fn matches(&self, run: &Run) -> bool {
        self.clauses.iter().all(|c| match c {
            Clause::Metric(k, cmp, v) => run.data.metric(k).is_some_and(|m| cmp.num(m, *v)),
            Clause::Param(k, cmp, v) => run.data.param(k).is_some_and(|p| cmp.text(p, v)),
            Clause::Tag(k, cmp, v) => run.data.tag(k).is_some_and(|t| cmp.text(t, v)),
            Clause::Text(attr, cmp, v) => {
                let actual = match attr {
                    Attr::Status => status_name(run.info.status),
                    Attr::RunName => run.info.run_name.as_str(),
                    Attr::RunId => run.info.run_id.as_str(),
                    _ => run.info.artifact_uri.as_str(),
                };
                cmp.text(actual, v)
            }
            Clause::Time(attr, cmp, v) => {
                let t = match attr {
                    Attr::StartTime => Some(run.info.start_time),
                    _ => run.info.end_time,
                };
                t.is_some_and(|t| cmp.num(t as f64, *v))
            }
        })
    }
}

/// A parsed model-version filter.
#[derive(Debug, Default)]
pub(super) struct VersionFilter {
    names: Vec<(Cmp, String)>,
    run_ids: Vec<(Cmp, String)>,
}

impl VersionFilter {
    pub(super) fn parse(op: &str, filter: &str) -> Result<Self> {
        let mut out = VersionFilter::default();
        for (ident, cmp, value) in clauses(op, filter)? {
            let Tok::Str(v) = value else {
                return Err(invalid(
                    op,
                    filter,
                    format!("{ident} is compared with a quoted string"),
                ));
            };
            if !cmp.stringy() {
                return Err(invalid(
                    op,
                    filter,
                    format!("{ident} is compared with = != LIKE ILIKE"),
                ));
            }
            match ident.as_str() {
                "name" => out.names.push((cmp, v)),
                "run_id" => out.run_ids.push((cmp, v)),
                other => {
                    return Err(unsupported(
                        op,
                        filter,
                        &format!("{other:?} in model version searches (only name and run_id)"),
                    ));
                }
            }
        }
        Ok(out)
    }

    /// Whether versions of model `name` can match (skips reading the others).
    pub(super) fn may_match_model(&self, name: &str) -> bool {
        self.names.iter().all(|(cmp, v)| cmp.text(name, v))
    }

    pub(super) fn matches(&self, v: &ModelVersion) -> bool {
        self.may_match_model(&v.name) && self.run_ids.iter().all(|(cmp, r)| cmp.text(&v.run_id, r))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hooks::mlflow::types::{Metric, Param, RunTag};

    fn run() -> Run {
        let mut r = Run::default();
        r.info.run_id = "abc".into();
        r.info.run_name = "iris-rf".into();
        r.info.status = RunStatus::Finished;
        r.info.start_time = 100;
        r.data.metrics.push(Metric {
            key: "f1 score".into(),
            value: 0.8,
            timestamp: 0,
            step: 0,
        });
        r.data.metrics.push(Metric {
            key: "acc".into(),
            value: 0.9,
            timestamp: 0,
            step: 0,
        });
        r.data.params.push(Param {
            key: "n".into(),
            value: "100".into(),
        });
        r.data.tags.push(RunTag {
            key: "mlflow.runName".into(),
            value: "iris-rf".into(),
        });
        r
    }

    fn m(filter: &str) -> bool {
        RunFilter::parse("t", filter).unwrap().matches(&run())
    }

    #[test]
    fn conjunctions_of_comparisons() {
        assert!(m(""));
        assert!(m("metrics.acc > 0.5"));
        assert!(!m("metrics.acc > 0.95"));
        assert!(m("metrics.`f1 score` >= 0.8 and params.n = '100'"));
        assert!(m("metric.\"f1 score\" < 1"));
        assert!(m(
            "attributes.status = 'FINISHED' AND tags.mlflow.runName = \"iris-rf\""
        ));
        assert!(m("status != 'FAILED'"));
        assert!(m("attributes.run_name LIKE 'iris%'"));
        assert!(m("run_name ILIKE 'IRIS-__'"));
        assert!(!m("params.missing != 'x'"));
        assert!(m("attributes.start_time >= 100"));
        assert!(!m("attributes.end_time > 0"));
        assert!(m("metrics.acc=0.9"));
    }

    #[test]
    fn the_rest_is_a_typed_error() {
        for (f, kind) in [
            (
                "metrics.acc > 0.5 or params.n = '1'",
                ErrorKind::Unsupported,
            ),
            ("attributes.run_id IN ('a')", ErrorKind::Unsupported),
            ("(metrics.acc > 0.5)", ErrorKind::Unsupported),
            ("attributes.user_id = 'x'", ErrorKind::Unsupported),
            ("metrics.acc > 'x'", ErrorKind::InvalidInput),
            ("params.n > 3", ErrorKind::InvalidInput),
            ("bogus.x = '1'", ErrorKind::InvalidInput),
            ("attributes.nope = '1'", ErrorKind::InvalidInput),
            ("params.n = 'unterminated", ErrorKind::InvalidInput),
            ("metrics.acc >", ErrorKind::InvalidInput),
            ("metrics.acc > 1 and", ErrorKind::InvalidInput),
        ] {
            let e = RunFilter::parse("t", f).unwrap_err();
            assert_eq!(e.kind(), kind, "{f}: {e}");
            assert_eq!(e.context("filter"), Some(f));
        }
    }

    #[test]
    fn like_patterns() {
        assert!(like("champion", "champ%"));
        assert!(like("champion", "%pion"));
        assert!(like("abc", "a_c"));
        assert!(!like("abc", "a_"));
        assert!(like("", "%"));
        assert!(!like("x", ""));
    }

    #[test]
    fn version_filters() {
        let v = ModelVersion {
            name: "Iris".into(),
            run_id: "r1".into(),
            ..ModelVersion::default()
        };
        let f = VersionFilter::parse("t", "name='Iris' and run_id = 'r1'").unwrap();
        assert!(f.matches(&v) && f.may_match_model("Iris") && !f.may_match_model("Other"));
        assert!(
            !VersionFilter::parse("t", "run_id='r2'")
                .unwrap()
                .matches(&v)
        );
        assert!(VersionFilter::parse("t", "").unwrap().matches(&v));
        assert_eq!(
            VersionFilter::parse("t", "tags.x = '1'")
                .unwrap_err()
                .kind(),
            ErrorKind::Unsupported
        );
    }
}
