//! RecordIO-protobuf against the SageMaker Python SDK: every case of
//! `tests/data/recordio/cases.json` (written by `gen_recordio_golden.py` with
//! the real `sagemaker` package) is encoded by gust from the same input values
//! and compared byte for byte with the SDK's file; the SDK's file is read back
//! and its values compared bit for bit with the input. Plus the streaming
//! upload and download on `MemoryStore`, aborts, and a no-panic property test
//! of the reader.

use std::path::PathBuf;

use futures::TryStreamExt;
use gust::ErrorKind;
use gust::formats::recordio::{
    self, DenseTensorWriter, Label, Record, RecordDecoder, Values, WriteSummary,
};
use gust::hooks::object_store::{MemoryStore, ObjectStore, PutOptions};
use proptest::prelude::*;
use serde_json::Value;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/recordio")
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The features of a case, as numpy held them.
#[derive(Debug)]
enum X {
    F32(Vec<f32>),
    F64(Vec<f64>),
    I64(Vec<i64>),
}

/// The labels of a case.
#[derive(Debug)]
enum Y {
    I64(Vec<i64>),
    I32(Vec<i32>),
    F32(Vec<f32>),
    F64(Vec<f64>),
}

fn words<const N: usize>(bytes: &[u8]) -> impl Iterator<Item = [u8; N]> + '_ {
    assert_eq!(bytes.len() % N, 0);
    bytes.chunks_exact(N).map(|c| c.try_into().unwrap())
}

fn load_x(name: &str, dtype: &str) -> X {
    let b = read(&format!("{name}.x.bin"));
    match dtype {
        "float32" => X::F32(words(&b).map(f32::from_le_bytes).collect()),
        "float64" => X::F64(words(&b).map(f64::from_le_bytes).collect()),
        "int64" => X::I64(words(&b).map(i64::from_le_bytes).collect()),
        other => panic!("x dtype {other}"),
    }
}

fn load_y(name: &str, dtype: Option<&str>) -> Option<Y> {
    let dtype = dtype?;
    let b = read(&format!("{name}.y.bin"));
    Some(match dtype {
        "int64" => Y::I64(words(&b).map(i64::from_le_bytes).collect()),
        "int32" => Y::I32(words(&b).map(i32::from_le_bytes).collect()),
        "float32" => Y::F32(words(&b).map(f32::from_le_bytes).collect()),
        "float64" => Y::F64(words(&b).map(f64::from_le_bytes).collect()),
        other => panic!("y dtype {other}"),
    })
}

/// gust's encoding of a matrix, with the types the SDK maps the dtypes to.
fn encode(x: &X, cols: usize, y: Option<&Y>) -> gust::Result<Vec<u8>> {
    fn with_x<L: recordio::IntoLabel>(
        x: &X,
        cols: usize,
        y: Option<&[L]>,
    ) -> gust::Result<Vec<u8>> {
        let mut out = Vec::new();
        match x {
            X::F32(v) => recordio::encode_dense_matrix(&mut out, v, cols, y)?,
            X::F64(v) => recordio::encode_dense_matrix(&mut out, v, cols, y)?,
            // numpy int64 features become an Int32Tensor: gust takes i32.
            X::I64(v) => {
                let v: Vec<i32> = v.iter().map(|&a| i32::try_from(a).unwrap()).collect();
                recordio::encode_dense_matrix(&mut out, &v, cols, y)?
            }
        }
        Ok(out)
    }
    match y {
        None => with_x::<Label>(x, cols, None),
        Some(Y::I64(l)) => with_x(x, cols, Some(l)),
        Some(Y::I32(l)) => with_x(x, cols, Some(l)),
        Some(Y::F32(l)) => with_x(x, cols, Some(l)),
        Some(Y::F64(l)) => with_x(x, cols, Some(l)),
    }
}

