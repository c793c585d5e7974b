//! RecordIO-protobuf (feature `object-store`): the training-data format of
//! SageMaker's built-in algorithms (KMeans, linear learner, kNN, …), written
//! byte for byte as the SageMaker Python SDK's
//! `sagemaker.amazon.common.write_numpy_to_dense_tensor(file, array, labels)`
//! writes it, and read back frame by frame.
//!
//! # The format
//!
//! A file is a sequence of MXNet/dmlc RecordIO frames:
//!
//! ```text
//! u32 LE  0xCED7230A                 (MAGIC)
//! u32 LE  cflag << 29 | length       (the SDK writes cflag 0: one frame per record)
//! length bytes                       (a serialized aialgs.data.Record)
//! 0-3 zero bytes                     (padding to a multiple of 4)
//! ```
//!
//! Each payload is the protobuf message `aialgs.data.Record` of the SDK's
//! `record.proto`; a dense row is `features["values"]`, a tensor of the row's
//! values (no keys, no shape), and its label, if any, is `label["values"]`, a
//! tensor of one value. The encoder here is hand-written (no protobuf crate) and
//! follows the SDK's `_resolve_type`:
//!
//! | numpy dtype in the SDK | Rust type here | tensor |
//! |---|---|---|
//! | `float32` | `f32` | `Float32Tensor` |
//! | `float64` (`np.dtype(float)`) | `f64` | `Float64Tensor` |
//! | `int64` (`np.dtype(int)`) | `i32`, or `i64` labels (range-checked) | `Int32Tensor` |
//!
//! So MNIST as the seed pipeline writes it (float32 pixels, numpy int64
//! labels) becomes records with a `Float32Tensor` of 784 values and an
//! `Int32Tensor` label. Features of type `i64` are not taken: convert them to
//! `i32` (the SDK fails on a value out of the int32 range as well).
//!
//! # Writing
//!
//! * [`encode_record`] appends one framed record to a buffer; [`encode_dense_matrix`]
//!   a whole row-major matrix, the SDK's function exactly.
//! * [`DenseTensorWriter`] takes rows one by one and hands out chunks of about
//!   its chunk size; it checks that every row has the first row's width and
//!   label type, as one numpy array would.
//! * [`write_dense_tensor`] streams rows to any
//!   [`ObjectStore`] with `put_stream`: memory is
//!   bounded by a few chunks (1 MiB each by default), whatever the row count;
//!   [`write_dense_matrix`] does it for a row-major matrix. The content type is
//!   [`CONTENT_TYPE`] unless the [`PutOptions`] name another. When the rows fail,
//!   the upload is aborted: nothing partial is stored.
//!
//! Zero rows give an empty object, as the SDK writes an empty file for a
//! `(0, n)` array. Unlike the SDK, which accepts labels whose length is the
//! array's *column* count and then reads them by row index, gust wants exactly
//! one label per row.
//!
//! # Reading
//!
//! [`read_records`] decodes a byte slice; [`RecordDecoder`] is a push decoder
//! (feed chunks, take records), and [`read_stream`] / [`read_object`] decode an
//! object as it downloads. Split records (cflag 1-3, which dmlc's writer makes
//! when a payload contains the magic word) are joined as dmlc's reader joins
//! them. Other map keys than `"values"` and the fields `uid`, `metadata` and
//! `configuration` are skipped.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> gust::Result<()> {
//! use gust::formats::recordio::{self, Label, Values};
//! use gust::hooks::object_store::{MemoryStore, ObjectStore, PutOptions};
//!
//! let store = MemoryStore::new();
//! store.create_bucket("ml").await?;
//! // Two rows of three float32 features with int64 labels, as numpy holds them.
//! let x: Vec<f32> = vec![0.0, 0.5, 1.0, 0.25, 0.0, 0.75];
//! let y: Vec<i64> = vec![3, 7];
//! let written = recordio::write_dense_matrix(&store, "ml", "train/mnist.rec", &x, 3, Some(&y), &PutOptions::new()).await?;
//! assert_eq!((written.records, written.size), (2, 112));
//!
//! let body = store.get("ml", "train/mnist.rec").await?;
//! let records = recordio::read_records(&body)?;
//! assert_eq!(records[1].features.values, Values::Float32(vec![0.25, 0.0, 0.75]));
//! assert_eq!(records[1].label.as_ref().map(|l| &l.values), Some(&Values::Int32(vec![7])));
//!
//! // One record by hand: a float32 label this time.
//! let mut out = Vec::new();
//! recordio::encode_record(&mut out, &[0.0f32, 0.5, 1.0], Some(Label::Float32(3.0)))?;
//! assert_eq!(out.len(), 56);
//! # Ok(()) }
//! ```
//!
//! # Errors
//!
//! Everything is [`ErrorKind::InvalidInput`], never a panic, whatever the bytes:
//! a bad magic word (naming its offset), a truncated frame (how many bytes the
//! header announced and how many there are), a length word whose cflag is not
//! 0-3, a malformed protobuf payload (what is wrong and where), a record
//! without a `features["values"]` tensor; writing, a payload over the 2^29-byte
//! limit, a row of another width or label type than the first, a label count
//! that is not the row count, an `i64` label out of the int32 range. Store
//! errors come through unchanged (retryable when the store says so).

use bytes::Bytes;
use futures::stream::{BoxStream, Stream, StreamExt};

use crate::error::{Error, ErrorKind, Result};
use crate::hooks::object_store::{BytesStream, ObjectStore, PutOptions};

/// The frame magic word, written little-endian (`0a 23 d7 ce`).
pub const MAGIC: u32 = 0xCED7_230A;

/// The `Content-Type` of RecordIO-protobuf objects, channels and endpoints.
pub const CONTENT_TYPE: &str = "application/x-recordio-protobuf";

/// The largest payload a frame can hold: its length has 29 bits.
pub const MAX_PAYLOAD_LEN: usize = (1 << 29) - 1;

/// The default chunk size of [`DenseTensorWriter`]: 1 MiB.
pub const DEFAULT_CHUNK_SIZE: usize = 1 << 20;

const OP_ENCODE: &str = "recordio.encode";
const OP_READ: &str = "recordio.read";
const OP_WRITE: &str = "recordio.write_dense_tensor";

/// The protobuf tensor messages of `record.proto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TensorType {
    /// `Float32Tensor`: packed `float` values.
    Float32,
    /// `Float64Tensor`: packed `double` values.
    Float64,
    /// `Int32Tensor`: packed `int32` varints.
    Int32,
}

