//! A bounded on-disk spool: append-only segment files of newline-delimited records plus a cursor
//! file, so records that a sink could not take are kept across restarts and replayed in order.
//!
//! - `append` writes records to the newest segment (a new segment starts past `segment_bytes`).
//! - `read_batch` reads from the cursor without consuming; `commit` advances the cursor once the
//!   sink took the batch (at-least-once: a crash between delivery and commit replays the batch).
//! - Fully consumed segments are deleted. When the spool exceeds `max_bytes`, the oldest
//!   segments are deleted and their unsent records counted in `dropped` — the only way a record
//!   is lost, and it is reported.
//! - A record is written whole or not at all: when a write fails (a full disk), the segment is
//!   cut back to its size before the write. A segment that still ends in a partial line (the
//!   process died mid-write) is repaired on `open`: the torn tail is cut off and handed to the
//!   owner in [`Spool::torn`] (the webhook sink quarantines it), so later appends never join it.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Where the next unread record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    /// Segment number.
    pub segment: u64,
    /// Byte offset in it.
    pub offset: u64,
}

/// See the module docs.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    segment_bytes: u64,
    segments: Vec<u64>,
    cursor: Cursor,
    writer: Option<(u64, File, u64)>,
    /// Records deleted unsent because the spool was full.
    pub dropped: u64,
    /// Torn last lines cut off segments by [`Spool::open`] (for the owner to report/keep).
    pub torn: Vec<Vec<u8>>,
    sync: bool,
}

/// Most bytes of a torn tail kept in [`Spool::torn`] (the rest is cut and counted in the log).
const MAX_TORN_KEPT: usize = 1 << 20;

/// Cuts a segment that does not end in a newline back to its last complete line; returns the
/// cut tail (at most [`MAX_TORN_KEPT`] bytes of it).
fn repair_segment(path: &Path) -> io::Result<Option<Vec<u8>>> {
    let mut f = OpenOptions::new().read(true).write(true).open(path)?;
    let len = f.metadata()?.len();
    if len == 0 {
        return Ok(None);
    }
    let mut last = [0u8; 1];
    f.seek(SeekFrom::Start(len - 1))?;
    f.read_exact(&mut last)?;
    if last[0] == b'\n' {
        return Ok(None);
    }
    // find the last newline, reading backwards in blocks
    let mut end = len;
    let mut cut = 0u64;
    let mut block = vec![0u8; 64 * 1024];
    while end > 0 {
        let start = end.saturating_sub(block.len() as u64);
        let n = (end - start) as usize;
        f.seek(SeekFrom::Start(start))?;
        f.read_exact(&mut block[..n])?;
        if let Some(i) = memchr::memrchr(b'\n', &block[..n]) {
            cut = start + i as u64 + 1;
            break;
        }
        end = start;
    }
    f.seek(SeekFrom::Start(cut))?;
    let mut tail = Vec::new();
    (&mut f).take(MAX_TORN_KEPT as u64).read_to_end(&mut tail)?;
    f.set_len(cut)?;
    f.sync_all()?;
    tracing::warn!(segment = %path.display(), bytes = len - cut, "spool: cut off a torn last line");
    Ok(Some(tail))
}

fn seg_name(n: u64) -> String {
    format!("spool-{n:010}.ndjson")
}

impl Spool {
    /// Opens (or creates) a spool in `dir` holding at most about `max_bytes`.
    pub fn open(dir: &Path, max_bytes: u64) -> io::Result<Spool> {
        fs::create_dir_all(dir)?;
        let mut segments = Vec::new();
        for e in fs::read_dir(dir)? {
            let name = e?.file_name();
            let name = name.to_string_lossy();
            if let Some(n) = name.strip_prefix("spool-").and_then(|r| r.strip_suffix(".ndjson")) {
                if let Ok(n) = n.parse::<u64>() {
                    segments.push(n);
                }
            }
        }
        segments.sort_unstable();
        let mut cursor = Cursor { segment: segments.first().copied().unwrap_or(1), offset: 0 };
        if let Ok(text) = fs::read_to_string(dir.join("cursor")) {
            let mut it = text.split_whitespace().map(|v| v.parse::<u64>());
            if let (Some(Ok(s)), Some(Ok(o))) = (it.next(), it.next()) {
                cursor = Cursor { segment: s, offset: o };
            }
        }
        // segments before the cursor were consumed
        for n in segments.iter().filter(|n| **n < cursor.segment) {
            let _ = fs::remove_file(dir.join(seg_name(*n)));
        }
        segments.retain(|n| *n >= cursor.segment);
        if segments.first().is_some_and(|f| *f > cursor.segment) {
            cursor = Cursor { segment: segments[0], offset: 0 };
        }
        let mut torn = Vec::new();
        for n in &segments {
            if let Some(t) = repair_segment(&dir.join(seg_name(*n)))? {
                torn.push(t);
            }
        }
        let segment_bytes = (max_bytes / 8).clamp(64 * 1024, 64 << 20);
        Ok(Spool {
            dir: dir.to_path_buf(),
            max_bytes,
            segment_bytes,
            segments,
            cursor,
            writer: None,
            dropped: 0,
            torn,
            sync: false,
        })
    }

