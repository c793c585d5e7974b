"""The Python side of benches/transfers.rs: what a user would run instead of
gust's transfer operators, one way per process so that the parent can read each
one's peak RSS (it reaps every process with wait4).

    python transfers_python.py versions
    python transfers_python.py MODE ARGS...

Connects to PostgreSQL through libpq's PG* environment variables and to S3
through BENCH_ENDPOINT, BENCH_KEY_ID, BENCH_SECRET, BENCH_REGION (the parent sets
them from its connections). Prints one JSON object on a line of its own: on
stdout, or on stderr where stdout carries the data (download_stdout). "secs"
runs from the imports done to the work done; "import_secs" is the imports.

MODE:
  sql_to_s3_pandas SQL BUCKET KEY DELIM
      Airflow's SqlToS3Operator (seed 002's PostgresToS3 with pandas): the whole
      result as a DataFrame (pandas.read_sql over SQLAlchemy + psycopg2), written
      by to_csv to a NamedTemporaryFile, uploaded with S3Hook.load_file's
      boto3 upload_file.
  sql_to_s3_parquet_pandas SQL BUCKET KEY
      The same with Parquet: pandas.read_sql over SQLAlchemy + psycopg2, then
      DataFrame.to_parquet with its defaults (the pyarrow engine, snappy) to a
      NamedTemporaryFile, uploaded with boto3 upload_file.
  csv_stdin_to_parquet BUCKET KEY TYPES
      The tail of the standard-tools pipeline `psql \\copy (query) TO STDOUT
      (FORMAT csv) | this`: pyarrow.csv.open_csv streams standard input in
      blocks of 16 MiB (about 138,000 rows, near gust's row group of 128 Ki
      rows), each batch typed by TYPES (`name=type` separated by spaces: an
      alias of pyarrow.type_for_alias, `decimal128(P,S)` or `timestamp[UNIT,TZ]`;
      only the empty unquoted field is NULL, as PostgreSQL writes it) and written
      as one row group by pyarrow.parquet.ParquetWriter (snappy) to a
      NamedTemporaryFile, then boto3 upload_file.
  upload_stdin BUCKET KEY
      The tail of the standard-tools pipeline `psql \\copy (query) TO STDOUT |
      upload`: boto3 upload_fileobj of standard input, streamed in 8 MiB parts
      (the default TransferConfig), the object never whole in memory.
  s3_to_sql_pandas BUCKET KEY TABLE
      Seed 000's first DAG: get_object, the body read and decoded,
      pandas.read_csv(StringIO(body), sep=';'), DataFrame.to_sql(TABLE, engine,
      if_exists='replace', index=True).
  download_stdout BUCKET KEY
      The head of the pipeline `download | psql \\copy t FROM STDIN`: a
      streaming get_object, its body copied to standard output in 1 MiB chunks.
  s3_to_redis_python BUCKET KEY PREFIX LIMIT
      Seed 000's second DAG: a redis-py RedisCluster (startup node and password
      from BENCH_REDIS_HOST, BENCH_REDIS_PORT, BENCH_REDIS_PASSWORD), get_object,
      the body read and decoded, pandas.read_csv(StringIO(body), sep=';'), then
      `for index, row in data.iterrows(): set(f"{PREFIX}{index}",
      json.dumps(row.to_dict()))` over the first LIMIT rows (the whole frame is
      read; a million SETs one round trip each would take minutes). Reports
      "read_secs" (get_object + read_csv) and "loop_secs" (the SETs) apart.
"""

import json
import os
import sys
import time

T_START = time.perf_counter()


def s3_client():
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=os.environ["BENCH_ENDPOINT"],
        aws_access_key_id=os.environ["BENCH_KEY_ID"],
        aws_secret_access_key=os.environ["BENCH_SECRET"],
        region_name=os.environ.get("BENCH_REGION", "us-east-1"),
        # The same client settings as gust's for a custom endpoint (and as
        # benches/s3_transfer_boto3.py).
        config=Config(
            s3={"addressing_style": "path"},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        ),
    )


def engine():
    import sqlalchemy

    # An empty URL: psycopg2/libpq take host, port, user, password, db from PG*.
    return sqlalchemy.create_engine("postgresql+psycopg2://")


