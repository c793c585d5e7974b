#!/usr/bin/env python3
"""Regenerates ``airflow_connections.json``: Airflow's own parse of ``AIRFLOW_CONN_*`` values.

The ground truth for ``gust::Connection`` (see ``tests/connection.rs``). It uses the
connection class Airflow 3 hands to the secrets backends in task context
(``airflow.sdk.definitions.connection.Connection``: ``from_uri`` / ``from_json`` /
``get_uri`` / ``as_json``), feeding it exactly what ``EnvironmentVariablesBackend``
would (the value, stripped; JSON when it starts with ``{``).

For each case it also parses the input with the core class
(``airflow.models.connection.Connection``, used by the scheduler/API server) and
lists in ``core_differs`` the fields where the two disagree.

The checked-in file was made with Airflow 3.3.2 (task SDK 1.3.2) on Python 3.11.7.
Usage (any Airflow 3.x)::

    python3 -m venv /tmp/af && /tmp/af/bin/pip install apache-airflow
    AIRFLOW_HOME=$(mktemp -d) /tmp/af/bin/python tests/data/gen_airflow_connections.py

Error cases carry ``"error"`` (the exception class only: Airflow's own messages
echo the URI, password included) and null ``expected``/``get_uri``/``as_json``.
A few inputs Airflow accepts are rejected by gust on purpose; they are listed, with
the reason, in ``GUST_REJECTS`` in ``tests/connection.rs``.
"""

from __future__ import annotations

import json
import logging
import sys
import warnings
from pathlib import Path

warnings.simplefilter("ignore")
logging.disable(logging.CRITICAL)

import airflow  # noqa: E402
from airflow.models.connection import Connection as CoreConnection  # noqa: E402
from airflow.sdk.definitions.connection import Connection  # noqa: E402

OUT = Path(__file__).with_name("airflow_connections.json")
FIELDS = ("conn_type", "host", "port", "login", "password", "schema", "description")

