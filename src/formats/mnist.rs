//! MNIST files (feature `mnist`): the pickled `mnist.pkl.gz` that SageMaker's
//! sample data ships (`s3://sagemaker-sample-data-<region>/algorithms/kmeans/mnist/mnist.pkl.gz`)
//! and the IDX files (`train-images-idx3-ubyte.gz` …), read from bytes into
//! row-major `f32` images and integer labels, ready for
//! [`recordio`](super::recordio).
//!
//! # The pickle
//!
//! [`read_pickle`] reads `((train_x, train_y), (valid_x, valid_y), (test_x, test_y))`
//! with `x` float32 `(n, 784)` and `y` integers `(n,)`, gzipped (detected by
//! its magic bytes) or not, as written by
//!
//! * Python 2's `cPickle` (protocol 2, the real `mnist.pkl.gz`): arrays as
//!   `numpy.core.multiarray._reconstruct` with their raw bytes in a `str`;
//! * Python 3 with protocol 2 (the bytes as `_codecs.encode(…, "latin1")`),
//!   protocol 3 or 4 (`bytes`), or protocol 5 (`numpy._core.numeric._frombuffer`
//!   with an in-band buffer), by numpy 1.x or 2.x.
//!
//! The pickle is decoded by serde-pickle without running any Python: numpy's
//! globals are not resolved, only their arguments and states are kept. The
//! dtype's name does not always survive that, so the item size comes from
//! `bytes / elements`: images must be 4-byte floats; labels 8- or 4-byte
//! integers. Fortran-ordered arrays are transposed into row order, and arrays
//! whose dtype says big-endian are swapped — unless the dtype is a second
//! reference to one already used (pickle memoizes it before its byte order is
//! set), which then reads as little-endian, as every pickle numpy writes on
//! x86 and ARM is.
//!
//! The whole file is decoded in memory: the real one takes about three times
//! its unpacked 220 MB at the peak.
//!
//! # IDX
//!
//! [`read_idx_images`] (magic `0x00000803`: count, rows, columns, then `u8`
//! pixels, scaled to `f32` by `/ 255` as in the pickle) and [`read_idx_labels`]
//! (magic `0x00000801`), gzipped or not; [`read_idx`] pairs them into a [`MnistSet`].
//!
//! ```no_run
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> gust::Result<()> {
//! use gust::formats::{mnist, recordio};
//! use gust::hooks::object_store::{LocalStore, ObjectStore, PutOptions};
//!
//! let store = LocalStore::new("/data")?;
//! let bytes = store.get("sagemaker-sample-data", "algorithms/kmeans/mnist/mnist.pkl.gz").await?;
//! let mnist = mnist::read_pickle(&bytes)?;
//! let train = &mnist.train;
//! assert_eq!((train.rows, train.cols), (50_000, 784));
//! // The seed pipeline's next step: RecordIO-protobuf for SageMaker's KMeans.
//! recordio::write_dense_matrix(&store, "my-bucket", "mnist_data", &train.images, train.cols,
//!     Some(&train.labels), &PutOptions::new()).await?;
//! # Ok(()) }
//! ```
//!
//! # Errors
//!
//! All [`ErrorKind::InvalidInput`], never a panic: corrupt gzip, a corrupt or
//! truncated pickle, a structure other than three `(x, y)` pairs of arrays
//! (saying what was expected and what was found), a shape that does not match
//! the bytes or the labels, a bad IDX magic, a truncated IDX file.

use std::io::Read;

use serde_pickle::{DeOptions, Value};

use crate::error::{Error, ErrorKind, Result};

const OP_PICKLE: &str = "mnist.read_pickle";
const OP_IDX: &str = "mnist.read_idx";

/// One set of MNIST: `rows` images of `cols` pixels in row-major order, and
/// a label per image.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct MnistSet {
    /// The pixels, image after image (`rows * cols` values, 0.0-1.0 in MNIST).
    pub images: Vec<f32>,
    /// The number of images.
    pub rows: usize,
    /// The pixels per image (784 for 28 × 28).
    pub cols: usize,
    /// The digit of each image.
    pub labels: Vec<i64>,
}

