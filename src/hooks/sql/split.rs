//! Statement splitting and parameter binding on sqlparser's tokenizer.
//!
//! Splitting on `;` by hand breaks on `';'` in a string, `-- a; comment`,
//! `$$ … ; … $$` function bodies and MySQL's `'it\'s; here'`. The tokenizer of the
//! dialect already knows each of those, so a `;` *token* is a statement boundary
//! and nothing else is. Statements keep their original text (comments included),
//! located through the tokens' line/column spans.

use serde_json::Value;
use sqlparser::dialect::{MySqlDialect, PostgreSqlDialect, SQLiteDialect};
use sqlparser::tokenizer::{Location, Token, TokenWithSpan, Tokenizer, Whitespace};

use super::{Dialect, Parameters};
use crate::error::{Error, ErrorKind, Result};

fn tokenize(dialect: Dialect, sql: &str) -> Result<Vec<TokenWithSpan>> {
    let result = match dialect {
        Dialect::Postgres => Tokenizer::new(&PostgreSqlDialect {}, sql).tokenize_with_location(),
        Dialect::MySql => Tokenizer::new(&MySqlDialect {}, sql).tokenize_with_location(),
        Dialect::Sqlite => Tokenizer::new(&SQLiteDialect {}, sql).tokenize_with_location(),
    };
    result.map_err(|e| {
        Error::new(
            ErrorKind::InvalidInput,
            "sql.tokenize",
            format!("cannot read the SQL as {dialect}: {e}"),
        )
    })
}

/// Maps the tokenizer's 1-based (line, column-in-chars) locations to byte offsets.
struct Offsets<'a> {
    sql: &'a str,
    line_starts: Vec<usize>,
}

impl<'a> Offsets<'a> {
    fn new(sql: &'a str) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(sql.match_indices('\n').map(|(i, _)| i + 1));
        Offsets { sql, line_starts }
    }

    fn byte(&self, loc: Location) -> usize {
        let Some(&start) = self.line_starts.get((loc.line as usize).saturating_sub(1)) else {
            return self.sql.len();
        };
        let col = (loc.column as usize).saturating_sub(1);
        self.sql[start..]
            .char_indices()
            .nth(col)
            .map_or(self.sql.len(), |(i, _)| start + i)
    }
}

fn is_trivia(t: &Token) -> bool {
    matches!(t, Token::Whitespace(_) | Token::EOF)
}

/// Splits `sql` into statements at `;` tokens of `dialect`. Statements holding only
/// whitespace and comments are dropped; each statement is trimmed and has no `;`.
pub fn split_statements(dialect: Dialect, sql: &str) -> Result<Vec<String>> {
    let tokens = tokenize(dialect, sql)?;
    let offsets = Offsets::new(sql);
    let mut out = Vec::new();
    let mut start = 0;
    let mut has_code = false;
    for t in &tokens {
        match &t.token {
            Token::SemiColon => {
                let end = offsets.byte(t.span.start);
                if has_code {
                    out.push(sql[start..end].trim().to_string());
                }
                start = end + 1;
                has_code = false;
            }
            Token::Whitespace(
                Whitespace::SingleLineComment { .. } | Whitespace::MultiLineComment(_),
            ) => {}
            tok if !is_trivia(tok) => has_code = true,
            _ => {}
        }
    }
    if has_code && start < sql.len() {
        out.push(sql[start..].trim().to_string());
    }
    Ok(out)
}

/// One statement ready for the driver: dialect placeholders and their values in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Bound {
    /// The statement text, `:name` placeholders rewritten to the dialect's positional form.
    pub sql: String,
    /// The values of the placeholders, in order.
    pub args: Vec<Value>,
}