URI_CASES = [
    ("postgres_basic", "postgres://user:pass@localhost:5432/mydb"),
    ("postgresql_alias", "postgresql://user:pass@db.example.com:5432/analytics"),
    ("password_at_slash_colon_percent_hash_space",
     "postgres://user:p%40ss%2Fw%3Ard%25x%23y%20z@host:5432/db"),
    ("password_plus_question_amp_unicode", "mysql://u:a%2Bb%3Fc%26d%C3%A9%E2%82%AC%F0%9F%94%91@h/db"),
    ("password_raw_plus_not_space", "postgres://u:a+b@h/db"),
    ("password_raw_unicode", "postgres://u:pässwörd@h/db"),
    ("password_raw_at_uses_last_at", "wasb://login:p@ss@host.example.com"),
    ("login_special_chars", "postgres://us%40er%3Aname%2F%20x:pw@h:1/db"),
    ("login_email", "postgres://john.doe%40example.com:s3cret@h/db"),
    ("login_without_password", "ftp://anonymous@ftp.example.com/pub"),
    ("empty_password", "postgres://user:@h/db"),
    ("redis_password_only", "redis://:pw@host:6379/0"),
    ("ipv6_loopback_with_port", "postgres://u:p@[::1]:5432/db"),
    ("ipv6_without_port", "http://[::1]"),
    ("ipv6_full_uppercase", "http://[2001:DB8::1]/x"),
    ("ipv6_zone_id", "http://[fe80::1%25eth0]:80"),
    ("missing_port", "postgres://u:p@h/db"),
    ("port_zero_is_dropped_by_get_uri", "postgres://h:0/db"),
    ("port_leading_zeros", "postgres://h:05432/db"),
    ("port_only_no_host", "postgres://:5432"),
    ("missing_host_only_query", "aws://?aws_access_key_id=AKIAEXAMPLE&aws_secret_access_key=abc%2Fdef%2Bg&region_name=us-east-1"),
    ("aws_endpoint_url", "aws://?endpoint_url=http%3A%2F%2F127.0.0.1%3A9000&region_name=ap-northeast-2"),
    ("query_multiple_params", "mysql://u:p@h:3306/db?charset=utf8mb4&ssl=true&connect_timeout=10"),
    ("query_empty_value_and_bare_key", "postgres://u:p@h/db?sslmode=&application_name=gust&flag"),
    ("query_plus_is_space_and_encoded_plus", "http://h/?a=b+c&d=e%2Bf&g=%7E%2A"),
    ("query_duplicate_key_last_wins", "http://h/?a=1&b=x&a=2"),
    ("query_unicode", "http://h/?name=%C3%A9t%C3%A9&emoji=%F0%9F%9A%80&raw=caf\u00e9"),
    ("extra_nested_json", "google-cloud-platform://?__extra__=%7B%22project%22%3A+%22p%22%2C+%22keyfile_dict%22%3A+%7B%22private_key%22%3A+%22k%22%2C+%22n%22%3A+1%7D%7D"),
    ("extra_compact_json_kept_verbatim", "http://h/?__extra__=%7B%22a%22%3A1%2C%22b%22%3A%5Btrue%2Cnull%5D%7D"),
    ("extra_key_wins_over_other_params", "http://h/?x=1&__extra__=%7B%22y%22%3A+%222%22%7D"),
    ("hyphen_type", "google-cloud-platform://user:pw@host/schema"),
    ("uppercase_scheme_and_host", "Postgres://u:p@DB.Example.COM/db"),
    ("double_scheme_percent_encoded", "http://https%3A%2F%2Fexample.com:8080/path"),
    ("double_scheme_literal", "http://https://example.com:8080/path"),
    ("double_scheme_literal_with_auth", "http://https://user:pw@example.com/path"),
    ("double_scheme_same_protocol", "http://http://example.com"),
    ("schema_percent_encoded", "postgres://u:p@h/my%2Fschema%20x%C3%A9"),
    ("schema_multiple_segments", "hdfs://h:8020/a/b/c"),
    ("trailing_slash_empty_schema", "http://user:pw@host:8080/"),
    ("sensitive_query_extras", "http://h/?api_key=k3y-value&token=t0k%2Fen&timeout=5"),
    ("host_with_encoded_slash", "http://a%2Fb:1/x"),
    ("host_case_after_percent_kept", "http://AB%41CD/"),
    ("ipv6_zone_case_kept", "http://[fe80::1%25ETH0]"),
    ("ipvfuture_host", "http://[v1.fe]/x"),
    ("userinfo_and_schema_case_kept", "postgres://USER:PW@HOST/DB"),
    ("query_invalid_escapes", "http://h/?a=%zz&b=%C3&c=%E2%82"),
    ("extra_param_empty", "http://h/?__extra__="),
    # Accepted by Airflow (extras read as {}), rejected by gust (see GUST_REJECTS).
    ("extra_param_not_json", "http://h/?__extra__=not-json"),
    ("empty_uri", ""),
    ("nfkc_delimiter_in_host_error", "http://h\uff20x/"),
    ("raw_scheme_separator_in_password_error", "postgres://u:a://b@h"),
    ("mysql_root", "mysql://root:root@0.0.0.0:3306/mlops"),
    ("sqlite_path", "sqlite:///tmp/x.db"),
    ("fragment_dropped", "http://h/p?a=b#frag"),
    ("no_scheme", "//user:pw@host:1/db"),
    ("surrounding_whitespace", "  mysql://u:p@h/db \n"),
    ("bracket_error", "postgres://u:p@[::1:5432/db"),
    ("bracketed_ipv4_error", "http://[127.0.0.1]:80"),
    ("unencoded_slash_in_password_error", "postgres://user:pa/ss@h/db"),
    ("unencoded_hash_in_password_error", "postgres://user:pa#ss@h/db"),
    ("port_out_of_range_error", "postgres://h:70000/db"),
    ("too_many_schemes_error", "a://b://c://d"),
    ("double_scheme_auth_before_protocol_error", "http://user:secret@https://host"),
]

