//! Python's `+`, `-` and `%` in templates, and Python's way of printing values.
//!
//! minijinja has no operator overloading: `logical_date - macros.timedelta(days=1)`
//! or `'%02d' % logical_date.month` are errors there, while Airflow (Jinja2 on
//! Python) evaluates them with Python's semantics. So every template's source is
//! parsed once with minijinja's own parser and each binary `+`, `-` and `%` is
//! rewritten *in the source text* into a call of a global function
//! (`a - b` → `__gust_sub(a, b)`), innermost first. The rewrite adds no newline,
//! so line numbers in errors stay right. The functions implement Python's
//! semantics for the values gust templates see: numbers (overflow beyond `i128`
//! is an error, Python would grow), Python's floor modulo, string and list
//! concatenation, printf-style `str % args`, and date arithmetic with
//! `timedelta`/`relativedelta`.

use std::fmt::Write as _;

use minijinja::machinery::ast::{self, BinOpKind, CallArg, Expr, Stmt};
use minijinja::value::{Value, ValueKind};
use minijinja::{Error, ErrorKind};

use super::dates::{self, DateObj, DateOnly, Delta, RelDelta};

/// The global function a `+` becomes.
pub(crate) const ADD: &str = "__gust_add";
/// The global function a `-` becomes.
pub(crate) const SUB: &str = "__gust_sub";
/// The global function a `%` becomes; a third argument `true` says the right side
/// was written as a tuple (`'%s_%s' % (a, b)`), which minijinja makes a list.
pub(crate) const MOD: &str = "__gust_mod";
/// The global function a `*` becomes.
pub(crate) const MUL: &str = "__gust_mul";
/// The global function a unary `-` before an attribute chain becomes: minijinja
/// reads `-params.n` as `(-params).n`, Python as `-(params.n)`.
pub(crate) const NEG: &str = "__gust_neg";

// ---------------------------------------------------------------------------
// The source rewrite
// ---------------------------------------------------------------------------

/// Whether `source` may contain a `+`, `-` or `%` operator at all: a cheap test
/// that spares the parse for most templates (a `%` of `{%`/`%}` does not count).
fn may_have_operators(source: &str) -> bool {
    let b = source.as_bytes();
    b.iter().enumerate().any(|(i, &c)| match c {
        b'+' | b'-' | b'*' => true,
        b'%' => !(i > 0 && b[i - 1] == b'{') && b.get(i + 1) != Some(&b'}'),
        _ => false,
    })
}

/// `source` with every binary `+`, `-`, `%` turned into a call of [`ADD`],
/// [`SUB`] or [`MOD`]; `source` itself when there is none, or when it does not
/// parse (minijinja then reports the syntax error on the original text).
pub(crate) fn rewrite(source: &str) -> Option<String> {
    if !may_have_operators(source) {
        return None;
    }
    let ast =
        minijinja::machinery::parse(source, "<rewrite>", Default::default(), Default::default())
            .ok()?;
    let mut w = Rewriter {
        source,
        edits: Vec::new(),
        count: 0,
        failed: false,
        negated: Vec::new(),
    };
    w.stmt(&ast);
    if w.failed || w.edits.is_empty() {
        return None;
    }
    // At one offset: closing parens first (inner before outer), then the
    // operator, then opening calls (outer before inner).
    w.edits.sort_by_key(|e| (e.at, e.class, e.order));
    let mut out = String::with_capacity(source.len() + w.edits.len() * 8);
    let mut pos = 0;
    for e in &w.edits {
        if e.at < pos || e.at > source.len() {
            return None;
        }
        out.push_str(source.get(pos..e.at)?);
        out.push_str(e.text);
        pos = e.at + e.skip;
    }
    out.push_str(source.get(pos..)?);
    Some(out)
}

struct Edit {
    at: usize,
    /// 0: a closing paren, 1: the operator, 2: an opening call.
    class: u8,
    order: isize,
    text: &'static str,
    /// Bytes of the source replaced (1 for the operator).
    skip: usize,
}

struct Rewriter<'s> {
    source: &'s str,
    edits: Vec<Edit>,
    count: isize,
    failed: bool,
    /// Offsets of the unary `-`s already wrapped around their attribute chain.
    negated: Vec<usize>,
}