impl TensorType {
    /// The message's name in `record.proto`.
    pub fn name(self) -> &'static str {
        match self {
            TensorType::Float32 => "Float32Tensor",
            TensorType::Float64 => "Float64Tensor",
            TensorType::Int32 => "Int32Tensor",
        }
    }

    /// The tag byte of the tensor's field in `Value` (fields 2, 3 and 7, LEN).
    fn value_tag(self) -> u8 {
        match self {
            TensorType::Float32 => 0x12,
            TensorType::Float64 => 0x1a,
            TensorType::Int32 => 0x3a,
        }
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
    impl Sealed for i32 {}
}

/// A feature value type: `f32`, `f64` or `i32`, each encoded as its tensor
/// (see the [module docs](self)). Sealed.
pub trait Element: Copy + sealed::Sealed {
    /// The tensor this type is written as.
    const TENSOR: TensorType;
    /// The encoded size of the packed values.
    #[doc(hidden)]
    fn packed_len(values: &[Self]) -> usize;
    /// Appends the packed values.
    #[doc(hidden)]
    fn put_packed(values: &[Self], out: &mut Vec<u8>);
}

impl Element for f32 {
    const TENSOR: TensorType = TensorType::Float32;
    fn packed_len(values: &[f32]) -> usize {
        4 * values.len()
    }
    fn put_packed(values: &[f32], out: &mut Vec<u8>) {
        out.reserve(4 * values.len());
        for v in values {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
}

impl Element for f64 {
    const TENSOR: TensorType = TensorType::Float64;
    fn packed_len(values: &[f64]) -> usize {
        8 * values.len()
    }
    fn put_packed(values: &[f64], out: &mut Vec<u8>) {
        out.reserve(8 * values.len());
        for v in values {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
}

impl Element for i32 {
    const TENSOR: TensorType = TensorType::Int32;
    fn packed_len(values: &[i32]) -> usize {
        // protobuf writes a negative int32 sign-extended: 10 bytes.
        values.iter().map(|&v| varint_len(v as i64 as u64)).sum()
    }
    fn put_packed(values: &[i32], out: &mut Vec<u8>) {
        for &v in values {
            put_varint(out, v as i64 as u64);
        }
    }
}

/// A record's label: one value, typed as the SDK types a numpy label array.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Label {
    /// An integer label (numpy `int64` labels in the SDK): an `Int32Tensor`.
    Int32(i32),
    /// A `Float32Tensor` label.
    Float32(f32),
    /// A `Float64Tensor` label.
    Float64(f64),
}

impl Label {
    /// The tensor the label is written as.
    pub fn tensor_type(&self) -> TensorType {
        match self {
            Label::Int32(_) => TensorType::Int32,
            Label::Float32(_) => TensorType::Float32,
            Label::Float64(_) => TensorType::Float64,
        }
    }
}

impl From<i32> for Label {
    fn from(v: i32) -> Self {
        Label::Int32(v)
    }
}

impl From<f32> for Label {
    fn from(v: f32) -> Self {
        Label::Float32(v)
    }
}

impl From<f64> for Label {
    fn from(v: f64) -> Self {
        Label::Float64(v)
    }
}

impl TryFrom<i64> for Label {
    type Error = Error;

    /// An `Int32` label, as the SDK writes a numpy `int64` label; a value out
    /// of the int32 range is [`ErrorKind::InvalidInput`] (the SDK's protobuf
    /// raises `ValueError: Value out of range`).
    fn try_from(v: i64) -> Result<Self> {
        i32::try_from(v).map(Label::Int32).map_err(|_| {
            Error::new(
                ErrorKind::InvalidInput,
                OP_ENCODE,
                format!("label {v} is out of the int32 range of an Int32Tensor"),
            )
        })
    }
}

/// A label value of a slice of labels: [`Label`], `i32`, `i64` (range-checked
/// into an `Int32` label), `f32` or `f64`.
pub trait IntoLabel: Copy {
    /// The label; an `i64` out of the int32 range is an error.
    fn into_label(self) -> Result<Label>;
}

impl IntoLabel for Label {
    fn into_label(self) -> Result<Label> {
        Ok(self)
    }
}

impl IntoLabel for i32 {
    fn into_label(self) -> Result<Label> {
        Ok(Label::Int32(self))
    }
}

impl IntoLabel for i64 {
    fn into_label(self) -> Result<Label> {
        Label::try_from(self)
    }
}

impl IntoLabel for f32 {
    fn into_label(self) -> Result<Label> {
        Ok(Label::Float32(self))
    }
}

impl IntoLabel for f64 {
    fn into_label(self) -> Result<Label> {
        Ok(Label::Float64(self))
    }
}

// ---------------------------------------------------------------------------
// Encoding

fn varint_len(v: u64) -> usize {
    // 1 byte per started 7 bits, at least 1.
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A length-delimited field: its tag, length and body.
fn field_len(body: usize) -> usize {
    1 + varint_len(body as u64) + body
}

/// The sizes of a `map<string, Value>` entry `"values"` holding a tensor
/// whose packed values take `packed` bytes: (tensor, value, entry) bodies.
fn entry_sizes(packed: usize) -> (usize, usize, usize) {
    // Float32Tensor { values = 1 packed }: an empty packed field is not written.
    let tensor = if packed == 0 { 0 } else { field_len(packed) };
    let value = field_len(tensor);
    // MapEntry { key = 1 "values", value = 2 }.
    let entry = 2 + 6 + field_len(value);
    (tensor, value, entry)
}

/// Writes the map entry `field_tag { "values": Value { tensor { values } } }`.
fn put_entry<T: Element>(out: &mut Vec<u8>, field_tag: u8, values: &[T], packed: usize) {
    let (tensor, value, entry) = entry_sizes(packed);
    out.push(field_tag);
    put_varint(out, entry as u64);
    out.extend_from_slice(b"\x0a\x06values");
    out.push(0x12);
    put_varint(out, value as u64);
    out.push(T::TENSOR.value_tag());
    put_varint(out, tensor as u64);
    if packed > 0 {
        out.push(0x0a);
        put_varint(out, packed as u64);
        T::put_packed(values, out);
    }
}

/// Appends one framed record to `out`: `features` as the `features["values"]`
/// tensor, and `label`, if any, as the one-value `label["values"]` tensor —
/// the bytes the SDK writes for one row of `write_numpy_to_dense_tensor`.
///
/// A payload over [`MAX_PAYLOAD_LEN`] (about 134 million `f32` features) is
/// [`ErrorKind::InvalidInput`], and nothing is appended.
pub fn encode_record<T: Element>(
    out: &mut Vec<u8>,
    features: &[T],
    label: Option<Label>,
) -> Result<()> {
    let packed = T::packed_len(features);
    let mut payload = field_len(entry_sizes(packed).2);
    let label_packed = match label {
        None => 0,
        Some(Label::Int32(v)) => varint_len(v as i64 as u64),
        Some(Label::Float32(_)) => 4,
        Some(Label::Float64(_)) => 8,
    };
    if label.is_some() {
        let entry = entry_sizes(label_packed).2;
        payload += field_len(entry);
    }
    if payload > MAX_PAYLOAD_LEN {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            OP_ENCODE,
            format!(
                "a record of {} features is {payload} bytes, over RecordIO's limit of {MAX_PAYLOAD_LEN}",
                features.len()
            ),
        ));
    }
    let pad = (4 - payload % 4) % 4;
    out.reserve(8 + payload + pad);
    out.extend_from_slice(&MAGIC.to_le_bytes());
    out.extend_from_slice(&(payload as u32).to_le_bytes());
    put_entry(out, 0x0a, features, packed);
    match label {
        None => {}
        Some(Label::Int32(v)) => put_entry(out, 0x12, &[v], label_packed),
        Some(Label::Float32(v)) => put_entry(out, 0x12, &[v], label_packed),
        Some(Label::Float64(v)) => put_entry(out, 0x12, &[v], label_packed),
    }
    out.resize(out.len() + pad, 0);
    Ok(())
}

/// Checks a row-major matrix of `data.len()` values in rows of `n_cols`, with
/// optional labels; gives the row count.
fn matrix_rows<T, L>(data: &[T], n_cols: usize, labels: Option<&[L]>) -> Result<usize> {
    if n_cols == 0 {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            OP_ENCODE,
            "a matrix needs at least one column (write rows of no features with DenseTensorWriter)",
        ));
    }
    if !data.len().is_multiple_of(n_cols) {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            OP_ENCODE,
            format!(
                "{} values are not whole rows of {n_cols} columns",
                data.len()
            ),
        ));
    }
    let rows = data.len() / n_cols;
    if let Some(labels) = labels
        && labels.len() != rows
    {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            OP_ENCODE,
            format!(
                "{} labels for {rows} rows: give one label per row",
                labels.len()
            ),
        ));
    }
    Ok(rows)
}

