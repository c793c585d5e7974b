//! Jinja templating with Airflow's context variables (minijinja).
//!
//! Operators keep their templated fields as plain strings and render them inside
//! `execute` with [`Context::render`](crate::Context::render). The variables are
//! Airflow's:
//!
//! | variable | example (logical date 2025-01-08 00:00 Asia/Seoul) |
//! |---|---|
//! | `ds`, `ds_nodash` | `2025-01-08`, `20250108` |
//! | `ts`, `ts_nodash` | `2025-01-08T00:00:00+09:00`, `20250108T000000` |
//! | `logical_date` | a pendulum-like date; `{{ logical_date }}` prints as Python's `str()`: `2025-01-08 00:00:00+09:00` |
//! | date fields and methods | `.year` … `.microsecond`, `.int_timestamp`, `.day_of_week`, `.day_of_year`, `strftime`, `isoformat()`, `timestamp()`, `weekday()`, `isoweekday()`, `date()`, `replace(day=1)`, `in_timezone('UTC')`/`in_tz`, `add(days=1)`, `subtract(months=1)`, `start_of('month')`, `end_of('week')`, `format('YYYY-MM-DD')`, `to_date_string()`, `to_datetime_string()`, `to_iso8601_string()`, `diff_for_humans()` |
//! | `data_interval_start`, `data_interval_end` | same kind of object |
//! | `run_id`, `dag_id`, `task_id`, `params` | from the run and the task |
//! | `var.value.<key>`, `var.json.<key>` | `AIRFLOW_VAR_<KEY>` as text / parsed JSON |
//! | `conn.<conn_id>.host` (`login`, `port`, `schema`, `conn_type`, `extra_dejson`) | from `AIRFLOW_CONN_<CONN_ID>` |
//! | `macros.ds_add(ds, n)`, `macros.ds_format(ds, in, out)` | `2025-01-15`, reformatted dates |
//! | `macros.datetime(2025, 1, 1)`, `.now()`, `.strptime(…)`; `macros.timedelta(days=1)` (`.days`, `.total_seconds()`); `macros.dateutil.relativedelta.relativedelta(months=1)`, `macros.dateutil.parser.parse('2025-03-04T05:06')`; `macros.time.time()`, `macros.uuid.uuid4()`, `macros.random()`, `macros.json.dumps(…)`, `macros.datetime_diff_for_humans(a, b)` | Python's values, printed as Python prints them (`1 day, 0:00:00`, `relativedelta(months=+1)`) |
//! | Python's operators | `logical_date - macros.timedelta(days=1)`, `data_interval_end - data_interval_start` (`.days`), date `+ relativedelta`, `'%02d' % logical_date.month`, `'%s_%s' % (ds_nodash, params.x)`, `-7 % 3` = 2, `'a' + 'b'`, `'-' * 3` (see below) |
//! | Python methods on values | `params.get('days', 7)`, `var.value.get('k', 'default')`, `params.items()` (keys sorted), `ds.replace('-', '')`, `.upper()`, `.startswith(…)`, `'{}-{}'.format(…)` |
//! | filters `ds`, `ds_nodash`, `ts`, `ts_nodash`, `ts_nodash_with_tz` on a date | `{{ data_interval_end \| ds }}` → `2025-01-09`; `ts_nodash_with_tz` → `20250108T000000+0900` |
//! | `ti.xcom_pull(task_ids='train')`, `ti.xcom_pull('train', key='k')` | an upstream task's XCom (its return value by default) in this run; one task id, not a list; a missing XCom is an error naming it (Airflow renders `None`) |
//!
//! **Rendered as on Airflow.** `tests/template_parity.rs` renders 183 cases that
//! Airflow 3.3.2's own templater rendered (`tests/data/templates/gen_template_parity.py`)
//! and compares. Values print as Python's `str()` (`True`, `None`, `['a', 'b']`,
//! `1.0`). minijinja has no operator overloading, so Python's `+`, `-`, `*`, `%`
//! (and a unary `-` before an attribute chain) are rewritten in the source, with
//! minijinja's own parser, into calls of functions with Python's semantics — see
//! `pyops`. Deliberately unsupported (an error, never another answer): integers
//! beyond 128 bits, `relativedelta(weekday=…)` and its two-dates form, free-form
//! `parser.parse`, `macros.ds_format_locale`.
//!
//! **Dates are timezone-aware.** `ds` is the calendar date of the logical date *in the
//! DAG's timezone*: a run at 2025-01-08 00:00 Asia/Seoul has `ds = 2025-01-08`.
//! (Airflow renders `ds` in UTC, which gives `2025-01-07` for that run; use
//! `chrono_tz::UTC` as the DAG timezone to get Airflow's value.)
//!
//! **Undefined variables are errors** that name the variable, the template and the
//! line (`template q.sql line 4: undefined variable 'params.limit'`), never silently
//! empty strings.
//!
//! **`.sql` files**: a templated field whose value ends in `.sql` (Airflow's
//! `template_ext`) names a file, which is looked up in the template search path,
//! read and rendered. Connection passwords, and extras under a sensitive key
//! (`token`, `secret`, `password`, … — Airflow's list), are deliberately *not*
//! exposed to templates (a URL's password in an extra is `***`); hooks take them
//! from the connection.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};

