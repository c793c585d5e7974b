//! Names checked with MLflow's rules before they become paths.

use super::err;
use crate::error::{ErrorKind, Result};

/// MLflow's `_validate_run_id`: `[a-zA-Z0-9][\w-]{0,255}`.
pub(crate) fn validate_run_id(op: &str, run_id: &str) -> Result<()> {
    validate_id(op, "run_id", run_id, 256)
}

/// MLflow's `_validate_experiment_id`: `[a-zA-Z0-9][\w-]{0,63}`.
pub(crate) fn validate_experiment_id(op: &str, id: &str) -> Result<()> {
    validate_id(op, "experiment_id", id, 64)
}

fn validate_id(op: &str, what: &'static str, id: &str, max: usize) -> Result<()> {
    let ok = id.len() <= max
        && id.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(err(
            ErrorKind::InvalidInput,
            op,
            format!("{what} {id:?} is not a valid MLflow id"),
        )
        .with(what, id))
    }
}

/// MLflow's rule for param, metric and tag keys: at most 250 characters of
/// letters, digits, `_ - . : /` and spaces, and, since a key is a file path, no
/// empty, `.` or `..` segment and no leading or trailing `/`.
pub(crate) fn validate_key(op: &str, what: &'static str, key: &str) -> Result<()> {
    let bad = |why: &str| {
        Err(err(
            ErrorKind::InvalidInput,
            op,
            format!("{what} name {key:?} {why}"),
        )
        .with(what, key))
    };
    if key.is_empty() || key.chars().count() > 250 {
        return bad("must have 1 to 250 characters");
    }
    if !key
        .chars()
        .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | ' ' | ':' | '/'))
    {
        return bad(
            "may only contain letters, digits, underscores, dashes, periods, colons, spaces \
             and slashes",
        );
    }
    if key.starts_with("..")
        || key
            .split('/')
            .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return bad("would not name a unique file (empty, '.' or '..' path segment)");
    }
    Ok(())
}

/// MLflow's rule for registered model names in a file store: not blank, no `/`,
/// `\`, `:` or `%`, not `.`/`..`-like, no control characters.
pub(crate) fn validate_model_name(op: &str, name: &str) -> Result<()> {
    let bad = |why: &str| {
        Err(err(
            ErrorKind::InvalidInput,
            op,
            format!("registered model name {name:?} {why}"),
        )
        .with("model", name))
    };
    if name.trim().is_empty() || name.len() > 256 {
        return bad("must have 1 to 256 characters, not only spaces");
    }
    if name
        .chars()
        .any(|c| matches!(c, '/' | '\\' | ':' | '%') || c.is_control())
    {
        return bad("cannot contain '/', '\\', ':', '%' or control characters");
    }
    if name == "." || name.starts_with("..") {
        return bad("would not name a unique directory");
    }
    Ok(())
}

/// A model version: a positive integer.
pub(crate) fn parse_version(op: &str, name: &str, version: &str) -> Result<u64> {
    version
        .trim()
        .parse::<u64>()
        .ok()
        .filter(|v| *v > 0)
        .ok_or_else(|| {
            err(
                ErrorKind::InvalidInput,
                op,
                format!("model version {version:?} is not a positive integer"),
            )
            .with("model", name)
            .with("version", version)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hooks::mlflow::file_store::new_uuid_hex;

    #[test]
    fn names_are_checked_like_mlflow() {
        for ok in ["acc", "a/b", "loss 1", "x:y", "é", "a.b", "mlflow.runName"] {
            assert!(validate_key("t", "metric", ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "/a", "a/", "a//b", "./a", "a/../b", "..", "..a", "a\nb", "a*b",
        ] {
            let e = validate_key("t", "metric", bad).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{bad}");
        }
        for bad in ["a/b", "..", ".", " ", "a:b", "50%", "a\\b", ""] {
            assert!(validate_model_name("t", bad).is_err(), "{bad}");
        }
        assert!(validate_model_name("t", "IrisModel v2").is_ok());
        assert!(validate_run_id("t", &new_uuid_hex()).is_ok());
        assert!(validate_run_id("t", "../x").is_err());
        assert!(validate_experiment_id("t", "0").is_ok());
        assert!(validate_experiment_id("t", ".trash").is_err());
        assert_eq!(parse_version("t", "m", "3").unwrap(), 3);
        assert!(parse_version("t", "m", "0").is_err());
        assert!(parse_version("t", "m", "x").is_err());
    }
}