/// Appends a row-major matrix of `n_cols` columns, one record per row with
/// its label if `labels` are given: exactly what the SDK's
/// `write_numpy_to_dense_tensor(file, array, labels)` writes for the same
/// values and dtypes. Zero rows append nothing (the SDK writes an empty file).
///
/// `n_cols == 0`, a length that is not whole rows, a label count that is not
/// the row count, or an `i64` label out of the int32 range is
/// [`ErrorKind::InvalidInput`]; `out` then holds the records before the bad
/// label.
pub fn encode_dense_matrix<T: Element, L: IntoLabel>(
    out: &mut Vec<u8>,
    data: &[T],
    n_cols: usize,
    labels: Option<&[L]>,
) -> Result<()> {
    let rows = matrix_rows(data, n_cols, labels)?;
    for (i, row) in data.chunks_exact(n_cols).enumerate() {
        let label = labels
            .map(|l| l[i].into_label().map_err(|e| e.with("row", i)))
            .transpose()?;
        encode_record(out, row, label)?;
    }
    debug_assert!(rows == 0 || !out.is_empty());
    Ok(())
}

/// The width and types the first row set, which every row must keep.
#[derive(Debug, Clone, Copy, PartialEq)]
struct RowShape {
    cols: usize,
    features: TensorType,
    label: Option<TensorType>,
}

/// Encodes rows into chunks of RecordIO-protobuf, for an upload of bounded
/// memory (see [`write_dense_tensor`], which drives one).
///
/// Every row must have the first row's width, feature type and label type (or
/// no label, if the first had none), as the rows of one numpy array do; a
/// row that differs is [`ErrorKind::InvalidInput`] naming its index.
///
/// ```
/// use gust::formats::recordio::{DenseTensorWriter, Label};
///
/// let mut writer = DenseTensorWriter::new().chunk_size(100);
/// let mut chunks = Vec::new();
/// for i in 0..4 {
///     let row = [i as f32; 3];
///     if let Some(chunk) = writer.write(&row, Some(Label::Int32(i)))? {
///         chunks.push(chunk); // upload it
///     }
/// }
/// assert_eq!(writer.records(), 4);
/// chunks.push(writer.finish());
/// assert_eq!(chunks.iter().map(|c| c.len()).sum::<usize>(), 4 * 56);
/// # Ok::<(), gust::Error>(())
/// ```
#[derive(Debug)]
pub struct DenseTensorWriter {
    buf: Vec<u8>,
    chunk_size: usize,
    shape: Option<RowShape>,
    records: u64,
}

impl Default for DenseTensorWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl DenseTensorWriter {
    /// A writer handing out chunks of [`DEFAULT_CHUNK_SIZE`].
    pub fn new() -> Self {
        DenseTensorWriter {
            buf: Vec::new(),
            chunk_size: DEFAULT_CHUNK_SIZE,
            shape: None,
            records: 0,
        }
    }

    /// Sets the chunk size (at least 1 byte): a chunk is handed out once the
    /// buffered records reach it, so a chunk is at most one record larger.
    pub fn chunk_size(mut self, bytes: usize) -> Self {
        self.chunk_size = bytes.max(1);
        self
    }

    /// Encodes one row; gives a chunk once the buffer reached the chunk size.
    pub fn write<T: Element>(
        &mut self,
        features: &[T],
        label: Option<Label>,
    ) -> Result<Option<Bytes>> {
        let shape = RowShape {
            cols: features.len(),
            features: T::TENSOR,
            label: label.map(|l| l.tensor_type()),
        };
        match self.shape {
            None => self.shape = Some(shape),
            Some(first) if first == shape => {}
            Some(first) => {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    OP_ENCODE,
                    format!(
                        "row {} is {}, but the first row was {}: all rows need one width and type, as in one array",
                        self.records,
                        describe(&shape),
                        describe(&first)
                    ),
                )
                .with("row", self.records));
            }
        }
        encode_record(&mut self.buf, features, label).map_err(|e| e.with("row", self.records))?;
        self.records += 1;
        if self.buf.len() >= self.chunk_size {
            let full = std::mem::replace(&mut self.buf, Vec::with_capacity(self.chunk_size + 64));
            Ok(Some(Bytes::from(full)))
        } else {
            Ok(None)
        }
    }

    /// The records written so far.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// The buffered rest (empty if nothing is buffered).
    pub fn finish(self) -> Bytes {
        Bytes::from(self.buf)
    }
}

fn describe(shape: &RowShape) -> String {
    let label = match shape.label {
        Some(t) => format!("an {} label", t.name()),
        None => "no label".to_string(),
    };
    format!(
        "{} {} features with {label}",
        shape.cols,
        shape.features.name()
    )
}

/// What [`write_dense_tensor`] stored.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WriteSummary {
    /// Records (rows) written.
    pub records: u64,
    /// Bytes stored.
    pub size: u64,
    /// The entity tag, when the store reports one.
    pub e_tag: Option<String>,
}