JSON_CASES = [
    ("json_full", {"conn_type": "postgres", "host": "db.local", "login": "u", "password": "p@ss/w:rd %#",
                   "schema": "db", "port": 5432, "extra": {"sslmode": "require"}}),
    ("json_extra_as_string", {"conn_type": "postgres", "host": "h", "extra": "{\"a\":\"b\",\"c\":\"d\"}"}),
    ("json_extra_nested", {"conn_type": "aws", "extra": {"region_name": "eu-west-1", "config_kwargs": {"retries": {"max_attempts": 3}}, "verify": False}}),
    ("json_port_as_string", {"conn_type": "mysql", "host": "h", "port": "3306"}),
    ("json_port_zero_dropped", {"conn_type": "mysql", "host": "h", "port": 0}),
    ("json_postgresql_alias", {"conn_type": "postgresql", "host": "h"}),
    ("json_hyphen_type", {"conn_type": "google-cloud-platform", "extra": {"project": "p"}}),
    ("json_description_and_unicode", {"conn_type": "http", "host": "api.example.com", "description": "Caf\u00e9 API \u2603",
                                      "password": "p\u00e4ss \U0001f511", "extra": {"h\u00e9": "v\u00e4l", "z": "1", "a": "2"}}),
    ("json_empty_extra_dropped", {"conn_type": "http", "host": "h", "extra": {}}),
    ("json_extra_string_empty_object", {"conn_type": "http", "extra": "{}"}),
    ("json_no_conn_type", {"host": "h", "login": "u"}),
    ("json_numbers_in_extra", {"conn_type": "http", "extra": {"timeout": 1.5, "big": 1e20, "one": 1.0, "n": -7, "tiny": 1.5e-7}}),
    ("json_empty_strings_kept", {"conn_type": "http", "host": "", "login": "", "password": "", "schema": ""}),
    ("json_uri_key", {"uri": "postgres://u:p@h:5432/db?x=y"}),
    ("json_login_no_password", {"conn_type": "ftp", "host": "h", "login": "anonymous"}),
    ("json_port_float_truncated", {"conn_type": "http", "host": "h", "port": 8080.9}),
    ("json_port_python_int_syntax", {"conn_type": "http", "host": "h", "port": " +8_080 "}),
    ("json_uri_null_ignored", {"uri": None, "conn_type": "http", "host": "h"}),
    ("json_port_bad_error", {"conn_type": "http", "host": "h", "port": "abc"}),
    ("json_uri_mixed_with_fields_error", {"uri": "http://h", "host": None}),
    ("json_unknown_field_error", {"conn_type": "http", "hots": "typo"}),
    # Accepted by Airflow, rejected by gust (see GUST_REJECTS in tests/connection.rs).
    ("json_extra_invalid_json_string", {"conn_type": "http", "extra": "not json"}),
    ("json_extra_list", {"conn_type": "http", "extra": [1, 2]}),
    ("json_port_beyond_u16", {"conn_type": "http", "port": 70000}),
    ("json_host_not_a_string", {"conn_type": "http", "host": 5}),
]
RAW_JSON_CASES = [
    ("json_duplicate_key_last_wins", '{"conn_type": "http", "host": "a", "host": "b"}'),
]


def record(conn: Connection) -> dict:
    expected = {f: getattr(conn, f) for f in FIELDS}
    expected["extra_dejson"] = conn.extra_dejson
    return expected


def core_parse(kind: str, value: str) -> CoreConnection:
    if kind == "json":
        return CoreConnection.from_json(value, conn_id="case")
    return CoreConnection(conn_id="case", uri=value)


def run(kind: str, name: str, value: str) -> dict:
    case = {"name": name, "input_kind": kind, "input": value}
    stripped = value.strip()  # what EnvironmentVariablesBackend does before parsing
    try:
        if kind == "json":
            conn = Connection.from_json(stripped, conn_id="case")
        else:
            conn = Connection.from_uri(stripped, conn_id="case")
        case.update(expected=record(conn), get_uri=conn.get_uri(), as_json=conn.as_json(), extra=conn.extra)
    except Exception as e:  # noqa: BLE001 - parse, get_uri or as_json failed
        case.update(expected=None, get_uri=None, as_json=None, extra=None, error=type(e).__name__)
        return case
    try:
        core = core_parse(kind, stripped)
        differs = [f for f in FIELDS if getattr(core, f) != getattr(conn, f)]
        if core.extra_dejson != conn.extra_dejson:
            differs.append("extra_dejson")
        if core.get_uri() != conn.get_uri():
            differs.append("get_uri")
    except Exception as e:  # noqa: BLE001
        differs = [f"error:{type(e).__name__}"]
    if differs:
        case["core_differs"] = differs
    return case


def main() -> None:
    cases = [run("uri", n, v) for n, v in URI_CASES]
    cases += [run("json", n, json.dumps(v)) for n, v in JSON_CASES]
    cases += [run("json", n, v) for n, v in RAW_JSON_CASES]
    names = [c["name"] for c in cases]
    assert len(names) == len(set(names)), "duplicate case names"
    OUT.write_text(json.dumps(cases, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
    print(
        f"wrote {len(cases)} cases to {OUT} (Airflow {airflow.__version__}, Python {sys.version.split()[0]})",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
