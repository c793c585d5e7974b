//! The frames of the `--comm` socket: a `u32` big-endian length, then one
//! msgpack value.
//!
//! * Runtime → supervisor (requests): `[id, body]`. Airflow's own runtime adds a
//!   third element, a W3C trace `context_carrier` map or nil; both forms decode.
//! * Supervisor → runtime (responses): `[id, body|nil, error|nil]`. msgspec
//!   0.23 always writes all three elements; fewer decode as nil.
//!
//! Bodies are maps with a `"type"` discriminator; this module hands them out as
//! [`serde_json::Value`] (typed in [`messages`](super::messages)), converted
//! from msgpack as follows:
//!
//! | msgpack | JSON |
//! |---|---|
//! | nil, bool, integers | null, bool, number (`u64` / `i64`) |
//! | float 32/64 | number; NaN and ±infinity (not representable in JSON) become `null` |
//! | str | string; invalid UTF-8 is replaced by U+FFFD |
//! | bin | array of byte values (`[0, 255, …]`) |
//! | array | array |
//! | map | object in wire order; a duplicate key keeps the last value; a non-string key becomes its compact JSON text (`1` → `"1"`, `true` → `"true"`, nil → `"null"`, `[1,2]` → `"[1,2]"`) |
//! | Timestamp extension (type −1), 32-, 64- and 96-bit | RFC 3339 string in UTC (`2026-01-02T03:04:05.123456Z`), which typed fields decode into `DateTime<Utc>` |
//! | any other extension type | error: the supervisor never sends one |
//!
//! Malformed input is an [`ErrorKind::InvalidInput`] error (a frame over
//! [`MAX_FRAME_LEN`], bytes after the value, nesting deeper than
//! [`MAX_DEPTH`], a bad timestamp, an envelope that is not an array…), a closed
//! socket an [`ErrorKind::Io`] error; no input panics, and no announced length
//! is allocated before its bytes have arrived.

use chrono::{DateTime, SecondsFormat, Utc};
use rmpv::Value as Msg;
use serde_json::{Map, Number, Value};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::error::{Error, ErrorKind, Result};

/// The largest frame payload read or written: 256 MiB.
///
/// Airflow's own limit is 4 GiB (a `u32` length); gust refuses more than this
/// so that a corrupt or hostile length cannot make the runtime buffer gigabytes.
/// XCom values of that size belong in an object store, not in XCom. Reading
/// grows its buffer only as bytes arrive, so a frame that announces this much
/// and sends less costs only what was sent.
pub const MAX_FRAME_LEN: usize = 256 * 1024 * 1024;

/// The deepest nesting of arrays and maps a frame may have (the envelope
/// included): deeper input is refused rather than risking the stack.
pub const MAX_DEPTH: usize = 128;

/// The msgpack extension type of a Timestamp.
const TIMESTAMP_EXT: i8 = -1;

/// How much the reader asks for at a time, so memory follows the bytes received.
const READ_CHUNK: usize = 64 * 1024;

fn invalid(op: &'static str, msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidInput, op, msg)
}

// ---------------------------------------------------------------------------
// Framing
// ---------------------------------------------------------------------------

/// Reads one frame's payload (the msgpack bytes, without the length prefix).
///
/// Returns `Ok(None)` when the stream ends cleanly before a new frame starts,
/// an [`ErrorKind::Io`] error when it ends inside one (in the length or the
/// payload), and an [`ErrorKind::InvalidInput`] error for a length over
/// [`MAX_FRAME_LEN`]. The buffer grows with the bytes actually received.
pub async fn read_frame<R: AsyncRead + Unpin + ?Sized>(reader: &mut R) -> Result<Option<Vec<u8>>> {
    const OP: &str = "airflow.read_frame";
    let mut len_buf = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        let n = reader.read(&mut len_buf[got..]).await.map_err(|e| {
            Error::new(ErrorKind::Io, OP, "reading a frame length failed").with_source(e)
        })?;
        if n == 0 {
            if got == 0 {
                return Ok(None);
            }
            return Err(Error::new(
                ErrorKind::Io,
                OP,
                format!("the connection closed inside a frame length ({got} of 4 bytes)"),
            ));
        }
        got += n;
    }
    let len = u32::from_be_bytes(len_buf) as usize;
    if len > MAX_FRAME_LEN {
        return Err(invalid(
            OP,
            format!("a frame of {len} bytes is over the limit of {MAX_FRAME_LEN}"),
        ));
    }
    let mut payload = Vec::with_capacity(len.min(READ_CHUNK));
    while payload.len() < len {
        let want = (len - payload.len()).min(READ_CHUNK);
        let start = payload.len();
        payload.resize(start + want, 0);
        let n = reader
            .read(&mut payload[start..])
            .await
            .map_err(|e| Error::new(ErrorKind::Io, OP, "reading a frame failed").with_source(e))?;
        payload.truncate(start + n);
        if n == 0 {
            return Err(Error::new(
                ErrorKind::Io,
                OP,
                format!(
                    "the connection closed inside a frame ({} of {len} bytes)",
                    payload.len()
                ),
            ));
        }
    }
    Ok(Some(payload))
}