/// The labels as gust writes them.
fn labels(y: &Y) -> Vec<Label> {
    match y {
        Y::I64(l) => l.iter().map(|&v| Label::try_from(v).unwrap()).collect(),
        Y::I32(l) => l.iter().map(|&v| Label::Int32(v)).collect(),
        Y::F32(l) => l.iter().map(|&v| Label::Float32(v)).collect(),
        Y::F64(l) => l.iter().map(|&v| Label::Float64(v)).collect(),
    }
}

/// The values a tensor must hold, as bit patterns (so NaN and -0.0 compare).
fn bits(v: &Values) -> (&'static str, Vec<u64>) {
    match v {
        Values::Float32(v) => ("f32", v.iter().map(|x| x.to_bits() as u64).collect()),
        Values::Float64(v) => ("f64", v.iter().map(|x| x.to_bits()).collect()),
        Values::Int32(v) => ("i32", v.iter().map(|&x| x as u32 as u64).collect()),
    }
}

fn expected_row(x: &X, cols: usize, row: usize) -> (&'static str, Vec<u64>) {
    let r = row * cols..(row + 1) * cols;
    match x {
        X::F32(v) => ("f32", v[r].iter().map(|x| x.to_bits() as u64).collect()),
        X::F64(v) => ("f64", v[r].iter().map(|x| x.to_bits()).collect()),
        X::I64(v) => (
            "i32",
            v[r].iter().map(|&x| x as i32 as u32 as u64).collect(),
        ),
    }
}

fn expected_label(l: &Label) -> (&'static str, Vec<u64>) {
    match *l {
        Label::Int32(v) => ("i32", vec![v as u32 as u64]),
        Label::Float32(v) => ("f32", vec![v.to_bits() as u64]),
        Label::Float64(v) => ("f64", vec![v.to_bits()]),
    }
}

struct Case {
    name: String,
    rows: usize,
    cols: usize,
    x: X,
    y: Option<Y>,
    sdk_error: Option<String>,
    rec: Vec<u8>,
}

fn cases() -> Vec<Case> {
    let meta: Value = serde_json::from_slice(&read("cases.json")).unwrap();
    assert_eq!(
        meta["sagemaker"].as_str().unwrap().split('.').next(),
        Some("2")
    );
    meta["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let name = c["name"].as_str().unwrap().to_string();
            Case {
                rows: c["rows"].as_u64().unwrap() as usize,
                cols: c["cols"].as_u64().unwrap() as usize,
                x: load_x(&name, c["x_dtype"].as_str().unwrap()),
                y: load_y(&name, c["y_dtype"].as_str()),
                sdk_error: c["sdk_error"].as_str().map(str::to_string),
                rec: read(&format!("{name}.rec")),
                name,
            }
        })
        .collect()
}

/// Every case the SDK wrote: what gust writes is the SDK's file, byte for byte.
#[test]
fn encoding_is_the_sdks_byte_for_byte() {
    let cases = cases();
    assert!(cases.len() >= 10);
    let mut compared = 0;
    for c in cases.iter().filter(|c| c.sdk_error.is_none()) {
        let ours = if c.cols == 0 {
            // A matrix of no columns has no row count: rows go one by one.
            let mut w = DenseTensorWriter::new();
            let labels = labels(c.y.as_ref().unwrap());
            let mut out = Vec::new();
            for label in labels.iter().take(c.rows) {
                out.extend(
                    w.write::<f32>(&[], Some(*label))
                        .unwrap()
                        .unwrap_or_default(),
                );
            }
            out.extend(w.finish());
            out
        } else {
            encode(&c.x, c.cols, c.y.as_ref()).unwrap()
        };
        assert_eq!(ours.len(), c.rec.len(), "{}: length", c.name);
        if let Some(at) = ours.iter().zip(&c.rec).position(|(a, b)| a != b) {
            panic!(
                "{}: first difference at byte {at}: gust {:02x?}, SDK {:02x?}",
                c.name,
                &ours[at..(at + 16).min(ours.len())],
                &c.rec[at..(at + 16).min(c.rec.len())]
            );
        }
        compared += 1;
    }
    assert_eq!(compared, cases.len() - 1);
}