use chrono::DateTime;
use chrono_tz::Tz;
use minijinja::value::{Object, Value};
use minijinja::{Environment, UndefinedBehavior};

use crate::connection::{Connection, Variable};
use crate::error::{Error, ErrorKind, Result};

mod dates;
mod macros;
mod pyops;

use dates::DateObj;

/// Name shown in errors for a template given inline rather than as a file.
const INLINE: &str = "<inline>";

/// File extensions that make a templated field name a template file (Airflow's `template_ext`).
pub const TEMPLATE_EXT: &[&str] = &[".sql"];

/// A minijinja environment set up the Airflow way: strict undefined variables,
/// Airflow's `macros`, and a loader over a template search path.
#[derive(Clone)]
pub struct TemplateEngine {
    env: Arc<Environment<'static>>,
    search_path: Arc<Vec<PathBuf>>,
    /// Inline templates after the operator rewrite (see `pyops`), by their text:
    /// a DAG renders the same few fields again and again.
    rewritten: Arc<Mutex<HashMap<String, Arc<str>>>>,
}

/// How many rewritten inline templates an engine keeps (then it starts over).
const REWRITE_CACHE: usize = 512;

impl fmt::Debug for TemplateEngine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TemplateEngine")
            .field("search_path", &self.search_path)
            .finish()
    }
}

impl Default for TemplateEngine {
    fn default() -> Self {
        TemplateEngine::new(Vec::<PathBuf>::new())
    }
}

