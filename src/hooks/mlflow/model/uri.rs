//! Model URIs: `models:/…` (the registry) and `runs:/…` (a run's artifacts),
//! parsed the way MLflow's `_parse_model_uri` and `parse_runs_uri` do.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, ErrorKind, Result};

/// Where a model is, as MLflow writes it.
///
/// | form | variant |
/// |---|---|
/// | `models:/<name>/<version>` | [`Version`](Self::Version) |
/// | `models:/<name>@<alias>` | [`Alias`](Self::Alias) |
/// | `models:/<name>/latest` (any case) | [`Latest`](Self::Latest) |
/// | `models:/<name>/<stage>` | [`Stage`](Self::Stage) (deprecated in MLflow; not loadable here) |
/// | `models:/<model_id>` | [`LoggedModel`](Self::LoggedModel) (MLflow 3; not loadable here) |
/// | `runs:/<run_id>/<path>` | [`Run`](Self::Run) |
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ModelUri {
    /// A version of a registered model.
    Version {
        /// The registered model.
        name: String,
        /// The version number.
        version: u64,
    },
    /// The version an alias of a registered model points at.
    Alias {
        /// The registered model.
        name: String,
        /// The alias (`champion`).
        alias: String,
    },
    /// The highest version number of a registered model.
    Latest {
        /// The registered model.
        name: String,
    },
    /// The latest version in a (deprecated) stage such as `Production`.
    Stage {
        /// The registered model.
        name: String,
        /// The stage, as written.
        stage: String,
    },
    /// An MLflow 3 logged model (`models:/m-…`), stored outside any run's artifacts.
    LoggedModel {
        /// Its id.
        model_id: String,
    },
    /// A directory of a run's artifacts.
    Run {
        /// The run.
        run_id: String,
        /// The directory under the run's artifact root (`""` for the root itself).
        path: String,
    },
}

fn malformed(uri: &str, why: impl fmt::Display) -> Error {
    Error::new(
        ErrorKind::InvalidInput,
        "mlflow.model_uri",
        format!(
            "{why}; expected models:/<name>/<version>, models:/<name>@<alias>, \
             models:/<name>/latest or runs:/<run_id>/<path>"
        ),
    )
    .with("uri", uri)
}

impl ModelUri {
    /// Parses a model URI; a malformed one is an [`ErrorKind::InvalidInput`] error
    /// naming the URI. Accepted forms are listed on [`ModelUri`]; an authority
    /// (`models://profile/…`, Databricks' form), a query or a fragment is refused.
    pub fn parse(uri: &str) -> Result<Self> {
        let (scheme, rest) = uri
            .split_once(':')
            .ok_or_else(|| malformed(uri, "no scheme"))?;
        if uri.contains(['?', '#']) {
            return Err(malformed(uri, "a query or fragment is not allowed"));
        }
        if uri.chars().any(char::is_control) {
            return Err(malformed(uri, "control characters are not allowed"));
        }
        if rest.starts_with("//") {
            return Err(malformed(
                uri,
                "an authority (scheme://…) is not supported; use scheme:/…",
            ));
        }
        let Some(path) = rest.strip_prefix('/') else {
            return Err(malformed(uri, "the path must start with '/'"));
        };
        if path.is_empty() {
            return Err(malformed(uri, "the path is empty"));
        }
        match scheme {
            "models" => Self::parse_models(uri, path),
            "runs" => Self::parse_runs(uri, path),
            other => Err(malformed(uri, format!("unknown scheme {other:?}"))),
        }
    }

    fn parse_models(uri: &str, path: &str) -> Result<Self> {
        let parts: Vec<&str> = path.split('/').collect();
        if parts[0].trim().is_empty() {
            return Err(malformed(uri, "the model name is empty"));
        }
        match parts.as_slice() {
            [name, suffix] => {
                let name = name.to_string();
                if suffix.trim().is_empty() {
                    return Err(malformed(uri, "the version is empty"));
                }
                if name.contains('@') {
                    return Err(malformed(uri, "use either a version or an alias, not both"));
                }
                if suffix.bytes().all(|b| b.is_ascii_digit()) {
                    let version = suffix
                        .parse()
                        .map_err(|_| malformed(uri, "the version number is too large"))?;
                    Ok(ModelUri::Version { name, version })
                } else if suffix.eq_ignore_ascii_case("latest") {
                    Ok(ModelUri::Latest { name })
                } else {
                    Ok(ModelUri::Stage {
                        name,
                        stage: suffix.to_string(),
                    })
                }
            }
            [single] => match single.rsplit_once('@') {
                Some((name, alias)) => {
                    if name.trim().is_empty() {
                        return Err(malformed(uri, "the model name is empty"));
                    }
                    if alias.trim().is_empty() {
                        return Err(malformed(uri, "the alias is empty"));
                    }
                    Ok(ModelUri::Alias {
                        name: name.to_string(),
                        alias: alias.to_string(),
                    })
                }
                None => Ok(ModelUri::LoggedModel {
                    model_id: single.to_string(),
                }),
            },
            _ => Err(malformed(uri, "too many path segments")),
        }
    }

