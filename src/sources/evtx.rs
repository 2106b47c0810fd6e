//! Windows event log files (`.evtx`) as lines: the evtx crate renders each record as one line of
//! JSON, which the decoder reads like any Windows event given as JSON (`decode::windows`). So an
//! `.evtx` file goes through `scan` exactly like a file of Winlogbeat or NXLog lines: same engine,
//! same evidence (the record's JSON), same merging by event time.

use std::io::{self, Read, Seek};
use std::sync::Arc;

use evtx::{EvtxParser, IntoIterChunks, ParserSettings};

/// The first bytes of an `.evtx` file ("ElfFile\0").
pub const MAGIC: &[u8] = b"ElfFile\0";

/// Reads an `.evtx` file as JSON lines, one chunk (64 KiB of records) rendered at a time.
pub struct EvtxLines<R: Read + Seek> {
    chunks: IntoIterChunks<R>,
    settings: Arc<ParserSettings>,
    rendered: Vec<u8>,
    at: usize,
}

impl<R: Read + Seek> EvtxLines<R> {
    /// Opens the file's header; the records are read as lines are asked for.
    pub fn new(reader: R) -> io::Result<Self> {
        // One line per record; every attribute under `#attributes`, the shape the decoder reads.
        let settings = ParserSettings::new().indent(false);
        let parser = EvtxParser::from_read_seek(reader)
            .map_err(|err| io::Error::new(io::ErrorKind::InvalidData, err.to_string()))?
            .with_configuration(settings.clone());
        Ok(EvtxLines {
            chunks: parser.into_chunks(),
            settings: Arc::new(settings),
            rendered: Vec::new(),
            at: 0,
        })
    }

    /// Renders the next chunk. False at the end of the file. A chunk or record that cannot be
    /// read becomes a line saying so, which the decoder counts as unparsed: nothing is dropped
    /// unseen, and the rest of the file is still read.
    fn render_next_chunk(&mut self) -> bool {
        self.rendered.clear();
        self.at = 0;
        let Some(chunk) = self.chunks.next() else {
            return false;
        };
        let mut data = match chunk {
            Ok(data) => data,
            Err(err) => {
                self.broken(&format!("evtx: chunk could not be read: {err}"));
                return true;
            }
        };
        let mut chunk = match data.parse(self.settings.clone()) {
            Ok(chunk) => chunk,
            Err(err) => {
                self.broken(&format!("evtx: chunk could not be parsed: {err}"));
                return true;
            }
        };
        for record in chunk.iter() {
            match record.and_then(|record| record.into_json()) {
                Ok(record) => {
                    self.rendered.extend_from_slice(record.data.as_bytes());
                    self.rendered.push(b'\n');
                }
                Err(err) => {
                    let line = format!("evtx: record could not be read: {err}");
                    self.rendered.extend_from_slice(one_line(&line).as_bytes());
                    self.rendered.push(b'\n');
                }
            }
        }
        true
    }

    fn broken(&mut self, text: &str) {
        self.rendered.extend_from_slice(one_line(text).as_bytes());
        self.rendered.push(b'\n');
    }
}

fn one_line(text: &str) -> String {
    text.replace(['\n', '\r'], " ")
}

impl<R: Read + Seek> Read for EvtxLines<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.at == self.rendered.len() {
            if !self.render_next_chunk() {
                return Ok(0);
            }
        }
        let n = out.len().min(self.rendered.len() - self.at);
        out[..n].copy_from_slice(&self.rendered[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}