/// Streams `rows` — each its features and optional label — as
/// RecordIO-protobuf to `bucket`/`key` with
/// [`ObjectStore::put_stream`]: rows are encoded as the upload reads them, so
/// memory stays at a few chunks of [`DEFAULT_CHUNK_SIZE`] whatever the row
/// count. The content type is [`CONTENT_TYPE`] unless `opts` set one.
///
/// A failed row (an `Err` item, or one of another width or type than the
/// first, see [`DenseTensorWriter`]) aborts the upload: nothing partial is
/// stored, and the error names the row. Zero rows store an empty object.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> gust::Result<()> {
/// use futures::stream;
/// use gust::formats::recordio::{self, Label};
/// use gust::hooks::object_store::{MemoryStore, ObjectStore, PutOptions};
///
/// let store = MemoryStore::new();
/// store.create_bucket("ml").await?;
/// let rows = (0..1000).map(|i| Ok((vec![i as f32 / 1000.0; 784], Some(Label::Int32(i % 10)))));
/// let put = recordio::write_dense_tensor(&store, "ml", "mnist.rec", stream::iter(rows), &PutOptions::new()).await?;
/// assert_eq!((put.records, put.size), (1000, 1000 * 3184));
/// assert_eq!(store.head("ml", "mnist.rec").await?.content_type.as_deref(), Some(recordio::CONTENT_TYPE));
/// # Ok(()) }
/// ```
pub async fn write_dense_tensor<T, F, S>(
    store: &dyn ObjectStore,
    bucket: &str,
    key: &str,
    rows: S,
    opts: &PutOptions,
) -> Result<WriteSummary>
where
    T: Element,
    F: AsRef<[T]>,
    S: Stream<Item = Result<(F, Option<Label>)>>,
{
    let mut opts = opts.clone();
    if opts.content_type.is_none() {
        opts.content_type = Some(CONTENT_TYPE.to_string());
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes>>(2);
    let body: BytesStream =
        futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|c| (c, rx)) })
            .boxed();
    let fill = async move {
        let mut writer = DenseTensorWriter::new();
        let mut rows = std::pin::pin!(rows);
        let result: Result<u64> = async {
            while let Some(row) = rows.next().await {
                let (features, label) = row.map_err(|e| e.with("row", writer.records()))?;
                if let Some(chunk) = writer.write(features.as_ref(), label)?
                    && tx.send(Ok(chunk)).await.is_err()
                {
                    // The upload failed and says why.
                    return Ok(writer.records());
                }
            }
            let records = writer.records();
            let rest = writer.finish();
            if !rest.is_empty() {
                let _ = tx.send(Ok(rest)).await;
            }
            Ok(records)
        }
        .await;
        if let Err(e) = &result {
            // Abort the upload: the store drops what it received.
            let abort = Error::new(
                e.kind(),
                OP_WRITE,
                format!("the rows failed: {}", e.message()),
            );
            let _ = tx.send(Err(abort)).await;
        }
        result
    };
    let (put, filled) = futures::join!(store.put_stream(bucket, key, body, &opts), fill);
    let records = filled.map_err(|e| e.with("bucket", bucket).with("key", key))?;
    let put = put?;
    tracing::debug!(%bucket, %key, records, bytes = put.size, "RecordIO-protobuf object written");
    Ok(WriteSummary {
        records,
        size: put.size,
        e_tag: put.e_tag,
    })
}

/// [`write_dense_tensor`] for a row-major matrix of `n_cols` columns and an
/// optional label per row (`i64` labels are written as `Int32` labels, as the
/// SDK writes numpy `int64` labels). The matrix is checked first (see
/// [`encode_dense_matrix`]): a bad shape stores nothing.
pub async fn write_dense_matrix<T: Element + Sync, L: IntoLabel + Sync>(
    store: &dyn ObjectStore,
    bucket: &str,
    key: &str,
    data: &[T],
    n_cols: usize,
    labels: Option<&[L]>,
    opts: &PutOptions,
) -> Result<WriteSummary> {
    matrix_rows(data, n_cols, labels)?;
    let rows = data.chunks_exact(n_cols).enumerate().map(|(i, row)| {
        let label = labels.map(|l| l[i].into_label()).transpose()?;
        Ok((row, label))
    });
    write_dense_tensor(store, bucket, key, futures::stream::iter(rows), opts).await
}

// ---------------------------------------------------------------------------
// Reading

/// The values of a tensor.
#[derive(Debug, Clone, PartialEq)]
pub enum Values {
    /// A `Float32Tensor`'s values.
    Float32(Vec<f32>),
    /// A `Float64Tensor`'s values.
    Float64(Vec<f64>),
    /// An `Int32Tensor`'s values.
    Int32(Vec<i32>),
}

impl Values {
    /// The number of values.
    pub fn len(&self) -> usize {
        match self {
            Values::Float32(v) => v.len(),
            Values::Float64(v) => v.len(),
            Values::Int32(v) => v.len(),
        }
    }

    /// Whether there are no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The tensor type.
    pub fn tensor_type(&self) -> TensorType {
        match self {
            Values::Float32(_) => TensorType::Float32,
            Values::Float64(_) => TensorType::Float64,
            Values::Int32(_) => TensorType::Int32,
        }
    }
}

/// A decoded tensor: its values and, for sparse rows, keys and shape (empty
/// for the dense rows [`encode_record`] writes).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Tensor {
    /// The values.
    pub values: Values,
    /// The column of each value, for a sparse tensor.
    pub keys: Vec<u64>,
    /// The dense shape, for a sparse tensor.
    pub shape: Vec<u64>,
}

/// A decoded record: its `features["values"]` and `label["values"]` tensors.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Record {
    /// The `features["values"]` tensor.
    pub features: Tensor,
    /// The `label["values"]` tensor, if the record has a label.
    pub label: Option<Tensor>,
}

impl Record {
    /// The label's first value as an `f64` (an `Int32` label exactly), if any.
    pub fn label_value(&self) -> Option<f64> {
        match &self.label.as_ref()?.values {
            Values::Float32(v) => v.first().map(|&x| x as f64),
            Values::Float64(v) => v.first().copied(),
            Values::Int32(v) => v.first().map(|&x| x as f64),
        }
    }
}

/// Every record of a RecordIO-protobuf file in memory. See
/// [`RecordDecoder`] for the errors; for a large object, use [`read_stream`].
pub fn read_records(data: &[u8]) -> Result<Vec<Record>> {
    let (mut pos, mut offset, mut split) = (0usize, 0u64, None);
    let mut records = Vec::new();
    while let Some((record, used)) = next_in(&data[pos..], offset, &mut split)? {
        pos += used;
        offset += used as u64;
        records.extend(record);
    }
    check_end(&data[pos..], offset, &split)?;
    Ok(records)
}