/// Writes one frame: the length prefix and `payload`, in one write, then flushes.
pub async fn write_frame<W: AsyncWrite + Unpin + ?Sized>(
    writer: &mut W,
    payload: &[u8],
) -> Result<()> {
    const OP: &str = "airflow.write_frame";
    if payload.len() > MAX_FRAME_LEN {
        return Err(invalid(
            OP,
            format!(
                "a frame of {} bytes is over the limit of {MAX_FRAME_LEN}",
                payload.len()
            ),
        ));
    }
    let mut buf = Vec::with_capacity(4 + payload.len());
    buf.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    buf.extend_from_slice(payload);
    writer
        .write_all(&buf)
        .await
        .map_err(|e| Error::new(ErrorKind::Io, OP, "writing a frame failed").with_source(e))?;
    writer
        .flush()
        .await
        .map_err(|e| Error::new(ErrorKind::Io, OP, "flushing a frame failed").with_source(e))
}

/// Splits a complete frame held in memory (length prefix included) into its
/// payload, checking the length against the bytes and [`MAX_FRAME_LEN`].
pub fn split_frame(frame: &[u8]) -> Result<&[u8]> {
    const OP: &str = "airflow.split_frame";
    let Some((head, payload)) = frame.split_first_chunk::<4>() else {
        return Err(invalid(
            OP,
            format!("a frame of {} bytes has no 4-byte length", frame.len()),
        ));
    };
    let len = u32::from_be_bytes(*head) as usize;
    if len > MAX_FRAME_LEN {
        return Err(invalid(
            OP,
            format!("a frame of {len} bytes is over the limit of {MAX_FRAME_LEN}"),
        ));
    }
    if payload.len() != len {
        return Err(invalid(
            OP,
            format!(
                "the frame announces {len} bytes and holds {}",
                payload.len()
            ),
        ));
    }
    Ok(payload)
}

// ---------------------------------------------------------------------------
// Envelopes
// ---------------------------------------------------------------------------

/// A decoded runtime → supervisor frame: `[id, body, context_carrier?]`.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestFrame {
    /// The request id the response will echo.
    pub id: u64,
    /// The request body (a map with `"type"`), or `None` for nil.
    pub body: Option<Value>,
    /// The W3C trace context Airflow's own runtime sends as a third element.
    pub context_carrier: Option<Value>,
}

/// A decoded supervisor → runtime frame: `[id, body|nil, error|nil]`.
#[derive(Debug, Clone, PartialEq)]
pub struct ResponseFrame {
    /// The id of the request answered (0 for `StartupDetails`).
    pub id: u64,
    /// The body slot: a result, or an `ErrorResponse` for "not found".
    pub body: Option<Value>,
    /// The error slot: an `ErrorResponse` when the supervisor or the API failed.
    pub error: Option<Value>,
}

/// How [`encode_response`] writes datetimes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Datetimes {
    /// Leave every string as it is (RFC 3339 strings stay strings).
    Strings,
    /// As Airflow's supervisor does: the RFC 3339 strings of the datetime fields
    /// of Airflow's messages ([`DATETIME_FIELDS`]) become Timestamp extensions;
    /// user data (`conf`, XCom and variable values, connection extras, …) is
    /// left alone.
    Timestamps,
}