impl Rewriter<'_> {
    fn stmts(&mut self, stmts: &[Stmt<'_>]) {
        for s in stmts {
            self.stmt(s);
        }
    }

    #[allow(unreachable_patterns)] // `_`: statements of minijinja features gust does not enable
    fn stmt(&mut self, s: &Stmt<'_>) {
        match s {
            Stmt::Template(t) => self.stmts(&t.children),
            Stmt::EmitExpr(e) => self.expr(&e.expr),
            Stmt::EmitRaw(_) => {}
            Stmt::ForLoop(f) => {
                self.expr(&f.target);
                self.expr(&f.iter);
                if let Some(e) = &f.filter_expr {
                    self.expr(e);
                }
                self.stmts(&f.body);
                self.stmts(&f.else_body);
            }
            Stmt::IfCond(i) => {
                self.expr(&i.expr);
                self.stmts(&i.true_body);
                self.stmts(&i.false_body);
            }
            Stmt::WithBlock(w) => {
                for (a, b) in &w.assignments {
                    self.expr(a);
                    self.expr(b);
                }
                self.stmts(&w.body);
            }
            Stmt::Set(s) => {
                self.expr(&s.target);
                self.expr(&s.expr);
            }
            Stmt::SetBlock(s) => {
                self.expr(&s.target);
                if let Some(f) = &s.filter {
                    self.expr(f);
                }
                self.stmts(&s.body);
            }
            Stmt::AutoEscape(a) => {
                self.expr(&a.enabled);
                self.stmts(&a.body);
            }
            Stmt::FilterBlock(f) => {
                self.expr(&f.filter);
                self.stmts(&f.body);
            }
            Stmt::Block(b) => self.stmts(&b.body),
            Stmt::Import(i) => {
                self.expr(&i.expr);
                self.expr(&i.name);
            }
            Stmt::FromImport(i) => self.expr(&i.expr),
            Stmt::Extends(e) => self.expr(&e.name),
            Stmt::Include(i) => self.expr(&i.name),
            Stmt::Macro(m) => {
                self.exprs(&m.defaults);
                self.stmts(&m.body);
            }
            Stmt::CallBlock(c) => {
                self.call(&c.call);
                self.exprs(&c.macro_decl.defaults);
                self.stmts(&c.macro_decl.body);
            }
            Stmt::Do(d) => self.call(&d.call),
            _ => {}
        }
    }

    fn exprs(&mut self, exprs: &[Expr<'_>]) {
        for e in exprs {
            self.expr(e);
        }
    }

    fn call(&mut self, c: &ast::Call<'_>) {
        self.expr(&c.expr);
        self.args(&c.args);
    }

    fn args(&mut self, args: &[CallArg<'_>]) {
        for a in args {
            match a {
                CallArg::Pos(e) | CallArg::Kwarg(_, e) | CallArg::PosSplat(e) => self.expr(e),
                CallArg::KwargSplat(e) => self.expr(e),
            }
        }
    }

    fn expr(&mut self, e: &Expr<'_>) {
        if matches!(e, Expr::GetAttr(_) | Expr::GetItem(_) | Expr::Call(_)) {
            self.negated_chain(e);
        }
        match e {
            Expr::Var(_) | Expr::Const(_) => {}
            Expr::Slice(s) => {
                self.expr(&s.expr);
                for part in [&s.start, &s.stop, &s.step].into_iter().flatten() {
                    self.expr(part);
                }
            }
            Expr::UnaryOp(u) => self.expr(&u.expr),
            Expr::BinOp(b) => {
                let span = b.span();
                let name = match b.op {
                    BinOpKind::Add => Some((ADD, b'+')),
                    BinOpKind::Sub => Some((SUB, b'-')),
                    BinOpKind::Rem => Some((MOD, b'%')),
                    BinOpKind::Mul => Some((MUL, b'*')),
                    _ => None,
                };
                if let Some((func, op)) = name {
                    self.binop(func, op, span, &b.left, &b.right);
                }
                self.expr(&b.left);
                self.expr(&b.right);
            }
            Expr::Compare(c) => {
                self.expr(&c.expr);
                for op in &c.ops {
                    self.expr(&op.expr);
                }
            }
            Expr::IfExpr(i) => {
                self.expr(&i.test_expr);
                self.expr(&i.true_expr);
                if let Some(f) = &i.false_expr {
                    self.expr(f);
                }
            }
            Expr::Filter(f) => {
                if let Some(e) = &f.expr {
                    self.expr(e);
                }
                self.args(&f.args);
            }
            Expr::Test(t) => {
                self.expr(&t.expr);
                self.args(&t.args);
            }
            Expr::GetAttr(g) => self.expr(&g.expr),
            Expr::GetItem(g) => {
                self.expr(&g.expr);
                self.expr(&g.subscript_expr);
            }
            Expr::Call(c) => self.call(c),
            Expr::List(l) => self.exprs(&l.items),
            Expr::Map(m) => {
                self.exprs(&m.keys);
                self.exprs(&m.values);
            }
        }
    }

    /// `-x.attr…` (minijinja: `(-x).attr…`) becomes `__gust_neg(x.attr…)`, once,
    /// from the outermost link of the chain.
    fn negated_chain(&mut self, e: &Expr<'_>) {
        let mut base = e;
        loop {
            base = match base {
                Expr::GetAttr(g) => &g.expr,
                Expr::GetItem(g) => &g.expr,
                Expr::Call(c) => &c.expr,
                _ => break,
            };
        }
        let Expr::UnaryOp(u) = base else { return };
        if !matches!(u.op, ast::UnaryOpKind::Neg) {
            return;
        }
        let at = u.span().start_offset as usize;
        if self.negated.contains(&at) || self.source.as_bytes().get(at) != Some(&b'-') {
            return;
        }
        self.negated.push(at);
        self.count += 1;
        self.edits.push(Edit {
            at,
            class: 2,
            order: self.count,
            text: "__gust_neg(",
            skip: 1,
        });
        self.edits.push(Edit {
            at: e.span().end_offset as usize,
            class: 0,
            order: -self.count,
            text: ")",
            skip: 0,
        });
    }

    /// Records the edits that turn `left <op> right` into `func(left, right)`.
    fn binop(
        &mut self,
        func: &'static str,
        op: u8,
        span: minijinja::machinery::Span,
        left: &Expr<'_>,
        right: &Expr<'_>,
    ) {
        let (start, end) = (span.start_offset as usize, span.end_offset as usize);
        let gap_from = left.span().end_offset as usize;
        let gap_to = right.span().start_offset as usize;
        // Between the operands there are only blanks, parens and the operator.
        let Some(op_at) = self
            .source
            .as_bytes()
            .get(gap_from..gap_to)
            .and_then(|gap| gap.iter().position(|&c| c == op))
            .map(|i| gap_from + i)
        else {
            self.failed = true;
            return;
        };
        // A tuple on the right of `%` is the argument list, as in Python; a list is
        // one argument. minijinja makes both lists, so the rewrite says which.
        let tuple = op == b'%'
            && matches!(right, Expr::List(_))
            && self.source.as_bytes().get(gap_to) == Some(&b'(');
        self.count += 1;
        let order = self.count;
        let open: &'static str = match func {
            ADD => "__gust_add(",
            SUB => "__gust_sub(",
            MUL => "__gust_mul(",
            _ => "__gust_mod(",
        };
        self.edits.push(Edit {
            at: start,
            class: 2,
            order,
            text: open,
            skip: 0,
        });
        self.edits.push(Edit {
            at: op_at,
            class: 1,
            order,
            text: ",",
            skip: 1,
        });
        self.edits.push(Edit {
            at: end,
            class: 0,
            order: -order,
            text: if tuple { ", true)" } else { ")" },
            skip: 0,
        });
    }
}

// ---------------------------------------------------------------------------
// The operators
// ---------------------------------------------------------------------------

/// A number as Python sees it (`True` is 1).
#[derive(Debug, Clone, Copy)]
enum Num {
    Int(i128),
    Float(f64),
}

fn num(v: &Value) -> Option<Num> {
    match v.kind() {
        ValueKind::Bool => Some(Num::Int(i128::from(v.is_true()))),
        ValueKind::Number if v.is_integer() => i128::try_from(v.clone()).ok().map(Num::Int),
        ValueKind::Number => f64::try_from(v.clone()).ok().map(Num::Float),
        _ => None,
    }
}

fn int_value(i: i128) -> Value {
    match i64::try_from(i) {
        Ok(small) => Value::from(small),
        Err(_) => Value::from(i),
    }
}

fn check_defined(a: &Value, b: &Value) -> Result<(), Error> {
    if a.is_undefined() || b.is_undefined() {
        return Err(Error::from(ErrorKind::UndefinedError));
    }
    Ok(())
}

/// Python's `TypeError` for an operator, in Python's words.
fn unsupported(op: &str, a: &Value, b: &Value) -> Error {
    Error::new(
        ErrorKind::InvalidOperation,
        format!(
            "unsupported operand type(s) for {op}: '{}' and '{}'",
            type_name(a),
            type_name(b)
        ),
    )
}

/// Python's name of a value's type, for error messages.
pub(crate) fn type_name(v: &Value) -> &'static str {
    if let Some(d) = v.downcast_object_ref::<DateObj>() {
        return if d.is_naive() { "datetime" } else { "DateTime" };
    }
    if v.downcast_object_ref::<DateOnly>().is_some() {
        return "date";
    }
    if v.downcast_object_ref::<Delta>().is_some() {
        return "timedelta";
    }
    if v.downcast_object_ref::<RelDelta>().is_some() {
        return "relativedelta";
    }
    match v.kind() {
        ValueKind::Undefined => "Undefined",
        ValueKind::None => "NoneType",
        ValueKind::Bool => "bool",
        ValueKind::Number if v.is_integer() => "int",
        ValueKind::Number => "float",
        ValueKind::String => "str",
        ValueKind::Bytes => "bytes",
        ValueKind::Seq => "list",
        ValueKind::Map => "dict",
        _ => "object",
    }
}