impl TemplateEngine {
    /// An engine that looks up template files (and `{% include %}`s) in `search_path`,
    /// first match wins (Airflow's `template_searchpath`).
    pub fn new<P: Into<PathBuf>>(search_path: impl IntoIterator<Item = P>) -> Self {
        let search_path: Vec<PathBuf> = search_path.into_iter().map(Into::into).collect();
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        // SQL and shell commands, not HTML: never escape.
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
        env.set_keep_trailing_newline(true);
        let paths = search_path.clone();
        // Files (and `{% include %}`s) get the same operator rewrite as inline
        // templates; minijinja caches the result per name.
        env.set_loader(move |name| {
            load_template(&paths, name)
                .map(|src| src.map(|src| pyops::rewrite(&src).unwrap_or(src)))
        });
        env.add_global("macros", Value::from_object(macros::Macros));
        // Python's `+`, `-`, `%`: the rewrite turns `a - b` into `__gust_sub(a, b)`.
        env.add_function(pyops::ADD, |a: Value, b: Value| pyops::add(&a, &b));
        env.add_function(pyops::SUB, |a: Value, b: Value| pyops::sub(&a, &b));
        env.add_function(pyops::MUL, |a: Value, b: Value| pyops::mul(&a, &b));
        env.add_function(pyops::NEG, |a: Value| pyops::neg(&a));
        env.add_function(pyops::MOD, |a: Value, b: Value, tuple: Option<bool>| {
            pyops::rem(&a, &b, tuple.unwrap_or(false))
        });
        // Values print as Python prints them: `True`, `None`, `['a', 'b']`.
        env.set_formatter(pyops::formatter);
        // Python's methods on values, which Airflow templates call:
        // `params.get('days', 7)`, `params.items()`, `'{{ ds }}'.replace(…)`, `.upper()`.
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        // Airflow's date filters (airflow/templates.py): `{{ data_interval_end | ds }}`.
        env.add_filter("ds", |v: Value| date_filter(&v, "ds", dates::ds));
        env.add_filter("ds_nodash", |v: Value| {
            date_filter(&v, "ds_nodash", dates::ds_nodash)
        });
        // On a date without a time, `ts` is Python's `date.isoformat()`.
        env.add_filter("ts", |v: Value| match dates::date_only_iso(&v) {
            Some(iso) => Ok(iso),
            None => date_filter(&v, "ts", dates::ts),
        });
        env.add_filter("ts_nodash", |v: Value| {
            date_filter(&v, "ts_nodash", dates::ts_nodash)
        });
        env.add_filter("ts_nodash_with_tz", |v: Value| {
            match dates::date_only_iso(&v) {
                Some(iso) => Ok(iso.replace('-', "")),
                None => date_filter(&v, "ts_nodash_with_tz", dates::ts_nodash_with_tz),
            }
        });
        TemplateEngine {
            env: Arc::new(env),
            search_path: Arc::new(search_path),
            rewritten: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// The directories searched for template files.
    pub fn search_path(&self) -> &[PathBuf] {
        &self.search_path
    }

    /// Renders a templated field: a file from the search path when the value ends in
    /// one of [`TEMPLATE_EXT`], otherwise the value itself as an inline template.
    pub fn render_field(&self, field: &str, vars: &TemplateVars) -> Result<String> {
        if !is_template_file(field) {
            return self.render_inline(field, vars);
        }
        let name = field.trim();
        let template = self
            .env
            .get_template(name)
            .map_err(|e| template_error(name, e, Vec::new()))?;
        let ctx = vars.to_value();
        template.render(&ctx).map_err(|e| {
            let undefined = self.undefined_names(&e, name, template.source(), &ctx);
            template_error(name, e, undefined)
        })
    }

    /// Renders `source` itself as a template, even when it ends in `.sql`: for
    /// fields that are never file names, such as S3 keys.
    pub fn render_inline(&self, source: &str, vars: &TemplateVars) -> Result<String> {
        let ctx = vars.to_value();
        let source = self.rewrite_inline(source);
        let source: &str = &source;
        self.env
            .render_named_str(INLINE, source, &ctx)
            .map_err(|e| {
                let undefined = self.undefined_names(&e, INLINE, source, &ctx);
                template_error(INLINE, e, undefined)
            })
    }

    /// `source` after the operator rewrite (see `pyops`), cached by its text.
    fn rewrite_inline(&self, source: &str) -> Arc<str> {
        // A poisoned lock only means another render panicked mid-insert; the map
        // is still a valid cache.
        let mut cache = self.rewritten.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(hit) = cache.get(source) {
            return hit.clone();
        }
        let out: Arc<str> = pyops::rewrite(source)
            .unwrap_or_else(|| source.to_string())
            .into();
        if cache.len() >= REWRITE_CACHE {
            cache.clear();
        }
        cache.insert(source.to_string(), out.clone());
        out
    }

    /// The variables an undefined-value error is about, e.g. `["params.limit"]`.
    ///
    /// minijinja's strict mode says only "undefined value". So, on that error only,
    /// the template that failed (`source`, or the included template the error names)
    /// is asked for its free variables, including attribute paths; those that are
    /// undefined in `ctx` are the suspects, each cut to its first undefined link
    /// (`params.missing`, not `params.missing.x`). The suspects inside the failing
    /// expression win, then those on the error's line, then all of them — a
    /// variable guarded by `is defined` elsewhere must not be blamed.
    fn undefined_names(
        &self,
        e: &minijinja::Error,
        name: &str,
        source: &str,
        ctx: &Value,
    ) -> Vec<String> {
        let e = innermost(e);
        if e.kind() != minijinja::ErrorKind::UndefinedError {
            return Vec::new();
        }
        let failing = match e.name() {
            Some(other) if other != name => self.env.get_template(other).ok(),
            _ => self.env.template_from_named_str(name, source).ok(),
        };
        let Some(failing) = failing else {
            return Vec::new();
        };
        let source = failing.source();
        let mut suspects: Vec<String> = failing
            .undeclared_variables(true)
            .iter()
            .filter_map(|path| self.first_undefined_link(path, ctx))
            .collect();
        suspects.sort();
        suspects.dedup();
        let mentioned_in = |text: &str| -> Vec<String> {
            suspects
                .iter()
                .filter(|s| mentions(text, s))
                .cloned()
                .collect()
        };
        let in_expression = e
            .range()
            .and_then(|r| source.get(r))
            .map(&mentioned_in)
            .unwrap_or_default();
        if !in_expression.is_empty() {
            return in_expression;
        }
        let on_line = e
            .line()
            .and_then(|n| source.lines().nth(n.saturating_sub(1)))
            .map(&mentioned_in)
            .unwrap_or_default();
        if !on_line.is_empty() {
            return on_line;
        }
        suspects
    }

    /// The shortest prefix of the dotted `path` that is undefined in `ctx` (with the
    /// engine's globals, such as `macros`), or `None` when the whole path is defined.
    fn first_undefined_link(&self, path: &str, ctx: &Value) -> Option<String> {
        let mut end = 0;
        for part in path.split('.') {
            end += if end == 0 { part.len() } else { part.len() + 1 };
            let prefix = &path[..end];
            let undefined = match self.env.compile_expression(prefix) {
                Ok(expr) => expr.eval(ctx).map_or(true, |v| v.is_undefined()),
                Err(_) => return None, // not a plain path: no claim about it
            };
            if undefined {
                return Some(prefix.to_string());
            }
        }
        None
    }
}

/// Whether `text` mentions the dotted `path` as a whole name: `ds` is not mentioned
/// by `dss`, nor `params.a` by `params.ab`.
fn mentions(text: &str, path: &str) -> bool {
    let is_name = |c: char| c.is_alphanumeric() || c == '_';
    text.match_indices(path).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + path.len()..].chars().next();
        !before.is_some_and(|c| is_name(c) || c == '.') && !after.is_some_and(is_name)
    })
}