/// Binds `params` to one statement (`index` is 1-based, for messages): counts its
/// positional placeholders (`?` on MySQL/SQLite, `$n` on PostgreSQL) or rewrites
/// its `:name` placeholders, and fails on any mismatch before the server sees it.
pub fn bind(dialect: Dialect, sql: &str, params: &Parameters, index: usize) -> Result<Bound> {
    let tokens = tokenize(dialect, sql)?;
    let offsets = Offsets::new(sql);
    let invalid =
        |msg: String| Error::new(ErrorKind::InvalidInput, "sql.bind", msg).with("statement", index);
    let mut positional = 0usize;
    // (byte start, byte end, name) of each `:name`.
    let mut named: Vec<(usize, usize, String)> = Vec::new();
    let mut prev: Option<&TokenWithSpan> = None;
    for t in &tokens {
        match &t.token {
            Token::Placeholder(p) if p.starts_with('$') => {
                let n: usize = p[1..].parse().unwrap_or(0);
                positional = positional.max(n);
            }
            Token::Placeholder(p) if p.starts_with('?') => positional += 1,
            Token::Word(w) if w.quote_style.is_none() => {
                if let Some(colon) =
                    prev.filter(|p| matches!(p.token, Token::Colon) && p.span.end == t.span.start)
                {
                    named.push((
                        offsets.byte(colon.span.start),
                        offsets.byte(t.span.end),
                        w.value.clone(),
                    ));
                }
            }
            _ => {}
        }
        prev = Some(t);
    }
    match params {
        Parameters::None | Parameters::Positional(_) if !named.is_empty() => Err(invalid(format!(
            "statement {index} uses named placeholder :{} but the parameters are not a map",
            named[0].2
        ))),
        Parameters::None if positional > 0 => Err(invalid(format!(
            "statement {index} has {positional} placeholder(s) but no parameters were given"
        ))),
        Parameters::None => Ok(Bound {
            sql: sql.to_string(),
            args: Vec::new(),
        }),
        Parameters::Positional(values) if values.len() != positional => Err(invalid(format!(
            "statement {index} has {positional} placeholder(s) but {} parameter(s) were given",
            values.len()
        ))),
        Parameters::Positional(values) => Ok(Bound {
            sql: sql.to_string(),
            args: values.clone(),
        }),
        Parameters::Named(_) if positional > 0 => Err(invalid(format!(
            "statement {index} mixes positional placeholders with named parameters"
        ))),
        Parameters::Named(map) => {
            let mut text = String::with_capacity(sql.len());
            let mut args: Vec<Value> = Vec::new();
            let mut order: Vec<&str> = Vec::new();
            let mut last = 0;
            for (start, end, name) in &named {
                let value = map.get(name).ok_or_else(|| {
                    invalid(format!(
                        "statement {index} uses :{name} but the parameters have no {name:?}"
                    ))
                })?;
                text.push_str(&sql[last..*start]);
                match dialect {
                    // PostgreSQL numbers its placeholders: one number per distinct name.
                    Dialect::Postgres => {
                        let n = match order.iter().position(|o| o == name) {
                            Some(i) => i + 1,
                            None => {
                                order.push(name);
                                args.push(value.clone());
                                order.len()
                            }
                        };
                        text.push_str(&format!("${n}"));
                    }
                    Dialect::MySql | Dialect::Sqlite => {
                        text.push('?');
                        args.push(value.clone());
                    }
                }
                last = *end;
            }
            text.push_str(&sql[last..]);
            Ok(Bound { sql: text, args })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const FEATURES: &str = include_str!("../../../tests/fixtures/sql/features.sql");

    #[test]
    fn features_sql_splits_into_its_delete_and_insert() {
        for d in [Dialect::MySql, Dialect::Postgres, Dialect::Sqlite] {
            let s = split_statements(d, FEATURES).unwrap();
            assert_eq!(s.len(), 2, "{d}: {s:#?}");
            assert!(s[0].contains("DELETE FROM mlops.credit_score_features_target"));
            assert!(s[0].ends_with(")"), "no trailing semicolon: {}", s[0]);
            assert!(s[1].contains("INSERT INTO mlops.credit_score_features_target"));
            assert!(s[1].ends_with("AND a.customer_id = b.customer_id"));
            // '%Y-%m-%d' and the Korean comments survive untouched.
            assert!(s[0].contains("'%Y-%m-%d'") && s[0].contains("일주일"));
        }
    }

    #[test]
    fn semicolons_inside_quotes_and_comments_do_not_split() {
        let sql = "SELECT 'a;b', \"c;d\" -- e;f\n; /* g;h */ SELECT 2;;  ; -- only a comment;\n";
        let s = split_statements(Dialect::Postgres, sql).unwrap();
        assert_eq!(
            s,
            vec!["SELECT 'a;b', \"c;d\" -- e;f", "/* g;h */ SELECT 2"]
        );
    }

    #[test]
    fn dollar_quoted_bodies_stay_whole_on_postgres() {
        let sql = "CREATE FUNCTION f() RETURNS int AS $body$ BEGIN RETURN 1; END; $body$ \
                   LANGUAGE plpgsql; SELECT $$x;y$$; SELECT f()";
        let s = split_statements(Dialect::Postgres, sql).unwrap();
        assert_eq!(s.len(), 3, "{s:#?}");
        assert!(s[0].ends_with("LANGUAGE plpgsql"));
        assert_eq!(s[1], "SELECT $$x;y$$");
    }

    #[test]
    fn backslash_escapes_follow_the_dialect() {
        // MySQL: \' escapes the quote, so the ; is inside the string.
        let sql = r"INSERT INTO t VALUES ('it\'s; fine'); SELECT 1 # a; comment";
        let s = split_statements(Dialect::MySql, sql).unwrap();
        assert_eq!(
            s,
            vec![
                r"INSERT INTO t VALUES ('it\'s; fine')",
                "SELECT 1 # a; comment"
            ]
        );
        // PostgreSQL standard strings have no backslash escapes; E'' strings do.
        let sql = r"SELECT 'a\'; SELECT E'b\'; c'";
        let s = split_statements(Dialect::Postgres, sql).unwrap();
        assert_eq!(s, vec![r"SELECT 'a\'", r"SELECT E'b\'; c'"]);
    }

    #[test]
    fn multibyte_text_keeps_offsets_right() {
        let s = split_statements(Dialect::Sqlite, "SELECT '한;글';\nSELECT 'é'").unwrap();
        assert_eq!(s, vec!["SELECT '한;글'", "SELECT 'é'"]);
    }

    #[test]
    fn unterminated_string_is_a_typed_error() {
        let e = split_statements(Dialect::MySql, "SELECT 'oops; SELECT 1").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert_eq!(e.operation(), "sql.tokenize");
    }

    #[test]
    fn binding_counts_and_rewrites_placeholders() {
        let p = Parameters::Positional(vec![json!(1), json!("x")]);
        assert_eq!(
            bind(Dialect::MySql, "SELECT ?, ?", &p, 1)
                .unwrap()
                .args
                .len(),
            2
        );
        assert_eq!(
            bind(Dialect::Postgres, "SELECT $2, $1, $1", &p, 1)
                .unwrap()
                .args
                .len(),
            2
        );
        let e = bind(Dialect::Sqlite, "SELECT ?", &p, 3).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(
            e.message()
                .contains("statement 3 has 1 placeholder(s) but 2"),
            "{e}"
        );
        // A ? inside a string is not a placeholder.
        assert!(bind(Dialect::MySql, "SELECT '?'", &Parameters::None, 1).is_ok());

        let named = Parameters::from(json!({"d": "2025-01-08", "n": 3}));
        let b = bind(
            Dialect::Postgres,
            "SELECT :d::date, :n, :d, '::x' ",
            &named,
            1,
        )
        .unwrap();
        assert_eq!(b.sql, "SELECT $1::date, $2, $1, '::x' ");
        assert_eq!(b.args, vec![json!("2025-01-08"), json!(3)]);
        let b = bind(Dialect::MySql, "SELECT :d, :n, :d", &named, 1).unwrap();
        assert_eq!(b.sql, "SELECT ?, ?, ?");
        assert_eq!(
            b.args,
            vec![json!("2025-01-08"), json!(3), json!("2025-01-08")]
        );
        let e = bind(Dialect::MySql, "SELECT :missing", &named, 2).unwrap_err();
        assert!(e.message().contains(":missing"), "{e}");
    }
}