/// The field names [`Datetimes::Timestamps`] converts: every datetime field of
/// the messages in [`messages`](super::messages).
pub const DATETIME_FIELDS: &[&str] = &[
    "start_date",
    "end_date",
    "logical_date",
    "data_interval_start",
    "data_interval_end",
    "run_after",
    "partition_date",
    "queued_at",
];

/// Fields holding user data, which [`Datetimes::Timestamps`] does not descend into.
const USER_DATA_FIELDS: &[&str] = &[
    "conf",
    "value",
    "extra",
    "next_kwargs",
    "detail",
    "context_carrier",
    "rendered_fields",
];

/// Decodes a supervisor → runtime payload (see [`read_frame`]).
pub fn decode_response(payload: &[u8]) -> Result<ResponseFrame> {
    const OP: &str = "airflow.decode_response";
    let items = envelope(OP, payload, 1, 3)?;
    let mut items = items.into_iter();
    let id = frame_id(OP, items.next())?;
    let body = slot(OP, "body", items.next())?;
    let error = slot(OP, "error", items.next())?;
    Ok(ResponseFrame { id, body, error })
}

/// Decodes a runtime → supervisor payload (see [`read_frame`]).
pub fn decode_request(payload: &[u8]) -> Result<RequestFrame> {
    const OP: &str = "airflow.decode_request";
    let items = envelope(OP, payload, 2, 3)?;
    let mut items = items.into_iter();
    let id = frame_id(OP, items.next())?;
    let body = slot(OP, "body", items.next())?;
    let context_carrier = slot(OP, "context_carrier", items.next())?;
    Ok(RequestFrame {
        id,
        body,
        context_carrier,
    })
}

/// Encodes a runtime → supervisor payload `[id, body]` (no length prefix; see
/// [`write_frame`]). Datetimes travel as the RFC 3339 strings they are in
/// `body`, which Airflow's pydantic models accept.
pub fn encode_request(id: u64, body: &Value) -> Result<Vec<u8>> {
    encode(
        "airflow.encode_request",
        Msg::Array(vec![
            Msg::from(id),
            json_to_msgpack(body, Datetimes::Strings),
        ]),
    )
}

/// Encodes a supervisor → runtime payload `[id, body|nil, error|nil]`, as
/// Airflow's `_ResponseFrame` does (all three elements).
pub fn encode_response(
    id: u64,
    body: Option<&Value>,
    error: Option<&Value>,
    datetimes: Datetimes,
) -> Result<Vec<u8>> {
    let slot = |v: Option<&Value>| v.map_or(Msg::Nil, |v| json_to_msgpack(v, datetimes));
    encode(
        "airflow.encode_response",
        Msg::Array(vec![Msg::from(id), slot(body), slot(error)]),
    )
}

fn encode(op: &'static str, value: Msg) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    rmpv::encode::write_value(&mut out, &value).map_err(|e| {
        Error::new(ErrorKind::InvalidInput, op, "msgpack encoding failed").with_source(e)
    })?;
    if out.len() > MAX_FRAME_LEN {
        return Err(invalid(
            op,
            format!(
                "a frame of {} bytes is over the limit of {MAX_FRAME_LEN}",
                out.len()
            ),
        ));
    }
    Ok(out)
}

fn envelope(op: &'static str, payload: &[u8], min: usize, max: usize) -> Result<Vec<Msg>> {
    match decode_msgpack(op, payload)? {
        Msg::Array(items) if (min..=max).contains(&items.len()) => Ok(items),
        Msg::Array(items) => Err(invalid(
            op,
            format!(
                "a frame of {} elements (expected {min} to {max})",
                items.len()
            ),
        )),
        other => Err(invalid(
            op,
            format!("a frame is {}, not an array", msg_kind(&other)),
        )),
    }
}

fn frame_id(op: &'static str, v: Option<Msg>) -> Result<u64> {
    match v {
        Some(Msg::Integer(i)) => i
            .as_u64()
            .ok_or_else(|| invalid(op, format!("a negative frame id {i}"))),
        Some(other) => Err(invalid(
            op,
            format!("a frame id is {}, not an integer", msg_kind(&other)),
        )),
        None => Err(invalid(op, "a frame without an id")),
    }
}