    /// fsync after each append and commit (slower, survives power loss).
    pub fn set_sync(&mut self, sync: bool) {
        self.sync = sync;
    }

    fn size_of(&self, n: u64) -> u64 {
        fs::metadata(self.dir.join(seg_name(n))).map(|m| m.len()).unwrap_or(0)
    }

    /// `fsync`s the segment being written.
    pub fn sync(&mut self) -> io::Result<()> {
        match &self.writer {
            Some((_, f, _)) => f.sync_data(),
            None => Ok(()),
        }
    }

    /// Bytes on disk not yet delivered (approximately: whole segments from the cursor's).
    pub fn pending_bytes(&self) -> u64 {
        let total: u64 = self.segments.iter().map(|n| self.size_of(*n)).sum();
        total.saturating_sub(self.cursor.offset)
    }

    /// Whether there is nothing to replay.
    pub fn is_empty(&self) -> bool {
        match self.segments.as_slice() {
            [] => true,
            [only] => *only == self.cursor.segment && self.size_of(*only) <= self.cursor.offset,
            _ => false,
        }
    }

    /// Appends records (each one line; newlines inside are replaced by spaces).
    pub fn append<R: AsRef<[u8]>>(&mut self, records: &[R]) -> io::Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let need_new = match &self.writer {
            Some((_, _, size)) => *size >= self.segment_bytes,
            None => true,
        };
        if need_new {
            let reuse = match (&self.writer, self.segments.last()) {
                (None, Some(last)) if self.size_of(*last) < self.segment_bytes => Some(*last),
                _ => None,
            };
            let n = match reuse {
                Some(n) => n,
                None => {
                    let after =
                        self.writer.as_ref().map(|(n, _, _)| *n).into_iter().chain(self.segments.last().copied());
                    after.chain(std::iter::once(self.cursor.segment)).max().unwrap_or(0) + 1
                }
            };
            let f = OpenOptions::new().create(true).append(true).open(self.dir.join(seg_name(n)))?;
            let size = f.metadata()?.len();
            if !self.segments.contains(&n) {
                self.segments.push(n);
            }
            if self.segments.len() == 1 && self.cursor.segment != n {
                // everything before was consumed: read from the start of this one
                self.cursor = Cursor { segment: n, offset: 0 };
                self.save_cursor()?;
            }
            self.writer = Some((n, f, size));
        }
        let mut buf = Vec::new();
        for r in records {
            let r = r.as_ref();
            buf.extend(r.iter().map(|&b| if b == b'\n' || b == b'\r' { b' ' } else { b }));
            buf.push(b'\n');
        }
        if let Some((_, f, size)) = self.writer.as_mut() {
            if let Err(e) = f.write_all(&buf) {
                // never leave a partial record behind (a full disk): cut back to the last whole one
                let _ = f.set_len(*size);
                return Err(e);
            }
            if self.sync {
                f.sync_data()?;
            }
            *size += buf.len() as u64;
        }
        self.enforce_cap()
    }

    fn enforce_cap(&mut self) -> io::Result<()> {
        loop {
            let total: u64 = self.segments.iter().map(|n| self.size_of(*n)).sum();
            if total <= self.max_bytes || self.segments.len() <= 1 {
                return Ok(());
            }
            let oldest = self.segments.remove(0);
            let path = self.dir.join(seg_name(oldest));
            // count the unsent records lost
            if let Ok(f) = File::open(&path) {
                let mut r = BufReader::new(f);
                if oldest == self.cursor.segment {
                    r.seek(SeekFrom::Start(self.cursor.offset))?;
                }
                self.dropped += r.split(b'\n').count() as u64;
            }
            fs::remove_file(&path)?;
            if self.writer.as_ref().is_some_and(|(n, _, _)| *n == oldest) {
                self.writer = None;
            }
            self.cursor = Cursor { segment: self.segments.first().copied().unwrap_or(oldest + 1), offset: 0 };
            self.save_cursor()?;
            tracing::warn!(
                segment = oldest,
                dropped = self.dropped,
                "spool full: dropped the oldest undelivered records"
            );
        }
    }

    /// Reads up to `max` records from the cursor; returns them and the cursor after them.
    pub fn read_batch(&mut self, max: usize) -> io::Result<(Vec<Vec<u8>>, Cursor)> {
        let mut out = Vec::new();
        let mut cur = self.cursor;
        for &n in self.segments.iter().filter(|n| **n >= self.cursor.segment) {
            if out.len() >= max {
                break;
            }
            let path = self.dir.join(seg_name(n));
            let mut f = match File::open(&path) {
                Ok(f) => f,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            let start = if n == cur.segment { cur.offset } else { 0 };
            f.seek(SeekFrom::Start(start))?;
            let mut r = BufReader::new(f.take(u64::MAX));
            let mut offset = start;
            cur = Cursor { segment: n, offset };
            loop {
                if out.len() >= max {
                    break;
                }
                let mut line = Vec::new();
                let k = r.read_until(b'\n', &mut line)?;
                if k == 0 || line.last() != Some(&b'\n') {
                    break; // end, or a partial line still being written
                }
                offset += k as u64;
                line.pop();
                cur = Cursor { segment: n, offset };
                if !line.is_empty() {
                    out.push(line);
                }
            }
        }
        Ok((out, cur))
    }

    /// Marks everything before `c` delivered and deletes consumed segments.
    pub fn commit(&mut self, c: Cursor) -> io::Result<()> {
        self.cursor = c;
        let writing = self.writer.as_ref().map(|(n, _, _)| *n);
        let mut keep = Vec::new();
        for &n in &self.segments {
            let consumed = n < c.segment || (n == c.segment && Some(n) != writing && self.size_of(n) <= c.offset);
            if consumed {
                let _ = fs::remove_file(self.dir.join(seg_name(n)));
            } else {
                keep.push(n);
            }
        }
        self.segments = keep;
        if let Some(&first) = self.segments.first() {
            if first > self.cursor.segment {
                self.cursor = Cursor { segment: first, offset: 0 };
            }
        }
        self.save_cursor()
    }

    fn save_cursor(&self) -> io::Result<()> {
        let tmp = self.dir.join("cursor.tmp");
        {
            let mut f = File::create(&tmp)?;
            write!(f, "{} {}", self.cursor.segment, self.cursor.offset)?;
            if self.sync {
                f.sync_all()?;
            }
        }
        fs::rename(tmp, self.dir.join("cursor"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn append_read_commit_reopen() {
        let d = tempfile::tempdir().unwrap();
        let mut s = Spool::open(d.path(), 1 << 20).unwrap();
        assert!(s.is_empty());
        s.append(&["a", "b\nc", "d"]).unwrap();
        let (b, c) = s.read_batch(2).unwrap();
        assert_eq!(b, vec![b"a".to_vec(), b"b c".to_vec()]);
        s.commit(c).unwrap();
        drop(s);
        let mut s = Spool::open(d.path(), 1 << 20).unwrap();
        let (b, c) = s.read_batch(10).unwrap();
        assert_eq!(b, vec![b"d".to_vec()]);
        s.commit(c).unwrap();
        assert!(s.is_empty());
        s.append(&["e"]).unwrap();
        assert!(!s.is_empty());
    }

    #[test]
    fn cap_drops_oldest_and_counts() {
        let d = tempfile::tempdir().unwrap();
        let mut s = Spool::open(d.path(), 256 * 1024).unwrap();
        let rec = "x".repeat(1000);
        for _ in 0..1000 {
            s.append(&[rec.as_str()]).unwrap();
        }
        assert!(s.dropped > 0);
        let mut total = 0;
        loop {
            let (b, c) = s.read_batch(100).unwrap();
            if b.is_empty() {
                break;
            }
            total += b.len();
            s.commit(c).unwrap();
        }
        assert_eq!(total as u64 + s.dropped, 1000);
    }
}
