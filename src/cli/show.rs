//! `dags show`: a DAG's tasks and edges as text, Graphviz DOT or Mermaid.
//!
//! Every format lists the tasks in topological order (ties in the order they
//! were added), so the output is the same on every run and diffs well.

use std::fmt::Write as _;
use std::time::Duration;

use crate::dag::{DagDescription, Schedule, TaskDescription};

/// The output formats of `dags show`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ShowFormat {
    /// One line per task with its upstream tasks.
    #[default]
    Text,
    /// Graphviz DOT (`dot -Tsvg`).
    Dot,
    /// A Mermaid flowchart (renders in GitHub and GitLab markdown).
    Mermaid,
}

/// The DAG in `format`, ending with a newline.
pub(crate) fn render(desc: &DagDescription, format: ShowFormat) -> String {
    match format {
        ShowFormat::Text => text(desc),
        ShowFormat::Dot => dot(desc),
        ShowFormat::Mermaid => mermaid(desc),
    }
}

/// `my_dag (schedule: @daily, timezone: Asia/Seoul, 3 tasks)`: the header of
/// the text format and the title of the graphs.
fn summary(desc: &DagDescription) -> String {
    let n = desc.tasks.len();
    format!(
        "{} (schedule: {}, timezone: {}, {n} task{})",
        desc.dag_id,
        schedule_text(&desc.schedule),
        desc.timezone.name(),
        if n == 1 { "" } else { "s" }
    )
}

fn schedule_text(schedule: &Schedule) -> String {
    match schedule {
        Schedule::None => "None".to_string(),
        Schedule::Hourly => "@hourly".to_string(),
        Schedule::Daily => "@daily".to_string(),
        Schedule::Weekly => "@weekly".to_string(),
        Schedule::Monthly => "@monthly".to_string(),
        Schedule::Every(d) => format!("every {}", duration_text(*d)),
    }
}

/// `1d2h`, `1m30s`, `1.5s`, `0s`: short and exact.
fn duration_text(d: Duration) -> String {
    if d.subsec_nanos() != 0 {
        return format!("{}s", super::exact_seconds(d));
    }
    let mut secs = d.as_secs();
    if secs == 0 {
        return "0s".to_string();
    }
    let mut out = String::new();
    for (unit, len) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
        if secs >= len {
            let _ = write!(out, "{}{unit}", secs / len);
            secs %= len;
        }
    }
    out
}

/// `[retries 2 after 30s, doubling up to 10m; timeout 1h]`, or nothing for a
/// task that neither retries nor times out (the defaults stay quiet).
fn policy_text(t: &TaskDescription) -> String {
    let mut parts = Vec::new();
    if t.retries > 0 {
        let mut p = format!(
            "retries {} after {}",
            t.retries,
            duration_text(t.retry_delay)
        );
        if t.retry_exponential_backoff {
            p.push_str(", doubling");
        }
        if let Some(max) = t.max_retry_delay {
            let _ = write!(p, " up to {}", duration_text(max));
        }
        parts.push(p);
    }
    if let Some(timeout) = t.execution_timeout {
        parts.push(format!("timeout {}", duration_text(timeout)));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("  [{}]", parts.join("; "))
    }
}

/// ```text
/// DAG my_dag (schedule: @daily, timezone: Asia/Seoul, 3 tasks)
///   extract
///   transform <- extract  [retries 2 after 30s]
///   load <- transform, extract
/// ```
fn text(desc: &DagDescription) -> String {
    let mut out = format!("DAG {}\n", summary(desc));
    for t in &desc.tasks {
        out.push_str("  ");
        out.push_str(&t.task_id);
        if !t.upstream.is_empty() {
            out.push_str(" <- ");
            out.push_str(&t.upstream.join(", "));
        }
        out.push_str(&policy_text(t));
        out.push('\n');
    }
    out
}