fn slot(op: &'static str, name: &str, v: Option<Msg>) -> Result<Option<Value>> {
    match v {
        None | Some(Msg::Nil) => Ok(None),
        Some(m @ Msg::Map(_)) => msgpack_to_json(op, m).map(Some),
        Some(other) => Err(invalid(
            op,
            format!(
                "the {name} of a frame is {}, not a map or nil",
                msg_kind(&other)
            ),
        )),
    }
}

fn msg_kind(v: &Msg) -> &'static str {
    match v {
        Msg::Nil => "nil",
        Msg::Boolean(_) => "a boolean",
        Msg::Integer(_) => "an integer",
        Msg::F32(_) | Msg::F64(_) => "a float",
        Msg::String(_) => "a string",
        Msg::Binary(_) => "binary",
        Msg::Array(_) => "an array",
        Msg::Map(_) => "a map",
        Msg::Ext(..) => "an extension",
    }
}

// ---------------------------------------------------------------------------
// msgpack <-> JSON
// ---------------------------------------------------------------------------

/// Decodes `bytes` as exactly one msgpack value and converts it to JSON as the
/// [module docs](self) describe: XCom values, a connection's extra and a
/// DAG run's `conf` are arbitrary msgpack on the wire.
pub fn msgpack_bytes_to_json(bytes: &[u8]) -> Result<Value> {
    const OP: &str = "airflow.decode_value";
    msgpack_to_json(OP, decode_msgpack(OP, bytes)?)
}

fn decode_msgpack(op: &'static str, bytes: &[u8]) -> Result<Msg> {
    let mut rest = bytes;
    // rmpv counts about two levels per array or map; its readers grow buffers
    // with the bytes read (no preallocation of an announced length).
    let value = rmpv::decode::read_value_with_max_depth(&mut rest, MAX_DEPTH * 2)
        .map_err(|e| invalid(op, format!("malformed msgpack: {e}")))?;
    if !rest.is_empty() {
        return Err(invalid(
            op,
            format!("{} bytes after the msgpack value", rest.len()),
        ));
    }
    Ok(value)
}

fn msgpack_to_json(op: &'static str, v: Msg) -> Result<Value> {
    Ok(match v {
        Msg::Nil => Value::Null,
        Msg::Boolean(b) => Value::Bool(b),
        Msg::Integer(i) => match (i.as_u64(), i.as_i64()) {
            (Some(u), _) => Value::from(u),
            (None, Some(s)) => Value::from(s),
            (None, None) => Value::Null, // unreachable: an rmpv integer is one or the other
        },
        Msg::F32(f) => float(f64::from(f)),
        Msg::F64(f) => float(f),
        // Invalid UTF-8 stays readable rather than failing the frame.
        Msg::String(s) => Value::String(String::from_utf8_lossy(&s.into_bytes()).into_owned()),
        Msg::Binary(b) => Value::Array(b.into_iter().map(Value::from).collect()),
        Msg::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|m| msgpack_to_json(op, m))
                .collect::<Result<_>>()?,
        ),
        Msg::Map(entries) => {
            let mut map = Map::with_capacity(entries.len().min(1024));
            for (k, v) in entries {
                let key = match msgpack_to_json(op, k)? {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                map.insert(key, msgpack_to_json(op, v)?);
            }
            Value::Object(map)
        }
        Msg::Ext(TIMESTAMP_EXT, data) => Value::String(
            decode_timestamp(&data)
                .map_err(|m| invalid(op, m))?
                .to_rfc3339_opts(SecondsFormat::AutoSi, true),
        ),
        Msg::Ext(ty, _) => {
            return Err(invalid(
                op,
                format!("unsupported msgpack extension type {ty}"),
            ));
        }
    })
}

fn float(f: f64) -> Value {
    Number::from_f64(f).map_or(Value::Null, Value::Number)
}

