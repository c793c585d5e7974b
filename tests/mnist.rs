//! MNIST readers against the fixtures of `tests/data/mnist/gen_mnist_fixtures.py`:
//! the Python-2-style `tiny_mnist.pkl.gz` (the seed's file's structure), the
//! Python 3 protocol 2/4/5 pickles, Fortran-ordered and big-endian arrays, the
//! IDX files; every pixel and label checked exactly; the typed errors; and a
//! no-panic property test.

use std::path::PathBuf;

use gust::ErrorKind;
use gust::formats::mnist::{self, Mnist, MnistSet};
use gust::formats::recordio::{self, Values};
use proptest::prelude::*;
use serde_json::Value;

fn read(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/mnist")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn expected() -> Value {
    serde_json::from_slice(&read("expected.json")).unwrap()
}

/// The generator's pixel: p = (131 i + 7 j + 50 s) % 256, x = p / 255 in f32.
fn pixel(set: usize, i: usize, j: usize) -> f32 {
    ((131 * i + 7 * j + 50 * set) % 256) as f32 / 255.0
}

fn check_set(got: &MnistSet, set: usize, name: &str, want: &Value) {
    let rows = want["rows"][name].as_u64().unwrap() as usize;
    assert_eq!((got.rows, got.cols, got.len()), (rows, 784, rows), "{name}");
    assert_eq!(got.images.len(), rows * 784);
    let labels: Vec<i64> = want["labels"][name]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    assert_eq!(got.labels, labels, "{name}");
    for i in 0..rows {
        let image = got.image(i);
        for (j, &x) in image.iter().enumerate() {
            assert_eq!(x.to_bits(), pixel(set, i, j).to_bits(), "{name}[{i}, {j}]");
        }
    }
    // The generator's own float32 bits for a few pixels.
    for s in want["samples"].as_array().unwrap() {
        if s[0] == name {
            let (i, j) = (
                s[1].as_u64().unwrap() as usize,
                s[2].as_u64().unwrap() as usize,
            );
            assert_eq!(
                got.image(i)[j].to_bits() as u64,
                s[3].as_u64().unwrap(),
                "{name}[{i}, {j}]"
            );
        }
    }
}

fn check(m: &Mnist) {
    let want = expected();
    check_set(&m.train, 0, "train", &want);
    check_set(&m.valid, 1, "valid", &want);
    check_set(&m.test, 2, "test", &want);
}

#[test]
fn python2_cpickle_as_in_the_seeds_file() {
    let data = read("tiny_mnist.pkl.gz");
    assert_eq!(&data[..2], &[0x1f, 0x8b]);
    check(&mnist::read_pickle(&data).unwrap());
}