/// Whether a field value names a template file rather than being a template itself.
pub fn is_template_file(field: &str) -> bool {
    let f = field.trim();
    !f.contains('\n') && TEMPLATE_EXT.iter().any(|ext| f.ends_with(ext))
}

fn load_template(
    paths: &[PathBuf],
    name: &str,
) -> std::result::Result<Option<String>, minijinja::Error> {
    let rel = Path::new(name);
    // Template names are relative paths inside the search path; refuse escapes.
    if rel
        .components()
        .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Ok(None);
    }
    for dir in paths {
        let path = dir.join(rel);
        if path.is_file() {
            return std::fs::read_to_string(&path).map(Some).map_err(|e| {
                minijinja::Error::new(
                    minijinja::ErrorKind::InvalidOperation,
                    format!("cannot read {}: {e}", path.display()),
                )
            });
        }
    }
    Ok(None)
}

/// The gust error of a minijinja error; `undefined` names the variables of an
/// undefined-value error (see `TemplateEngine::undefined_names`).
fn template_error(name: &str, outer: minijinja::Error, undefined: Vec<String>) -> Error {
    let template = outer.name().unwrap_or(name).to_string();
    // Inside an `{% include %}`, what went wrong and where is the included file's error.
    let e = innermost(&outer);
    let failing = e.name().unwrap_or(name);
    let what = match undefined.as_slice() {
        [] => e.kind().to_string(),
        [one] => format!("undefined variable '{one}'{}", hint(one)),
        many => format!("undefined variable, one of '{}'", many.join("', '")),
    };
    let mut msg = match e.line() {
        Some(line) => format!("template {failing} line {line}: {what}"),
        None => format!("template {failing}: {what}"),
    };
    if let Some(detail) = e.detail() {
        msg.push_str(" (");
        msg.push_str(detail);
        msg.push(')');
    }
    if !std::ptr::eq(e, &outer) {
        msg.push_str(&match outer.line() {
            Some(line) => format!(", included from {template} line {line}"),
            None => format!(", included from {template}"),
        });
    }
    if e.kind() == minijinja::ErrorKind::TemplateNotFound {
        msg.push_str("; check the DAG's template search path");
    }
    let kind = if e.kind() == minijinja::ErrorKind::TemplateNotFound {
        ErrorKind::NotFound
    } else {
        ErrorKind::Template
    };
    Error::new(kind, "template.render", msg)
        .with("template", template)
        .with_retryable(false)
}

/// The innermost minijinja error of `e`'s source chain: minijinja reports an error
/// inside an `{% include %}` as "could not render include", with the real one as
/// its source.
fn innermost(e: &minijinja::Error) -> &minijinja::Error {
    let mut e = e;
    while let Some(inner) =
        std::error::Error::source(e).and_then(|s| s.downcast_ref::<minijinja::Error>())
    {
        e = inner;
    }
    e
}

/// Why a connection's password or sensitive extra is undefined in templates.
const SECRET_HINT: &str =
    " (secrets are not exposed to templates: a hook reads them from the connection)";

/// What to do about an undefined `var.` or `conn.` lookup: set the variable it reads.
fn hint(path: &str) -> String {
    let mut parts = path.split('.');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("var"), Some("value" | "json"), Some(key)) => {
            format!(" (set {})", crate::Variable::env_name(key))
        }
        (Some("conn"), Some(_), Some("password")) => SECRET_HINT.to_string(),
        (Some("conn"), Some(_), Some("extra_dejson"))
            if parts.any(crate::connection::is_sensitive_key) =>
        {
            SECRET_HINT.to_string()
        }
        (Some("conn"), Some(conn_id), _) => {
            format!(" (set {})", crate::connection::conn_env_name(conn_id))
        }
        _ => String::new(),
    }
}