/// A push decoder of RecordIO-protobuf: [`push`](Self::push) chunks as they
/// arrive, take records out with [`next_record`](Self::next_record), and call
/// [`finish`](Self::finish) at the end of the input. It holds at most one
/// frame (one record) beyond what it was fed, so memory follows the largest
/// record, not the file.
///
/// Errors name the byte offset of the frame in the input. After an error the
/// decoder gives the same error again: the input cannot be trusted past it.
#[derive(Debug, Default)]
pub struct RecordDecoder {
    buf: Vec<u8>,
    /// Start of the unread bytes in `buf`.
    start: usize,
    /// The input offset of `buf[start]`.
    offset: u64,
    /// A split record being joined, and the offset of its first frame.
    split: Option<(Vec<u8>, u64)>,
    failed: Option<Error>,
}

enum Frame {
    /// More bytes are needed: the frame is this long, `available` are there.
    Need { header: bool, len: usize },
    /// A frame of this payload range and total length.
    Whole {
        cflag: u32,
        payload: std::ops::Range<usize>,
        total: usize,
    },
}

fn parse_frame(data: &[u8], offset: u64) -> Result<Frame> {
    if data.len() < 4 {
        return Ok(Frame::Need {
            header: true,
            len: 8,
        });
    }
    let magic = u32::from_le_bytes([data[0], data[1], data[2], data[3]]);
    if magic != MAGIC {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            OP_READ,
            format!(
                "bad magic 0x{magic:08x} at offset {offset} (RecordIO frames start with 0x{MAGIC:08x}): not RecordIO, or corrupt"
            ),
        )
        .with("offset", offset));
    }
    if data.len() < 8 {
        return Ok(Frame::Need {
            header: true,
            len: 8,
        });
    }
    let word = u32::from_le_bytes([data[4], data[5], data[6], data[7]]);
    let cflag = word >> 29;
    let len = (word & MAX_PAYLOAD_LEN as u32) as usize;
    if cflag > 3 {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            OP_READ,
            format!(
                "the length word 0x{word:08x} at offset {} is over the 2^29 length limit (its top bits, the cflag, are {cflag}; only 0-3 exist)",
                offset + 4
            ),
        )
        .with("offset", offset));
    }
    let total = 8 + len.div_ceil(4) * 4;
    if data.len() < total {
        return Ok(Frame::Need {
            header: false,
            len: total,
        });
    }
    Ok(Frame::Whole {
        cflag,
        payload: 8..8 + len,
        total,
    })
}

impl RecordDecoder {
    /// An empty decoder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the next chunk of input.
    pub fn push(&mut self, chunk: &[u8]) {
        if self.start > 0 && self.start >= self.buf.len() / 2 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(chunk);
    }

    /// The next whole record, or `None` until more input is pushed.
    pub fn next_record(&mut self) -> Result<Option<Record>> {
        if let Some(e) = &self.failed {
            return Err(clone_error(e));
        }
        let result = self.next_inner();
        if let Err(e) = &result {
            self.failed = Some(clone_error(e));
        }
        result
    }

    fn next_inner(&mut self) -> Result<Option<Record>> {
        while let Some((record, used)) =
            next_in(&self.buf[self.start..], self.offset, &mut self.split)?
        {
            self.start += used;
            self.offset += used as u64;
            if record.is_some() {
                return Ok(record);
            }
        }
        Ok(None)
    }

    /// Ends the input: bytes left that are not a whole frame are a truncated
    /// frame, and a split record without its end is an error too.
    pub fn finish(&mut self) -> Result<()> {
        if let Some(e) = &self.failed {
            return Err(clone_error(e));
        }
        let result = check_end(&self.buf[self.start..], self.offset, &self.split);
        if let Err(e) = &result {
            self.failed = Some(clone_error(e));
        }
        result
    }
}

/// The next frame of `data` (at input `offset`): `None` when it is not
/// whole yet, else the bytes it takes and its record — `None` for a part of
/// a split record, kept in `split` until its end.
fn next_in(
    data: &[u8],
    offset: u64,
    split: &mut Option<(Vec<u8>, u64)>,
) -> Result<Option<(Option<Record>, usize)>> {
    let (cflag, payload, total) = match parse_frame(data, offset)? {
        Frame::Need { .. } => return Ok(None),
        Frame::Whole {
            cflag,
            payload,
            total,
        } => (cflag, payload, total),
    };
    let part = &data[payload];
    // dmlc's reader: parts with cflag 1 (start) and 2 (middle) are followed
    // by the magic word their split removed; 0 (whole) and 3 (end) complete
    // the record.
    let record = match (cflag, split.take()) {
        (1 | 2, pending) => {
            let (mut joined, at) = pending.unwrap_or((Vec::new(), offset));
            joined.extend_from_slice(part);
            joined.extend_from_slice(&MAGIC.to_le_bytes());
            *split = Some((joined, at));
            return Ok(Some((None, total)));
        }
        (_, Some((mut joined, at))) => {
            joined.extend_from_slice(part);
            decode_record(&joined, at)?
        }
        (_, None) => decode_record(part, offset)?,
    };
    Ok(Some((Some(record), total)))
}

/// At the end of the input: what is left must be nothing, and no split
/// record may be open.
fn check_end(rest: &[u8], offset: u64, split: &Option<(Vec<u8>, u64)>) -> Result<()> {
    if !rest.is_empty() {
        let (what, len) = match parse_frame(rest, offset)? {
            Frame::Need { header: true, len } => ("header", len),
            Frame::Need { header: false, len } => ("frame (header, payload and padding)", len),
            // Whole frames are taken before.
            Frame::Whole { total, .. } => ("frame", total),
        };
        return Err(Error::new(
            ErrorKind::InvalidInput,
            OP_READ,
            format!(
                "truncated frame at offset {offset}: its {what} needs {len} bytes, {} remain",
                rest.len()
            ),
        )
        .with("offset", offset));
    }
    if let Some((_, at)) = split {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            OP_READ,
            format!("the input ends inside the split record started at offset {at}"),
        )
        .with("offset", *at));
    }
    Ok(())
}

fn clone_error(e: &Error) -> Error {
    let mut c = Error::new(e.kind(), e.operation().to_string(), e.message());
    if let Some(offset) = e.context("offset") {
        c = c.with("offset", offset);
    }
    c
}