fn json_to_msgpack(v: &Value, datetimes: Datetimes) -> Msg {
    match v {
        Value::Null => Msg::Nil,
        Value::Bool(b) => Msg::Boolean(*b),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                Msg::from(u)
            } else if let Some(i) = n.as_i64() {
                Msg::from(i)
            } else {
                Msg::F64(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        Value::String(s) => Msg::from(s.as_str()),
        Value::Array(items) => Msg::Array(
            items
                .iter()
                .map(|i| json_to_msgpack(i, datetimes))
                .collect(),
        ),
        Value::Object(map) => Msg::Map(
            map.iter()
                .map(|(k, v)| {
                    let value = match (datetimes, v) {
                        (Datetimes::Timestamps, Value::String(s))
                            if DATETIME_FIELDS.contains(&k.as_str()) =>
                        {
                            match DateTime::parse_from_rfc3339(s) {
                                Ok(t) => timestamp_ext(t.with_timezone(&Utc)),
                                Err(_) => Msg::from(s.as_str()),
                            }
                        }
                        (Datetimes::Timestamps, _) if USER_DATA_FIELDS.contains(&k.as_str()) => {
                            json_to_msgpack(v, Datetimes::Strings)
                        }
                        _ => json_to_msgpack(v, datetimes),
                    };
                    (Msg::from(k.as_str()), value)
                })
                .collect(),
        ),
    }
}

// ---------------------------------------------------------------------------
// Timestamps
// ---------------------------------------------------------------------------

/// Decodes the data of a msgpack Timestamp extension (type −1) in any of its
/// three widths: 32-bit seconds, 64-bit (30-bit nanoseconds + 34-bit seconds),
/// 96-bit (32-bit nanoseconds + signed 64-bit seconds).
pub fn decode_timestamp(data: &[u8]) -> std::result::Result<DateTime<Utc>, String> {
    let (secs, nanos): (i64, u32) = match data.len() {
        4 => (
            i64::from(u32::from_be_bytes(data.try_into().unwrap_or_default())),
            0,
        ),
        8 => {
            let raw = u64::from_be_bytes(data.try_into().unwrap_or_default());
            ((raw & 0x3_ffff_ffff) as i64, (raw >> 34) as u32)
        }
        12 => {
            let nanos = u32::from_be_bytes(data[..4].try_into().unwrap_or_default());
            let secs = i64::from_be_bytes(data[4..].try_into().unwrap_or_default());
            (secs, nanos)
        }
        n => {
            return Err(format!(
                "a msgpack timestamp of {n} bytes (expected 4, 8 or 12)"
            ));
        }
    };
    if nanos >= 1_000_000_000 {
        return Err(format!("a msgpack timestamp with {nanos} nanoseconds"));
    }
    DateTime::from_timestamp(secs, nanos)
        .ok_or_else(|| format!("a msgpack timestamp of {secs} s is out of range"))
}

/// Encodes a datetime as msgpack Timestamp extension data, in the smallest
/// width that holds it (as msgspec does).
pub fn encode_timestamp(t: DateTime<Utc>) -> Vec<u8> {
    let secs = t.timestamp();
    let nanos = t.timestamp_subsec_nanos();
    if secs >= 0 && (secs >> 34) == 0 {
        if nanos == 0 && secs <= i64::from(u32::MAX) {
            return (secs as u32).to_be_bytes().to_vec();
        }
        return ((u64::from(nanos) << 34) | secs as u64)
            .to_be_bytes()
            .to_vec();
    }
    let mut out = nanos.to_be_bytes().to_vec();
    out.extend_from_slice(&secs.to_be_bytes());
    out
}

fn timestamp_ext(t: DateTime<Utc>) -> Msg {
    Msg::Ext(TIMESTAMP_EXT, encode_timestamp(t))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    fn frame(payload: &[u8]) -> Vec<u8> {
        let mut f = (payload.len() as u32).to_be_bytes().to_vec();
        f.extend_from_slice(payload);
        f
    }

    #[tokio::test]
    async fn frames_round_trip_through_a_stream() {
        let payload = encode_request(7, &json!({"type": "GetVariable", "key": "k"})).unwrap();
        let (mut a, mut b) = tokio::io::duplex(64);
        let writer = tokio::spawn(async move {
            write_frame(&mut a, &payload).await.unwrap();
            payload
        });
        let got = read_frame(&mut b).await.unwrap().unwrap();
        let sent = writer.await.unwrap();
        assert_eq!(got, sent);
        let req = decode_request(&got).unwrap();
        assert_eq!(req.id, 7);
        assert_eq!(req.body.unwrap()["key"], "k");
        assert!(read_frame(&mut b).await.unwrap().is_none(), "clean EOF");
    }

    #[tokio::test]
    async fn a_stream_closed_inside_a_frame_is_an_io_error() {
        for bytes in [vec![0u8, 0], frame(b"\x93\x01")[..5].to_vec()] {
            let err = read_frame(&mut &bytes[..]).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Io, "{err}");
        }
    }

    #[tokio::test]
    async fn a_hostile_length_is_refused_before_any_allocation() {
        let bytes = [0xff, 0xff, 0xff, 0xff, 1, 2, 3];
        let err = read_frame(&mut &bytes[..]).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(err.message().contains("over the limit"), "{err}");
        // Under the limit but never sent: an I/O error after the 3 bytes, with a
        // buffer of what arrived rather than of the announced 200 MiB.
        let mut bytes = (200u32 * 1024 * 1024).to_be_bytes().to_vec();
        bytes.extend_from_slice(&[1, 2, 3]);
        let err = read_frame(&mut &bytes[..]).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Io);
        assert!(err.message().contains("3 of 209715200"), "{err}");
    }

    #[test]
    fn timestamps_in_all_three_widths() {
        let t32 = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
        let t64 = t32 + chrono::Duration::microseconds(123_456);
        let t96 = Utc.with_ymd_and_hms(2600, 1, 1, 0, 0, 0).unwrap();
        let before_1970 =
            Utc.with_ymd_and_hms(1960, 6, 1, 0, 0, 0).unwrap() + chrono::Duration::nanoseconds(5);
        for (t, width) in [(t32, 4), (t64, 8), (t96, 12), (before_1970, 12)] {
            let data = encode_timestamp(t);
            assert_eq!(data.len(), width, "{t}");
            assert_eq!(decode_timestamp(&data).unwrap(), t);
        }
        assert!(decode_timestamp(&[0; 5]).is_err());
        // 64-bit form with nanoseconds over 999_999_999.
        assert!(decode_timestamp(&(0x3fff_ffffu64 << 34).to_be_bytes()).is_err());
        let mut huge = 0u32.to_be_bytes().to_vec();
        huge.extend_from_slice(&i64::MAX.to_be_bytes());
        assert!(
            decode_timestamp(&huge)
                .unwrap_err()
                .contains("out of range")
        );
    }

    #[test]
    fn values_convert_to_json_as_documented() {
        let v = Msg::Map(vec![
            (Msg::from(1), Msg::from("int key")),
            (Msg::Boolean(true), Msg::Nil),
            (Msg::Nil, Msg::F64(f64::NAN)),
            (Msg::Array(vec![Msg::from(1), Msg::from(2)]), Msg::F32(1.5)),
            (Msg::from("bin"), Msg::Binary(vec![0, 255])),
            (Msg::from("bad"), Msg::String(rmpv::Utf8String::from("x"))),
            (Msg::from("t"), Msg::Ext(-1, vec![0, 0, 0, 1])),
            (Msg::from("neg"), Msg::from(-5)),
            (Msg::from("big"), Msg::from(u64::MAX)),
        ]);
        let mut bytes = Vec::new();
        rmpv::encode::write_value(&mut bytes, &v).unwrap();
        let json = msgpack_bytes_to_json(&bytes).unwrap();
        assert_eq!(
            json,
            json!({"1": "int key", "true": null, "null": null, "[1,2]": 1.5,
                   "bin": [0, 255], "bad": "x", "t": "1970-01-01T00:00:01Z",
                   "neg": -5, "big": u64::MAX})
        );
        // Invalid UTF-8 in a str.
        let bytes = [0xa2, 0xff, b'a'];
        assert_eq!(msgpack_bytes_to_json(&bytes).unwrap(), json!("\u{fffd}a"));
        // Another extension type, trailing bytes, a reserved marker's neighbours.
        let err = msgpack_bytes_to_json(&[0xd4, 0x05, 0x00]).unwrap_err();
        assert!(err.message().contains("extension type 5"), "{err}");
        let err = msgpack_bytes_to_json(&[0xc0, 0xc0]).unwrap_err();
        assert!(err.message().contains("after the msgpack value"), "{err}");
    }

    #[test]
    fn nesting_deeper_than_the_limit_is_refused() {
        let deep = vec![0x91u8; 10_000];
        let err = msgpack_bytes_to_json(&deep).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        let mut ok = vec![0x91u8; MAX_DEPTH - 2];
        ok.push(0xc0);
        msgpack_bytes_to_json(&ok).unwrap();
    }

    #[test]
    fn envelopes_are_checked() {
        let enc = |v: Msg| {
            let mut b = Vec::new();
            rmpv::encode::write_value(&mut b, &v).unwrap();
            b
        };
        // Airflow's 3-element response, and a shorter one.
        let r = decode_response(&enc(Msg::Array(vec![Msg::from(5), Msg::Nil, Msg::Nil]))).unwrap();
        assert_eq!((r.id, r.body, r.error), (5, None, None));
        let r = decode_response(&enc(Msg::Array(vec![Msg::from(5)]))).unwrap();
        assert_eq!(r.id, 5);
        for bad in [
            Msg::Map(vec![]),
            Msg::Array(vec![]),
            Msg::Array(vec![Msg::from(-1)]),
            Msg::Array(vec![Msg::from("1")]),
            Msg::Array(vec![Msg::from(1), Msg::from(2)]),
            Msg::Array(vec![Msg::from(1), Msg::Nil, Msg::Nil, Msg::Nil]),
        ] {
            let err = decode_response(&enc(bad.clone())).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{bad}");
        }
        // A request needs a body slot; a third element is the trace carrier.
        assert!(decode_request(&enc(Msg::Array(vec![Msg::from(1)]))).is_err());
        let r = decode_request(&enc(Msg::Array(vec![
            Msg::from(1),
            Msg::Map(vec![(Msg::from("type"), Msg::from("GetVariable"))]),
            Msg::Map(vec![(Msg::from("traceparent"), Msg::from("00-…"))]),
        ])))
        .unwrap();
        assert_eq!(r.context_carrier.unwrap()["traceparent"], "00-…");
    }

    #[test]
    fn timestamps_mode_converts_datetime_fields_but_not_user_data() {
        let body = json!({
            "type": "StartupDetails",
            "start_date": "2026-01-02T03:04:05.123456Z",
            "ti_context": {"dag_run": {"logical_date": "2026-01-02T00:00:00Z",
                                        "conf": {"start_date": "2026-01-02T00:00:00Z"}}},
            "note": "2026-01-02T00:00:00Z",
        });
        let payload = encode_response(0, Some(&body), None, Datetimes::Timestamps).unwrap();
        let mut rest = &payload[..];
        let raw = rmpv::decode::read_value(&mut rest).unwrap();
        let raw_body = &raw[1];
        let get = |m: &Msg, k: &str| -> Msg {
            m.as_map()
                .unwrap()
                .iter()
                .find(|(kk, _)| kk.as_str() == Some(k))
                .unwrap()
                .1
                .clone()
        };
        assert!(matches!(get(raw_body, "start_date"), Msg::Ext(-1, ref d) if d.len() == 8));
        let dag_run = get(&get(raw_body, "ti_context"), "dag_run");
        assert!(matches!(get(&dag_run, "logical_date"), Msg::Ext(-1, ref d) if d.len() == 4));
        assert!(get(&get(&dag_run, "conf"), "start_date").is_str());
        assert!(get(raw_body, "note").is_str());
        // And the decoder turns them back into the same strings.
        assert_eq!(decode_response(&payload).unwrap().body.unwrap(), body);
    }

    #[test]
    fn split_frame_checks_the_length() {
        let payload = encode_request(1, &json!({})).unwrap();
        assert_eq!(split_frame(&frame(&payload)).unwrap(), &payload[..]);
        assert!(split_frame(&frame(&payload)[..3]).is_err());
        let mut long = frame(&payload);
        long.push(0);
        assert!(split_frame(&long).is_err());
    }
}