impl MnistSet {
    /// The number of images.
    pub fn len(&self) -> usize {
        self.rows
    }

    /// Whether the set has no images.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// The pixels of image `i`; panics when `i` is out of range, as slices do.
    pub fn image(&self, i: usize) -> &[f32] {
        &self.images[i * self.cols..(i + 1) * self.cols]
    }
}

/// The three sets of `mnist.pkl.gz`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Mnist {
    /// The training set (50,000 images in the real file).
    pub train: MnistSet,
    /// The validation set (10,000).
    pub valid: MnistSet,
    /// The test set (10,000).
    pub test: MnistSet,
}

fn invalid(op: &'static str, message: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidInput, op, message)
}

/// `data` gunzipped if it starts with gzip's magic bytes, else as it is.
fn gunzip<'a>(data: &'a [u8], op: &'static str) -> Result<std::borrow::Cow<'a, [u8]>> {
    if !data.starts_with(&[0x1f, 0x8b]) {
        return Ok(data.into());
    }
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(data)
        .read_to_end(&mut out)
        .map_err(|e| invalid(op, format!("corrupt gzip data: {e}")).with_source(e))?;
    Ok(out.into())
}

/// Reads `mnist.pkl.gz` (or the pickle uncompressed). See the [module docs](self).
pub fn read_pickle(data: &[u8]) -> Result<Mnist> {
    let raw = gunzip(data, OP_PICKLE)?;
    let options = DeOptions::new()
        .replace_unresolved_globals()
        .keep_restore_state();
    let value = serde_pickle::value_from_slice(&raw, options)
        .map_err(|e| invalid(OP_PICKLE, format!("not a readable pickle: {e}")).with_source(e))?;
    drop(raw);
    let sets = match value {
        Value::Tuple(v) | Value::List(v) if v.len() == 3 => v,
        other => {
            return Err(invalid(
                OP_PICKLE,
                format!(
                    "expected a tuple of 3 (x, y) pairs (train, valid, test), found {}",
                    describe(&other)
                ),
            ));
        }
    };
    let mut sets = sets
        .into_iter()
        .zip(["train", "valid", "test"])
        .map(|(v, name)| to_set(v, name));
    let (Some(train), Some(valid), Some(test)) = (sets.next(), sets.next(), sets.next()) else {
        unreachable!("three sets were checked");
    };
    Ok(Mnist {
        train: train?,
        valid: valid?,
        test: test?,
    })
}

fn to_set(value: Value, name: &str) -> Result<MnistSet> {
    let pair = match value {
        Value::Tuple(v) | Value::List(v) if v.len() == 2 => v,
        other => {
            return Err(invalid(
                OP_PICKLE,
                format!(
                    "the {name} set: expected an (x, y) pair of arrays, found {}",
                    describe(&other)
                ),
            ));
        }
    };
    let mut pair = pair.into_iter();
    let (Some(x), Some(y)) = (pair.next(), pair.next()) else {
        unreachable!("a pair was checked");
    };
    let x = Array::from_value(x).map_err(|m| invalid(OP_PICKLE, format!("{name}_x: {m}")))?;
    let y = Array::from_value(y).map_err(|m| invalid(OP_PICKLE, format!("{name}_y: {m}")))?;
    let (rows, cols, images) = x
        .into_images()
        .map_err(|m| invalid(OP_PICKLE, format!("{name}_x: {m}")))?;
    let labels = y
        .into_labels()
        .map_err(|m| invalid(OP_PICKLE, format!("{name}_y: {m}")))?;
    if labels.len() != rows {
        return Err(invalid(
            OP_PICKLE,
            format!(
                "the {name} set has {rows} images but {} labels",
                labels.len()
            ),
        ));
    }
    Ok(MnistSet {
        images,
        rows,
        cols,
        labels,
    })
}

/// A pickled numpy array, from numpy's `_reconstruct` state or `_frombuffer`
/// arguments.
struct Array {
    shape: Vec<usize>,
    data: Vec<u8>,
    fortran: bool,
    big_endian: bool,
    /// The dtype's kind (`f`, `i`, `u`…), when its name survived.
    kind: Option<u8>,
}

