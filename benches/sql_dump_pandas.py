"""The Python side of benches/sql_dump.rs: what a user would write instead of
gust's `bulk_dump`, one way per process so that the parent can read each one's
peak RSS.

    python sql_dump_pandas.py MODE SQL OUT_PATH
    python sql_dump_pandas.py versions

Connects through libpq's PG* environment variables (the parent sets them from
AIRFLOW_CONN_POSTGRES_DEFAULT). Prints "<seconds> <rows>" on stdout: seconds
from connecting to the output file closed, imports excluded.

MODE:
  read_sql        pandas.read_sql(sql, engine).to_csv(out) - the whole result
                  as one DataFrame (seed 000's pd.read_sql, seed 002's in-memory
                  PostgresToS3)
  chunked         pandas.read_sql(..., chunksize=50_000), each chunk appended
                  with to_csv - looks streaming, but psycopg2's default client
                  cursor still fetches the whole result into libpq first
  chunked_stream  the same over a connection with stream_results=True (a
                  server-side cursor): what actually streams in pandas
  seed            seed 002's PostgresToS3Operator: PostgresHook.get_records
                  (cursor.fetchall) -> csv.writer into io.StringIO -> the
                  encoded string (load_string), here written to a file instead
                  of S3
"""

import sys
import time

CHUNK = 50_000


def engine():
    import sqlalchemy

    # An empty URL: psycopg2/libpq take host, port, user, password, db from PG*.
    return sqlalchemy.create_engine("postgresql+psycopg2://")


def run(mode, sql, out):
    import pandas as pd

    t0 = time.perf_counter()
    rows = 0
    if mode == "read_sql":
        eng = engine()
        with eng.connect() as conn:
            df = pd.read_sql(sql, conn)
        df.to_csv(out, index=False)
        rows = len(df)
    elif mode in ("chunked", "chunked_stream"):
        eng = engine()
        with eng.connect() as conn:
            if mode == "chunked_stream":
                conn = conn.execution_options(stream_results=True)
            with open(out, "w", newline="") as f:
                for i, chunk in enumerate(pd.read_sql(sql, conn, chunksize=CHUNK)):
                    chunk.to_csv(f, header=(i == 0), index=False)
                    rows += len(chunk)
    elif mode == "seed":
        import csv
        import io

        import psycopg2

        conn = psycopg2.connect("")
        try:
            cur = conn.cursor()
            cur.execute(sql)
            results = cur.fetchall()
            buf = io.StringIO()
            writer = csv.writer(buf)
            writer.writerow([d[0] for d in cur.description])
            writer.writerows(results)
            data = buf.getvalue().encode("utf-8")
            rows = len(results)
        finally:
            conn.close()
        with open(out, "wb") as f:
            f.write(data)
    else:
        sys.exit(f"unknown mode {mode!r}")
    print(f"{time.perf_counter() - t0:.6f} {rows}")


def versions():
    import platform

    import pandas
    import psycopg2
    import sqlalchemy

    print(
        f"Python {platform.python_version()}, pandas {pandas.__version__}, "
        f"SQLAlchemy {sqlalchemy.__version__}, psycopg2 {psycopg2.__version__.split()[0]}"
    )


if __name__ == "__main__":
    if sys.argv[1:] == ["versions"]:
        versions()
    else:
        run(*sys.argv[1:4])