def vm_hwm_kib():
    """This process's own peak RSS (getrusage's ru_maxrss also counts the address
    space the process had before its exec: its spawning parent's, after vfork)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return None


def report(out, t0, t_imports, **fields):
    fields["secs"] = time.perf_counter() - t0
    fields["import_secs"] = t_imports
    fields["vmhwm_kib"] = vm_hwm_kib()
    print(json.dumps(fields), file=out, flush=True)


class Counting:
    """A readable file that counts what is read through it."""

    def __init__(self, raw):
        self.raw = raw
        self.n = 0

    def read(self, size=-1):
        b = self.raw.read(size)
        self.n += len(b)
        return b


def sql_to_s3_pandas(sql, bucket, key, delim):
    import tempfile

    import pandas as pd

    s3 = s3_client()
    eng = engine()
    t_imports = time.perf_counter() - T_START
    t0 = time.perf_counter()
    with eng.connect() as conn:
        df = pd.read_sql(sql, conn)
    # SqlToS3Operator: `getattr(df, "to_csv")(tmp_file.name, **pd_kwargs)`, then
    # `s3_hook.load_file(tmp_file.name, ...)`; a user passes index=False.
    with tempfile.NamedTemporaryFile(mode="r+", suffix=".csv") as tmp:
        df.to_csv(tmp.name, index=False, sep=delim)
        size = os.path.getsize(tmp.name)
        s3.upload_file(tmp.name, bucket, key)
    report(sys.stdout, t0, t_imports, rows=len(df), bytes=size)


def sql_to_s3_parquet_pandas(sql, bucket, key):
    import tempfile

    import pandas as pd
    # to_parquet's engine, imported with the rest (outside "secs").
    import pyarrow.parquet  # noqa: F401

    s3 = s3_client()
    eng = engine()
    t_imports = time.perf_counter() - T_START
    t0 = time.perf_counter()
    with eng.connect() as conn:
        df = pd.read_sql(sql, conn)
    # Issue 12's reference, plain pandas + pyarrow: to_parquet with its defaults
    # (pyarrow, snappy; the RangeIndex kept as metadata, not a column) into a
    # temporary file, then upload_file.
    with tempfile.NamedTemporaryFile(suffix=".parquet") as tmp:
        df.to_parquet(tmp.name)
        size = os.path.getsize(tmp.name)
        s3.upload_file(tmp.name, bucket, key)
    report(sys.stdout, t0, t_imports, rows=len(df), bytes=size)


def arrow_type(name):
    """A pyarrow type from its alias, `decimal128(P,S)` or `timestamp[UNIT,TZ]`."""
    import pyarrow as pa

    if name.startswith("decimal128(") and name.endswith(")"):
        precision, scale = name[len("decimal128(") : -1].split(",")
        return pa.decimal128(int(precision), int(scale))
    if name.startswith("timestamp[") and name.endswith("]"):
        unit, _, tz = name[len("timestamp[") : -1].partition(",")
        return pa.timestamp(unit, tz or None)
    return pa.type_for_alias(name)


def csv_stdin_to_parquet(bucket, key, types):
    import tempfile

    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    s3 = s3_client()
    t_imports = time.perf_counter() - T_START
    t0 = time.perf_counter()
    columns = (c.split("=", 1) for c in types.split())
    schema = pa.schema([(name, arrow_type(ty)) for name, ty in columns])
    reader = pacsv.open_csv(
        sys.stdin.buffer,
        read_options=pacsv.ReadOptions(block_size=16 << 20),
        # PostgreSQL's CSV: NULL is an empty field, the empty string `""`.
        convert_options=pacsv.ConvertOptions(
            column_types=schema,
            null_values=[""],
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
        ),
    )
    rows = 0
    with tempfile.NamedTemporaryFile(suffix=".parquet") as tmp:
        with pq.ParquetWriter(tmp.name, reader.schema, compression="snappy") as writer:
            for batch in reader:
                writer.write_batch(batch)
                rows += batch.num_rows
        size = os.path.getsize(tmp.name)
        s3.upload_file(tmp.name, bucket, key)
    report(sys.stdout, t0, t_imports, rows=rows, bytes=size)


def upload_stdin(bucket, key):
    s3 = s3_client()
    t_imports = time.perf_counter() - T_START
    t0 = time.perf_counter()
    src = Counting(sys.stdin.buffer)
    s3.upload_fileobj(src, bucket, key)
    report(sys.stdout, t0, t_imports, bytes=src.n)


def s3_to_sql_pandas(bucket, key, table):
    import io

    import pandas as pd

    s3 = s3_client()
    eng = engine()
    t_imports = time.perf_counter() - T_START
    t0 = time.perf_counter()
    # Seed 000, line for line (the engine from PG* instead of a URL with secrets).
    csv_obj = s3.get_object(Bucket=bucket, Key=key)
    body = csv_obj["Body"].read().decode("utf-8")
    data = pd.read_csv(io.StringIO(body), sep=";")
    data.to_sql(table, eng, if_exists="replace", index=True)
    report(sys.stdout, t0, t_imports, rows=len(data))


def download_stdout(bucket, key):
    s3 = s3_client()
    t_imports = time.perf_counter() - T_START
    t0 = time.perf_counter()
    out = sys.stdout.buffer
    n = 0
    body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    for chunk in body.iter_chunks(1 << 20):
        out.write(chunk)
        n += len(chunk)
    out.flush()
    out.close()
    report(sys.stderr, t0, t_imports, bytes=n)


def s3_to_redis_python(bucket, key, prefix, limit):
    import io

    import pandas as pd
    from redis.cluster import ClusterNode, RedisCluster

    s3 = s3_client()
    t_imports = time.perf_counter() - T_START
    t0 = time.perf_counter()
    # Seed 000's second DAG, line for line but for the password, the `;` of this
    # data set and the prefix of the keys.
    startup_nodes = [
        ClusterNode(os.environ["BENCH_REDIS_HOST"], int(os.environ["BENCH_REDIS_PORT"]))
    ]
    redis_client = RedisCluster(
        startup_nodes=startup_nodes,
        password=os.environ.get("BENCH_REDIS_PASSWORD") or None,
        decode_responses=True,
    )
    csv_obj = s3.get_object(Bucket=bucket, Key=key)
    body = csv_obj["Body"].read().decode("utf-8")
    data = pd.read_csv(io.StringIO(body), sep=";")
    t_read = time.perf_counter() - t0
    limit = int(limit)
    t1 = time.perf_counter()
    value_bytes = 0
    for index, row in data.head(limit).iterrows():
        value = json.dumps(row.to_dict())
        redis_client.set(f"{prefix}{index}", value)
        value_bytes += len(value)
    loop = time.perf_counter() - t1
    report(
        sys.stdout,
        t0,
        t_imports,
        rows=min(limit, len(data)),
        frame_rows=len(data),
        read_secs=t_read,
        loop_secs=loop,
        bytes=value_bytes,
    )


def versions():
    """One JSON object: the version of each module, null when it does not import."""
    import importlib
    import platform

    found = {"python": platform.python_version()}
    for name in ("boto3", "pandas", "sqlalchemy", "psycopg2", "pyarrow", "redis"):
        try:
            mod = importlib.import_module(name)
            found[name] = str(getattr(mod, "__version__", "?")).split()[0]
        except Exception:  # noqa: BLE001 - any failure means "not usable"
            found[name] = None
    print(json.dumps(found))


MODES = {
    "sql_to_s3_pandas": sql_to_s3_pandas,
    "sql_to_s3_parquet_pandas": sql_to_s3_parquet_pandas,
    "csv_stdin_to_parquet": csv_stdin_to_parquet,
    "upload_stdin": upload_stdin,
    "s3_to_sql_pandas": s3_to_sql_pandas,
    "download_stdout": download_stdout,
    "s3_to_redis_python": s3_to_redis_python,
}

if __name__ == "__main__":
    if sys.argv[1:] == ["versions"]:
        versions()
    elif len(sys.argv) > 1 and sys.argv[1] in MODES:
        MODES[sys.argv[1]](*sys.argv[2:])
    else:
        sys.exit(f"usage: {sys.argv[0]} versions | {' | '.join(MODES)} ARGS...")