/// The dtype as serde-pickle leaves it: its `BUILD` state
/// `(3, '<', None, …)`, its arguments `('f4', False, True)` (a memoized
/// second reference), or `None`. Gives (big-endian, kind).
fn dtype_info(dtype: &Value) -> (bool, Option<u8>) {
    let Value::Tuple(t) = dtype else {
        return (false, None);
    };
    match t.first() {
        Some(Value::I64(_)) => {
            let big = matches!(t.get(1), Some(Value::String(s)) if s == ">")
                || matches!(t.get(1), Some(Value::Bytes(s)) if s == b">");
            (big, None)
        }
        Some(Value::String(name)) => (
            name.starts_with('>'),
            name.trim_start_matches(['<', '>', '=', '|']).bytes().next(),
        ),
        Some(Value::Bytes(name)) => (
            name.first() == Some(&b'>'),
            name.iter().copied().find(|c| c.is_ascii_alphabetic()),
        ),
        _ => (false, None),
    }
}

fn shape_of(v: &Value) -> Option<Vec<usize>> {
    match v {
        Value::Tuple(dims) | Value::List(dims) => dims
            .iter()
            .map(|d| match d {
                Value::I64(n) => usize::try_from(*n).ok(),
                _ => None,
            })
            .collect(),
        _ => None,
    }
}

impl Array {
    fn from_value(value: Value) -> std::result::Result<Array, String> {
        let found = describe(&value);
        let not_array = || {
            format!(
                "expected a numpy array (the state of numpy's _reconstruct or the arguments of _frombuffer), found {found}"
            )
        };
        let Value::Tuple(mut t) = value else {
            return Err(not_array());
        };
        let array = match t.len() {
            // _reconstruct's state: (version, shape, dtype, is_fortran, raw bytes).
            5 if matches!(t[0], Value::I64(_)) => {
                let Value::Bytes(data) = std::mem::replace(&mut t[4], Value::None) else {
                    return Err(format!(
                        "{}: the data is not raw bytes (an object array?)",
                        not_array()
                    ));
                };
                let shape = shape_of(&t[1]).ok_or_else(not_array)?;
                let fortran = match t[3] {
                    Value::Bool(b) => b,
                    Value::I64(i) => i != 0,
                    _ => return Err(not_array()),
                };
                let (big_endian, kind) = dtype_info(&t[2]);
                Array {
                    shape,
                    data,
                    fortran,
                    big_endian,
                    kind,
                }
            }
            // _frombuffer(buffer, dtype, shape, order).
            4 if matches!(t[0], Value::Bytes(_)) => {
                let Value::Bytes(data) = std::mem::replace(&mut t[0], Value::None) else {
                    return Err(not_array());
                };
                let shape = shape_of(&t[2]).ok_or_else(not_array)?;
                let fortran = matches!(&t[3], Value::String(s) if s == "F");
                let (big_endian, kind) = dtype_info(&t[1]);
                Array {
                    shape,
                    data,
                    fortran,
                    big_endian,
                    kind,
                }
            }
            _ => return Err(not_array()),
        };
        Ok(array)
    }

    /// The element count and item size, checked against the bytes.
    fn item_size(&self) -> std::result::Result<(usize, usize), String> {
        let count = self
            .shape
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .ok_or_else(|| format!("the shape {:?} overflows", self.shape))?;
        if count == 0 {
            return if self.data.is_empty() {
                Ok((0, 0))
            } else {
                Err(format!(
                    "shape {:?} holds no values but the data is {} bytes",
                    self.shape,
                    self.data.len()
                ))
            };
        }
        if !self.data.len().is_multiple_of(count) {
            return Err(format!(
                "{} bytes of data do not fit shape {:?} ({count} values)",
                self.data.len(),
                self.shape
            ));
        }
        Ok((count, self.data.len() / count))
    }