/// Decodes the records of a stream of chunks as they arrive (see
/// [`RecordDecoder`]); a failed chunk ends the stream with its error.
pub fn read_stream(body: BytesStream) -> BoxStream<'static, Result<Record>> {
    let state = (body, RecordDecoder::new(), false);
    futures::stream::try_unfold(state, |(mut body, mut decoder, mut ended)| async move {
        loop {
            if let Some(record) = decoder.next_record()? {
                return Ok(Some((record, (body, decoder, ended))));
            }
            if ended {
                return Ok(None);
            }
            match body.next().await {
                Some(chunk) => decoder.push(&chunk?),
                None => {
                    decoder.finish()?;
                    ended = true;
                }
            }
        }
    })
    .boxed()
}

/// The records of the object `bucket`/`key`, decoded as it downloads (see
/// [`read_stream`]). A missing object is
/// [`NotFound`](ErrorKind::NotFound).
pub async fn read_object(
    store: &dyn ObjectStore,
    bucket: &str,
    key: &str,
) -> Result<BoxStream<'static, Result<Record>>> {
    let body = store.get_stream(bucket, key).await?;
    let (bucket, key) = (bucket.to_string(), key.to_string());
    Ok(read_stream(body)
        .map(move |r| r.map_err(|e| e.with("bucket", &bucket).with("key", &key)))
        .boxed())
}

/// A protobuf reader over one message.
struct Pb<'a> {
    data: &'a [u8],
    pos: usize,
}

type PbResult<T> = std::result::Result<T, String>;

impl<'a> Pb<'a> {
    fn new(data: &'a [u8]) -> Self {
        Pb { data, pos: 0 }
    }

    fn more(&self) -> bool {
        self.pos < self.data.len()
    }

    fn varint(&mut self) -> PbResult<u64> {
        let mut v = 0u64;
        for i in 0..10 {
            let Some(&b) = self.data.get(self.pos) else {
                return Err(format!("a varint runs past the end at byte {}", self.pos));
            };
            self.pos += 1;
            v |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err(format!(
            "a varint longer than 10 bytes ends at byte {}",
            self.pos
        ))
    }

    fn bytes(&mut self, n: usize) -> PbResult<&'a [u8]> {
        if self.data.len() - self.pos < n {
            return Err(format!(
                "a field of {n} bytes at byte {} runs past the end ({} left)",
                self.pos,
                self.data.len() - self.pos
            ));
        }
        let b = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(b)
    }

    fn len_delimited(&mut self) -> PbResult<&'a [u8]> {
        let n = self.varint()?;
        let n = usize::try_from(n).map_err(|_| format!("a length of {n} bytes"))?;
        self.bytes(n)
    }

    /// The next field's number and wire type.
    fn key(&mut self) -> PbResult<(u64, u8)> {
        let key = self.varint()?;
        let field = key >> 3;
        if field == 0 {
            return Err(format!("field number 0 at byte {}", self.pos));
        }
        Ok((field, (key & 7) as u8))
    }

    fn skip(&mut self, wire: u8) -> PbResult<()> {
        match wire {
            0 => self.varint().map(drop),
            1 => self.bytes(8).map(drop),
            2 => self.len_delimited().map(drop),
            5 => self.bytes(4).map(drop),
            w => Err(format!(
                "wire type {w} at byte {} (groups are not used here)",
                self.pos
            )),
        }
    }
}

fn expect_len(field: &str, wire: u8) -> PbResult<()> {
    if wire == 2 {
        Ok(())
    } else {
        Err(format!(
            "{field} has wire type {wire}, not 2 (length-delimited)"
        ))
    }
}

/// Decodes one `aialgs.data.Record` payload.
fn decode_record(payload: &[u8], offset: u64) -> Result<Record> {
    decode_record_pb(payload).map_err(|m| {
        Error::new(
            ErrorKind::InvalidInput,
            OP_READ,
            format!("malformed protobuf in the record at offset {offset}: {m}"),
        )
        .with("offset", offset)
    })
}

fn decode_record_pb(payload: &[u8]) -> PbResult<Record> {
    let mut pb = Pb::new(payload);
    let mut features = None;
    let mut label = None;
    while pb.more() {
        let (field, wire) = pb.key()?;
        match field {
            1 | 2 => {
                let name = if field == 1 { "features" } else { "label" };
                expect_len(name, wire)?;
                let entry = pb.len_delimited()?;
                if let Some(tensor) = decode_entry(entry, name)? {
                    if field == 1 {
                        features = Some(tensor);
                    } else {
                        label = Some(tensor);
                    }
                }
            }
            _ => pb.skip(wire)?,
        }
    }
    let features =
        features.ok_or_else(|| "the record has no features[\"values\"] tensor".to_string())?;
    Ok(Record { features, label })
}

/// A `map<string, Value>` entry: the tensor if its key is `"values"`.
fn decode_entry(entry: &[u8], map: &str) -> PbResult<Option<Tensor>> {
    let mut pb = Pb::new(entry);
    let mut key: &[u8] = b"";
    let mut value: Option<&[u8]> = None;
    while pb.more() {
        let (field, wire) = pb.key()?;
        match field {
            1 => {
                expect_len("a map key", wire)?;
                key = pb.len_delimited()?;
            }
            2 => {
                expect_len("a map value", wire)?;
                value = Some(pb.len_delimited()?);
            }
            _ => pb.skip(wire)?,
        }
    }
    if key != b"values" {
        return Ok(None);
    }
    let value = value.unwrap_or_default();
    decode_value(value)
        .map(Some)
        .map_err(|m| format!("{map}[\"values\"]: {m}"))
}

/// A `Value`: its tensor (the last of the oneof wins, as in protobuf).
fn decode_value(value: &[u8]) -> PbResult<Tensor> {
    let mut pb = Pb::new(value);
    let mut tensor = None;
    while pb.more() {
        let (field, wire) = pb.key()?;
        let ty = match field {
            2 => TensorType::Float32,
            3 => TensorType::Float64,
            7 => TensorType::Int32,
            9 => return Err("a Bytes value, not a tensor (gust reads tensors only)".to_string()),
            _ => {
                pb.skip(wire)?;
                continue;
            }
        };
        expect_len(ty.name(), wire)?;
        tensor = Some(
            decode_tensor(pb.len_delimited()?, ty).map_err(|m| format!("{}: {m}", ty.name()))?,
        );
    }
    tensor.ok_or_else(|| "a Value without a tensor".to_string())
}

fn decode_tensor(data: &[u8], ty: TensorType) -> PbResult<Tensor> {
    let mut pb = Pb::new(data);
    let mut values = match ty {
        TensorType::Float32 => Values::Float32(Vec::new()),
        TensorType::Float64 => Values::Float64(Vec::new()),
        TensorType::Int32 => Values::Int32(Vec::new()),
    };
    let mut keys = Vec::new();
    let mut shape = Vec::new();
    while pb.more() {
        let (field, wire) = pb.key()?;
        match field {
            1 => read_values(&mut pb, wire, &mut values)?,
            2 => read_u64s(&mut pb, wire, &mut keys, "keys")?,
            3 => read_u64s(&mut pb, wire, &mut shape, "shape")?,
            _ => pb.skip(wire)?,
        }
    }
    Ok(Tensor {
        values,
        keys,
        shape,
    })
}

