//! A small writer of Windows event log files (`.evtx`) for the tests. No `.evtx` sample exists on
//! this machine (the evtx crate's repository samples are binary and not available here) and no
//! crate writes the format, so this writes what MS-EVEN6 requires and nothing more:
//!
//! - a 4 KiB file header (`ElfFile\0`, chunk count, version 3.1, CRC32 of its first 120 bytes);
//! - 64 KiB chunks (`ElfChnk\0`, first/last record numbers and ids, the offset of the last record
//!   and of the free space, the CRC32 of the records and of the header; empty string and template
//!   tables, since every name is written inline);
//! - records (`**\0\0`, size, record id, FILETIME, BinXML, size again) whose BinXML is a fragment
//!   header and plain elements: `<Event><System>...</System><EventData><Data Name=..>` (or
//!   `<UserData>`), with `EventID` as a UInt16 and `TimeCreated SystemTime` as a FILETIME value, as
//!   Windows writes them. Windows itself saves space with templates; readers must not need them,
//!   and the evtx crate renders either form to the same JSON.

use std::path::Path;

const FILE_HEADER_SIZE: usize = 4096;
const CHUNK_SIZE: usize = 65536;
const CHUNK_HEADER_SIZE: usize = 512;

/// One event to write.
#[derive(Debug, Clone)]
pub struct WinEvent {
    pub provider: String,
    pub event_id: u16,
    pub channel: String,
    pub computer: String,
    /// Seconds since the Unix epoch.
    pub time: i64,
    /// 4 is information, 3 warning, 2 error.
    pub level: u8,
    /// `<EventData><Data Name="k">v</Data>...`
    pub event_data: Vec<(String, String)>,
    /// `<UserData><element><k>v</k>...` instead of EventData, when set.
    pub user_data: Option<(String, Vec<(String, String)>)>,
}

impl WinEvent {
    pub fn new(provider: &str, event_id: u16, channel: &str, computer: &str, time: i64) -> Self {
        WinEvent {
            provider: provider.into(),
            event_id,
            channel: channel.into(),
            computer: computer.into(),
            time,
            level: 4,
            event_data: Vec::new(),
            user_data: None,
        }
    }

    pub fn data(mut self, name: &str, value: &str) -> Self {
        self.event_data.push((name.into(), value.into()));
        self
    }
}

/// CRC-32 (IEEE), as the format checksums its header and records.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// 100 ns intervals since 1601-01-01.
fn filetime(unix_seconds: i64) -> u64 {
    ((unix_seconds + 11_644_473_600) * 10_000_000) as u64
}

fn utf16(text: &str) -> Vec<u8> {
    text.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

/// BinXML written at its final place in a chunk: names are referenced by their offset in the
/// chunk, so the writer always knows where it is.
struct BinXml<'c> {
    chunk: &'c mut Vec<u8>,
}

enum Value<'v> {
    Text(&'v str),
    UInt16(u16),
    FileTime(u64),
}