/// The SDK's files read back: the input values, bit for bit, and the labels
/// typed as the SDK types them.
#[test]
fn sdk_files_read_back_exactly() {
    for c in cases().iter().filter(|c| c.sdk_error.is_none()) {
        let records = recordio::read_records(&c.rec).unwrap();
        assert_eq!(records.len(), c.rows, "{}", c.name);
        let labels = c.y.as_ref().map(labels);
        for (i, r) in records.iter().enumerate() {
            let got = bits(&r.features.values);
            if c.cols == 0 {
                assert_eq!(got, ("f32", vec![]), "{} row {i}", c.name);
            } else {
                assert_eq!(got, expected_row(&c.x, c.cols, i), "{} row {i}", c.name);
            }
            assert!(r.features.keys.is_empty() && r.features.shape.is_empty());
            match &labels {
                None => assert!(r.label.is_none(), "{} row {i}", c.name),
                Some(l) => assert_eq!(
                    bits(&r.label.as_ref().unwrap().values),
                    expected_label(&l[i]),
                    "{} row {i}",
                    c.name
                ),
            }
        }
    }
}

/// What the SDK refuses or does at the edges, and what gust does instead.
#[test]
fn sdk_edge_cases() {
    let cases = cases();
    let by_name = |n: &str| cases.iter().find(|c| c.name == n).unwrap();
    // A (0, 784) array: the SDK writes an empty file without an error; so does gust.
    let empty = by_name("empty");
    assert!(empty.sdk_error.is_none() && empty.rec.is_empty());
    assert!(encode(&empty.x, 784, empty.y.as_ref()).unwrap().is_empty());
    // int32 labels: the SDK's _resolve_type raises; gust writes them as an
    // Int32Tensor, the bytes the SDK writes for the same labels as int64.
    let rejected = by_name("int32_labels_rejected");
    assert_eq!(
        rejected.sdk_error.as_deref(),
        Some("ValueError: Unsupported dtype int32 on array")
    );
    let ours = encode(&rejected.x, 1, rejected.y.as_ref()).unwrap();
    let as_int64 = {
        let Some(Y::I32(l)) = &rejected.y else {
            panic!()
        };
        let l: Vec<i64> = l.iter().map(|&v| v.into()).collect();
        encode(&rejected.x, 1, Some(&Y::I64(l))).unwrap()
    };
    assert_eq!(ours, as_int64);
    assert_eq!(
        recordio::read_records(&ours).unwrap()[0].label_value(),
        Some(1.0)
    );
}

async fn store() -> MemoryStore {
    let store = MemoryStore::new();
    store.create_bucket("ml").await.unwrap();
    store
}