fn overflow(op: &str) -> Error {
    Error::new(
        ErrorKind::InvalidOperation,
        format!("integer overflow in {op} (gust's integers are 128-bit; Python's are unbounded)"),
    )
}

/// `a + b` with Python's semantics.
pub(crate) fn add(a: &Value, b: &Value) -> Result<Value, Error> {
    check_defined(a, b)?;
    if let Some(r) = dates::add(a, b)? {
        return Ok(r);
    }
    match (num(a), num(b)) {
        (Some(Num::Int(x)), Some(Num::Int(y))) => {
            return x.checked_add(y).map(int_value).ok_or_else(|| overflow("+"));
        }
        (Some(x), Some(y)) => return Ok(Value::from(float(x) + float(y))),
        _ => {}
    }
    if a.kind() == ValueKind::String
        && b.kind() == ValueKind::String
        && let (Some(x), Some(y)) = (a.as_str(), b.as_str())
    {
        return Ok(Value::from(format!("{x}{y}")));
    }
    if a.kind() == ValueKind::Seq && b.kind() == ValueKind::Seq {
        let items: Vec<Value> = a.try_iter()?.chain(b.try_iter()?).collect();
        return Ok(Value::from(items));
    }
    Err(unsupported("+", a, b))
}

/// `a - b` with Python's semantics.
pub(crate) fn sub(a: &Value, b: &Value) -> Result<Value, Error> {
    check_defined(a, b)?;
    if let Some(r) = dates::sub(a, b)? {
        return Ok(r);
    }
    match (num(a), num(b)) {
        (Some(Num::Int(x)), Some(Num::Int(y))) => {
            x.checked_sub(y).map(int_value).ok_or_else(|| overflow("-"))
        }
        (Some(x), Some(y)) => Ok(Value::from(float(x) - float(y))),
        _ => Err(unsupported("-", a, b)),
    }
}

