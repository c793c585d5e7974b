//! Record boundaries in a stream of encoded rows, found without parsing the
//! fields: the [`Splitter`] cuts a dump into files of at most N records, each
//! starting with the header, and counts the records on the way.

use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::oneshot;

use crate::error::{Error, ErrorKind, Result};
use crate::hooks::object_store::BytesStream;

/// How records end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// CSV: a line end outside double quotes.
    Csv,
    /// JSON Lines: every line end (JSON escapes line ends inside strings).
    Lines,
}

/// Reads an encoded dump and hands it out in batches that never cross the
/// N-th record of a file. The dump's outcome arrives on `done` before its
/// end, so a failed dump ends the batches with its error instead of looking
/// like a short, complete result.
pub(crate) struct Splitter {
    body: BytesStream,
    done: Option<oneshot::Receiver<Result<()>>>,
    framing: Framing,
    in_quotes: bool,
    /// Whether the bytes since the last record end begin a record.
    open: bool,
    header: Option<Vec<u8>>,
    /// The first record is a header still to be read.
    header_pending: bool,
    carry: Option<Bytes>,
    finished: bool,
    records: u64,
    /// Bytes handed out in batches.
    bytes: u64,
    op: &'static str,
}

/// Records between two progress events.
const PROGRESS_EVERY: u64 = 1_000_000;

impl Splitter {
    /// A splitter over `body`; with `header`, the first record is the header
    /// ([`header`](Self::header)), not counted and not handed out in batches.
    pub(crate) fn new(
        body: BytesStream,
        done: oneshot::Receiver<Result<()>>,
        framing: Framing,
        header: bool,
        op: &'static str,
    ) -> Self {
        Splitter {
            body,
            done: Some(done),
            framing,
            in_quotes: false,
            open: false,
            header: None,
            header_pending: header,
            carry: None,
            finished: false,
            records: 0,
            bytes: 0,
            op,
        }
    }

    /// The header record's bytes (with its line end), once read.
    pub(crate) fn header(&self) -> Option<&[u8]> {
        self.header.as_deref()
    }

    /// Records handed out so far.
    pub(crate) fn records(&self) -> u64 {
        self.records
    }

    /// The next chunk of the dump, or `None` at its (successful) end.
    async fn chunk(&mut self) -> Result<Option<Bytes>> {
        if let Some(c) = self.carry.take() {
            return Ok(Some(c));
        }
        if self.finished {
            return Ok(None);
        }
        match self.body.next().await {
            Some(Ok(c)) => Ok(Some(c)),
            Some(Err(e)) => Err(Error::new(
                ErrorKind::Io,
                self.op,
                format!("reading the dump: {}", e.message()),
            )
            .with_source(e)),
            None => {
                self.finished = true;
                match self.done.take() {
                    Some(done) => match done.await {
                        Ok(Ok(())) => Ok(None),
                        Ok(Err(e)) => Err(e),
                        Err(_) => Err(Error::new(
                            ErrorKind::Cancelled,
                            self.op,
                            "the dump ended without a result",
                        )),
                    },
                    None => Ok(None),
                }
            }
        }
    }

    /// Scans `data` for record ends; returns the offset just past the
    /// `limit`-th one, if reached, and the ends seen up to there.
    fn scan(&mut self, data: &[u8], limit: u64) -> (Option<usize>, u64) {
        let mut ends = 0;
        for (i, &b) in data.iter().enumerate() {
            match b {
                b'"' if self.framing == Framing::Csv => self.in_quotes = !self.in_quotes,
                b'\n' if !self.in_quotes => {
                    self.open = false;
                    ends += 1;
                    if ends == limit {
                        return (Some(i + 1), ends);
                    }
                    continue;
                }
                _ => {}
            }
            self.open = true;
        }
        (None, ends)
    }

    /// Reads the header record, if one is pending. Returns `false` when the
    /// dump ended first.
    async fn read_header(&mut self) -> Result<bool> {
        let mut header = Vec::new();
        while self.header_pending {
            let Some(chunk) = self.chunk().await? else {
                // A header without a line end still counts.
                if !header.is_empty() {
                    header.push(b'\n');
                    self.header = Some(header);
                }
                self.header_pending = false;
                self.open = false;
                return Ok(false);
            };
            match self.scan(&chunk, 1) {
                (Some(end), _) => {
                    header.extend_from_slice(&chunk[..end]);
                    if end < chunk.len() {
                        self.carry = Some(chunk.slice(end..));
                    }
                    self.header = Some(header);
                    self.header_pending = false;
                    return Ok(true);
                }
                (None, _) => header.extend_from_slice(&chunk),
            }
        }
        Ok(true)
    }

