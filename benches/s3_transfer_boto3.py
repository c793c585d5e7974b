"""boto3 side of benches/s3_transfer.rs: upload_fileobj / download_fileobj /
download_file with the default TransferConfig, from a generated stream / into a
discarding sink / to a file in BENCH_DIR.

Usage: s3_transfer_boto3.py upload|download|download_file BUCKET MIB  (endpoint and keys in BENCH_* env)
Prints one JSON line: op, bytes, secs, peak_rss_kib (ru_maxrss).
"""
import io
import json
import os
import resource
import sys
import time

import boto3
from botocore.config import Config

KEY = "bench/stream.bin"
CHUNK = bytes(i % 251 for i in range(1 << 20))


class Source(io.RawIOBase):
    """MIB MiB of data, generated as it is read (no file, no buffer of the object)."""

    def __init__(self, total):
        self.left = total

    def readable(self):
        return True

    def readinto(self, b):
        n = min(len(b), self.left, len(CHUNK))
        b[:n] = CHUNK[:n]
        self.left -= n
        return n


class Sink(io.RawIOBase):
    """Discards what it receives. Seekable, as a file is: boto3 then writes ranges
    in place instead of queueing out-of-order parts in memory."""

    def __init__(self):
        self.n = 0
        self.pos = 0

    def writable(self):
        return True

    def seekable(self):
        return True

    def seek(self, offset, whence=0):
        self.pos = offset
        return offset

    def tell(self):
        return self.pos

    def write(self, b):
        self.n += len(b)
        self.pos += len(b)
        return len(b)


def main():
    op, bucket, mib = sys.argv[1], sys.argv[2], int(sys.argv[3])
    s3 = boto3.client(
        "s3",
        endpoint_url=os.environ["BENCH_ENDPOINT"],
        aws_access_key_id=os.environ["BENCH_KEY_ID"],
        aws_secret_access_key=os.environ["BENCH_SECRET"],
        region_name=os.environ.get("BENCH_REGION", "us-east-1"),
        # The same client settings as gust's for a custom endpoint.
        config=Config(s3={"addressing_style": "path"}, request_checksum_calculation="when_required",
                      response_checksum_validation="when_required"),
    )
    start = time.perf_counter()
    if op == "upload":
        s3.upload_fileobj(io.BufferedReader(Source(mib << 20)), bucket, KEY)
        n = mib << 20
    elif op == "download_file":
        # download_file writes to a temporary name and renames it, as gust does.
        path = os.path.join(os.environ.get("BENCH_DIR", "/tmp"), "boto3-bench-%d.bin" % os.getpid())
        s3.download_file(bucket, KEY, path)
        n = os.path.getsize(path)
    else:
        sink = Sink()
        s3.download_fileobj(bucket, KEY, sink)
        n = sink.n
    secs = time.perf_counter() - start
    assert n == mib << 20, (op, n)
    if op == "download_file":
        os.remove(path)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"op": op, "bytes": n, "secs": secs, "peak_rss_kib": rss}))


if __name__ == "__main__":
    main()