/// The streaming upload stores the SDK's bytes, with the content type, and
/// reads back as it downloads.
#[tokio::test]
async fn upload_and_download_through_a_store() {
    let store = store().await;
    for c in cases()
        .iter()
        .filter(|c| c.sdk_error.is_none() && c.cols > 0)
    {
        let key = format!("{}.rec", c.name);
        let opts = PutOptions::new();
        let put: WriteSummary = match (&c.x, &c.y) {
            (X::F32(x), Some(Y::I64(y))) => {
                recordio::write_dense_matrix(&store, "ml", &key, x, c.cols, Some(y), &opts).await
            }
            (X::F32(x), Some(Y::F32(y))) => {
                recordio::write_dense_matrix(&store, "ml", &key, x, c.cols, Some(y), &opts).await
            }
            (X::F32(x), Some(Y::F64(y))) => {
                recordio::write_dense_matrix(&store, "ml", &key, x, c.cols, Some(y), &opts).await
            }
            (X::F32(x), None) => {
                recordio::write_dense_matrix::<_, Label>(&store, "ml", &key, x, c.cols, None, &opts)
                    .await
            }
            (X::F64(x), Some(Y::I64(y))) => {
                recordio::write_dense_matrix(&store, "ml", &key, x, c.cols, Some(y), &opts).await
            }
            (X::I64(x), Some(Y::F64(y))) => {
                let x: Vec<i32> = x.iter().map(|&v| v as i32).collect();
                recordio::write_dense_matrix(&store, "ml", &key, &x, c.cols, Some(y), &opts).await
            }
            other => panic!("{}: no arm for {other:?}", c.name),
        }
        .unwrap();
        assert_eq!(
            (put.records, put.size),
            (c.rows as u64, c.rec.len() as u64),
            "{}",
            c.name
        );
        assert_eq!(store.get("ml", &key).await.unwrap(), c.rec, "{}", c.name);
        let head = store.head("ml", &key).await.unwrap();
        assert_eq!(head.content_type.as_deref(), Some(recordio::CONTENT_TYPE));
        let streamed: Vec<Record> = recordio::read_object(&store, "ml", &key)
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        let want = recordio::read_records(&c.rec).unwrap();
        assert_eq!(streamed.len(), want.len());
        for (a, b) in streamed.iter().zip(&want) {
            assert_eq!(bits(&a.features.values), bits(&b.features.values));
        }
    }
    // An explicit content type wins.
    let opts = PutOptions::new().content_type("application/octet-stream");
    recordio::write_dense_matrix(&store, "ml", "x", &[1.0f32], 1, Some(&[1i64][..]), &opts)
        .await
        .unwrap();
    let head = store.head("ml", "x").await.unwrap();
    assert_eq!(
        head.content_type.as_deref(),
        Some("application/octet-stream")
    );
}

/// Many records across many chunks: the object is whole and in order.
#[tokio::test]
async fn many_rows_stream_in_chunks() {
    let store = store().await;
    let n = 1500u32; // 1500 × 3184 bytes: several 1 MiB chunks
    let rows = (0..n).map(|i| {
        let row: Vec<f32> = (0..784)
            .map(|j| ((i * 784 + j) % 255) as f32 / 255.0)
            .collect();
        Ok((row, Some(Label::Int32((i % 10) as i32))))
    });
    let put = recordio::write_dense_tensor(
        &store,
        "ml",
        "big.rec",
        futures::stream::iter(rows),
        &PutOptions::new(),
    )
    .await
    .unwrap();
    assert_eq!((put.records, put.size), (n as u64, n as u64 * 3184));
    let mut stream = recordio::read_object(&store, "ml", "big.rec")
        .await
        .unwrap();
    let mut i = 0u32;
    while let Some(r) = stream.try_next().await.unwrap() {
        let Values::Float32(v) = &r.features.values else {
            panic!()
        };
        assert_eq!(v[5], ((i * 784 + 5) % 255) as f32 / 255.0);
        assert_eq!(r.label_value(), Some((i % 10) as f64));
        i += 1;
    }
    assert_eq!(i, n);
}

/// Rows that fail, or change shape, abort the upload: nothing is stored.
#[tokio::test]
async fn failed_rows_store_nothing() {
    let store = store().await;
    let big = vec![0.5f32; 784];
    let rows = (0..2000).map(|i| {
        if i == 1999 {
            Err(gust::Error::new(
                ErrorKind::Io,
                "source",
                "the source broke",
            ))
        } else {
            Ok((big.clone(), None))
        }
    });
    let e = recordio::write_dense_tensor(
        &store,
        "ml",
        "broken.rec",
        futures::stream::iter(rows),
        &PutOptions::new(),
    )
    .await
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Io);
    assert_eq!(e.context("row"), Some("1999"));
    assert!(!store.exists("ml", "broken.rec").await.unwrap());

    let rows = (0..3).map(|i| Ok((vec![0.5f32; if i == 2 { 3 } else { 4 }], None)));
    let e = recordio::write_dense_tensor(
        &store,
        "ml",
        "ragged.rec",
        futures::stream::iter(rows),
        &PutOptions::new(),
    )
    .await
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(
        e.message().contains("row 2 is 3 Float32Tensor features"),
        "{e}"
    );
    assert!(!store.exists("ml", "ragged.rec").await.unwrap());

    // A bad matrix is refused before anything is sent.
    let e = recordio::write_dense_matrix(
        &store,
        "ml",
        "m",
        &[1.0f32; 6],
        3,
        Some(&[1i64][..]),
        &PutOptions::new(),
    )
    .await
    .unwrap_err();
    assert!(e.message().contains("1 labels for 2 rows"), "{e}");
    assert!(!store.exists("ml", "m").await.unwrap());

    // Zero rows: an empty object, as the SDK's empty file.
    let put = recordio::write_dense_matrix::<f32, i64>(
        &store,
        "ml",
        "empty",
        &[],
        784,
        Some(&[]),
        &PutOptions::new(),
    )
    .await
    .unwrap();
    assert_eq!((put.records, put.size), (0, 0));
    assert!(store.get("ml", "empty").await.unwrap().is_empty());
}

