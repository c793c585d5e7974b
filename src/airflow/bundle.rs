//! Executable bundles: a gust binary with its manifest and the 64-byte
//! `AFBNDL01` trailer that Airflow 3.3's `ExecutableCoordinator` looks for.
//!
//! A bundle is `[binary][source (may be empty)][manifest YAML][trailer]`, the
//! trailer being (little-endian):
//!
//! | bytes | field |
//! |---|---|
//! | 0..4 | `source_len` (u32) |
//! | 4..8 | `metadata_len` (u32) |
//! | 8..12 | `footer_ver` = 1 (u32) |
//! | 12..44 | SHA-256 of the binary region `[0, source_start)` |
//! | 44..56 | zero |
//! | 56..64 | `b"AFBNDL01"` |
//!
//! The coordinator walks its `executables_root`, keeps executable regular
//! files whose trailer parses and whose digest matches, and picks the first
//! whose manifest's `dags` names the task's DAG and whose
//! `sdk.supervisor_schema_version` it knows (3.3.2: only
//! [`SUPERVISOR_SCHEMA_VERSION`]). Pack a stripped binary: stripping after
//! [`pack`] changes the bytes and the digest no longer matches (so does UPX).
//!
//! ```no_run
//! use std::path::Path;
//! use gust::airflow::bundle::{Manifest, inspect, pack};
//!
//! # fn main() -> gust::Result<()> {
//! let manifest = Manifest::new(env!("CARGO_PKG_VERSION"))
//!     .dag("etl", ["extract", "transform", "load"]);
//! pack(Path::new("target/release/etl"), None, &manifest, Path::new("bundles/etl"))?;
//! let (found, trailer) = inspect(Path::new("bundles/etl"))?;
//! assert_eq!(found.dags["etl"].tasks.len(), 3);
//! # let _ = trailer; Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::messages::SUPERVISOR_SCHEMA_VERSION;
use crate::error::{Error, ErrorKind, Result};

/// The trailer's last 8 bytes.
pub const MAGIC: &[u8; 8] = b"AFBNDL01";
/// The trailer's size.
pub const TRAILER_LEN: usize = 64;
/// The trailer format written and read (`footer_ver`).
pub const FOOTER_VERSION: u32 = 1;
/// The manifest format written (`airflow_bundle_metadata_version`).
pub const METADATA_VERSION: &str = "1.0";
/// The largest manifest [`inspect`] reads: a manifest lists DAG and task ids,
/// so more than this is a corrupt trailer, not a big manifest.
pub const MAX_METADATA_LEN: u32 = 16 * 1024 * 1024;

/// The `sdk` section of a [`Manifest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sdk {
    /// `rust` for gust.
    pub language: String,
    /// The version of the bundle's own code.
    pub version: String,
    /// The supervisor schema version the runtime speaks.
    pub supervisor_schema_version: String,
}

/// One DAG of a [`Manifest`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DagEntry {
    /// The DAG's task ids.
    #[serde(default)]
    pub tasks: Vec<String>,
}

/// The bundle manifest (YAML). Unknown keys are ignored when reading.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The manifest format, [`METADATA_VERSION`].
    pub airflow_bundle_metadata_version: String,
    /// Who built the bundle.
    pub sdk: Sdk,
    /// The name of the embedded source, if any ([`pack`] sets it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The DAGs the binary runs, by DAG id.
    #[serde(default)]
    pub dags: BTreeMap<String, DagEntry>,
}

impl Manifest {
    /// A manifest of a `rust` SDK bundle at `version`, speaking
    /// [`SUPERVISOR_SCHEMA_VERSION`], without DAGs yet.
    pub fn new(version: impl Into<String>) -> Self {
        Manifest {
            airflow_bundle_metadata_version: METADATA_VERSION.into(),
            sdk: Sdk {
                language: "rust".into(),
                version: version.into(),
                supervisor_schema_version: SUPERVISOR_SCHEMA_VERSION.into(),
            },
            source: None,
            dags: BTreeMap::new(),
        }
    }