/// `a * b` with Python's semantics (numbers, `str`/`list` repetition, a
/// `timedelta` times a number).
pub(crate) fn mul(a: &Value, b: &Value) -> Result<Value, Error> {
    check_defined(a, b)?;
    if let Some(r) = dates::mul(a, b)? {
        return Ok(r);
    }
    match (num(a), num(b)) {
        (Some(Num::Int(x)), Some(Num::Int(y))) => {
            return x.checked_mul(y).map(int_value).ok_or_else(|| overflow("*"));
        }
        (Some(x), Some(y)) => return Ok(Value::from(float(x) * float(y))),
        _ => {}
    }
    // Repetition: `'-' * 10`, `[0] * 3`.
    let (seq, times) = match (num(a), num(b)) {
        (None, Some(Num::Int(n))) => (a, n),
        (Some(Num::Int(n)), None) => (b, n),
        _ => return Err(unsupported("*", a, b)),
    };
    let n = usize::try_from(times.max(0)).unwrap_or(usize::MAX);
    let len = seq.len().unwrap_or(0);
    if len.saturating_mul(n) > REPEAT_LIMIT {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("repetition result over {REPEAT_LIMIT} items"),
        ));
    }
    match seq.kind() {
        ValueKind::String => Ok(Value::from(seq.as_str().unwrap_or_default().repeat(n))),
        ValueKind::Seq => {
            let items: Vec<Value> = seq.try_iter()?.collect();
            let mut out = Vec::with_capacity(items.len() * n);
            for _ in 0..n {
                out.extend(items.iter().cloned());
            }
            Ok(Value::from(out))
        }
        _ => Err(unsupported("*", a, b)),
    }
}

/// The largest `str`/`list` repetition rendered (a template is not the place for more).
const REPEAT_LIMIT: usize = 16 << 20;