/// Where `ti.xcom_pull` in a template reads XComs from: the run's store
/// (a [`Context`](crate::Context) gives its own).
pub trait XComLookup: Send + Sync + fmt::Debug {
    /// The XCom `key` pushed by task `task_id`, if any.
    fn xcom(&self, task_id: &str, key: &str) -> Option<serde_json::Value>;
}

/// The values a template sees. Built by [`Context`](crate::Context) for each task try.
#[derive(Debug, Clone)]
pub struct TemplateVars {
    /// The run's logical date, in the DAG's timezone.
    pub logical_date: DateTime<Tz>,
    /// Start of the data interval.
    pub data_interval_start: DateTime<Tz>,
    /// End of the data interval.
    pub data_interval_end: DateTime<Tz>,
    /// The DAG's id.
    pub dag_id: String,
    /// The task's id.
    pub task_id: String,
    /// The run's id.
    pub run_id: String,
    /// The try number, starting at 1.
    pub try_number: u32,
    /// The DAG's params merged with the run's.
    pub params: serde_json::Value,
    /// The run's XComs, for `ti.xcom_pull` (`None`: templates have no `ti`).
    pub xcom: Option<Arc<dyn XComLookup>>,
}

impl TemplateVars {
    fn to_value(&self) -> Value {
        let ld = self.logical_date;
        let mut m: BTreeMap<&str, Value> = BTreeMap::new();
        m.insert("ds", Value::from(ld.format("%Y-%m-%d").to_string()));
        m.insert("ds_nodash", Value::from(ld.format("%Y%m%d").to_string()));
        m.insert("ts", Value::from(isoformat(&ld)));
        m.insert(
            "ts_nodash",
            Value::from(ld.format("%Y%m%dT%H%M%S").to_string()),
        );
        m.insert(
            "ts_nodash_with_tz",
            Value::from(ld.format("%Y%m%dT%H%M%S%z").to_string()),
        );
        m.insert("logical_date", Value::from_object(DateObj::aware(ld)));
        m.insert(
            "data_interval_start",
            Value::from_object(DateObj::aware(self.data_interval_start)),
        );
        m.insert(
            "data_interval_end",
            Value::from_object(DateObj::aware(self.data_interval_end)),
        );
        m.insert("dag_id", Value::from(self.dag_id.clone()));
        m.insert("task_id", Value::from(self.task_id.clone()));
        m.insert("run_id", Value::from(self.run_id.clone()));
        m.insert("try_number", Value::from(self.try_number));
        m.insert("params", json_value(&self.params));
        m.insert("var", Value::from_object(Vars));
        m.insert("conn", Value::from_object(Conns));
        if let Some(xcom) = &self.xcom {
            let ti = Value::from_object(TaskInstance {
                xcom: xcom.clone(),
                task_id: self.task_id.clone(),
                try_number: self.try_number,
            });
            m.insert("ti", ti.clone());
            m.insert("task_instance", ti);
        }
        Value::from_iter(m)
    }
}

/// Python's `datetime.isoformat()`: seconds always, fractions only when present.
fn isoformat(d: &DateTime<Tz>) -> String {
    if d.timestamp_subsec_micros() == 0 {
        d.format("%Y-%m-%dT%H:%M:%S%:z").to_string()
    } else {
        d.format("%Y-%m-%dT%H:%M:%S%.6f%:z").to_string()
    }
}

/// Applies one of Airflow's date filters to a date object (`logical_date`,
/// `data_interval_start`…); anything else is an error naming the filter, as
/// Airflow's filter fails on a value without `strftime`.
fn date_filter(
    v: &Value,
    name: &str,
    f: impl Fn(&DateObj) -> String,
) -> std::result::Result<String, minijinja::Error> {
    dates::filter_text(v, f).ok_or_else(|| {
        minijinja::Error::new(
            minijinja::ErrorKind::InvalidOperation,
            format!("filter {name} needs a date (logical_date, data_interval_start, …), not {v:?}"),
        )
    })
}

pub(crate) mod chrono_format {
    use std::fmt::Write;

    use chrono::format::{Item, StrftimeItems};

    /// Types that chrono can format with a strftime string, failing (not panicking,
    /// as chrono's `Display` would) on an invalid format.
    pub trait Formattable {
        /// Formats, failing (not panicking) on an invalid format string.
        fn format_checked(&self, fmt: &str) -> Result<String, minijinja::Error>;
    }