/// Repeated scalars, packed (wire type 2) or one at a time, as protobuf
/// parsers accept both.
fn read_values(pb: &mut Pb<'_>, wire: u8, values: &mut Values) -> PbResult<()> {
    match (values, wire) {
        (Values::Float32(v), 2) => {
            let b = pb.len_delimited()?;
            if b.len() % 4 != 0 {
                return Err(format!(
                    "{} bytes of packed floats are not whole floats",
                    b.len()
                ));
            }
            v.extend(
                b.chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
            );
        }
        (Values::Float32(v), 5) => {
            let c = pb.bytes(4)?;
            v.push(f32::from_le_bytes([c[0], c[1], c[2], c[3]]));
        }
        (Values::Float64(v), 2) => {
            let b = pb.len_delimited()?;
            if b.len() % 8 != 0 {
                return Err(format!(
                    "{} bytes of packed doubles are not whole doubles",
                    b.len()
                ));
            }
            v.extend(
                b.chunks_exact(8)
                    .map(|c| f64::from_le_bytes(c.try_into().unwrap_or_default())),
            );
        }
        (Values::Float64(v), 1) => {
            let c = pb.bytes(8)?;
            v.push(f64::from_le_bytes(c.try_into().unwrap_or_default()));
        }
        (Values::Int32(v), 2) => {
            let mut packed = Pb::new(pb.len_delimited()?);
            while packed.more() {
                // int32 is sign-extended to 64 bits; protobuf truncates.
                v.push(packed.varint()? as i32);
            }
        }
        (Values::Int32(v), 0) => v.push(pb.varint()? as i32),
        (_, w) => return Err(format!("values have wire type {w}")),
    }
    Ok(())
}