/// Python's unary `-` (see [`NEG`]).
pub(crate) fn neg(a: &Value) -> Result<Value, Error> {
    if a.is_undefined() {
        return Err(Error::from(ErrorKind::UndefinedError));
    }
    if let Some(r) = dates::neg(a) {
        return Ok(r);
    }
    match num(a) {
        Some(Num::Int(i)) => i.checked_neg().map(int_value).ok_or_else(|| overflow("-")),
        Some(Num::Float(f)) => Ok(Value::from(-f)),
        None => Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("bad operand type for unary -: '{}'", type_name(a)),
        )),
    }
}

fn float(n: Num) -> f64 {
    match n {
        Num::Int(i) => i as f64,
        Num::Float(f) => f,
    }
}

/// `a % b` with Python's semantics: floor modulo for numbers, printf-style
/// formatting for a string on the left (`tuple`: the right side was a tuple).
pub(crate) fn rem(a: &Value, b: &Value, tuple: bool) -> Result<Value, Error> {
    check_defined(a, b)?;
    if a.kind() == ValueKind::String {
        let fmt = a.as_str().unwrap_or_default();
        return percent_format(fmt, b, tuple).map(Value::from);
    }
    let zero = || Error::new(ErrorKind::InvalidOperation, "integer modulo by zero");
    match (num(a), num(b)) {
        (Some(Num::Int(x)), Some(Num::Int(y))) => {
            if y == 0 {
                return Err(zero());
            }
            let r = x.checked_rem(y).ok_or_else(|| overflow("%"))?;
            Ok(int_value(if r != 0 && ((r < 0) != (y < 0)) {
                r + y
            } else {
                r
            }))
        }
        (Some(x), Some(y)) => {
            let (x, y) = (float(x), float(y));
            if y == 0.0 {
                return Err(Error::new(ErrorKind::InvalidOperation, "float modulo"));
            }
            let mut r = x % y;
            if r != 0.0 && ((r < 0.0) != (y < 0.0)) {
                r += y;
            } else if r == 0.0 {
                r = 0.0f64.copysign(y);
            }
            Ok(Value::from(r))
        }
        _ => Err(unsupported("%", a, b)),
    }
}

// ---------------------------------------------------------------------------
// printf-style formatting
// ---------------------------------------------------------------------------

fn fmt_error(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, msg.into())
}

/// Python's `fmt % args`.
pub(crate) fn percent_format(fmt: &str, args: &Value, tuple: bool) -> Result<String, Error> {
    let positional: Vec<Value> = if tuple {
        args.try_iter()?.collect()
    } else {
        vec![args.clone()]
    };
    let mapping = !tuple && args.kind() == ValueKind::Map;
    let mut next = 0usize;
    let mut used_mapping = false;
    let mut out = String::with_capacity(fmt.len() + 16);
    let mut chars = fmt.char_indices().peekable();
    while let Some((_, c)) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        // %[(key)][flags][width][.precision][length]type
        let mut key: Option<String> = None;
        if chars.peek().map(|&(_, c)| c) == Some('(') {
            chars.next();
            let mut k = String::new();
            let mut depth = 1;
            for (_, c) in chars.by_ref() {
                match c {
                    '(' => depth += 1,
                    ')' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    _ => {}
                }
                k.push(c);
            }
            if depth != 0 {
                return Err(fmt_error("incomplete format key"));
            }
            key = Some(k);
        }
        let mut spec = Spec::default();
        while let Some(&(_, f)) = chars.peek() {
            match f {
                '-' => spec.left = true,
                '0' => spec.zero = true,
                '+' => spec.plus = true,
                ' ' => spec.space = true,
                '#' => spec.alt = true,
                _ => break,
            }
            chars.next();
        }
        let take_arg = |next: &mut usize| -> Result<Value, Error> {
            let v = positional
                .get(*next)
                .cloned()
                .ok_or_else(|| fmt_error("not enough arguments for format string"))?;
            *next += 1;
            Ok(v)
        };
        if chars.peek().map(|&(_, c)| c) == Some('*') {
            chars.next();
            let w = take_arg(&mut next)?;
            let w = w
                .as_i64()
                .filter(|_| w.is_integer())
                .ok_or_else(|| fmt_error("* wants int"))?;
            if w < 0 {
                spec.left = true;
            }
            spec.width = usize::try_from(w.unsigned_abs())
                .unwrap_or(usize::MAX)
                .min(4096);
        } else {
            spec.width = digits(&mut chars).min(4096);
        }
        if chars.peek().map(|&(_, c)| c) == Some('.') {
            chars.next();
            if chars.peek().map(|&(_, c)| c) == Some('*') {
                chars.next();
                let p = take_arg(&mut next)?;
                let p = p.as_i64().ok_or_else(|| fmt_error("* wants int"))?;
                spec.precision = Some(usize::try_from(p.max(0)).unwrap_or(0).min(4096));
            } else {
                spec.precision = Some(digits(&mut chars).min(4096));
            }
        }
        while matches!(chars.peek().map(|&(_, c)| c), Some('h' | 'l' | 'L')) {
            chars.next();
        }
        let Some((_, ty)) = chars.next() else {
            return Err(fmt_error("incomplete format"));
        };
        if ty == '%' {
            out.push('%');
            continue;
        }
        let arg = match &key {
            Some(k) => {
                if !mapping {
                    return Err(fmt_error("format requires a mapping"));
                }
                used_mapping = true;
                let v = args.get_item(&Value::from(k.as_str()))?;
                if v.is_undefined() {
                    return Err(fmt_error(format!("KeyError: '{k}'")));
                }
                v
            }
            None => take_arg(&mut next)?,
        };
        let body = convert(ty, &arg, &spec)?;
        pad(&mut out, &body, &spec, ty);
    }
    if !used_mapping && !mapping && next < positional.len() {
        return Err(fmt_error(
            "not all arguments converted during string formatting",
        ));
    }
    Ok(out)
}