    /// The bytes of item `i` in row-major order, little-endian.
    fn items<const N: usize>(&self) -> Vec<[u8; N]> {
        let mut items: Vec<[u8; N]> = self
            .data
            .chunks_exact(N)
            .map(|c| {
                let mut b: [u8; N] = c.try_into().unwrap_or([0; N]);
                if self.big_endian {
                    b.reverse();
                }
                b
            })
            .collect();
        if self.fortran && self.shape.len() == 2 {
            let (rows, cols) = (self.shape[0], self.shape[1]);
            let column_major = std::mem::take(&mut items);
            items = (0..rows * cols)
                .map(|k| column_major[(k % cols) * rows + k / cols])
                .collect();
        }
        items
    }

    fn into_images(self) -> std::result::Result<(usize, usize, Vec<f32>), String> {
        if self.shape.len() != 2 {
            return Err(format!(
                "expected a 2-D array of images, found shape {:?}",
                self.shape
            ));
        }
        let (count, size) = self.item_size()?;
        if count > 0 && (size != 4 || self.kind.is_some_and(|k| k != b'f')) {
            return Err(format!(
                "expected float32 pixels (4 bytes each), found {size}-byte items{}",
                self.kind
                    .map(|k| format!(" of kind '{}'", k as char))
                    .unwrap_or_default()
            ));
        }
        let images = self
            .items::<4>()
            .into_iter()
            .map(f32::from_le_bytes)
            .collect();
        Ok((self.shape[0], self.shape[1], images))
    }

    fn into_labels(self) -> std::result::Result<Vec<i64>, String> {
        if self.shape.len() != 1 {
            return Err(format!(
                "expected a 1-D array of labels, found shape {:?}",
                self.shape
            ));
        }
        let (_, size) = self.item_size()?;
        if self.kind.is_some_and(|k| k != b'i' && k != b'u') {
            return Err(format!(
                "expected integer labels, found dtype kind '{}'",
                self.kind.unwrap_or(b'?') as char
            ));
        }
        match size {
            0 => Ok(Vec::new()),
            8 => Ok(self
                .items::<8>()
                .into_iter()
                .map(i64::from_le_bytes)
                .collect()),
            4 => Ok(self
                .items::<4>()
                .into_iter()
                .map(|b| i32::from_le_bytes(b) as i64)
                .collect()),
            n => Err(format!(
                "expected int64 or int32 labels, found {n}-byte items"
            )),
        }
    }
}

/// A short description of a decoded value, for errors.
fn describe(v: &Value) -> String {
    match v {
        Value::None => "None".into(),
        Value::Bool(_) => "a bool".into(),
        Value::I64(_) | Value::Int(_) => "an int".into(),
        Value::F64(_) => "a float".into(),
        Value::Bytes(b) => format!("{} bytes", b.len()),
        Value::String(_) => "a string".into(),
        Value::List(v) => format!("a list of {}", v.len()),
        Value::Tuple(v) => format!("a tuple of {}", v.len()),
        Value::Set(_) | Value::FrozenSet(_) => "a set".into(),
        Value::Dict(d) => format!("a dict of {}", d.len()),
    }
}

/// The images of an IDX file, as `f32` scaled by `/ 255`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct IdxImages {
    /// The pixels, image after image, row after row.
    pub pixels: Vec<f32>,
    /// The number of images.
    pub count: usize,
    /// Pixel rows per image (28).
    pub height: usize,
    /// Pixels per row (28).
    pub width: usize,
}