    /// The next bytes of the dump, holding at most `room` record ends, and the
    /// records they complete; `None` at the end. A record without a final line
    /// end is counted with the last batch.
    pub(crate) async fn next_batch(&mut self, room: u64) -> Result<Option<(Bytes, u64)>> {
        if room == 0 {
            return Ok(None);
        }
        self.read_header().await?;
        let Some(chunk) = self.chunk().await? else {
            if self.open {
                // The last record had no line end.
                self.open = false;
                self.records += 1;
                return Ok(Some((Bytes::from_static(b"\n"), 1)));
            }
            return Ok(None);
        };
        let (cut, ends) = self.scan(&chunk, room);
        let before = self.records;
        self.records += ends;
        self.bytes += cut.unwrap_or(chunk.len()) as u64;
        // Progress for long dumps: a line per million records.
        if self.records / PROGRESS_EVERY > before / PROGRESS_EVERY {
            tracing::info!(rows = self.records, bytes = self.bytes, "dump in progress");
        }
        match cut {
            Some(end) if end < chunk.len() => {
                self.carry = Some(chunk.slice(end..));
                Ok(Some((chunk.slice(..end), ends)))
            }
            _ => Ok(Some((chunk, ends))),
        }
    }

    /// Whether the dump has no more records (reads ahead one chunk).
    pub(crate) async fn at_end(&mut self) -> Result<bool> {
        if self.carry.is_some() {
            return Ok(false);
        }
        if self.open {
            return Ok(false);
        }
        match self.chunk().await? {
            Some(c) => {
                self.carry = Some(c);
                Ok(false)
            }
            None => Ok(true),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn splitter(chunks: &[&'static str], framing: Framing, header: bool) -> Splitter {
        let body = futures::stream::iter(
            chunks
                .iter()
                .map(|c| Ok(Bytes::from_static(c.as_bytes())))
                .collect::<Vec<_>>(),
        )
        .boxed();
        let (tx, rx) = oneshot::channel();
        tx.send(Ok(())).unwrap();
        Splitter::new(body, rx, framing, header, "test")
    }

    /// Splits into files of at most `n` records; returns each file's text.
    async fn files(s: &mut Splitter, n: u64) -> Vec<String> {
        let mut files = Vec::new();
        loop {
            let mut file = Vec::new();
            let mut left = n;
            while let Some((b, r)) = s.next_batch(left).await.unwrap() {
                file.extend_from_slice(&b);
                left -= r;
                if left == 0 {
                    break;
                }
            }
            if file.is_empty() {
                break;
            }
            files.push(String::from_utf8(file).unwrap());
            if s.at_end().await.unwrap() {
                break;
            }
        }
        files
    }

    #[tokio::test]
    async fn csv_splits_at_record_ends_outside_quotes() {
        let mut s = splitter(
            &["id,no", "te\n1,\"a\nb\"\n2,x\n3,", "\"\"\n4,y"],
            Framing::Csv,
            true,
        );
        let out = files(&mut s, 2).await;
        assert_eq!(s.header(), Some(&b"id,note\n"[..]));
        assert_eq!(out, ["1,\"a\nb\"\n2,x\n", "3,\"\"\n4,y\n"]);
        assert_eq!(s.records(), 4);
    }

    #[tokio::test]
    async fn lines_ignore_quotes_and_a_header_only_dump_has_no_records() {
        let mut s = splitter(&["{\"a\":\"\\\"\"}\n{\"a\":1}\n"], Framing::Lines, false);
        assert_eq!(files(&mut s, 1).await.len(), 2);
        let mut s = splitter(&["id,name\n"], Framing::Csv, true);
        assert!(files(&mut s, 10).await.is_empty());
        assert_eq!(s.header(), Some(&b"id,name\n"[..]));
        assert_eq!(s.records(), 0);
    }

    #[tokio::test]
    async fn a_failed_dump_ends_with_its_error() {
        let body = futures::stream::iter(vec![Ok(Bytes::from_static(b"a\n1\n"))]).boxed();
        let (tx, rx) = oneshot::channel();
        tx.send(Err(Error::new(ErrorKind::InvalidInput, "q", "boom")))
            .unwrap();
        let mut s = Splitter::new(body, rx, Framing::Csv, true, "test");
        assert!(s.next_batch(10).await.unwrap().is_some());
        let e = s.next_batch(10).await.unwrap_err();
        assert_eq!(e.message(), "boom");
    }
}