#[derive(Default)]
struct Spec {
    left: bool,
    zero: bool,
    plus: bool,
    space: bool,
    alt: bool,
    width: usize,
    precision: Option<usize>,
}

fn digits(chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>) -> usize {
    let mut n: usize = 0;
    while let Some(&(_, c)) = chars.peek() {
        let Some(d) = c.to_digit(10) else { break };
        n = n.saturating_mul(10).saturating_add(d as usize);
        chars.next();
    }
    n
}

/// The converted text of one `%` directive, before padding to the width.
fn convert(ty: char, arg: &Value, spec: &Spec) -> Result<String, Error> {
    let need_number = |ty: char| {
        fmt_error(format!(
            "%{ty} format: a real number is required, not {}",
            type_name(arg)
        ))
    };
    Ok(match ty {
        's' | 'r' | 'a' => {
            let s = if ty == 's' { py_str(arg) } else { py_repr(arg) };
            match spec.precision {
                Some(p) => s.chars().take(p).collect(),
                None => s,
            }
        }
        'd' | 'i' | 'u' => {
            let i = match num(arg).ok_or_else(|| need_number(ty))? {
                Num::Int(i) => i,
                Num::Float(f) if f.is_finite() => f.trunc() as i128,
                Num::Float(_) => {
                    return Err(fmt_error("cannot convert float infinity or NaN to integer"));
                }
            };
            sign(i < 0, spec) + &with_precision(i.unsigned_abs().to_string(), spec.precision)
        }
        'x' | 'X' | 'o' => {
            let i = match num(arg) {
                Some(Num::Int(i)) => i,
                _ => {
                    return Err(fmt_error(format!(
                        "%{ty} format: an integer is required, not {}",
                        type_name(arg)
                    )));
                }
            };
            let u = i.unsigned_abs();
            let (digits, prefix) = match ty {
                'x' => (format!("{u:x}"), "0x"),
                'X' => (format!("{u:X}"), "0X"),
                _ => (format!("{u:o}"), "0o"),
            };
            let prefix = if spec.alt { prefix } else { "" };
            sign(i < 0, spec) + prefix + &with_precision(digits, spec.precision)
        }
        'e' | 'E' | 'f' | 'F' | 'g' | 'G' => {
            let f = float(num(arg).ok_or_else(|| need_number(ty))?);
            let p = spec.precision.unwrap_or(6);
            let body = float_format(f.abs(), ty, p, spec.alt);
            sign(f.is_sign_negative() && !f.is_nan(), spec) + &body
        }
        'c' => match num(arg) {
            Some(Num::Int(i)) => u32::try_from(i)
                .ok()
                .and_then(char::from_u32)
                .map(String::from)
                .ok_or_else(|| fmt_error("%c arg not in range(0x110000)"))?,
            _ if arg.as_str().is_some_and(|s| s.chars().count() == 1) => {
                arg.as_str().unwrap_or_default().to_string()
            }
            _ => return Err(fmt_error("%c requires an int or a unicode character")),
        },
        other => return Err(fmt_error(format!("unsupported format character '{other}'"))),
    })
}

fn sign(negative: bool, spec: &Spec) -> String {
    if negative {
        "-".into()
    } else if spec.plus {
        "+".into()
    } else if spec.space {
        " ".into()
    } else {
        String::new()
    }
}