    fn parse_runs(uri: &str, path: &str) -> Result<Self> {
        let (run_id, rel) = path.split_once('/').unwrap_or((path, ""));
        if run_id.is_empty() {
            return Err(malformed(uri, "the run id is empty"));
        }
        // MLflow's run id rule: a letter or digit, then letters, digits, `_`, `-`.
        if run_id.len() > 256
            || !run_id.starts_with(|c: char| c.is_ascii_alphanumeric())
            || !run_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(malformed(uri, format!("{run_id:?} is not a run id")));
        }
        let mut segs = Vec::new();
        for seg in rel.split('/') {
            match seg {
                "" | "." => {}
                ".." => return Err(malformed(uri, "the path may not contain '..'")),
                s => segs.push(s),
            }
        }
        Ok(ModelUri::Run {
            run_id: run_id.to_string(),
            path: segs.join("/"),
        })
    }

    /// `runs:/<run_id>/<artifact_path>`, the URI [`log_model`](super::super::MlflowHook::log_model) returns.
    pub fn run(run_id: &str, artifact_path: &str) -> Self {
        ModelUri::Run {
            run_id: run_id.to_string(),
            path: artifact_path.trim_matches('/').to_string(),
        }
    }

    /// The registered model's name, for the `models:/<name>…` forms.
    pub fn model_name(&self) -> Option<&str> {
        match self {
            ModelUri::Version { name, .. }
            | ModelUri::Alias { name, .. }
            | ModelUri::Latest { name }
            | ModelUri::Stage { name, .. } => Some(name),
            ModelUri::LoggedModel { .. } | ModelUri::Run { .. } => None,
        }
    }
}

impl FromStr for ModelUri {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        ModelUri::parse(s)
    }
}

impl fmt::Display for ModelUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModelUri::Version { name, version } => write!(f, "models:/{name}/{version}"),
            ModelUri::Alias { name, alias } => write!(f, "models:/{name}@{alias}"),
            ModelUri::Latest { name } => write!(f, "models:/{name}/latest"),
            ModelUri::Stage { name, stage } => write!(f, "models:/{name}/{stage}"),
            ModelUri::LoggedModel { model_id } => write!(f, "models:/{model_id}"),
            ModelUri::Run { run_id, path } if path.is_empty() => write!(f, "runs:/{run_id}"),
            ModelUri::Run { run_id, path } => write!(f, "runs:/{run_id}/{path}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> ModelUri {
        ModelUri::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn registry_forms() {
        assert_eq!(
            ok("models:/IrisModel/3"),
            ModelUri::Version {
                name: "IrisModel".into(),
                version: 3
            }
        );
        assert_eq!(
            ok("models:/Iris Model@champion"),
            ModelUri::Alias {
                name: "Iris Model".into(),
                alias: "champion".into()
            }
        );
        // Like MLflow, the alias is whatever follows the last '@'.
        assert_eq!(
            ok("models:/a@b@c"),
            ModelUri::Alias {
                name: "a@b".into(),
                alias: "c".into()
            }
        );
        for latest in ["models:/m/latest", "models:/m/LATEST", "models:/m/Latest"] {
            assert_eq!(ok(latest), ModelUri::Latest { name: "m".into() });
        }
        assert_eq!(
            ok("models:/m/Production"),
            ModelUri::Stage {
                name: "m".into(),
                stage: "Production".into()
            }
        );
        assert_eq!(
            ok("models:/m-0123abcd"),
            ModelUri::LoggedModel {
                model_id: "m-0123abcd".into()
            }
        );
        assert_eq!(ok("models:/m/1").model_name(), Some("m"));
        assert_eq!(ok("models:/m/1").to_string(), "models:/m/1");
        assert_eq!(ok("models:/m@x").to_string(), "models:/m@x");
        assert_eq!(ok("models:/m/latest").to_string(), "models:/m/latest");
    }

    #[test]
    fn run_forms() {
        assert_eq!(
            ok("runs:/0123abcd/model"),
            ModelUri::Run {
                run_id: "0123abcd".into(),
                path: "model".into()
            }
        );
        assert_eq!(
            ok("runs:/r1/a//b/./c/"),
            ModelUri::Run {
                run_id: "r1".into(),
                path: "a/b/c".into()
            }
        );
        assert_eq!(
            ok("runs:/r1"),
            ModelUri::Run {
                run_id: "r1".into(),
                path: String::new()
            }
        );
        assert_eq!(ok("runs:/r1/m").to_string(), "runs:/r1/m");
        assert_eq!(ModelUri::run("r1", "/m/").to_string(), "runs:/r1/m");
        assert_eq!(ok("runs:/r1").model_name(), None);
        assert_eq!("runs:/r/m".parse::<ModelUri>().unwrap(), ok("runs:/r/m"));
    }

    #[test]
    fn malformed_uris_are_invalid_input() {
        for bad in [
            "",
            "models",
            "models:",
            "models:/",
            "models:m/1",
            "models://profile/m/1",
            "models:/m/1/extra",
            "models://m/1",
            "models:/ /1",
            "models:/m/",
            "models:/m/ ",
            "models:/@champion",
            "models:/m@",
            "models:/m@a/1",
            "models:/m/1?x=y",
            "models:/m/1#frag",
            "models:/m/99999999999999999999999",
            "runs:/",
            "runs://r/m",
            "runs:r/m",
            "runs:/r/../m",
            "runs:/-r/m",
            "runs:/r!/m",
            "s3://bucket/model",
            "file:/tmp/model",
        ] {
            let e = ModelUri::parse(bad).expect_err(bad);
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{bad}: {e}");
            assert_eq!(e.context("uri"), Some(bad), "{bad}");
        }
        let e = ModelUri::parse("runs:/r/m\n").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
    }
}