    /// Adds (or replaces) a DAG and its task ids.
    pub fn dag<I, S>(mut self, dag_id: impl Into<String>, tasks: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.dags.insert(
            dag_id.into(),
            DagEntry {
                tasks: tasks.into_iter().map(Into::into).collect(),
            },
        );
        self
    }

    /// The manifest as YAML (what `--airflow-metadata` prints).
    ///
    /// Every string is double-quoted: Airflow reads the manifest with PyYAML's
    /// `safe_load` (YAML 1.1), which turns a plain `2026-06-16` into a date and
    /// then skips the bundle for a schema version that is not a string
    /// (likewise `1.0`, `yes`, `on`… would not stay strings).
    pub fn to_yaml(&self) -> String {
        let q = yaml_quoted;
        let mut y = String::new();
        let mut line = |s: String| {
            y.push_str(&s);
            y.push('\n');
        };
        line(format!(
            "airflow_bundle_metadata_version: {}",
            q(&self.airflow_bundle_metadata_version)
        ));
        line("sdk:".into());
        line(format!("  language: {}", q(&self.sdk.language)));
        line(format!("  version: {}", q(&self.sdk.version)));
        line(format!(
            "  supervisor_schema_version: {}",
            q(&self.sdk.supervisor_schema_version)
        ));
        if let Some(source) = &self.source {
            line(format!("source: {}", q(source)));
        }
        line(
            if self.dags.is_empty() {
                "dags: {}"
            } else {
                "dags:"
            }
            .into(),
        );
        for (dag_id, dag) in &self.dags {
            line(format!("  {}:", q(dag_id)));
            line(
                if dag.tasks.is_empty() {
                    "    tasks: []"
                } else {
                    "    tasks:"
                }
                .into(),
            );
            for task in &dag.tasks {
                line(format!("      - {}", q(task)));
            }
        }
        y
    }

    /// Parses a manifest, ignoring unknown keys.
    pub fn from_yaml(yaml: &str) -> Result<Self> {
        serde_yaml_ng::from_str(yaml).map_err(|e| {
            Error::new(
                ErrorKind::InvalidInput,
                "airflow.bundle.manifest",
                format!("the bundle manifest is not valid: {e}"),
            )
        })
    }
}

/// `s` as a YAML double-quoted scalar. The escapes are JSON's (a subset of
/// YAML's), plus DEL, the C1 controls and the BOM, which YAML does not allow raw.
fn yaml_quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || (0x7f..=0x9f).contains(&(c as u32)) || c == '\u{feff}' => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A parsed trailer, with the regions it implies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trailer {
    /// Bytes of embedded source.
    pub source_len: u32,
    /// Bytes of manifest YAML.
    pub metadata_len: u32,
    /// The trailer format, [`FOOTER_VERSION`].
    pub footer_version: u32,
    /// The SHA-256 of the binary region.
    pub binary_sha256: [u8; 32],
}

impl Trailer {
    /// The 64 bytes of this trailer.
    pub fn to_bytes(&self) -> [u8; TRAILER_LEN] {
        let mut out = [0u8; TRAILER_LEN];
        out[0..4].copy_from_slice(&self.source_len.to_le_bytes());
        out[4..8].copy_from_slice(&self.metadata_len.to_le_bytes());
        out[8..12].copy_from_slice(&self.footer_version.to_le_bytes());
        out[12..44].copy_from_slice(&self.binary_sha256);
        out[56..64].copy_from_slice(MAGIC);
        out
    }