fn with_precision(digits: String, precision: Option<usize>) -> String {
    match precision {
        Some(p) if digits.len() < p => format!("{}{digits}", "0".repeat(p - digits.len())),
        _ => digits,
    }
}

/// C's `%e`/`%f`/`%g` of a non-negative float with precision `p`.
fn float_format(f: f64, ty: char, p: usize, alt: bool) -> String {
    if f.is_nan() {
        return if ty.is_uppercase() { "NAN" } else { "nan" }.into();
    }
    if f.is_infinite() {
        return if ty.is_uppercase() { "INF" } else { "inf" }.into();
    }
    let s = match ty {
        'f' | 'F' => format!("{f:.p$}"),
        'e' | 'E' => exp_format(f, p),
        _ => {
            // %g: precision P (0 means 1); exponent X of %e with P-1 digits.
            let p = p.max(1);
            let e = exp_format(f, p - 1);
            let x: i32 = e
                .rsplit_once('e')
                .and_then(|(_, x)| x.parse().ok())
                .unwrap_or(0);
            let s = if (x as i64) < (p as i64) && x >= -4 {
                let decimals = (p as i64 - 1 - x as i64).max(0) as usize;
                format!("{f:.decimals$}")
            } else {
                e
            };
            if alt { s } else { strip_zeros(&s) }
        }
    };
    if ty.is_uppercase() {
        s.to_uppercase()
    } else {
        s
    }
}

/// `1.234568e+04`: C's exponent form (at least two exponent digits).
fn exp_format(f: f64, p: usize) -> String {
    let s = format!("{f:.p$e}");
    let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    format!(
        "{mantissa}e{}{:02}",
        if exp < 0 { '-' } else { '+' },
        exp.unsigned_abs()
    )
}

/// `%g` drops trailing zeros of the fraction (and a bare point).
fn strip_zeros(s: &str) -> String {
    let (mantissa, exp) = match s.split_once('e') {
        Some((m, e)) => (m, Some(e)),
        None => (s, None),
    };
    let mantissa = if mantissa.contains('.') {
        mantissa.trim_end_matches('0').trim_end_matches('.')
    } else {
        mantissa
    };
    match exp {
        Some(e) => format!("{mantissa}e{e}"),
        None => mantissa.to_string(),
    }
}

/// Pads a converted directive to its width: zeros after the sign for numbers
/// with the `0` flag, spaces otherwise.
fn pad(out: &mut String, body: &str, spec: &Spec, ty: char) {
    let len = body.chars().count();
    if len >= spec.width {
        out.push_str(body);
        return;
    }
    let fill = spec.width - len;
    let numeric = !matches!(ty, 's' | 'r' | 'a' | 'c');
    if spec.left {
        out.push_str(body);
        out.extend(std::iter::repeat_n(' ', fill));
    } else if spec.zero && numeric {
        let sign_len = body
            .chars()
            .take_while(|c| matches!(c, '-' | '+' | ' '))
            .count();
        let (sign, rest) = body.split_at(sign_len);
        let (prefix, rest) = match rest.get(..2) {
            Some("0x" | "0X" | "0o") => rest.split_at(2),
            _ => ("", rest),
        };
        out.push_str(sign);
        out.push_str(prefix);
        out.extend(std::iter::repeat_n('0', fill));
        out.push_str(rest);
    } else {
        out.extend(std::iter::repeat_n(' ', fill));
        out.push_str(body);
    }
}

// ---------------------------------------------------------------------------
// Python's str() and repr()
// ---------------------------------------------------------------------------

/// Python's `repr(float)`: the shortest text that reads back, with `.0` on whole
/// numbers and an exponent below 1e-4 and from 1e16 on.
pub(crate) fn py_float(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf" } else { "-inf" }.into();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0.0" } else { "0.0" }.into();
    }
    let e = format!("{f:e}");
    let (mantissa, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if (-4..16).contains(&exp) {
        let s = format!("{f}");
        if s.contains('.') { s } else { format!("{s}.0") }
    } else {
        format!(
            "{mantissa}e{}{:02}",
            if exp < 0 { '-' } else { '+' },
            exp.unsigned_abs()
        )
    }
}

/// Python's `str()` of a template value.
pub(crate) fn py_str(v: &Value) -> String {
    match v.kind() {
        ValueKind::String => v.as_str().unwrap_or_default().to_string(),
        _ => py_repr_inner(v, false),
    }
}

/// Python's `repr()` of a template value.
pub(crate) fn py_repr(v: &Value) -> String {
    py_repr_inner(v, true)
}

