//! An object's records as they arrive: gzip undone chunk by chunk, then the
//! CSV or JSON Lines push parser of its format. A Parquet object (its footer
//! comes last) is first downloaded to a temporary file, then read a batch of
//! rows at a time, its column names as a header record. Shared by the transfers that
//! read objects (`S3ToSql`, `S3ToRedis`), where what a header names and where the
//! records go is theirs, and by [`read_rows`], which holds a whole object's rows
//! as JSON objects (a training set's).

use std::io::Write as _;

use bytes::Bytes;
use futures::StreamExt;

use crate::error::{Error, ErrorKind, Result};
use crate::formats::csv::{Parser, Record};
use crate::formats::{FileFormat, jsonl};
use crate::hooks::object_store::BytesStream;

/// A JSON Lines object and its line.
pub(crate) type NumberedObject = (u64, jsonl::Object);

enum Decoder {
    Csv(Parser),
    Jsonl(jsonl::Parser),
    /// Not downloaded yet, then the file's reader.
    #[cfg(feature = "parquet")]
    Parquet(Option<crate::formats::parquet::Reader>),
}

/// Decodes one object; see the [module docs](self).
pub(crate) struct ObjectReader {
    body: BytesStream,
    decoder: Decoder,
    bytes: u64,
    done: bool,
    op: &'static str,
}

impl ObjectReader {
    /// A reader of `body` in `format`, gunzipped first when `gzip`.
    pub(crate) fn new(
        body: BytesStream,
        format: &FileFormat,
        gzip: bool,
        op: &'static str,
    ) -> Self {
        let body = if gzip { gunzip_stream(body, op) } else { body };
        let decoder = match format {
            FileFormat::Csv(csv) => Decoder::Csv(Parser::new(csv, op)),
            FileFormat::JsonLines => Decoder::Jsonl(jsonl::Parser::new(op)),
            #[cfg(feature = "parquet")]
            FileFormat::Parquet(_) => Decoder::Parquet(None),
        };
        ObjectReader {
            body,
            decoder,
            bytes: 0,
            done: false,
            op,
        }
    }

    /// Decodes the next chunk into `records` (CSV, Parquet — its first record
    /// the column names) or `objects` (JSON Lines); `false` once the object has
    /// ended. An object without one byte (after gzip) is an
    /// [`ErrorKind::InvalidInput`] error.
    pub(crate) async fn next(
        &mut self,
        records: &mut Vec<Record>,
        objects: &mut Vec<NumberedObject>,
    ) -> Result<bool> {
        if self.done {
            return Ok(false);
        }
        #[cfg(feature = "parquet")]
        if let Decoder::Parquet(reader) = &mut self.decoder {
            let reader = match reader {
                Some(r) => r,
                None => {
                    let file = download(&mut self.body, self.op).await?;
                    let r = reader.insert(crate::formats::parquet::Reader::open(file, self.op)?);
                    records.push(r.columns().iter().cloned().map(Some).collect());
                    return Ok(true);
                }
            };
            let more = reader.next_records(records)?;
            self.done = !more;
            return Ok(more);
        }
        match self.body.next().await.transpose()? {
            Some(chunk) => {
                self.bytes += chunk.len() as u64;
                match &mut self.decoder {
                    Decoder::Csv(p) => p.feed(&chunk, records)?,
                    Decoder::Jsonl(p) => p.feed_numbered(&chunk, objects)?,
                    #[cfg(feature = "parquet")]
                    Decoder::Parquet(_) => {}
                }
                Ok(true)
            }
            None => {
                self.done = true;
                if self.bytes == 0 {
                    return Err(Error::new(
                        ErrorKind::InvalidInput,
                        self.op,
                        "the object is empty: not one byte to load",
                    ));
                }
                match &mut self.decoder {
                    Decoder::Csv(p) => p.finish(records)?,
                    Decoder::Jsonl(p) => p.finish_numbered(objects)?,
                    #[cfg(feature = "parquet")]
                    Decoder::Parquet(_) => {}
                }
                Ok(false)
            }
        }
    }
}