    /// Parses the last 64 bytes of a file, as Airflow's reader does: the magic,
    /// version 1 and zero reserved bytes are required.
    pub fn parse(bytes: &[u8; TRAILER_LEN]) -> Result<Self> {
        const OP: &str = "airflow.bundle.trailer";
        if &bytes[56..64] != MAGIC {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                OP,
                "no AFBNDL01 trailer: not a bundle",
            ));
        }
        let u32_at =
            |i: usize| u32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
        let footer_version = u32_at(8);
        if footer_version != FOOTER_VERSION {
            return Err(Error::new(
                ErrorKind::Unsupported,
                OP,
                format!("bundle trailer version {footer_version} (supported: {FOOTER_VERSION})"),
            ));
        }
        if bytes[44..56].iter().any(|&b| b != 0) {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                OP,
                "the trailer's reserved bytes are not zero",
            ));
        }
        let mut binary_sha256 = [0u8; 32];
        binary_sha256.copy_from_slice(&bytes[12..44]);
        Ok(Trailer {
            source_len: u32_at(0),
            metadata_len: u32_at(4),
            footer_version,
            binary_sha256,
        })
    }

    /// The digest as lower-case hex.
    pub fn sha256_hex(&self) -> String {
        self.binary_sha256
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

/// What [`inspect`] found besides the manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleInfo {
    /// The trailer.
    pub trailer: Trailer,
    /// The size of the binary region (the executable).
    pub binary_len: u64,
    /// The embedded source, if any.
    pub source: Vec<u8>,
}

fn io_err(op: &'static str, what: &str, path: &Path, e: std::io::Error) -> Error {
    Error::new(ErrorKind::Io, op, what.to_string())
        .with("path", path.display())
        .with_source(e)
}

/// Packs `executable` into a bundle at `output`: the executable's bytes, the
/// optional `source` (`(file name, bytes)`, recorded as the manifest's
/// `source`), the manifest and the trailer, written in one write to a
/// temporary file beside `output`, made executable (0755) and renamed over
/// `output` — so `output` is the whole bundle or untouched, never a part.
///
/// `executable` must not be a bundle already (its trailer would be hashed
/// into the new one) and must not be empty. Returns the trailer written.
pub fn pack(
    executable: &Path,
    source: Option<(&str, &[u8])>,
    manifest: &Manifest,
    output: &Path,
) -> Result<Trailer> {
    const OP: &str = "airflow.bundle.pack";
    let binary = std::fs::read(executable)
        .map_err(|e| io_err(OP, "cannot read the executable", executable, e))?;
    if binary.is_empty() {
        return Err(
            Error::new(ErrorKind::InvalidInput, OP, "the executable is empty")
                .with("path", executable.display()),
        );
    }
    if binary.len() >= TRAILER_LEN && &binary[binary.len() - 8..] == MAGIC {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            OP,
            "the executable is a bundle already",
        )
        .with("path", executable.display()));
    }
    let mut manifest = manifest.clone();
    let source_bytes: &[u8] = match source {
        Some((name, bytes)) => {
            manifest.source = Some(name.to_string());
            bytes
        }
        None => &[],
    };
    let yaml = manifest.to_yaml();
    let too_big = |what: &str| {
        Error::new(
            ErrorKind::InvalidInput,
            OP,
            format!("the {what} is over 4 GiB"),
        )
    };
    let trailer = Trailer {
        source_len: u32::try_from(source_bytes.len()).map_err(|_| too_big("source"))?,
        metadata_len: u32::try_from(yaml.len()).map_err(|_| too_big("manifest"))?,
        footer_version: FOOTER_VERSION,
        binary_sha256: Sha256::digest(&binary).into(),
    };
    let mut bundle = binary;
    bundle.extend_from_slice(source_bytes);
    bundle.extend_from_slice(yaml.as_bytes());
    bundle.extend_from_slice(&trailer.to_bytes());

    let dir = match output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| {
        io_err(
            OP,
            "cannot create a temporary file beside the output",
            output,
            e,
        )
    })?;
    tmp.write_all(&bundle)
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(|e| io_err(OP, "cannot write the bundle", output, e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o755))
            .map_err(|e| io_err(OP, "cannot make the bundle executable", output, e))?;
    }
    // On error the temporary file is removed when `tmp` drops.
    tmp.persist(output)
        .map_err(|e| io_err(OP, "cannot move the bundle into place", output, e.error))?;
    tracing::info!(output = %output.display(), sha256 = %trailer.sha256_hex(), "packed Airflow bundle");
    Ok(trailer)
}