fn py_repr_inner(v: &Value, quote_strings: bool) -> String {
    match v.kind() {
        ValueKind::Undefined => String::new(),
        ValueKind::None => "None".into(),
        ValueKind::Bool => if v.is_true() { "True" } else { "False" }.into(),
        ValueKind::Number if !v.is_integer() => {
            f64::try_from(v.clone()).map(py_float).unwrap_or_default()
        }
        ValueKind::String if quote_strings => quote(v.as_str().unwrap_or_default()),
        ValueKind::Seq if v.as_object().is_none() || is_plain(v) => {
            let items: Vec<String> = v
                .try_iter()
                .map(|it| it.map(|x| py_repr(&x)).collect())
                .unwrap_or_default();
            format!("[{}]", items.join(", "))
        }
        ValueKind::Map if is_plain(v) => {
            let mut s = String::from("{");
            if let Ok(keys) = v.try_iter() {
                for (i, k) in keys.enumerate() {
                    if i > 0 {
                        s.push_str(", ");
                    }
                    let item = v.get_item(&k).unwrap_or_default();
                    let _ = write!(s, "{}: {}", py_repr(&k), py_repr(&item));
                }
            }
            s.push('}');
            s
        }
        _ => v.to_string(),
    }
}

/// Whether `v` is a plain list or dict (not one of gust's objects, which print
/// themselves).
fn is_plain(v: &Value) -> bool {
    v.downcast_object_ref::<DateObj>().is_none()
        && v.downcast_object_ref::<DateOnly>().is_none()
        && v.downcast_object_ref::<Delta>().is_none()
        && v.downcast_object_ref::<RelDelta>().is_none()
        && !matches!(v.kind(), ValueKind::Plain)
}

/// Python's `repr(str)`: single quotes unless the text has one and no double quote.
fn quote(s: &str) -> String {
    let q = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(q);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == q => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push(q);
    out
}

/// The environment's formatter: values print as Python's `str()` does, as
/// Airflow renders them (`True`, `None`, `['a', 'b']`, `{'k': 'v'}`, `1e+20`);
/// everything else (strings, undefined values, gust's objects) as minijinja
/// prints it.
pub(crate) fn formatter(
    out: &mut minijinja::Output<'_>,
    state: &minijinja::State<'_, '_>,
    value: &Value,
) -> Result<(), Error> {
    let python = match value.kind() {
        ValueKind::None | ValueKind::Bool => true,
        ValueKind::Number => !value.is_integer(),
        ValueKind::Seq | ValueKind::Map => is_plain(value) && !value.is_kwargs(),
        _ => false,
    };
    if python {
        out.write_str(&py_str(value))
            .map_err(|_| Error::new(ErrorKind::WriteFailure, "write failed"))
    } else {
        minijinja::escape_formatter(out, state, value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrite_turns_operators_into_calls_keeping_lines() {
        assert_eq!(rewrite("{{ a }}"), None);
        assert_eq!(
            rewrite("{{ a + b }}").as_deref(),
            Some("{{ __gust_add(a , b) }}")
        );
        assert_eq!(
            rewrite("{{ (a - b) - c }}").as_deref(),
            Some("{{ __gust_sub((__gust_sub(a , b)) , c) }}")
        );
        assert_eq!(
            rewrite("{{ a - b - c }}").as_deref(),
            Some("{{ __gust_sub(__gust_sub(a , b) , c) }}")
        );
        assert_eq!(
            rewrite("{{ '%s' % (a, b) }}").as_deref(),
            Some("{{ __gust_mod('%s' , (a, b), true) }}")
        );
        let multi = "{% set x = a\n + b %}\n{{ x % 2 }}";
        let out = rewrite(multi).unwrap();
        assert_eq!(out.lines().count(), multi.lines().count());
        // Syntax errors are left to minijinja, on the original text.
        assert_eq!(rewrite("{{ a + }}"), None);
        assert_eq!(
            rewrite("{{ f(x, -p.n) }}").as_deref(),
            Some("{{ f(x, __gust_neg(p.n)) }}")
        );
        assert_eq!(
            rewrite("{{ 1 - -p.n.m() }}").as_deref(),
            Some("{{ __gust_sub(1 , __gust_neg(p.n.m())) }}")
        );
    }

    #[test]
    fn python_floats_print_like_python() {
        assert_eq!(py_float(1.0), "1.0");
        assert_eq!(py_float(0.1 + 0.2), "0.30000000000000004");
        assert_eq!(py_float(1e20), "1e+20");
        assert_eq!(py_float(1e-5), "1e-05");
        assert_eq!(py_float(1736294400.0), "1736294400.0");
    }
}