/// Reading the SDK's MNIST-shaped file in chunks of every awkward size.
#[test]
fn decoder_in_chunks_of_the_sdk_file() {
    let rec = read("mnist784.rec");
    let want = recordio::read_records(&rec).unwrap();
    for size in [1usize, 5, 3183, 3184, 3185, 10_000, 70_000] {
        let mut d = RecordDecoder::new();
        let mut got = Vec::new();
        for chunk in rec.chunks(size) {
            d.push(chunk);
            while let Some(r) = d.next_record().unwrap() {
                got.push(r);
            }
        }
        d.finish().unwrap();
        assert_eq!(got, want, "chunks of {size}");
    }
}

fn decode_all(data: &[u8], chunk: usize) -> gust::Result<usize> {
    let mut d = RecordDecoder::new();
    let mut n = 0;
    for c in data.chunks(chunk.max(1)) {
        d.push(c);
        while d.next_record()?.is_some() {
            n += 1;
        }
    }
    d.finish()?;
    Ok(n)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Random bytes: an error or records, never a panic; the slice and the
    /// push decoder agree.
    #[test]
    fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..600), chunk in 1usize..64) {
        let whole = recordio::read_records(&data).map(|r| r.len());
        let pushed = decode_all(&data, chunk);
        prop_assert_eq!(whole.is_ok(), pushed.is_ok());
        if let (Ok(a), Ok(b)) = (&whole, &pushed) {
            prop_assert_eq!(a, b);
        }
        if let Err(e) = whole {
            prop_assert_eq!(e.kind(), ErrorKind::InvalidInput);
        }
    }

    /// Random bytes behind a valid header: the protobuf decoder's turn.
    #[test]
    fn random_payloads_never_panic(payload in proptest::collection::vec(any::<u8>(), 0..300)) {
        let mut data = Vec::new();
        data.extend_from_slice(&recordio::MAGIC.to_le_bytes());
        data.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        data.extend_from_slice(&payload);
        data.resize(data.len() + (4 - payload.len() % 4) % 4, 0);
        if let Err(e) = recordio::read_records(&data) {
            prop_assert_eq!(e.kind(), ErrorKind::InvalidInput);
        }
    }

    /// Valid files cut short or with one byte changed: an error (or, for a
    /// cut at a frame boundary, fewer records), never a panic.
    #[test]
    fn damaged_sdk_files_never_panic(cut in 0usize..4200, flip in 0usize..4200, bit in 0u8..8) {
        let rec = read("many_int_labels.rec");
        let cut = cut.min(rec.len());
        match recordio::read_records(&rec[..cut]) {
            Ok(r) => prop_assert!(cut % 84 == 0 && r.len() == cut / 84),
            Err(e) => prop_assert_eq!(e.kind(), ErrorKind::InvalidInput),
        }
        let mut flipped = rec.clone();
        flipped[flip % rec.len()] ^= 1 << bit;
        let _ = recordio::read_records(&flipped);
        let _ = decode_all(&flipped, 7);
    }
}