fn read_u64s(pb: &mut Pb<'_>, wire: u8, out: &mut Vec<u64>, name: &str) -> PbResult<()> {
    match wire {
        2 => {
            let mut packed = Pb::new(pb.len_delimited()?);
            while packed.more() {
                out.push(packed.varint()?);
            }
        }
        0 => out.push(pb.varint()?),
        w => return Err(format!("{name} have wire type {w}")),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    const X: [f32; 6] = [0.0, 0.5, 1.0, 0.25, 0.0, 0.75];

    // The research notes' vectors, verified against the SDK's descriptor.
    const F32_LABELS: &str = "0a23d7ce300000000a1a0a0676616c7565731210120e0a0c000000000000003f0000803f12120a0676616c756573120812060a04000040400a23d7ce300000000a1a0a0676616c7565731210120e0a0c0000803e000000000000403f12120a0676616c756573120812060a040000e040";
    const I64_LABELS: &str = "0a23d7ce2d0000000a1a0a0676616c7565731210120e0a0c000000000000003f0000803f120f0a0676616c75657312053a030a01030000000a23d7ce2d0000000a1a0a0676616c7565731210120e0a0c0000803e000000000000403f120f0a0676616c75657312053a030a0107000000";
    const NO_LABELS: &str = "0a23d7ce1c0000000a1a0a0676616c7565731210120e0a0c000000000000003f0000803f0a23d7ce1c0000000a1a0a0676616c7565731210120e0a0c0000803e000000000000403f";

    #[test]
    fn golden_vectors_of_the_research_notes() {
        let mut out = Vec::new();
        encode_dense_matrix(&mut out, &X, 3, Some(&[3.0f32, 7.0][..])).unwrap();
        assert_eq!(out, hex(F32_LABELS));
        out.clear();
        encode_dense_matrix(&mut out, &X, 3, Some(&[3i64, 7][..])).unwrap();
        assert_eq!(out, hex(I64_LABELS));
        out.clear();
        encode_dense_matrix::<f32, Label>(&mut out, &X, 3, None).unwrap();
        assert_eq!(out, hex(NO_LABELS));
        for golden in [F32_LABELS, I64_LABELS, NO_LABELS] {
            let records = read_records(&hex(golden)).unwrap();
            assert_eq!(records.len(), 2);
            assert_eq!(records[0].features.values, Values::Float32(X[..3].to_vec()));
            assert_eq!(records[1].features.values, Values::Float32(X[3..].to_vec()));
        }
        let r = read_records(&hex(I64_LABELS)).unwrap();
        assert_eq!(r[1].label.as_ref().unwrap().values, Values::Int32(vec![7]));
        assert_eq!(r[0].label_value(), Some(3.0));
        let r = read_records(&hex(F32_LABELS)).unwrap();
        assert_eq!(
            r[1].label.as_ref().unwrap().values,
            Values::Float32(vec![7.0])
        );
        assert!(read_records(&hex(NO_LABELS)).unwrap()[0].label.is_none());
    }

    #[test]
    fn mnist_record_sizes() {
        // 784 float32 features: payload 3173 + 3 padding with an int label,
        // 3176 with a float32 label; 3184 bytes framed either way.
        let row = [0.5f32; 784];
        let mut out = Vec::new();
        encode_record(&mut out, &row, Some(Label::Int32(9))).unwrap();
        assert_eq!(out.len(), 3184);
        assert_eq!(u32::from_le_bytes(out[4..8].try_into().unwrap()), 3173);
        assert_eq!(&out[8..11], &[0x0a, 0xd1, 0x18]);
        out.clear();
        encode_record(&mut out, &row, Some(Label::Float32(9.0))).unwrap();
        assert_eq!(u32::from_le_bytes(out[4..8].try_into().unwrap()), 3176);
        assert_eq!(out.len(), 3184);
    }

    #[test]
    fn varints_and_negative_int_labels() {
        for (v, n) in [
            (0u64, 1),
            (127, 1),
            (128, 2),
            (16383, 2),
            (16384, 3),
            (u64::MAX, 10),
        ] {
            assert_eq!(varint_len(v), n, "{v}");
            let mut out = Vec::new();
            put_varint(&mut out, v);
            assert_eq!(out.len(), n);
            assert_eq!(Pb::new(&out).varint().unwrap(), v);
        }
        // The SDK's bytes for features [[0]] and label [-1] (protobuf 6.33.6).
        let sdk = hex(
            "0a23d7ce2e0000000a120a0676616c756573120812060a040000000012180a0676616c756573120e3a0c0a0affffffffffffffffff010000",
        );
        let mut out = Vec::new();
        encode_record(&mut out, &[0.0f32], Some(Label::Int32(-1))).unwrap();
        assert_eq!(out, sdk);
        let r = read_records(&out).unwrap();
        assert_eq!(r[0].label.as_ref().unwrap().values, Values::Int32(vec![-1]));
    }

    #[test]
    fn shape_and_label_errors() {
        let mut out = Vec::new();
        let e = encode_dense_matrix::<f32, i64>(&mut out, &X, 4, None).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(e.message().contains("not whole rows of 4"), "{e}");
        let e = encode_dense_matrix(&mut out, &X, 3, Some(&[1i64, 2, 3][..])).unwrap_err();
        assert!(e.message().contains("3 labels for 2 rows"), "{e}");
        let e = encode_dense_matrix(&mut out, &X, 3, Some(&[1i64, 1 << 31][..])).unwrap_err();
        assert!(
            e.message().contains("2147483648 is out of the int32 range"),
            "{e}"
        );
        assert_eq!(e.context("row"), Some("1"));
        assert!(encode_dense_matrix::<f32, i64>(&mut out, &X, 0, None).is_err());

        let mut w = DenseTensorWriter::new();
        w.write(&[1.0f32, 2.0], Some(Label::Int32(1))).unwrap();
        let e = w.write(&[1.0f32], Some(Label::Int32(1))).unwrap_err();
        assert!(
            e.message().contains("row 1 is 1 Float32Tensor features"),
            "{e}"
        );
        let e = w.write(&[1.0f32, 2.0], None).unwrap_err();
        assert!(e.message().contains("with no label"), "{e}");
        let e = w.write(&[1.0f64, 2.0], Some(Label::Int32(1))).unwrap_err();
        assert!(e.message().contains("Float64Tensor"), "{e}");
        assert_eq!(w.records(), 1);
    }

    #[test]
    fn reader_errors_name_offsets() {
        let good = hex(I64_LABELS);
        let mut bad = good.clone();
        bad[56] ^= 0xff;
        let e = read_records(&bad).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(
            e.message().contains("bad magic 0x") && e.message().contains("at offset 56"),
            "{e}"
        );
        assert_eq!(e.context("offset"), Some("56"));

        let e = read_records(&good[..100]).unwrap_err();
        assert!(
            e.message().contains("truncated frame at offset 56: its frame (header, payload and padding) needs 56 bytes, 44 remain"),
            "{e}"
        );
        let e = read_records(&good[..59]).unwrap_err();
        assert!(
            e.message().contains("its header needs 8 bytes, 3 remain"),
            "{e}"
        );

        let mut over = good.clone();
        over[7] |= 0x80; // cflag 4
        let e = read_records(&over).unwrap_err();
        assert!(e.message().contains("over the 2^29 length limit"), "{e}");

        let mut proto = good.clone();
        proto[8 + 2] = 0x7f; // the features entry's inner key length
        let e = read_records(&proto).unwrap_err();
        assert!(
            e.message()
                .starts_with("malformed protobuf in the record at offset 0"),
            "{e}"
        );

        // A valid frame whose record has no features.
        let mut empty = Vec::new();
        empty.extend_from_slice(&MAGIC.to_le_bytes());
        empty.extend_from_slice(&0u32.to_le_bytes());
        let e = read_records(&empty).unwrap_err();
        assert!(e.message().contains("no features[\"values\"]"), "{e}");
        assert!(read_records(&[]).unwrap().is_empty());
    }

    #[test]
    fn split_records_are_joined_as_dmlc_joins_them() {
        // A record whose payload contains the magic word at an aligned
        // offset, split as dmlc's writer splits it (the word dropped).
        // The values start at payload byte 16, so the second one is aligned.
        let features = [0.0f32, f32::from_bits(MAGIC), 1.0];
        let mut whole = Vec::new();
        encode_record(&mut whole, &features, None).unwrap();
        let len = u32::from_le_bytes(whole[4..8].try_into().unwrap()) as usize;
        let payload = &whole[8..8 + len];
        let at = (0..payload.len() - 3)
            .step_by(4)
            .find(|&i| payload[i..i + 4] == MAGIC.to_le_bytes())
            .expect("the magic word is in the payload");
        let frame = |out: &mut Vec<u8>, cflag: u32, part: &[u8]| {
            out.extend_from_slice(&MAGIC.to_le_bytes());
            out.extend_from_slice(&((cflag << 29) | part.len() as u32).to_le_bytes());
            out.extend_from_slice(part);
            out.resize(out.len() + (4 - part.len() % 4) % 4, 0);
        };
        let mut split = Vec::new();
        frame(&mut split, 1, &payload[..at]);
        frame(&mut split, 3, &payload[at + 4..]);
        encode_record(&mut split, &[2.0f32, 3.0, 4.0], None).unwrap();
        let records = read_records(&split).unwrap();
        assert_eq!(records.len(), 2);
        let Values::Float32(v) = &records[0].features.values else {
            panic!()
        };
        assert_eq!(
            v.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            features.map(f32::to_bits)
        );
        // Ending after the start part is an error.
        let mut open = Vec::new();
        frame(&mut open, 1, &payload[..at]);
        let e = read_records(&open).unwrap_err();
        assert!(
            e.message()
                .contains("inside the split record started at offset 0"),
            "{e}"
        );
    }

    #[test]
    fn decoder_takes_any_chunking() {
        let good = hex(F32_LABELS);
        let want = read_records(&good).unwrap();
        for size in [1, 3, 7, 56, 57, 200] {
            let mut d = RecordDecoder::new();
            let mut got = Vec::new();
            for chunk in good.chunks(size) {
                d.push(chunk);
                while let Some(r) = d.next_record().unwrap() {
                    got.push(r);
                }
            }
            d.finish().unwrap();
            assert_eq!(got, want, "chunks of {size}");
        }
    }

    #[test]
    fn unpacked_scalars_keys_and_shape_are_read() {
        // Float32Tensor{values: 1.5 (unpacked), keys: [3] (unpacked), shape: [10] (packed)}.
        let mut tensor = vec![0x0d];
        tensor.extend_from_slice(&1.5f32.to_le_bytes());
        tensor.extend_from_slice(&[0x10, 3, 0x1a, 1, 10]);
        let mut value = vec![0x12, tensor.len() as u8];
        value.extend_from_slice(&tensor);
        let mut entry = b"\x0a\x06values".to_vec();
        entry.push(0x12);
        entry.push(value.len() as u8);
        entry.extend_from_slice(&value);
        let mut payload = vec![0x0a, entry.len() as u8];
        payload.extend_from_slice(&entry);
        payload.extend_from_slice(b"\x1a\x03uid"); // skipped
        let t = decode_record_pb(&payload).unwrap().features;
        assert_eq!(t.values, Values::Float32(vec![1.5]));
        assert_eq!((t.keys, t.shape), (vec![3], vec![10]));
    }
}