/// Reads a bundle's trailer, verifies the binary region's SHA-256 and parses
/// its manifest, as Airflow's coordinator does. A file that is not a bundle,
/// a truncated or corrupt trailer, regions past the start of the file or a
/// digest mismatch are [`ErrorKind::InvalidInput`] errors naming the path.
pub fn inspect(path: &Path) -> Result<(Manifest, BundleInfo)> {
    const OP: &str = "airflow.bundle.inspect";
    let ctx = |e: Error| e.with("path", path.display());
    let mut f = File::open(path).map_err(|e| io_err(OP, "cannot open the bundle", path, e))?;
    let size = f
        .metadata()
        .map_err(|e| io_err(OP, "cannot stat the bundle", path, e))?
        .len();
    if size < TRAILER_LEN as u64 {
        return Err(ctx(Error::new(
            ErrorKind::InvalidInput,
            OP,
            format!("{size} bytes is too short for a bundle trailer"),
        )));
    }
    let mut raw = [0u8; TRAILER_LEN];
    f.seek(SeekFrom::Start(size - TRAILER_LEN as u64))
        .and_then(|_| f.read_exact(&mut raw))
        .map_err(|e| io_err(OP, "cannot read the trailer", path, e))?;
    let trailer = Trailer::parse(&raw).map_err(|e| ctx(e.with_operation(OP)))?;
    let regions =
        u64::from(trailer.source_len) + u64::from(trailer.metadata_len) + TRAILER_LEN as u64;
    if regions >= size {
        return Err(ctx(Error::new(
            ErrorKind::InvalidInput,
            OP,
            "the trailer declares regions that leave no room for the executable",
        )));
    }
    if trailer.metadata_len > MAX_METADATA_LEN {
        return Err(ctx(Error::new(
            ErrorKind::InvalidInput,
            OP,
            format!("a manifest of {} bytes", trailer.metadata_len),
        )));
    }
    let binary_len = size - regions;

    f.seek(SeekFrom::Start(0))
        .map_err(|e| io_err(OP, "cannot read the bundle", path, e))?;
    let mut hasher = Sha256::new();
    let mut left = binary_len;
    let mut buf = vec![0u8; 1 << 20];
    while left > 0 {
        let want = left.min(buf.len() as u64) as usize;
        f.read_exact(&mut buf[..want])
            .map_err(|e| io_err(OP, "cannot read the executable region", path, e))?;
        hasher.update(&buf[..want]);
        left -= want as u64;
    }
    let digest: [u8; 32] = hasher.finalize().into();
    if digest != trailer.binary_sha256 {
        return Err(ctx(Error::new(
            ErrorKind::InvalidInput,
            OP,
            "the executable region does not match the trailer's SHA-256 (modified after packing?)",
        )));
    }
    let mut source = Vec::new();
    (&mut f)
        .take(u64::from(trailer.source_len))
        .read_to_end(&mut source)
        .map_err(|e| io_err(OP, "cannot read the source region", path, e))?;
    let mut yaml = Vec::new();
    (&mut f)
        .take(u64::from(trailer.metadata_len))
        .read_to_end(&mut yaml)
        .map_err(|e| io_err(OP, "cannot read the manifest", path, e))?;
    let yaml = String::from_utf8(yaml).map_err(|_| {
        ctx(Error::new(
            ErrorKind::InvalidInput,
            OP,
            "the manifest is not UTF-8",
        ))
    })?;
    let manifest = Manifest::from_yaml(&yaml).map_err(|e| ctx(e.with_operation(OP)))?;
    Ok((
        manifest,
        BundleInfo {
            trailer,
            binary_len,
            source,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_binary(dir: &Path) -> std::path::PathBuf {
        let p = dir.join("etl");
        std::fs::write(&p, b"\x7fELF pretend executable").unwrap();
        p
    }

    #[test]
    fn a_packed_bundle_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let exe = fake_binary(dir.path());
        let out = dir.path().join("out").join("etl.bundle");
        std::fs::create_dir(out.parent().unwrap()).unwrap();
        let manifest = Manifest::new("0.1.0").dag("etl", ["extract", "load"]);
        let trailer = pack(&exe, Some(("main.rs", b"fn main() {}")), &manifest, &out).unwrap();
        let (found, info) = inspect(&out).unwrap();
        assert_eq!(found.dags["etl"].tasks, ["extract", "load"]);
        assert_eq!(found.source.as_deref(), Some("main.rs"));
        assert_eq!(
            found.sdk.supervisor_schema_version,
            SUPERVISOR_SCHEMA_VERSION
        );
        assert_eq!(info.trailer, trailer);
        assert_eq!(info.source, b"fn main() {}");
        assert_eq!(info.binary_len, std::fs::metadata(&exe).unwrap().len());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&out).unwrap().permissions().mode() & 0o777,
                0o755
            );
        }
        // Packing a bundle again is refused; nothing is left beside the output.
        let err = pack(&out, None, &manifest, &dir.path().join("twice")).unwrap_err();
        assert!(err.message().contains("bundle already"), "{err}");
        assert!(!dir.path().join("twice").exists());
        assert_eq!(std::fs::read_dir(out.parent().unwrap()).unwrap().count(), 1);
    }

    #[test]
    fn every_manifest_string_is_quoted_and_parses_back() {
        let m = Manifest::new("1.0")
            .dag("yes", ["on", "2026-06-16", "a\"b\\c\n\u{85}é", "null"])
            .dag("empty", Vec::<String>::new());
        let yaml = m.to_yaml();
        assert!(
            yaml.contains("  supervisor_schema_version: \"2026-06-16\"\n"),
            "{yaml}"
        );
        assert!(yaml.contains("  version: \"1.0\"\n"), "{yaml}");
        assert!(yaml.contains("      - \"on\"\n"), "{yaml}");
        assert!(yaml.contains("\\u0085"), "{yaml}");
        assert_eq!(Manifest::from_yaml(&yaml).unwrap(), m);
        let mut no_dags = Manifest::new("1");
        no_dags.source = Some("main.rs".into());
        assert_eq!(Manifest::from_yaml(&no_dags.to_yaml()).unwrap(), no_dags);
    }

    #[test]
    fn unknown_manifest_keys_are_ignored() {
        let m = Manifest::from_yaml(
            "airflow_bundle_metadata_version: '1.0'\nsdk: {language: go, version: '1', supervisor_schema_version: '2026-06-16', extra: 1}\ndags: {d: {tasks: [a], params: null}}\nfuture: yes\n",
        )
        .unwrap();
        assert_eq!(m.dags["d"].tasks, ["a"]);
        assert!(Manifest::from_yaml("dags: [1, 2]").is_err());
    }

    #[test]
    fn corrupt_bundles_are_typed_errors() {
        let dir = tempfile::tempdir().unwrap();
        let exe = fake_binary(dir.path());
        let out = dir.path().join("b");
        pack(&exe, None, &Manifest::new("1").dag("d", ["t"]), &out).unwrap();
        let good = std::fs::read(&out).unwrap();
        let n = good.len();
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("too short", good[n - 10..].to_vec()),
            ("truncated trailer", good[..n - 1].to_vec()),
            ("binary modified", {
                let mut b = good.clone();
                b[0] ^= 1;
                b
            }),
            ("version 2", {
                let mut b = good.clone();
                b[n - 64 + 8] = 2;
                b
            }),
            ("reserved byte", {
                let mut b = good.clone();
                b[n - 64 + 50] = 1;
                b
            }),
            ("regions past the start", {
                let mut b = good.clone();
                b[n - 64 + 3] = 0x7f;
                b
            }),
            ("manifest not UTF-8", {
                let mut b = good.clone();
                b[n - 65] = 0xff;
                b
            }),
        ];
        for (what, bytes) in cases {
            let p = dir.path().join("corrupt");
            std::fs::write(&p, &bytes).unwrap();
            let err = inspect(&p).unwrap_err();
            assert!(
                matches!(err.kind(), ErrorKind::InvalidInput | ErrorKind::Unsupported),
                "{what}: {err}"
            );
            assert!(err.context("path").is_some(), "{what}");
        }
        assert_eq!(
            inspect(&dir.path().join("missing")).unwrap_err().kind(),
            ErrorKind::Io
        );
    }
}
