#!/usr/bin/env python3
"""Tiny MNIST-shaped fixtures for tests/mnist.rs, in the formats of the real files.

Writes, next to this script:
  tiny_mnist.pkl.gz            the structure of deeplearning.net's mnist.pkl.gz (the
                               seed's file): gzip of a Python-2 cPickle, protocol 2, of
                               ((train_x, train_y), (valid_x, valid_y), (test_x, test_y)),
                               x float32 (n, 784), y int64 (n,). There is no Python 2
                               here, so the opcodes are emitted by hand as cPickle emits
                               them: GLOBAL numpy.core.multiarray._reconstruct + REDUCE +
                               BUILD with state (1, shape, dtype, False, BINSTRING raw
                               bytes), the dtype as GLOBAL numpy.dtype + REDUCE + BUILD,
                               memoized objects (the dtypes, the globals, 'b') fetched
                               again with BINGET. numpy in Python 3 loads it with
                               pickle.loads(..., encoding="latin1"), checked below.
  tiny_mnist_py3_p2.pkl.gz     the same object as Python 3 + numpy 2 write it with
                               protocol 2 (raw bytes as _codecs.encode(str, 'latin1'))
  tiny_mnist_py3_p4.pkl        protocol 4, not compressed (BINBYTES)
  tiny_mnist_py3_p5.pkl.gz     protocol 5 (numpy._core.numeric._frombuffer + BYTEARRAY8)
  tiny_mnist_layouts_p4.pkl.gz protocol 4 with a Fortran-ordered train_x, a big-endian
  tiny_mnist_layouts_p5.pkl.gz valid_x and int32 test labels (and the same in protocol 5)
  train-images-idx3-ubyte.gz   IDX images/labels of the train set, gzipped
  train-labels-idx1-ubyte.gz
  t10k-images-idx3-ubyte       IDX images/labels of the test set, not compressed
  t10k-labels-idx1-ubyte
  expected.json                shapes, all labels, the pixel formula and sampled pixels

Pixels are the bytes p = (131*i + 7*j + 50*s) % 256 of image i, pixel j, set s
(train 0, valid 1, test 2); x = float32(p) / float32(255), which numpy and Rust both
compute as one correctly rounded float32 division. Labels are MNIST's first ones.

How it was run (2026-12-01): /tmp/sm-venv/bin/python tests/data/mnist/gen_mnist_fixtures.py
(Python 3.11.7, numpy 2.4.6). gzip is written with mtime 0 so reruns are identical.
"""
import gzip
import io
import json
import os
import pickle
import struct
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROWS = {"train": 5, "valid": 2, "test": 3}
LABELS = {"train": [5, 0, 4, 1, 9], "valid": [2, 1], "test": [7, 2, 1]}


def pixels(s, n):
    i = np.arange(n).reshape(n, 1)
    j = np.arange(784).reshape(1, 784)
    return ((131 * i + 7 * j + 50 * s) % 256).astype(np.uint8)


sets = {}
for s, name in enumerate(["train", "valid", "test"]):
    p = pixels(s, ROWS[name])
    x = p.astype(np.float32) / np.float32(255)
    assert x.dtype == np.float32
    sets[name] = (p, x, np.array(LABELS[name], dtype=np.int64))
obj = tuple((sets[n][1], sets[n][2]) for n in ["train", "valid", "test"])