    fn check(fmt: &str) -> Result<Vec<Item<'_>>, minijinja::Error> {
        let items: Vec<Item<'_>> = StrftimeItems::new(fmt).collect();
        if items.iter().any(|i| matches!(i, Item::Error)) {
            return Err(minijinja::Error::new(
                minijinja::ErrorKind::InvalidOperation,
                format!("invalid strftime format {fmt:?}"),
            ));
        }
        Ok(items)
    }

    impl<Tz: chrono::TimeZone> Formattable for chrono::DateTime<Tz>
    where
        Tz::Offset: std::fmt::Display,
    {
        fn format_checked(&self, fmt: &str) -> Result<String, minijinja::Error> {
            let items = check(fmt)?;
            let mut out = String::new();
            write!(out, "{}", self.format_with_items(items.into_iter())).map_err(|_| {
                minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, "format failed")
            })?;
            Ok(out)
        }
    }

    impl Formattable for chrono::NaiveDateTime {
        fn format_checked(&self, fmt: &str) -> Result<String, minijinja::Error> {
            let items = check(fmt)?;
            let mut out = String::new();
            write!(out, "{}", self.format_with_items(items.into_iter())).map_err(|_| {
                minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, "format failed")
            })?;
            Ok(out)
        }
    }
}

fn invalid(msg: String) -> minijinja::Error {
    minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, msg)
}

/// `var`: `var.value.<key>` and `var.json.<key>`.
#[derive(Debug)]
struct Vars;

impl Object for Vars {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match key.as_str()? {
            "value" => Some(Value::from_object(VarLookup { json: false })),
            "json" => Some(Value::from_object(VarLookup { json: true })),
            _ => None,
        }
    }
}

#[derive(Debug)]
struct VarLookup {
    json: bool,
}

impl Object for VarLookup {
    // A missing variable is undefined, which strict mode reports with the line.
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let key = key.as_str()?;
        if self.json {
            Variable::get_json(key).ok().map(|v| json_value(&v))
        } else {
            Variable::get_opt(key).ok().flatten().map(Value::from)
        }
    }

    /// `var.value.get('key', default)` and `var.json.get('key', default)`, as
    /// Airflow's `VariableAccessor.get`: the default (or none) for a variable
    /// that is not set, instead of an error.
    fn call_method(
        self: &Arc<Self>,
        _state: &minijinja::State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> std::result::Result<Value, minijinja::Error> {
        if method != "get" {
            return Err(minijinja::Error::from(minijinja::ErrorKind::UnknownMethod));
        }
        let (key, default): (&str, Option<Value>) = minijinja::value::from_args(args)?;
        Ok(self
            .get_value(&Value::from(key))
            .or(default)
            .unwrap_or(Value::from(())))
    }
}

/// `ti`: the task instance, for `ti.xcom_pull(task_ids=…, key=…)`.
#[derive(Debug)]
struct TaskInstance {
    xcom: Arc<dyn XComLookup>,
    task_id: String,
    try_number: u32,
}

impl Object for TaskInstance {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match key.as_str()? {
            "task_id" => Some(Value::from(self.task_id.clone())),
            "try_number" => Some(Value::from(self.try_number)),
            _ => None,
        }
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &minijinja::State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> std::result::Result<Value, minijinja::Error> {
        if method != "xcom_pull" {
            return Err(minijinja::Error::new(
                minijinja::ErrorKind::UnknownMethod,
                format!("ti has no method {method}; it has xcom_pull"),
            ));
        }
        let (task_ids, kwargs): (Option<&str>, minijinja::value::Kwargs) =
            minijinja::value::from_args(args)?;
        let task_id: &str = match task_ids {
            Some(t) => t,
            None => kwargs.get("task_ids")?,
        };
        let key: Option<&str> = kwargs.get("key")?;
        kwargs.assert_all_used()?;
        let key = key.unwrap_or(crate::context::RETURN_VALUE);
        // Airflow answers None; a config rendered with `None` in it fails far
        // from here, so a missing XCom is an error that names it.
        self.xcom
            .xcom(task_id, key)
            .map(|v| json_value(&v))
            .ok_or_else(|| {
                invalid(format!(
                    "ti.xcom_pull: task `{task_id}` has no XCom `{key}` in this run (not upstream, not run yet, or it returned nothing)"
                ))
            })
    }
}

/// `conn`: `conn.<conn_id>.<field>` from `AIRFLOW_CONN_*`.
#[derive(Debug)]
struct Conns;

