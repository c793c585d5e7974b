#!/usr/bin/env python3
"""Golden RecordIO-protobuf files written by the real SageMaker Python SDK.

Each case writes, next to this script,
  <case>.rec        sagemaker.amazon.common.write_numpy_to_dense_tensor(f, x, y)
  <case>.x.bin      the features, raw little-endian (x.tobytes(), row-major)
  <case>.y.bin      the labels, raw little-endian (only when the case has labels)
and cases.json lists every case: name, rows, cols, x_dtype, y_dtype (numpy
names, or null), and what the SDK did (sdk_error is set when it raised).
tests/recordio.rs feeds the same values to gust and compares byte for byte.

How it was run (2026-12-01):
  python3 -m venv /tmp/sm-venv
  /tmp/sm-venv/bin/pip install 'sagemaker>=2.257,<3' numpy
  /tmp/sm-venv/bin/python tests/data/recordio/gen_recordio_golden.py
with Python 3.11.7, sagemaker 2.257.7, numpy 2.4.6, protobuf 6.33.6 (upb
backend). sagemaker 3.x keeps only a stub of this function: use 2.x.
"""
import io
import json
import os
import sys

import google.protobuf
import numpy as np
import sagemaker
from google.protobuf.internal import api_implementation
from sagemaker.amazon.common import write_numpy_to_dense_tensor

HERE = os.path.dirname(os.path.abspath(__file__))
rng = np.random.default_rng(20261201)


def case(name, x, y=None, note=""):
    buf = io.BytesIO()
    entry = {
        "name": name,
        "rows": int(x.shape[0]),
        "cols": int(x.shape[1]),
        "x_dtype": x.dtype.name,
        "y_dtype": None if y is None else y.dtype.name,
        "note": note,
        "sdk_error": None,
    }
    try:
        write_numpy_to_dense_tensor(buf, x, y)
    except Exception as e:  # recorded: gust's behaviour is tested against it
        entry["sdk_error"] = "%s: %s" % (type(e).__name__, e)
    with open(os.path.join(HERE, name + ".rec"), "wb") as f:
        f.write(buf.getvalue())
    with open(os.path.join(HERE, name + ".x.bin"), "wb") as f:
        f.write(np.ascontiguousarray(x).astype(x.dtype.newbyteorder("<")).tobytes())
    if y is not None:
        with open(os.path.join(HERE, name + ".y.bin"), "wb") as f:
            f.write(y.astype(y.dtype.newbyteorder("<")).tobytes())
    entry["rec_bytes"] = len(buf.getvalue())
    return entry


def f32(rows, cols):
    return rng.random((rows, cols), dtype=np.float32)


cases = [
    case("one_record", np.array([[0.0, 0.5, 1.0]], dtype=np.float32), np.array([3]),
         "one row, an int64 label: Int32Tensor"),
    case("many_int_labels", f32(50, 10), rng.integers(0, 10, 50),
         "int64 labels 0-9: Int32Tensor"),
    case("float32_labels", f32(7, 5), rng.random(7, dtype=np.float32) * 10,
         "float32 labels: Float32Tensor"),
    case("float64_labels", f32(7, 5), rng.random(7) * 10,
         "float64 labels: Float64Tensor"),
    case("no_labels", f32(9, 4), None, "labels=None: no label map"),
    case("empty", np.zeros((0, 784), dtype=np.float32), np.zeros(0, dtype=np.int64),
         "a (0, 784) array: the SDK writes nothing, without an error"),
    case("mnist784", f32(20, 784), rng.integers(0, 10, 20),
         "MNIST-shaped: 784 float32 features, int64 labels"),
    case("float64_features", rng.random((6, 3)) - 0.5, rng.integers(-5, 5, 6),
         "float64 features: Float64Tensor; negative int labels: 10-byte varints"),
    case("int_features", rng.integers(-1000, 100000, (5, 4)), np.array([1.5, -2.0, 0.0, 7.25, 3.0]),
         "int64 features: Int32Tensor (negative ones sign-extended); float64 labels"),
    case("special_floats",
         np.array([[np.nan, np.inf, -np.inf], [-0.0, 1e-45, 3.4028235e38]], dtype=np.float32),
         np.array([np.float32(-0.0), np.float32(np.nan)], dtype=np.float32),
         "NaN, infinities, -0.0, the smallest subnormal, the largest float32"),
    case("zero_cols", np.zeros((2, 0), dtype=np.float32), np.array([1, 2]),
         "(2, 0): a record per row with an empty (but present) Float32Tensor"),
    case("int32_labels_rejected", np.zeros((1, 1), dtype=np.float32), np.array([1], dtype=np.int32),
         "the SDK's _resolve_type knows int64, float64 and float32 only"),
]

meta = {
    "generator": "tests/data/recordio/gen_recordio_golden.py",
    "python": sys.version.split()[0],
    "sagemaker": sagemaker.__version__,
    "numpy": np.__version__,
    "protobuf": google.protobuf.__version__,
    "protobuf_backend": api_implementation.Type(),
    "cases": cases,
}
with open(os.path.join(HERE, "cases.json"), "w") as f:
    json.dump(meta, f, indent=1)
    f.write("\n")
for c in cases:
    print(c["name"], c["rec_bytes"], c["sdk_error"] or "")
