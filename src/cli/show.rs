//! `dags show`: a DAG's tasks and edges as text, Graphviz DOT or Mermaid.

use crate::dag::DagDescription;

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

/// The DAG in `format`. (Placeholder until the helper's implementation lands.)
pub(crate) fn render(desc: &DagDescription, format: ShowFormat) -> String {
    let _ = format;
    desc.edges()
        .map(|(a, b)| format!("{a} >> {b}\n"))
        .collect()
}