/// The big-endian header of an IDX file of `dims` dimensions of unsigned
/// bytes (magic `0x0000080<dims>`), and the data after it.
fn idx_header<'a>(data: &'a [u8], dims: usize, what: &str) -> Result<(Vec<usize>, &'a [u8])> {
    let header = 4 + 4 * dims;
    let truncated = |len: usize| {
        invalid(
            OP_IDX,
            format!("truncated IDX {what} file: the header needs {header} bytes, {len} remain"),
        )
    };
    if data.len() < 4 {
        return Err(truncated(data.len()));
    }
    let word = |i: usize| {
        u32::from_be_bytes([
            data[4 * i],
            data[4 * i + 1],
            data[4 * i + 2],
            data[4 * i + 3],
        ])
    };
    let magic = word(0);
    let want = 0x0800 | dims as u32;
    if magic != want {
        return Err(invalid(
            OP_IDX,
            format!(
                "bad IDX magic 0x{magic:08x} for {what}: expected 0x{want:08x} (unsigned bytes, {dims} dimensions)"
            ),
        ));
    }
    if data.len() < header {
        return Err(truncated(data.len()));
    }
    let sizes: Vec<usize> = (1..=dims).map(|i| word(i) as usize).collect();
    let body = &data[header..];
    let len = sizes.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    match len {
        Some(len) if body.len() == len => Ok((sizes, body)),
        Some(len) if body.len() < len => Err(invalid(
            OP_IDX,
            format!(
                "truncated IDX {what} file: dimensions {sizes:?} need {len} bytes after the header, {} remain",
                body.len()
            ),
        )),
        _ => Err(invalid(
            OP_IDX,
            format!(
                "IDX {what} file: dimensions {sizes:?} do not match the {} bytes after the header",
                body.len()
            ),
        )),
    }
}

/// Reads an IDX images file (`train-images-idx3-ubyte[.gz]`).
pub fn read_idx_images(data: &[u8]) -> Result<IdxImages> {
    let raw = gunzip(data, OP_IDX)?;
    let (sizes, body) = idx_header(&raw, 3, "images")?;
    Ok(IdxImages {
        pixels: body.iter().map(|&p| f32::from(p) / 255.0).collect(),
        count: sizes[0],
        height: sizes[1],
        width: sizes[2],
    })
}

/// Reads an IDX labels file (`train-labels-idx1-ubyte[.gz]`).
pub fn read_idx_labels(data: &[u8]) -> Result<Vec<u8>> {
    let raw = gunzip(data, OP_IDX)?;
    let (_, body) = idx_header(&raw, 1, "labels")?;
    Ok(body.to_vec())
}

/// Reads a pair of IDX files into a set of `count` images of `height * width`
/// pixels; the counts must agree.
pub fn read_idx(images: &[u8], labels: &[u8]) -> Result<MnistSet> {
    let images = read_idx_images(images)?;
    let labels = read_idx_labels(labels)?;
    if labels.len() != images.count {
        return Err(invalid(
            OP_IDX,
            format!("{} images but {} labels", images.count, labels.len()),
        ));
    }
    Ok(MnistSet {
        rows: images.count,
        cols: images.height * images.width,
        images: images.pixels,
        labels: labels.into_iter().map(i64::from).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idx_headers() {
        let mut labels = vec![0, 0, 8, 1, 0, 0, 0, 3, 7, 2, 1];
        assert_eq!(read_idx_labels(&labels).unwrap(), vec![7, 2, 1]);
        labels[3] = 3;
        let e = read_idx_labels(&labels).unwrap_err();
        assert!(
            e.message().contains("bad IDX magic 0x00000803 for labels"),
            "{e}"
        );
        let e = read_idx_labels(&[0, 0, 8, 1, 0, 0, 0, 3, 7]).unwrap_err();
        assert!(
            e.message()
                .contains("need 3 bytes after the header, 1 remain"),
            "{e}"
        );
        let e = read_idx_images(&[0, 0, 8, 3, 0]).unwrap_err();
        assert!(
            e.message().contains("the header needs 16 bytes, 5 remain"),
            "{e}"
        );
        // Dimensions whose product overflows are an error, not a panic.
        let e = read_idx_images(&[
            0, 0, 8, 3, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
        ])
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
    }

    #[test]
    fn fortran_and_big_endian_items() {
        let a = Array {
            shape: vec![2, 3],
            // Column-major 1..6 as big-endian u32: columns (1,4), (2,5), (3,6).
            data: [1u32, 4, 2, 5, 3, 6]
                .iter()
                .flat_map(|v| v.to_be_bytes())
                .collect(),
            fortran: true,
            big_endian: true,
            kind: None,
        };
        let items: Vec<u32> = a.items::<4>().into_iter().map(u32::from_le_bytes).collect();
        assert_eq!(items, vec![1, 2, 3, 4, 5, 6]);
    }
}
