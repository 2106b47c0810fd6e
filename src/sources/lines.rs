//! Reading lines from a byte stream without trusting their length: a line longer than the cap is
//! cut in memory while its full length is still counted, so a 10 GB line costs no more than 64 KiB.

use std::io::{self, BufRead};

/// One step of reading a capped line from a buffered `chunk`: appends what the cap leaves room for
/// (one byte past it is kept so the caller sees the line was longer), adds the piece's length to
/// `total`, and returns how many bytes of `chunk` to consume and whether the line ended. Shared by
/// the blocking reader here and the async one of the journal source.
pub fn take_line_piece(
    chunk: &[u8],
    buf: &mut Vec<u8>,
    total: &mut usize,
    max_bytes: usize,
) -> (usize, bool) {
    let (part, used, done) = match memchr::memchr(b'\n', chunk) {
        Some(end) => (&chunk[..end], end + 1, true),
        None => (chunk, chunk.len(), false),
    };
    let room = (max_bytes + 1).saturating_sub(buf.len());
    buf.extend_from_slice(&part[..part.len().min(room)]);
    *total += part.len();
    (used, done)
}

/// Reads the next line (without `\n`) into `buf`, keeping at most `max_bytes` bytes of it.
/// Returns the line's full length, or `None` at the end of the stream. A last line without `\n` counts.
pub fn read_capped_line<R: BufRead + ?Sized>(
    reader: &mut R,
    buf: &mut Vec<u8>,
    max_bytes: usize,
) -> io::Result<Option<usize>> {
    buf.clear();
    let mut total = 0usize;
    let mut any = false;
    loop {
        let chunk = match reader.fill_buf() {
            Ok(chunk) => chunk,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => {
                // Hand back what was read of this line before the error; the caller reports the error next time.
                if any {
                    return Ok(Some(total));
                }
                return Err(err);
            }
        };
        if chunk.is_empty() {
            return Ok(any.then_some(total));
        }
        any = true;
        let (used, done) = take_line_piece(chunk, buf, &mut total, max_bytes);
        reader.consume(used);
        if done {
            return Ok(Some(total));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_lines_and_caps_long_ones() {
        let mut data = b"one\n".to_vec();
        data.extend(std::iter::repeat_n(b'x', 100_000));
        data.extend(b"\nlast-without-newline");
        let mut reader = io::BufReader::with_capacity(1024, &data[..]);
        let mut buf = Vec::new();
        assert_eq!(
            read_capped_line(&mut reader, &mut buf, 10).unwrap(),
            Some(3)
        );
        assert_eq!(buf, b"one");
        assert_eq!(
            read_capped_line(&mut reader, &mut buf, 10).unwrap(),
            Some(100_000)
        );
        assert_eq!(buf.len(), 11, "cap plus one byte");
        assert_eq!(
            read_capped_line(&mut reader, &mut buf, 10).unwrap(),
            Some(20)
        );
        assert_eq!(
            buf,
            b"last-witho"
                .iter()
                .chain(b"u")
                .copied()
                .collect::<Vec<u8>>()
        );
        assert_eq!(read_capped_line(&mut reader, &mut buf, 10).unwrap(), None);
    }
}
