//! Keeping file paths under their root when symbolic links are about: the
//! check behind [`LocalStore`](crate::hooks::object_store::LocalStore) keys and
//! the artifacts of MLflow's `file:` store.

use std::io;
use std::path::Path;

/// Whether `path` stays under directory `root` once symbolic links are
/// resolved. The deepest existing part of `path` is resolved — the whole path
/// when `follow_last`, else its parent (a write or delete replaces or removes
/// a link, never what it names) — and must lie under the resolved `root`.
/// `root` itself may be a link (to another disk). Checked before the
/// operation: a link swapped in between is not caught, so this guards against
/// links left in the tree, not against a concurrent attacker with write access.
pub(crate) fn stays_under(root: &Path, path: &Path, follow_last: bool) -> io::Result<bool> {
    let base = std::fs::canonicalize(root)?;
    let mut probe = if follow_last {
        Some(path)
    } else {
        path.parent()
    };
    while let Some(p) = probe {
        match std::fs::canonicalize(p) {
            Ok(real) => return Ok(real.starts_with(&base)),
            // Not there yet (new directories of a write, a dangling link): its
            // existing parent decides.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                ) =>
            {
                probe = p.parent();
            }
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn links_out_of_the_root_are_caught() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        let out = tmp.path().join("out");
        std::fs::create_dir_all(root.join("d")).unwrap();
        std::fs::create_dir_all(&out).unwrap();
        std::os::unix::fs::symlink(&out, root.join("link")).unwrap();
        std::os::unix::fs::symlink(root.join("d"), root.join("inner")).unwrap();
        assert!(stays_under(&root, &root.join("d/new/file"), false).unwrap());
        assert!(stays_under(&root, &root.join("inner/x"), true).unwrap());
        assert!(!stays_under(&root, &root.join("link/x"), true).unwrap());
        assert!(!stays_under(&root, &root.join("link/new/x"), false).unwrap());
        // The link itself, as the last part of a write, is replaced, not followed.
        assert!(stays_under(&root, &root.join("link"), false).unwrap());
        assert!(!stays_under(&root, &root.join("link"), true).unwrap());
    }
}