class Py2Pickler:
    """Protocol 2 opcodes as Python 2's cPickle writes them for numpy arrays."""

    def __init__(self):
        self.out = io.BytesIO()
        self.memo = {}

    def w(self, b):
        self.out.write(b)

    def put(self, key):
        n = len(self.memo)
        self.memo[key] = n
        self.w(b"q" + bytes([n]) if n < 256 else b"r" + struct.pack("<I", n))

    def get(self, key):
        n = self.memo[key]
        self.w(b"h" + bytes([n]) if n < 256 else b"j" + struct.pack("<I", n))

    def int(self, v):
        if 0 <= v < 256:
            self.w(b"K" + bytes([v]))
        elif 0 <= v < 65536:
            self.w(b"M" + struct.pack("<H", v))
        else:
            self.w(b"J" + struct.pack("<i", v))

    def string(self, s, memo_key=None):
        if memo_key is not None and memo_key in self.memo:
            return self.get(memo_key)
        if len(s) < 256:
            self.w(b"U" + bytes([len(s)]) + s)
        else:
            self.w(b"T" + struct.pack("<I", len(s)) + s)
        self.put(memo_key if memo_key is not None else ("str", id(s), len(self.memo)))

    def global_(self, module, name):
        key = ("global", module, name)
        if key in self.memo:
            return self.get(key)
        self.w(b"c" + module + b"\n" + name + b"\n")
        self.put(key)

    def dtype(self, dt):
        key = ("dtype", dt.str)
        if key in self.memo:  # the same dtype object: cPickle fetches it
            return self.get(key)
        self.global_(b"numpy", b"dtype")
        self.string(dt.str[1:].encode(), ("dtype-name", dt.str))
        self.int(0)
        self.int(1)
        self.w(b"\x87")  # TUPLE3
        self.put(("dtype-args", dt.str))
        self.w(b"R")  # REDUCE
        self.put(key)
        self.w(b"(")  # MARK: state (3, '<', None, None, None, -1, -1, 0)
        self.int(3)
        self.string(dt.str[:1].encode(), ("byteorder", dt.str[:1]))
        self.w(b"NNN")
        self.w(b"J" + struct.pack("<i", -1))
        self.w(b"J" + struct.pack("<i", -1))
        self.int(0)
        self.w(b"t")
        self.put(("dtype-state", dt.str))
        self.w(b"b")  # BUILD

    def array(self, a):
        self.global_(b"numpy.core.multiarray", b"_reconstruct")
        self.global_(b"numpy", b"ndarray")
        self.int(0)
        self.w(b"\x85")  # TUPLE1
        self.put(("tuple0", id(a)))
        self.string(b"b", ("str", b"b"))
        self.w(b"\x87")
        self.put(("args", id(a)))
        self.w(b"R")
        self.put(("array", id(a)))
        self.w(b"(")
        self.int(1)
        for d in a.shape:
            self.int(d)
        self.w(b"\x85" if a.ndim == 1 else b"\x86")
        self.put(("shape", id(a)))
        self.dtype(a.dtype)
        self.w(b"\x89")  # NEWFALSE: not Fortran-ordered
        self.string(a.tobytes(), ("data", id(a)))
        self.w(b"t")
        self.put(("state", id(a)))
        self.w(b"b")

    def dumps(self, obj):
        self.w(b"\x80\x02")
        for x, y in obj:
            self.array(x)
            self.array(y)
            self.w(b"\x86")
            self.put(("pair", id(x)))
        self.w(b"\x87")
        self.put(("outer",))
        self.w(b".")
        return self.out.getvalue()


def gz(data):
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as f:
        f.write(data)
    return buf.getvalue()


def write(name, data):
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(data)


def same(a, b):
    for (ax, ay), (bx, by) in zip(a, b):
        assert ax.shape == bx.shape and ay.shape == by.shape
        assert np.array_equal(np.asarray(ax, dtype=np.float32), bx)
        assert np.array_equal(np.asarray(ay).astype(np.int64), by)


py2 = Py2Pickler().dumps(obj)
same(pickle.loads(py2, encoding="latin1"), obj)
write("tiny_mnist.pkl.gz", gz(py2))

p2 = pickle.dumps(obj, protocol=2)
assert b"_codecs" in p2
same(pickle.loads(p2), obj)
write("tiny_mnist_py3_p2.pkl.gz", gz(p2))
p4 = pickle.dumps(obj, protocol=4)
write("tiny_mnist_py3_p4.pkl", p4)
p5 = pickle.dumps(obj, protocol=5)
assert b"_frombuffer" in p5
write("tiny_mnist_py3_p5.pkl.gz", gz(p5))

layouts = (
    (np.asfortranarray(obj[0][0]), obj[0][1]),
    (obj[1][0].astype(">f4"), obj[1][1]),
    (obj[2][0], obj[2][1].astype(np.int32)),
)
assert layouts[0][0].flags.f_contiguous and not layouts[0][0].flags.c_contiguous
for proto in (4, 5):
    data = pickle.dumps(layouts, protocol=proto)
    same(pickle.loads(data), obj)
    write("tiny_mnist_layouts_p%d.pkl.gz" % proto, gz(data))


def idx_images(p):
    return struct.pack(">IIII", 0x803, p.shape[0], 28, 28) + p.tobytes()


def idx_labels(y):
    return struct.pack(">II", 0x801, len(y)) + y.astype(np.uint8).tobytes()


write("train-images-idx3-ubyte.gz", gz(idx_images(sets["train"][0])))
write("train-labels-idx1-ubyte.gz", gz(idx_labels(sets["train"][2])))
write("t10k-images-idx3-ubyte", idx_images(sets["test"][0]))
write("t10k-labels-idx1-ubyte", idx_labels(sets["test"][2]))

samples = []
for s, name in enumerate(["train", "valid", "test"]):
    x = sets[name][1]
    for i, j in [(0, 0), (0, 1), (0, 783), (x.shape[0] - 1, 0), (x.shape[0] - 1, 783), (1, 400)]:
        samples.append([name, i, j, int(x[i, j].view(np.uint32))])
expected = {
    "generator": "tests/data/mnist/gen_mnist_fixtures.py",
    "python": sys.version.split()[0],
    "numpy": np.__version__,
    "rows": ROWS,
    "cols": 784,
    "labels": LABELS,
    "pixel": "p = (131*i + 7*j + 50*s) % 256; x = float32(p) / float32(255)",
    "samples": samples,
}
with open(os.path.join(HERE, "expected.json"), "w") as f:
    json.dump(expected, f, indent=1)
    f.write("\n")
print("ok", {n: os.path.getsize(os.path.join(HERE, n)) for n in sorted(os.listdir(HERE))})
