//! Line framing of the stdio transport: one JSON-RPC message per line, with a bound.
//!
//! MCP's stdio transport (MCP 2025-11-25, "Transports" § stdio) delimits messages by newlines
//! and forbids embedded ones. Reading "a line" from a child the gateway does not control must
//! not mean "however many bytes arrive before the next newline": a server that prints a
//! multi-gigabyte line (a bug, or a hostile tool result) would take the gateway's memory with
//! it. [`LineReader`] keeps at most `max` bytes of a line; a longer one is reported as
//! [`Frame::TooLong`] and the rest of it is skipped, never stored. Reads that end mid-line are
//! joined; a final line without a newline still counts; a trailing `\r` is dropped and blank
//! lines are skipped.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! use mcp_auth_gateway::framing::{Frame, LineReader};
//! let input: &[u8] = b"{\"a\":1}\r\n\n{\"b\":2}";
//! let mut lines = LineReader::new(input, 1024);
//! assert!(matches!(lines.next().await.unwrap(), Frame::Line(l) if &l[..] == b"{\"a\":1}"));
//! assert!(matches!(lines.next().await.unwrap(), Frame::Line(l) if &l[..] == b"{\"b\":2}"));
//! assert!(matches!(lines.next().await.unwrap(), Frame::Eof));
//! # });
//! ```

use std::io;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

/// What [`LineReader::next`] read.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// One line, without its line ending; never empty.
    Line(Bytes),
    /// A line longer than the limit. Its bytes were not kept; the next call goes on after it.
    TooLong,
    /// The end of the input.
    Eof,
}

/// Reads newline-delimited lines of at most `max` bytes from an [`AsyncRead`].
#[derive(Debug)]
pub struct LineReader<R> {
    inner: BufReader<R>,
    line: BytesMut,
    max: usize,
    /// Inside a line that was too long: skip to its end.
    skipping: bool,
}

impl<R: AsyncRead + Unpin> LineReader<R> {
    /// A reader of lines of at most `max` bytes (at least 1).
    pub fn new(inner: R, max: usize) -> Self {
        Self {
            inner: BufReader::with_capacity(64 * 1024, inner),
            line: BytesMut::new(),
            max: max.max(1),
            skipping: false,
        }
    }

    /// The next line, [`Frame::TooLong`] for a line over the limit, or [`Frame::Eof`].
    pub async fn next(&mut self) -> io::Result<Frame> {
        loop {
            let available = self.inner.fill_buf().await?;
            if available.is_empty() {
                self.skipping = false;
                if self.line.is_empty() {
                    return Ok(Frame::Eof);
                }
                // A last line without a newline.
                if let Some(frame) = self.take_line() {
                    return Ok(frame);
                }
                continue;
            }
            let newline = available.iter().position(|b| *b == b'\n');
            let end = newline.unwrap_or(available.len());
            let consumed = newline.map_or(end, |i| i + 1);
            if self.skipping {
                self.skipping = newline.is_none();
                self.inner.consume(consumed);
                continue;
            }
            // The limit counts the line without its line ending; a `\r` before the newline
            // may be the one byte over.
            let slack = usize::from(newline.is_none() || end == 0 || available[end - 1] == b'\r');
            if self.line.len() + end > self.max + slack {
                self.line.clear();
                self.skipping = newline.is_none();
                self.inner.consume(consumed);
                return Ok(Frame::TooLong);
            }
            self.line.extend_from_slice(&available[..end]);
            self.inner.consume(consumed);
            if newline.is_some()
                && let Some(frame) = self.take_line()
            {
                return Ok(frame);
            }
        }
    }

    /// The line read so far, without a trailing `\r`: a [`Frame::Line`], a
    /// [`Frame::TooLong`] if it is still over the limit once the `\r` is gone, or `None` if it
    /// is blank.
    fn take_line(&mut self) -> Option<Frame> {
        let mut line = self.line.split().freeze();
        if line.last() == Some(&b'\r') {
            line.truncate(line.len() - 1);
        }
        if line.len() > self.max {
            return Some(Frame::TooLong);
        }
        (!line.iter().all(u8::is_ascii_whitespace)).then_some(Frame::Line(line))
    }
}

#[cfg(test)]
mod tests {
    use std::{
        pin::Pin,
        task::{Context, Poll},
    };

    use tokio::io::ReadBuf;

    use super::*;

    /// An input that hands out its bytes in the given pieces, one per read.
    struct Pieces(Vec<Vec<u8>>);

    impl AsyncRead for Pieces {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            if !self.0.is_empty() {
                let mut piece = self.0.remove(0);
                let n = piece.len().min(buf.remaining());
                buf.put_slice(&piece[..n]);
                if n < piece.len() {
                    self.0.insert(0, piece.split_off(n));
                }
            }
            Poll::Ready(Ok(()))
        }
    }

    async fn frames(pieces: &[&[u8]], max: usize) -> Vec<Frame> {
        let mut reader = LineReader::new(Pieces(pieces.iter().map(|p| p.to_vec()).collect()), max);
        let mut out = Vec::new();
        for _ in 0..100 {
            let frame = reader.next().await.unwrap();
            let eof = frame == Frame::Eof;
            out.push(frame);
            if eof {
                return out;
            }
        }
        panic!("no end after 100 frames: {out:?}");
    }

    fn line(s: &str) -> Frame {
        Frame::Line(Bytes::copy_from_slice(s.as_bytes()))
    }

    #[tokio::test]
    async fn a_message_split_across_reads_is_one_line() {
        let got = frames(
            &[
                b"{\"jsonrpc\":",
                b"\"2.0\",",
                b"\"id\":1}\n{\"x\"",
                b":2}\n",
            ],
            64,
        )
        .await;
        assert_eq!(
            got,
            [
                line(r#"{"jsonrpc":"2.0","id":1}"#),
                line(r#"{"x":2}"#),
                Frame::Eof
            ]
        );
    }

    #[tokio::test]
    async fn a_line_over_the_limit_is_reported_and_skipped_not_stored() {
        // 10 bytes allowed; the long line arrives in three reads, its end with the next line.
        let got = frames(&[b"ok\n0123456", b"789abcdef", b"ghij\nnext\n"], 10).await;
        assert_eq!(got, [line("ok"), Frame::TooLong, line("next"), Frame::Eof]);
        // Exactly at the limit is fine, with or without a `\r`; one byte over is not.
        let got = frames(&[b"0123456789\n0123456789\r\n0123456789a\n"], 10).await;
        let ten = || line("0123456789");
        assert_eq!(got, [ten(), ten(), Frame::TooLong, Frame::Eof]);
        // A long last line without a newline.
        let got = frames(&[b"0123456789abc"], 10).await;
        assert_eq!(got, [Frame::TooLong, Frame::Eof]);
    }

    #[tokio::test]
    async fn crlf_blank_lines_and_a_last_line_without_newline() {
        let got = frames(&[b"a\r\n\r\n\n  \nb"], 10).await;
        assert_eq!(got, [line("a"), line("b"), Frame::Eof]);
    }
}