impl Object for Conns {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let conn = Connection::get(key.as_str()?).ok()?;
        let mut m: BTreeMap<&str, Value> = BTreeMap::new();
        m.insert("conn_id", Value::from(conn.conn_id()));
        m.insert("conn_type", Value::from(conn.conn_type()));
        m.insert("host", opt(conn.host()));
        m.insert("login", opt(conn.login()));
        m.insert("schema", opt(conn.schema()));
        m.insert(
            "port",
            conn.port().map(Value::from).unwrap_or(Value::from(())),
        );
        // Secrets stay out, as the password does: a rendered field may be
        // logged, shown in a preview, or end up in an XCom.
        m.insert(
            "extra_dejson",
            json_value(&crate::connection::template_extras(
                &serde_json::Value::Object(conn.extra_dejson().clone()),
            )),
        );
        Some(Value::from_iter(m))
    }
}

/// JSON to a template value; integers become `i64` where they fit, so arithmetic
/// mixes them with negative numbers as Python would. (Note minijinja parses
/// `-params.days` as `(-params).days`: write `-(params.days)`.)
pub(crate) fn json_value(v: &serde_json::Value) -> Value {
    use serde_json::Value as J;
    match v {
        J::Null => Value::from(()),
        J::Bool(b) => Value::from(*b),
        J::Number(n) => n
            .as_i64()
            .map(Value::from)
            .or_else(|| n.as_u64().map(Value::from))
            .unwrap_or_else(|| Value::from(n.as_f64().unwrap_or(f64::NAN))),
        J::String(s) => Value::from(s.as_str()),
        J::Array(a) => Value::from(a.iter().map(json_value).collect::<Vec<_>>()),
        J::Object(o) => Value::from_iter(o.iter().map(|(k, v)| (k.clone(), json_value(v)))),
    }
}