#[test]
fn python3_pickles_of_every_protocol() {
    for name in [
        "tiny_mnist_py3_p2.pkl.gz",
        "tiny_mnist_py3_p4.pkl", // not compressed
        "tiny_mnist_py3_p5.pkl.gz",
    ] {
        let m = mnist::read_pickle(&read(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        check(&m);
    }
}

#[test]
fn fortran_order_big_endian_and_int32_labels() {
    for name in [
        "tiny_mnist_layouts_p4.pkl.gz",
        "tiny_mnist_layouts_p5.pkl.gz",
    ] {
        let m = mnist::read_pickle(&read(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        check(&m);
    }
}

#[test]
fn idx_files_gzipped_or_not() {
    let want = expected();
    let train = mnist::read_idx(
        &read("train-images-idx3-ubyte.gz"),
        &read("train-labels-idx1-ubyte.gz"),
    )
    .unwrap();
    check_set(&train, 0, "train", &want);
    let test = mnist::read_idx(
        &read("t10k-images-idx3-ubyte"),
        &read("t10k-labels-idx1-ubyte"),
    )
    .unwrap();
    check_set(&test, 2, "test", &want);
    let images = mnist::read_idx_images(&read("t10k-images-idx3-ubyte")).unwrap();
    assert_eq!((images.count, images.height, images.width), (3, 28, 28));
    // The IDX bytes and the pickle's floats are the same images.
    let pickled = mnist::read_pickle(&read("tiny_mnist.pkl.gz")).unwrap();
    assert_eq!(pickled.test, test);
}

/// The seed's whole step: pickle → RecordIO, read back exactly.
#[test]
fn pickle_to_recordio() {
    let m = mnist::read_pickle(&read("tiny_mnist.pkl.gz")).unwrap();
    let mut out = Vec::new();
    recordio::encode_dense_matrix(
        &mut out,
        &m.train.images,
        m.train.cols,
        Some(&m.train.labels),
    )
    .unwrap();
    assert_eq!(out.len(), 5 * 3184);
    let records = recordio::read_records(&out).unwrap();
    for (i, r) in records.iter().enumerate() {
        assert_eq!(
            r.features.values,
            Values::Float32(m.train.image(i).to_vec())
        );
        assert_eq!(
            r.label.as_ref().unwrap().values,
            Values::Int32(vec![m.train.labels[i] as i32])
        );
    }
}

fn gz(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn gunzip(data: &[u8]) -> Vec<u8> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(data)
        .read_to_end(&mut out)
        .unwrap();
    out
}

fn err(data: &[u8]) -> gust::Error {
    let e = mnist::read_pickle(data).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    e
}

#[test]
fn typed_errors() {
    let good = read("tiny_mnist.pkl.gz");
    // Corrupt gzip: the magic, then garbage; and a gzip cut short.
    let e = err(&[0x1f, 0x8b, 8, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    assert!(e.message().starts_with("corrupt gzip data"), "{e}");
    let e = err(&good[..good.len() / 2]);
    assert!(e.message().starts_with("corrupt gzip data"), "{e}");
    // A truncated pickle.
    let raw = gunzip(&good);
    let e = err(&raw[..raw.len() - 100]);
    assert!(e.message().starts_with("not a readable pickle"), "{e}");
    let e = err(b"not a pickle at all");
    assert!(e.message().starts_with("not a readable pickle"), "{e}");
    // Wrong structures: an int; a pair instead of three sets; a set that is
    // not a pair; an array that is not one.
    let e = err(b"\x80\x02K\x07.");
    assert_eq!(
        e.message(),
        "expected a tuple of 3 (x, y) pairs (train, valid, test), found an int"
    );
    let e = err(b"\x80\x02K\x01K\x02\x86.");
    assert!(e.message().contains("found a tuple of 2"), "{e}");
    let e = err(b"\x80\x02K\x01K\x02K\x03\x87.");
    assert_eq!(
        e.message(),
        "the train set: expected an (x, y) pair of arrays, found an int"
    );
    let e = err(b"\x80\x02K\x01K\x02\x86K\x01K\x02\x86K\x01K\x02\x86\x87.");
    assert!(
        e.message().starts_with("train_x: expected a numpy array"),
        "{e}"
    );
    assert!(e.message().ends_with("found an int"), "{e}");
}

/// Pickles built by hand around one array state, to break one thing at a time.
fn state(shape: &[u32], data: &[u8]) -> Vec<u8> {
    // (1, shape, None, False, data) as protocol 2 opcodes.
    let mut p = b"(K\x01(".to_vec();
    for &d in shape {
        p.push(b'J');
        p.extend_from_slice(&(d as i32).to_le_bytes());
    }
    p.extend_from_slice(b"tN\x89T");
    p.extend_from_slice(&(data.len() as u32).to_le_bytes());
    p.extend_from_slice(data);
    p.push(b't');
    p
}

fn three_sets(x: &[u8], y: &[u8]) -> Vec<u8> {
    let mut p = b"\x80\x02".to_vec();
    for _ in 0..3 {
        p.extend_from_slice(x);
        p.extend_from_slice(y);
        p.push(0x86);
    }
    p.extend_from_slice(b"\x87.");
    p
}

#[test]
fn shape_mismatches() {
    let x = state(&[2, 3], &[0u8; 24]);
    let y = state(&[2], &[0u8; 16]);
    let m = mnist::read_pickle(&three_sets(&x, &y)).unwrap();
    assert_eq!(
        (m.train.rows, m.train.cols, m.train.labels.clone()),
        (2, 3, vec![0, 0])
    );

    let e = err(&three_sets(&state(&[2, 3], &[0u8; 23]), &y));
    assert_eq!(
        e.message(),
        "train_x: 23 bytes of data do not fit shape [2, 3] (6 values)"
    );
    let e = err(&three_sets(&state(&[2, 3], &[0u8; 48]), &y));
    assert!(
        e.message()
            .contains("expected float32 pixels (4 bytes each), found 8-byte items"),
        "{e}"
    );
    let e = err(&three_sets(&state(&[6], &[0u8; 24]), &y));
    assert!(
        e.message()
            .contains("expected a 2-D array of images, found shape [6]"),
        "{e}"
    );
    let e = err(&three_sets(&x, &state(&[3], &[0u8; 24])));
    assert_eq!(e.message(), "the train set has 2 images but 3 labels");
    let e = err(&three_sets(&x, &state(&[2], &[0u8; 4])));
    assert!(e.message().contains("found 2-byte items"), "{e}");
    // The gzipped form gives the same answers.
    let e = mnist::read_pickle(&gz(&three_sets(&x, &state(&[3], &[0u8; 24])))).unwrap_err();
    assert_eq!(e.message(), "the train set has 2 images but 3 labels");
}

#[test]
fn idx_errors() {
    let images = read("t10k-images-idx3-ubyte");
    let labels = read("t10k-labels-idx1-ubyte");
    let e = mnist::read_idx(&labels, &labels).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(
        e.message().contains("bad IDX magic 0x00000801 for images"),
        "{e}"
    );
    let e = mnist::read_idx(&images[..images.len() - 1], &labels).unwrap_err();
    assert!(
        e.message()
            .contains("need 2352 bytes after the header, 2351 remain"),
        "{e}"
    );
    let mut long = images.clone();
    long.push(0);
    let e = mnist::read_idx_images(&long).unwrap_err();
    assert!(e.message().contains("do not match the 2353 bytes"), "{e}");
    let e = mnist::read_idx(&images, &read("train-labels-idx1-ubyte.gz")).unwrap_err();
    assert_eq!(e.message(), "3 images but 5 labels");
    let gz_images = read("train-images-idx3-ubyte.gz");
    let e = mnist::read_idx_images(&gz_images[..gz_images.len() - 8]).unwrap_err();
    assert!(e.message().starts_with("corrupt gzip data"), "{e}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..400)) {
        for result in [
            mnist::read_pickle(&data).map(drop),
            mnist::read_idx_images(&data).map(drop),
            mnist::read_idx_labels(&data).map(drop),
        ] {
            if let Err(e) = result {
                prop_assert_eq!(e.kind(), ErrorKind::InvalidInput);
            }
        }
        // Behind the magic bytes of each format too.
        let mut pickle = b"\x80\x02".to_vec();
        pickle.extend_from_slice(&data);
        let _ = mnist::read_pickle(&pickle);
        let mut idx = vec![0, 0, 8, 3];
        idx.extend_from_slice(&data);
        let _ = mnist::read_idx_images(&idx);
    }

    /// The real structure, cut short or with a byte changed.
    #[test]
    fn damaged_pickles_never_panic(cut in 0usize..40_000, flip in 0usize..40_000, bit in 0u8..8) {
        let raw = read("tiny_mnist_py3_p4.pkl");
        let _ = mnist::read_pickle(&raw[..cut.min(raw.len())]);
        let mut flipped = raw.clone();
        let at = flip % raw.len();
        flipped[at] ^= 1 << bit;
        let _ = mnist::read_pickle(&flipped);
        let py2 = gunzip(&read("tiny_mnist.pkl.gz"));
        let _ = mnist::read_pickle(&py2[..cut.min(py2.len())]);
        let mut flipped = py2.clone();
        let at = flip % py2.len();
        flipped[at] ^= 1 << bit;
        let _ = mnist::read_pickle(&flipped);
    }
}