impl BinXml<'_> {
    fn u8(&mut self, v: u8) {
        self.chunk.push(v);
    }
    fn u16(&mut self, v: u16) {
        self.chunk.extend_from_slice(&v.to_le_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.chunk.extend_from_slice(&v.to_le_bytes());
    }
    fn pos(&self) -> usize {
        self.chunk.len()
    }
    fn patch_u32(&mut self, at: usize, v: u32) {
        self.chunk[at..at + 4].copy_from_slice(&v.to_le_bytes());
    }

    /// A name reference whose name follows it inline (offset = where the name starts).
    fn name(&mut self, name: &str) {
        let at = self.pos() as u32 + 4;
        self.u32(at);
        self.u32(0); // next string in the same hash bucket: none
        let hash = name.encode_utf16().fold(0u32, |h, c| {
            h.wrapping_mul(65599).wrapping_add(u32::from(c))
        });
        self.u16(hash as u16);
        self.u16(name.encode_utf16().count() as u16);
        let text = utf16(name);
        self.chunk.extend_from_slice(&text);
        self.u16(0);
    }

    fn value(&mut self, value: &Value<'_>) {
        self.u8(0x05);
        match value {
            Value::Text(text) => {
                self.u8(0x01);
                self.u16(text.encode_utf16().count() as u16);
                let text = utf16(text);
                self.chunk.extend_from_slice(&text);
            }
            Value::UInt16(v) => {
                self.u8(0x06);
                self.u16(*v);
            }
            Value::FileTime(v) => {
                self.u8(0x11);
                self.chunk.extend_from_slice(&v.to_le_bytes());
            }
        }
    }

    /// `<name attrs...>` then `children`, then the end; empty elements are closed at once.
    fn element(
        &mut self,
        name: &str,
        attributes: &[(&str, Value<'_>)],
        children: impl FnOnce(&mut Self) -> bool,
    ) {
        self.u8(if attributes.is_empty() { 0x01 } else { 0x41 });
        let size_at = self.pos();
        self.u32(0);
        self.name(name);
        if !attributes.is_empty() {
            let list_at = self.pos();
            self.u32(0);
            for (i, (attr, value)) in attributes.iter().enumerate() {
                let more = i + 1 < attributes.len();
                self.u8(if more { 0x46 } else { 0x06 });
                self.name(attr);
                self.value(value);
            }
            let list_size = (self.pos() - list_at - 4) as u32;
            self.patch_u32(list_at, list_size);
        }
        let close_at = self.pos();
        self.u8(0x02);
        if children(self) {
            self.u8(0x04);
        } else {
            // Nothing inside: close-empty instead of close-start.
            self.chunk.truncate(close_at);
            self.u8(0x03);
        }
        let size = (self.pos() - size_at - 4) as u32;
        self.patch_u32(size_at, size);
    }

    fn text_element(&mut self, name: &str, value: Value<'_>) {
        self.element(name, &[], |w| {
            w.value(&value);
            true
        });
    }

    fn event(&mut self, event: &WinEvent, record_id: u64) {
        self.u8(0x0f);
        self.u8(1);
        self.u8(1);
        self.u8(0);
        let xmlns = Value::Text("http://schemas.microsoft.com/win/2004/08/events/event");
        self.element("Event", &[("xmlns", xmlns)], |w| {
            w.element("System", &[], |w| {
                w.element(
                    "Provider",
                    &[("Name", Value::Text(&event.provider))],
                    |_| false,
                );
                w.text_element("EventID", Value::UInt16(event.event_id));
                w.text_element("Level", Value::Text(&event.level.to_string()));
                w.element(
                    "TimeCreated",
                    &[("SystemTime", Value::FileTime(filetime(event.time)))],
                    |_| false,
                );
                w.text_element("EventRecordID", Value::Text(&record_id.to_string()));
                w.text_element("Channel", Value::Text(&event.channel));
                w.text_element("Computer", Value::Text(&event.computer));
                true
            });
            match &event.user_data {
                Some((element, fields)) => w.element("UserData", &[], |w| {
                    w.element(element, &[], |w| {
                        for (name, value) in fields {
                            w.text_element(name, Value::Text(value));
                        }
                        !fields.is_empty()
                    });
                    true
                }),
                None => w.element("EventData", &[], |w| {
                    for (name, value) in &event.event_data {
                        w.element("Data", &[("Name", Value::Text(name))], |w| {
                            w.value(&Value::Text(value));
                            true
                        });
                    }
                    !event.event_data.is_empty()
                }),
            }
            true
        });
        self.u8(0x00);
    }
}

/// Writes `events` as an `.evtx` file, as many chunks as they need.
pub fn write_evtx(path: &Path, events: &[WinEvent]) {
    let mut chunks: Vec<Vec<u8>> = Vec::new();
    let mut record_id = 1u64;
    let mut pending = events.iter().peekable();
    while pending.peek().is_some() {
        let mut chunk = vec![0u8; CHUNK_HEADER_SIZE];
        let first_id = record_id;
        let mut last_offset = 0usize;
        while let Some(event) = pending.peek() {
            let start = chunk.len();
            chunk.extend_from_slice(b"\x2a\x2a\x00\x00");
            chunk.extend_from_slice(&0u32.to_le_bytes());
            chunk.extend_from_slice(&record_id.to_le_bytes());
            chunk.extend_from_slice(&filetime(event.time).to_le_bytes());
            BinXml { chunk: &mut chunk }.event(event, record_id);
            let size = (chunk.len() - start + 4) as u32;
            chunk.extend_from_slice(&size.to_le_bytes());
            if chunk.len() > CHUNK_SIZE {
                assert!(start > CHUNK_HEADER_SIZE, "one event must fit a chunk");
                chunk.truncate(start);
                break;
            }
            chunk[start + 4..start + 8].copy_from_slice(&size.to_le_bytes());
            last_offset = start;
            record_id += 1;
            pending.next();
        }
        let free = chunk.len();
        let last_id = record_id - 1;
        chunk[0..8].copy_from_slice(b"ElfChnk\0");
        for (at, v) in [(8, first_id), (16, last_id), (24, first_id), (32, last_id)] {
            chunk[at..at + 8].copy_from_slice(&v.to_le_bytes());
        }
        chunk[40..44].copy_from_slice(&128u32.to_le_bytes());
        chunk[44..48].copy_from_slice(&(last_offset as u32).to_le_bytes());
        chunk[48..52].copy_from_slice(&(free as u32).to_le_bytes());
        let records_crc = crc32(&chunk[CHUNK_HEADER_SIZE..free]);
        chunk[52..56].copy_from_slice(&records_crc.to_le_bytes());
        chunk.resize(CHUNK_SIZE, 0);
        let mut covered = chunk[..120].to_vec();
        covered.extend_from_slice(&chunk[128..CHUNK_HEADER_SIZE]);
        let header_crc = crc32(&covered);
        chunk[124..128].copy_from_slice(&header_crc.to_le_bytes());
        chunks.push(chunk);
    }
    let mut file = vec![0u8; FILE_HEADER_SIZE];
    file[0..8].copy_from_slice(b"ElfFile\0");
    file[8..16].copy_from_slice(&0u64.to_le_bytes());
    let last_chunk = chunks.len().saturating_sub(1) as u64;
    file[16..24].copy_from_slice(&last_chunk.to_le_bytes());
    file[24..32].copy_from_slice(&record_id.to_le_bytes());
    file[32..36].copy_from_slice(&128u32.to_le_bytes());
    file[36..38].copy_from_slice(&1u16.to_le_bytes());
    file[38..40].copy_from_slice(&3u16.to_le_bytes());
    file[40..42].copy_from_slice(&(FILE_HEADER_SIZE as u16).to_le_bytes());
    file[42..44].copy_from_slice(&(chunks.len() as u16).to_le_bytes());
    let crc = crc32(&file[..120]);
    file[124..128].copy_from_slice(&crc.to_le_bytes());
    for chunk in chunks {
        file.extend_from_slice(&chunk);
    }
    std::fs::write(path, file).unwrap();
}

#[test]
fn written_files_are_valid_for_the_evtx_crate_checksums_included() {
    // The standard check value of CRC-32/ISO-HDLC.
    assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.evtx");
    let events: Vec<WinEvent> = (0..300)
        .map(|i| {
            WinEvent::new("P", 4688, "Security", "pc", 1_795_316_700 + i)
                .data("NewProcessName", &format!("C:\\x{i}.exe"))
        })
        .collect();
    write_evtx(&path, &events);
    let settings = evtx::ParserSettings::new().validate_checksums(true);
    let mut parser = evtx::EvtxParser::from_path(&path)
        .unwrap()
        .with_configuration(settings);
    let header = parser.header();
    assert!(header.validate_checksum());
    assert!(header.chunk_count > 1);
    let records: Vec<_> = parser.records_json_value().map(|r| r.unwrap()).collect();
    assert_eq!(records.len(), 300);
    let last = &records[299];
    assert_eq!(last.event_record_id, 300);
    assert_eq!(last.data["Event"]["System"]["EventID"], 4688);
    assert_eq!(
        last.data["Event"]["EventData"]["NewProcessName"],
        "C:\\x299.exe"
    );
    assert_eq!(
        last.data["Event"]["System"]["TimeCreated"]["#attributes"]["SystemTime"],
        "2026-11-22T03:09:59.0000000Z"
    );
}