fn opt(s: Option<&str>) -> Value {
    s.map(Value::from).unwrap_or(Value::from(()))
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn python_methods_as_airflow_templates_call_them() {
        assert_eq!(
            render("{{ params.get('n', 7) }} {{ params.get('missing', 'dflt') }} {{ ds.replace('-', '/') }} {{ dag_id.upper() }}")
                .unwrap(),
            "3 dflt 2025/01/08 D"
        );
        assert_eq!(
            render("{% for k, v in params.items() %}{{ k }}={{ v }}{% endfor %}").unwrap(),
            "n=3table=iris"
        );
        assert_eq!(
            render("[{{ var.value.get('gust_tpl_surely_unset', 'fallback') }}]").unwrap(),
            "[fallback]"
        );
    }

    #[test]
    fn airflow_date_filters() {
        assert_eq!(
            render("{{ data_interval_end | ds }} {{ logical_date | ds_nodash }} {{ logical_date | ts }}").unwrap(),
            "2025-01-09 20250108 2025-01-08T00:00:00+09:00"
        );
        assert_eq!(
            render("{{ logical_date | ts_nodash }} {{ logical_date | ts_nodash_with_tz }}")
                .unwrap(),
            "20250108T000000 20250108T000000+0900"
        );
        let e = render("{{ ds | ds_nodash }}").unwrap_err();
        assert!(
            e.to_string().contains("filter ds_nodash needs a date"),
            "{e}"
        );
    }

    #[test]
    fn hints_name_the_environment_variable() {
        assert_eq!(hint("var.value.my_key"), " (set AIRFLOW_VAR_MY_KEY)");
        assert_eq!(hint("var.json.cfg"), " (set AIRFLOW_VAR_CFG)");
        assert_eq!(hint("conn.pg_main.host"), " (set AIRFLOW_CONN_PG_MAIN)");
        assert_eq!(hint("params.x"), "");
    }

    fn vars() -> TemplateVars {
        let ld = chrono_tz::Asia::Seoul
            .with_ymd_and_hms(2025, 1, 8, 0, 0, 0)
            .unwrap();
        TemplateVars {
            logical_date: ld,
            data_interval_start: ld,
            data_interval_end: ld + chrono::Duration::days(1),
            dag_id: "d".into(),
            task_id: "t".into(),
            run_id: "manual__2025-01-08T00:00:00+09:00".into(),
            try_number: 1,
            params: serde_json::json!({"table": "iris", "n": 3}),
            xcom: None,
        }
    }

    fn render(s: &str) -> Result<String> {
        TemplateEngine::default().render_field(s, &vars())
    }

    #[test]
    fn airflow_date_variables() {
        assert_eq!(
            render("{{ ds }} {{ ds_nodash }} {{ ts }} {{ ts_nodash }}").unwrap(),
            "2025-01-08 20250108 2025-01-08T00:00:00+09:00 20250108T000000"
        );
        assert_eq!(
            render("{{ logical_date.strftime('%Y/%m/%d %H') }} {{ logical_date.year }}-{{ logical_date.month }}-{{ logical_date.day }}")
                .unwrap(),
            "2025/01/08 00 2025-1-8"
        );
        assert_eq!(
            render("{{ logical_date }}|{{ data_interval_end.isoformat() }}").unwrap(),
            // Python's str() of a datetime has a space; isoformat() a `T`.
            "2025-01-08 00:00:00+09:00|2025-01-09T00:00:00+09:00"
        );
    }

    #[test]
    fn macros_and_params() {
        assert_eq!(
            render("{{ macros.ds_add(ds, -7) }} {{ macros.ds_add('2024-02-28', 1) }}").unwrap(),
            "2025-01-01 2024-02-29"
        );
        assert_eq!(
            render("{{ macros.ds_format(ds, '%Y-%m-%d', '%d/%m/%Y') }}").unwrap(),
            "08/01/2025"
        );
        assert_eq!(
            render("{{ params.table }}_{{ params.n + 1 }}").unwrap(),
            "iris_4"
        );
        assert_eq!(
            render("{{ macros.ds_add(ds, -(params.n)) }}").unwrap(),
            "2025-01-05"
        );
        let e = render("{{ macros.ds_add('nope', 1) }}").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Template);
        assert!(e.to_string().contains("YYYY-MM-DD"), "{e}");
    }

    #[test]
    fn undefined_is_an_error_naming_template_and_line() {
        let e = render("SELECT 1;\nSELECT {{ params.missing }};").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Template);
        let text = e.to_string();
        assert!(text.contains("<inline> line 2"), "{text}");
        assert!(
            text.contains("undefined variable 'params.missing'"),
            "{text}"
        );
        assert!(!e.is_retryable());
    }

    #[test]
    fn undefined_names_the_variable_also_in_an_included_file() {
        let e = render("{% if params.x is defined %}{{ params.x }}{% endif %}\n{{ a }} {{ b }}")
            .unwrap_err();
        // The failing expression wins over other undefined names on the line, and a
        // guarded name is not blamed.
        assert!(
            e.to_string().contains("line 2: undefined variable 'a' "),
            "{e}"
        );

        let dir = std::env::temp_dir().join(format!("gust-tpl-undef-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("outer.sql"),
            "SELECT 1;\n{% include 'inner.sql' %}",
        )
        .unwrap();
        std::fs::write(
            dir.join("inner.sql"),
            "-- x\n-- y\nSELECT {{ var.value.gust_tpl_undef }};",
        )
        .unwrap();
        let engine = TemplateEngine::new([dir.clone()]);
        let e = engine.render_field("outer.sql", &vars()).unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("template inner.sql line 3: undefined variable 'var.value.gust_tpl_undef' (set AIRFLOW_VAR_GUST_TPL_UNDEF), included from outer.sql line 2"),
            "{text}"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn mentions_matches_whole_names_only() {
        assert!(mentions("{{ ds }}", "ds"));
        assert!(!mentions("{{ dss }}", "ds"));
        assert!(!mentions("{{ x.ds }}", "ds"));
        assert!(mentions("a + params.n)", "params.n"));
        assert!(!mentions("params.nn", "params.n"));
    }

    #[test]
    fn bad_strftime_is_an_error_not_a_panic() {
        let e = render("{{ logical_date.strftime('%Q%') }}").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Template);
    }

    #[test]
    fn sql_files_come_from_the_search_path() {
        let dir = std::env::temp_dir().join(format!("gust-tpl-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("sub/q.sql"), "SELECT '{{ ds }}';\n").unwrap();
        let engine = TemplateEngine::new([dir.clone()]);
        assert_eq!(
            engine.render_field("sub/q.sql", &vars()).unwrap(),
            "SELECT '2025-01-08';\n"
        );
        let e = engine.render_field("missing.sql", &vars()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert!(e.to_string().contains("missing.sql"), "{e}");
        // No escaping out of the search path.
        assert!(engine.render_field("../x.sql", &vars()).is_err());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn variables_from_env() {
        // SAFETY: unique variable names; tests in this module do not read them concurrently.
        unsafe {
            std::env::set_var("AIRFLOW_VAR_GUST_TPL_DIR", "/data/dags");
            std::env::set_var("AIRFLOW_VAR_GUST_TPL_CFG", r#"{"bucket": "b1"}"#);
        }
        assert_eq!(
            render("{{ var.value.gust_tpl_dir }} {{ var.json.gust_tpl_cfg.bucket }}").unwrap(),
            "/data/dags b1"
        );
        assert!(render("{{ var.value.gust_tpl_nope }}").is_err());
    }
}