/// A DOT quoted string: ids may hold `.` and `-`, which DOT allows only quoted.
fn dot_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn dot(desc: &DagDescription) -> String {
    let mut out = format!("digraph {} {{\n", dot_quote(&desc.dag_id));
    let _ = writeln!(out, "    label={};", dot_quote(&summary(desc)));
    out.push_str("    labelloc=t;\n");
    out.push_str("    rankdir=LR;\n");
    out.push_str("    node [shape=box];\n");
    // Every node on its own line, so a task without edges is drawn too.
    for t in &desc.tasks {
        let _ = writeln!(out, "    {};", dot_quote(&t.task_id));
    }
    for (a, b) in desc.edges() {
        let _ = writeln!(out, "    {} -> {};", dot_quote(a), dot_quote(b));
    }
    out.push_str("}\n");
    out
}

/// A Mermaid label: quoted, with the characters Mermaid would parse as markup
/// written as its `#name;` entities.
fn mermaid_label(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("#quot;"),
            '#' => out.push_str("#35;"),
            '<' => out.push_str("#lt;"),
            '>' => out.push_str("#gt;"),
            '&' => out.push_str("#amp;"),
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Node ids are `t0`, `t1`, … by topological position: a task id such as
/// `load.v2-final` or `end` is not a safe Mermaid id (`.`, `-`, keywords, and
/// `o`/`x` after a link change the parse), so the real id is only the label.
fn mermaid(desc: &DagDescription) -> String {
    let node = |id: &str| desc.tasks.iter().position(|t| t.task_id == id);
    // The title goes in the front matter, a YAML document; a JSON string is a
    // valid YAML double-quoted scalar.
    let title = serde_json::Value::String(summary(desc)).to_string();
    let mut out = format!("---\ntitle: {title}\n---\nflowchart LR\n");
    for (i, t) in desc.tasks.iter().enumerate() {
        let _ = writeln!(out, "    t{i}[{}]", mermaid_label(&t.task_id));
    }
    for (a, b) in desc.edges() {
        // Both ends are tasks of this DAG (the builder rejects unknown ids).
        if let (Some(a), Some(b)) = (node(a), node(b)) {
            let _ = writeln!(out, "    t{a} --> t{b}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Dag, Task, TaskOptions};
    use serde_json::Value;

    fn noop(id: &str) -> Task {
        Task::from_fn(id, |_| async { Ok(Value::Null) })
    }

    /// extract -> load.v2-final, extract -> 2nd, 2nd -> load.v2-final, plus a
    /// lone `end` task: ids that are not identifiers in DOT, Mermaid or Python.
    fn awkward() -> DagDescription {
        let mut b = Dag::builder("nightly.etl-v2")
            .schedule(Schedule::Daily)
            .timezone(chrono_tz::Asia::Seoul);
        let extract = b.add(noop("extract"));
        let second = b.add(
            noop("2nd").with_options(
                TaskOptions::default()
                    .retries(3)
                    .retry_delay(Duration::from_secs(90))
                    .retry_exponential_backoff(true)
                    .max_retry_delay(Duration::from_secs(3600)),
            ),
        );
        let load = b.add(
            noop("load.v2-final")
                .with_options(TaskOptions::default().execution_timeout(Duration::from_secs(7200))),
        );
        b.add(noop("end"));
        let _ = &extract >> [&load, &second];
        let _ = &second >> &load;
        b.build().unwrap().describe()
    }

    #[test]
    fn text_has_a_header_and_one_line_per_task_with_its_upstream() {
        let out = render(&awkward(), ShowFormat::Text);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines,
            [
                "DAG nightly.etl-v2 (schedule: @daily, timezone: Asia/Seoul, 4 tasks)",
                "  extract",
                "  end",
                "  2nd <- extract  [retries 3 after 1m30s, doubling up to 1h]",
                "  load.v2-final <- extract, 2nd  [timeout 2h]",
            ]
        );
        assert!(out.ends_with('\n'));
    }

    #[test]
    fn text_names_every_schedule() {
        let mut d = awkward();
        for (s, want) in [
            (Schedule::None, "schedule: None"),
            (Schedule::Hourly, "schedule: @hourly"),
            (Schedule::Weekly, "schedule: @weekly"),
            (Schedule::Monthly, "schedule: @monthly"),
            (
                Schedule::Every(Duration::from_secs(5400)),
                "schedule: every 1h30m",
            ),
            (
                Schedule::Every(Duration::from_millis(1500)),
                "schedule: every 1.5s",
            ),
        ] {
            d.schedule = s;
            let out = render(&d, ShowFormat::Text);
            assert!(out.lines().next().unwrap().contains(want), "{want}: {out}");
        }
    }

    #[test]
    fn durations_are_short_and_exact() {
        assert_eq!(duration_text(Duration::ZERO), "0s");
        assert_eq!(duration_text(Duration::from_secs(59)), "59s");
        assert_eq!(
            duration_text(Duration::from_secs(86_400 + 7_200 + 5)),
            "1d2h5s"
        );
        assert_eq!(duration_text(Duration::from_millis(250)), "0.25s");
    }

    #[test]
    fn dot_quotes_every_id_and_lists_every_node_and_edge() {
        let out = render(&awkward(), ShowFormat::Dot);
        let lines: Vec<&str> = out.lines().map(str::trim).collect();
        assert_eq!(lines[0], "digraph \"nightly.etl-v2\" {");
        assert_eq!(*lines.last().unwrap(), "}");
        assert!(lines.contains(&"rankdir=LR;"));
        for node in ["\"extract\";", "\"2nd\";", "\"load.v2-final\";", "\"end\";"] {
            assert!(lines.contains(&node), "{node} in {out}");
        }
        let edges: Vec<&str> = lines.iter().copied().filter(|l| l.contains("->")).collect();
        assert_eq!(
            edges,
            [
                "\"extract\" -> \"2nd\";",
                "\"extract\" -> \"load.v2-final\";",
                "\"2nd\" -> \"load.v2-final\";",
            ]
        );
        // Structure: one statement per line between the braces, each ending in `;`.
        assert!(lines[1..lines.len() - 1].iter().all(|l| l.ends_with(';')));
        assert_eq!(out.matches('{').count(), out.matches('}').count());
    }

    #[test]
    fn dot_escapes_quotes_and_backslashes_in_the_dag_id() {
        let mut d = awkward();
        d.dag_id = r#"a "quoted" \ id"#.to_string();
        let out = render(&d, ShowFormat::Dot);
        assert!(
            out.starts_with(r#"digraph "a \"quoted\" \\ id" {"#),
            "{out}"
        );
    }

    #[test]
    fn mermaid_uses_safe_node_ids_with_the_real_id_as_label() {
        let out = render(&awkward(), ShowFormat::Mermaid);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            &lines[..4],
            [
                "---",
                "title: \"nightly.etl-v2 (schedule: @daily, timezone: Asia/Seoul, 4 tasks)\"",
                "---",
                "flowchart LR",
            ]
        );
        assert_eq!(
            &lines[4..],
            [
                "    t0[\"extract\"]",
                "    t1[\"end\"]",
                "    t2[\"2nd\"]",
                "    t3[\"load.v2-final\"]",
                "    t0 --> t2",
                "    t0 --> t3",
                "    t2 --> t3",
            ]
        );
        // Every node id is `t<digits>`: nothing Mermaid could parse as syntax.
        for l in &lines[4..] {
            let id = l.trim().split(['[', ' ']).next().unwrap();
            assert!(
                id.starts_with('t') && id[1..].chars().all(|c| c.is_ascii_digit()),
                "{l}"
            );
        }
    }

    #[test]
    fn mermaid_labels_escape_markup() {
        assert_eq!(
            mermaid_label(r#"a"b#<c>&"#),
            "\"a#quot;b#35;#lt;c#gt;#amp;\""
        );
    }

    #[test]
    fn an_empty_dag_renders_in_every_format() {
        let d = Dag::builder("empty").build().unwrap().describe();
        assert_eq!(
            render(&d, ShowFormat::Text),
            "DAG empty (schedule: None, timezone: UTC, 0 tasks)\n"
        );
        assert!(render(&d, ShowFormat::Dot).ends_with("node [shape=box];\n}\n"));
        assert!(render(&d, ShowFormat::Mermaid).ends_with("flowchart LR\n"));
    }
}
