//! Parameter types of the Airflow-parity methods, and their stream helpers.

use super::multipart::Upload;
use crate::hooks::object_store::BytesStream;

/// Options of `load_*`. Defaults follow Airflow: **`replace = false`**.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct LoadOptions {
    /// Overwrite an existing key (Airflow's `replace`, default `false`).
    pub replace: bool,
    /// Server-side encryption with S3-managed keys (`AES256`), Airflow's `encrypt`,
    /// for this write; a hook built `with_server_side_encryption(true)` encrypts
    /// every write anyway.
    pub encrypt: bool,
    /// Gzip the data before upload (Airflow's `gzip` / `compression="gzip"`).
    pub gzip: bool,
    /// The object's `Content-Type`.
    pub content_type: Option<String>,
}

impl LoadOptions {
    /// Airflow's defaults: no replace, no encryption, no compression.
    pub fn new() -> Self {
        Self::default()
    }
    /// Sets `replace`.
    pub fn replace(mut self, on: bool) -> Self {
        self.replace = on;
        self
    }
    /// Sets `encrypt`.
    pub fn encrypt(mut self, on: bool) -> Self {
        self.encrypt = on;
        self
    }
    /// Sets `gzip`.
    pub fn gzip(mut self, on: bool) -> Self {
        self.gzip = on;
        self
    }
    /// Sets the content type.
    pub fn content_type(mut self, ct: impl Into<String>) -> Self {
        self.content_type = Some(ct.into());
        self
    }
}

/// The write `load_*` options ask for; the hook's encryption setting is added
/// where the request is built ([`S3Hook::sse`](super::S3Hook::sse)).
impl From<&LoadOptions> for Upload {
    fn from(o: &LoadOptions) -> Self {
        Upload {
            replace: o.replace,
            content_type: o.content_type.clone(),
            encrypt: o.encrypt,
        }
    }
}

/// The operation a presigned URL allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PresignMethod {
    /// `get_object`: download.
    GetObject,
    /// `put_object`: upload.
    PutObject,
}

/// A file as a stream of chunks ([`reader_stream`](crate::hooks::object_store::reader_stream)).
pub(crate) fn file_stream(file: tokio::fs::File) -> BytesStream {
    crate::hooks::object_store::reader_stream(file)
}