/// Every row of an object as a JSON object: a CSV record or a Parquet row
/// by its header's column names (with no CSV header: `"0"`, `"1"`, … as
/// pandas names them), its cells as strings and NULL as `null`; a JSON Lines
/// object as it is. A record whose length differs from the header's is an
/// [`ErrorKind::InvalidInput`] error naming its line.
pub(crate) async fn read_rows(
    body: BytesStream,
    format: &FileFormat,
    gzip: bool,
    op: &'static str,
) -> Result<Vec<serde_json::Map<String, serde_json::Value>>> {
    use serde_json::{Map, Value};
    let header = match format {
        FileFormat::Csv(csv) => csv.header,
        FileFormat::JsonLines => false,
        #[cfg(feature = "parquet")]
        FileFormat::Parquet(_) => true,
    };
    let mut reader = ObjectReader::new(body, format, gzip, op);
    let mut rows = Vec::new();
    let mut names: Option<Vec<String>> = None;
    let mut records: Vec<Record> = Vec::new();
    let mut objects: Vec<NumberedObject> = Vec::new();
    let mut line = 0u64;
    loop {
        let more = reader.next(&mut records, &mut objects).await?;
        rows.extend(objects.drain(..).map(|(_, o)| o));
        for record in records.drain(..) {
            line += 1;
            let names = match &names {
                Some(n) => n,
                None if header => {
                    names = Some(record.into_iter().map(Option::unwrap_or_default).collect());
                    continue;
                }
                None => names.insert((0..record.len()).map(|i| i.to_string()).collect()),
            };
            if record.len() != names.len() {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    op,
                    format!(
                        "record {line} has {} fields where the header has {}",
                        record.len(),
                        names.len()
                    ),
                )
                .with("line", line));
            }
            let row: Map<String, Value> = names
                .iter()
                .cloned()
                .zip(
                    record
                        .into_iter()
                        .map(|c| c.map_or(Value::Null, Value::String)),
                )
                .collect();
            rows.push(row);
        }
        if !more {
            return Ok(rows);
        }
    }
}

/// Writes a whole object to an unnamed temporary file (gone when closed);
/// returns it to be read from the start. An empty object is an error.
#[cfg(feature = "parquet")]
async fn download(body: &mut BytesStream, op: &'static str) -> Result<std::fs::File> {
    use std::io::Seek as _;
    use tokio::io::AsyncWriteExt as _;
    let io = |e: std::io::Error| {
        Error::new(
            ErrorKind::Io,
            op,
            format!("writing the object to a temporary file: {e}"),
        )
        .with_source(e)
    };
    let file = tempfile::tempfile().map_err(io)?;
    let mut out = tokio::fs::File::from_std(file.try_clone().map_err(io)?);
    let mut bytes = 0u64;
    while let Some(chunk) = body.next().await.transpose()? {
        bytes += chunk.len() as u64;
        out.write_all(&chunk).await.map_err(io)?;
    }
    out.flush().await.map_err(io)?;
    if bytes == 0 {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            op,
            "the object is empty: not one byte to load",
        ));
    }
    let mut file = file;
    file.rewind().map_err(io)?;
    Ok(file)
}

/// Decompresses a gzip stream chunk by chunk (an empty object stays empty).
pub(crate) fn gunzip_stream(body: BytesStream, op: &'static str) -> BytesStream {
    struct State {
        body: BytesStream,
        gz: flate2::write::GzDecoder<Vec<u8>>,
        seen: bool,
        done: bool,
    }
    let bad = move |e: std::io::Error| {
        Error::new(
            ErrorKind::InvalidInput,
            op,
            format!("the object is not valid gzip: {e}"),
        )
    };
    let state = State {
        body,
        gz: flate2::write::GzDecoder::new(Vec::new()),
        seen: false,
        done: false,
    };
    futures::stream::try_unfold(state, move |mut s| async move {
        loop {
            if s.done {
                return Ok(None);
            }
            match s.body.next().await.transpose()? {
                Some(c) => {
                    s.seen |= !c.is_empty();
                    s.gz.write_all(&c).map_err(bad)?;
                }
                None => {
                    if s.seen {
                        s.gz.try_finish().map_err(bad)?;
                    }
                    s.done = true;
                }
            }
            let out = std::mem::take(s.gz.get_mut());
            if !out.is_empty() {
                return Ok(Some((Bytes::from(out), s)));
            }
        }
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::csv::CsvFormat;

    fn stream(chunks: Vec<Vec<u8>>) -> BytesStream {
        futures::stream::iter(chunks.into_iter().map(|c| Ok(Bytes::from(c)))).boxed()
    }

    #[tokio::test]
    async fn gzip_csv_in_small_chunks_and_empty_objects() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"a,b\n1,\"x\"\n").unwrap();
        let gz = gz.finish().unwrap();
        let chunks = gz.chunks(3).map(<[u8]>::to_vec).collect();
        let mut r = ObjectReader::new(stream(chunks), &CsvFormat::new().into(), true, "t");
        let (mut records, mut objects) = (Vec::new(), Vec::new());
        while r.next(&mut records, &mut objects).await.unwrap() {}
        assert_eq!(records.len(), 2);
        assert_eq!(records[1], vec![Some("1".into()), Some("x".into())]);

        for gzip in [false, true] {
            let mut r = ObjectReader::new(stream(vec![]), &FileFormat::JsonLines, gzip, "t");
            let e = loop {
                match r.next(&mut records, &mut objects).await {
                    Ok(true) => {}
                    Ok(false) => panic!("an empty object is an error"),
                    Err(e) => break e,
                }
            };
            assert!(e.message().contains("empty"), "{e}");
        }
        let mut r = ObjectReader::new(
            stream(vec![b"nope".to_vec()]),
            &FileFormat::JsonLines,
            true,
            "t",
        );
        let e = r.next(&mut records, &mut objects).await.unwrap_err();
        assert!(e.message().contains("not valid gzip"), "{e}");
    }
}
