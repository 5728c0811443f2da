//! Following a log file across rotation, and resuming after a restart.
//!
//! [`Follower`] polls a path with plain `std::fs` calls (no inotify):
//! - it reads complete lines (a partial last line waits for its newline);
//! - **rotation by rename** (kube-apiserver's `--audit-log-maxsize`/`maxbackup`, logrotate
//!   `create`): when the path names a new inode, the old file is read to its end first, then the
//!   new file from its start;
//! - **truncation** (logrotate `copytruncate`): when the file shrinks below the read offset,
//!   reading restarts at 0;
//! - **resume**: [`Position`] (inode, device, offset of the next unread byte, and a hash of the
//!   last line read) is what to save; on restart the follower checks the hash of the line ending
//!   at the saved offset. If the file was rotated while the process was down, it looks for the
//!   rotated file (same inode) in the same directory and reads its remainder before the new file,
//!   so nothing is lost or repeated. If the old file is gone, it starts the current file from 0
//!   and says so in [`Resume`].
//!
//! - **truncated and refilled** before the next poll (copytruncate, then the writer appended
//!   past the old offset): the hash of the file's first bytes (up to 4 KiB) is checked on every
//!   poll, so a refilled file is noticed although it did not shrink; the copy (`audit.log.1`,
//!   found by the same head hash) is read from the old offset first, so the lines written
//!   between the last poll and the copy are not lost.
//! - **several rotations while stopped**: after the rotated file holding the saved inode, the
//!   rotated siblings written after it (`NAME.1`, `NAME.2`, kube-apiserver's
//!   `STEM-TIMESTAMP.EXT`; oldest first by mtime) are read whole before the current file.
//!   Compressed siblings (`.gz`) are not read: each one is reported as a possible gap, as is a
//!   rotated file that is gone.
//!
//! Lines longer than the cap are skipped (counted), like [`crate::audit::LineReader`]. The
//! position never points into a skipped line (it stays at its start until its newline arrives),
//! and a position right after one is recognised on restart by the hash of the line's last
//! [`LONG_TAIL`] bytes, so a stop after an over-long line neither re-reads nor repeats anything.

use crate::alert::fnv64;
use std::collections::VecDeque;
use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// A saved read position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Position {
    /// Inode of the file.
    pub inode: u64,
    /// Device of the file.
    pub dev: u64,
    /// Offset of the next unread byte (always at a line start).
    pub offset: u64,
    /// FNV-1a hash of the last line read (without its newline); 0 at offset 0.
    pub last_line_hash: u64,
}

impl Position {
    /// `v1 INODE DEV OFFSET HASH`.
    pub fn encode(&self) -> String {
        format!("v1 {} {} {} {:016x}\n", self.inode, self.dev, self.offset, self.last_line_hash)
    }
    /// Parses [`Position::encode`]'s output.
    pub fn decode(s: &str) -> Option<Position> {
        let mut it = s.split_whitespace();
        if it.next()? != "v1" {
            return None;
        }
        Some(Position {
            inode: it.next()?.parse().ok()?,
            dev: it.next()?.parse().ok()?,
            offset: it.next()?.parse().ok()?,
            last_line_hash: u64::from_str_radix(it.next()?, 16).ok()?,
        })
    }
    /// Saves atomically and durably (write a temporary file, `fsync` it, rename).
    pub fn save(&self, path: &Path) -> io::Result<()> {
        use std::io::Write as _;
        let tmp = path.with_extension("tmp");
        {
            let mut f = File::create(&tmp)?;
            f.write_all(self.encode().as_bytes())?;
            f.sync_all()?;
        }
        fs::rename(tmp, path)
    }
    /// Loads; `Ok(None)` when the file does not exist or does not parse.
    pub fn load(path: &Path) -> io::Result<Option<Position>> {
        match fs::read_to_string(path) {
            Ok(s) => Ok(Position::decode(&s)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// How a follower started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resume {
    /// No saved position: from the start (or the end, if asked).
    Fresh,
    /// Continued in the same file at the saved offset.
    Continued,
    /// The file had been rotated: the rest of the rotated file (named here) is read first.
    FromRotated(PathBuf),
    /// The saved position no longer matches (file replaced or truncated, or the rotated file is
    /// gone): started the current file from 0.
    Restarted(String),
}

/// Bytes at the end of an over-long line that stand for it in [`Position::last_line_hash`].
pub const LONG_TAIL: usize = 256;

/// Bytes at the start of a file whose hash tells a refilled file from the one being read.
const HEAD: u64 = 4096;

fn long_line_hash(tail: &[u8]) -> u64 {
    fnv64(tail) ^ 0x4c4f_4e47_4c49_4e45
}

/// Hash of the first `len` bytes of `file` (`None` if it has fewer).
fn head_hash(file: &File, len: u64) -> io::Result<Option<u64>> {
    let mut buf = vec![0u8; len as usize];
    let mut done = 0usize;
    while done < buf.len() {
        match read_at(file, &mut buf[done..], done as u64) {
            Ok(0) => return Ok(None),
            Ok(k) => done += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(Some(fnv64(&buf)))
}

#[cfg(unix)]
fn read_at(file: &File, buf: &mut [u8], off: u64) -> io::Result<usize> {
    use std::os::unix::fs::FileExt;
    file.read_at(buf, off)
}

#[cfg(not(unix))]
fn read_at(_file: &File, _buf: &mut [u8], _off: u64) -> io::Result<usize> {
    Ok(0)
}

#[cfg(unix)]
fn ids(m: &fs::Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (m.ino(), m.dev())
}

#[cfg(not(unix))]
fn ids(_m: &fs::Metadata) -> (u64, u64) {
    (0, 0)
}

struct Open {
    file: File,
    inode: u64,
    dev: u64,
    offset: u64,
    /// Length and hash of the file's head as last seen (`len` ≤ [`HEAD`]).
    head: (u64, u64),
}

/// Follows one path; see the module docs.
pub struct Follower {
    path: PathBuf,
    cur: Option<Open>,
    /// Rotated files still being drained before `cur`, oldest first.
    old: VecDeque<Open>,
    pending: Vec<u8>,
    skipping: bool,
    /// Bytes of the over-long line being skipped so far, and its last [`LONG_TAIL`] bytes.
    skip_len: u64,
    skip_tail: Vec<u8>,
    last_hash: u64,
    max_line: usize,
    /// Lines skipped for exceeding the cap.
    pub too_long: u64,
    /// Rotations and truncations seen.
    pub rotations: u64,
}

impl std::fmt::Debug for Follower {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Follower").field("path", &self.path).field("position", &self.position()).finish()
    }
}

fn open_at(path: &Path, offset: u64) -> io::Result<Open> {
    let mut file = File::open(path)?;
    let (inode, dev) = ids(&file.metadata()?);
    file.seek(SeekFrom::Start(offset))?;
    Ok(Open { file, inode, dev, offset, head: (0, 0) })
}

/// Hash of the line that ends just before `offset` (the byte at `offset - 1` must be `\n`).
fn line_hash_before(file: &mut File, offset: u64, max_line: usize) -> io::Result<Option<u64>> {
    if offset == 0 {
        return Ok(Some(0));
    }
    let window = offset.min(max_line as u64 + 1);
    file.seek(SeekFrom::Start(offset - window))?;
    let mut buf = vec![0u8; window as usize];
    file.read_exact(&mut buf)?;
    if buf.last() != Some(&b'\n') {
        return Ok(None);
    }
    buf.pop();
    let start = match memchr::memrchr(b'\n', &buf) {
        Some(i) => i + 1,
        None if window == offset => 0,
        // an over-long (skipped) line ends here
        None => return Ok(Some(long_line_hash(&buf[buf.len().saturating_sub(LONG_TAIL)..]))),
    };
    Ok(Some(fnv64(&buf[start..])))
}

impl Follower {
    /// Starts following `path`. With a saved `resume` position, continues from it (see the
    /// module docs); without one, starts at the beginning, or at the end when `from_end`.
    pub fn open(
        path: &Path,
        resume: Option<Position>,
        from_end: bool,
        max_line: usize,
    ) -> io::Result<(Follower, Resume)> {
        let mut f = Follower {
            path: path.to_path_buf(),
            cur: None,
            old: VecDeque::new(),
            pending: Vec::new(),
            skipping: false,
            skip_len: 0,
            skip_tail: Vec::new(),
            last_hash: 0,
            max_line,
            too_long: 0,
            rotations: 0,
        };
        let meta = match fs::metadata(path) {
            Ok(m) => Some(m),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        let Some(pos) = resume else {
            if meta.is_some() {
                let mut o = open_at(path, 0)?;
                if from_end {
                    let end = o.file.seek(SeekFrom::End(0))?;
                    // back to the start of the last complete line boundary
                    o.offset = end;
                    f.last_hash = line_hash_before(&mut o.file, end, max_line)?.unwrap_or(0);
                    o.file.seek(SeekFrom::Start(end))?;
                }
                f.cur = Some(o);
            }
            return Ok((f, Resume::Fresh));
        };
        let (inode, dev) = meta.as_ref().map(ids).unwrap_or((0, 0));
        if meta.is_some() && inode == pos.inode && dev == pos.dev {
            let mut o = open_at(path, 0)?;
            let size = o.file.metadata()?.len();
            if size >= pos.offset && line_hash_before(&mut o.file, pos.offset, max_line)? == Some(pos.last_line_hash) {
                o.file.seek(SeekFrom::Start(pos.offset))?;
                o.offset = pos.offset;
                f.last_hash = pos.last_line_hash;
                f.cur = Some(o);
                return Ok((f, Resume::Continued));
            }
            o.file.seek(SeekFrom::Start(0))?;
            f.cur = Some(o);
            return Ok((f, Resume::Restarted("the file was truncated or rewritten".into())));
        }
        // rotated while we were away: find the old inode next to it
        let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let mut found = None;
        if let Ok(rd) = fs::read_dir(dir) {
            for e in rd.flatten() {
                let p = e.path();
                if p == path {
                    continue;
                }
                if let Ok(m) = fs::metadata(&p) {
                    if m.is_file() && ids(&m) == (pos.inode, pos.dev) {
                        found = Some(p);
                        break;
                    }
                }
            }
        }
        if meta.is_some() {
            f.cur = Some(open_at(path, 0)?);
        }
        match found {
            Some(old_path) => {
                let mut o = open_at(&old_path, 0)?;
                if line_hash_before(&mut o.file, pos.offset, max_line)? == Some(pos.last_line_hash) {
                    o.file.seek(SeekFrom::Start(pos.offset))?;
                    o.offset = pos.offset;
                    f.last_hash = pos.last_line_hash;
                    let since = fs::metadata(&old_path).and_then(|m| m.modified()).ok();
                    f.old.push_back(o);
                    // rotated again (and again) while we were away: the newer siblings follow
                    for p in newer_siblings(path, &old_path, since) {
                        match open_at(&p, 0) {
                            Ok(o) => f.old.push_back(o),
                            Err(e) => {
                                tracing::warn!(file = %p.display(), error = %e, "rotated file unreadable: its events are a gap")
                            }
                        }
                    }
                    Ok((f, Resume::FromRotated(old_path)))
                } else {
                    Ok((f, Resume::Restarted(format!("{} no longer matches the saved position", old_path.display()))))
                }
            }
            None => Ok((f, Resume::Restarted("the file was rotated and the rotated file is gone".into()))),
        }
    }

    /// The position after the last line delivered.
    pub fn position(&self) -> Position {
        let o = self.old.front().or(self.cur.as_ref());
        match o {
            Some(o) => Position { inode: o.inode, dev: o.dev, offset: o.offset, last_line_hash: self.last_hash },
            None => Position::default(),
        }
    }

    /// Reads what is available and hands each complete line (without its newline) to `f`.
    /// Returns the number of lines delivered.
    pub fn poll(&mut self, f: &mut dyn FnMut(&[u8])) -> io::Result<usize> {
        let mut n = 0;
        // drain rotated files first
        while let Some(mut o) = self.old.pop_front() {
            match self.read_available(&mut o, f) {
                Ok(k) => n += k,
                Err(e) => {
                    self.old.push_front(o);
                    return Err(e);
                }
            }
            self.finish_file(f, &mut n);
        }
        if self.cur.is_none() {
            match open_at(&self.path, 0) {
                Ok(o) => self.cur = Some(o),
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(n),
                Err(e) => return Err(e),
            }
        }
        loop {
            let Some(mut o) = self.cur.take() else { break };
            // truncated and refilled since the last poll: do not read the new content at the
            // old offset
            if self.head_changed(&mut o)? {
                self.truncated(&mut o, f, &mut n)?;
            }
            n += self.read_available(&mut o, f)?;
            // rotated or truncated?
            match fs::metadata(&self.path) {
                Ok(m) => {
                    let (inode, dev) = ids(&m);
                    if (inode, dev) != (o.inode, o.dev) {
                        // renamed away: the old handle is at its end now (read once more in case
                        // the writer appended between our read and the rename)
                        n += self.read_available(&mut o, f)?;
                        self.finish_file(f, &mut n);
                        self.rotations += 1;
                        self.cur = Some(open_at(&self.path, 0)?);
                        continue;
                    }
                    let refilled = self.head_changed(&mut o)?;
                    if m.len() < o.offset + self.pending.len() as u64 || refilled {
                        self.truncated(&mut o, f, &mut n)?;
                        self.cur = Some(o);
                        continue;
                    }
                    self.cur = Some(o);
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    // between rename and create: keep the old handle, look again next poll
                    self.cur = Some(o);
                }
                Err(e) => {
                    self.cur = Some(o);
                    return Err(e);
                }
            }
            break;
        }
        Ok(n)
    }

    /// `o`'s file was truncated (copytruncate): the rest of its copy first, then from 0.
    fn truncated(&mut self, o: &mut Open, f: &mut dyn FnMut(&[u8]), n: &mut usize) -> io::Result<()> {
        // the copy holds what was written between our last read and the truncation
        if let Some(mut copy) = self.find_copy(o) {
            tracing::info!(copy = %copy.0.display(), "truncated: reading the rest of its copy first");
            self.pending.clear();
            self.skipping = false;
            *n += self.read_available(&mut copy.1, f)?;
            self.finish_file(f, n);
        } else if o.offset > 0 {
            tracing::warn!(
                path = %self.path.display(),
                "file truncated and no copy found: lines written just before the truncation may be a gap"
            );
        }
        self.rotations += 1;
        self.pending.clear();
        self.skipping = false;
        self.skip_len = 0;
        o.file.seek(SeekFrom::Start(0))?;
        o.offset = 0;
        o.head = (0, 0);
        self.last_hash = 0;
        Ok(())
    }

    /// Whether the head of `o`'s file no longer matches what was read (truncated and refilled);
    /// otherwise records the head as far as it was read.
    fn head_changed(&self, o: &mut Open) -> io::Result<bool> {
        let (len, hash) = o.head;
        if len > 0 && head_hash(&o.file, len)? != Some(hash) {
            return Ok(true);
        }
        let want = o.offset.min(HEAD);
        if want > len {
            if let Some(h) = head_hash(&o.file, want)? {
                o.head = (want, h);
            }
        }
        Ok(false)
    }

    /// The copy of a truncated file: a rotated sibling whose head matches and that is at least
    /// as long as what was read, opened at the read offset.
    fn find_copy(&self, o: &Open) -> Option<(PathBuf, Open)> {
        let (len, hash) = o.head;
        if len == 0 {
            return None;
        }
        for p in rotated_siblings(&self.path) {
            let Ok(mut c) = open_at(&p, 0) else { continue };
            let big_enough = c.file.metadata().map(|m| m.len() >= o.offset).unwrap_or(false);
            if big_enough && (c.inode, c.dev) != (o.inode, o.dev) && head_hash(&c.file, len).ok()? == Some(hash) {
                c.file.seek(SeekFrom::Start(o.offset)).ok()?;
                c.offset = o.offset;
                return Some((p, c));
            }
        }
        None
    }

    /// A file ended for good: a final line without newline is delivered as a line.
    fn finish_file(&mut self, f: &mut dyn FnMut(&[u8]), n: &mut usize) {
        if !self.pending.is_empty() && !self.skipping {
            f(&self.pending);
            *n += 1;
        }
        self.pending.clear();
        self.skipping = false;
        self.skip_len = 0;
        self.skip_tail.clear();
        self.last_hash = 0;
    }

    fn read_available(&mut self, o: &mut Open, f: &mut dyn FnMut(&[u8])) -> io::Result<usize> {
        let mut n = 0;
        let mut chunk = vec![0u8; 256 * 1024];
        loop {
            let k = match o.file.read(&mut chunk) {
                Ok(0) => return Ok(n),
                Ok(k) => k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            let mut data = &chunk[..k];
            while !data.is_empty() {
                match memchr::memchr(b'\n', data) {
                    Some(i) => {
                        if self.skipping {
                            push_tail(&mut self.skip_tail, &data[..i]);
                            o.offset += self.skip_len + i as u64 + 1;
                            self.skip_len = 0;
                            self.skipping = false;
                            self.last_hash = long_line_hash(&self.skip_tail);
                            self.skip_tail.clear();
                        } else {
                            let mut buf = std::mem::take(&mut self.pending);
                            let line: &[u8] = if buf.is_empty() {
                                &data[..i]
                            } else {
                                buf.extend_from_slice(&data[..i]);
                                &buf
                            };
                            let line_len = line.len();
                            if line_len > self.max_line {
                                self.too_long += 1;
                                self.last_hash = long_line_hash(&line[line_len.saturating_sub(LONG_TAIL)..]);
                            } else {
                                let trimmed = if line.last() == Some(&b'\r') { &line[..line_len - 1] } else { line };
                                f(trimmed);
                                n += 1;
                                self.last_hash = fnv64(line);
                            }
                            o.offset += line_len as u64 + 1;
                            buf.clear();
                            self.pending = buf;
                        }
                        data = &data[i + 1..];
                    }
                    None => {
                        if self.skipping {
                            // count skipped bytes without keeping them; the offset stays at the
                            // line's start until its newline arrives
                            self.skip_len += data.len() as u64;
                            push_tail(&mut self.skip_tail, data);
                        } else {
                            self.pending.extend_from_slice(data);
                            if self.pending.len() > self.max_line {
                                self.too_long += 1;
                                self.skipping = true;
                                self.skip_len = self.pending.len() as u64;
                                self.skip_tail.clear();
                                push_tail(&mut self.skip_tail, &self.pending);
                                self.pending.clear();
                            }
                        }
                        data = &[];
                    }
                }
            }
        }
    }
}

/// Keeps the last [`LONG_TAIL`] bytes of a skipped line.
fn push_tail(tail: &mut Vec<u8>, data: &[u8]) {
    tail.extend_from_slice(&data[data.len().saturating_sub(LONG_TAIL)..]);
    if tail.len() > LONG_TAIL {
        tail.drain(..tail.len() - LONG_TAIL);
    }
}

/// Rotated siblings of `path` in its directory: `NAME.N` / `NAME.N.gz` (logrotate) and
/// `STEM-*.EXT` / `STEM-*.EXT.gz` (kube-apiserver's `--audit-log-maxbackup` names).
fn rotated_siblings(path: &Path) -> Vec<PathBuf> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let Some(name) = path.file_name().map(|n| n.to_string_lossy().into_owned()) else { return Vec::new() };
    let (stem, ext) = match name.rsplit_once('.') {
        Some((s, e)) => (s.to_string(), format!(".{e}")),
        None => (name.clone(), String::new()),
    };
    let mut out = Vec::new();
    let Ok(rd) = fs::read_dir(dir) else { return out };
    for e in rd.flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        let plain = n.strip_suffix(".gz").unwrap_or(&n);
        let logrotate = plain
            .strip_prefix(&format!("{name}."))
            .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()));
        let kube = plain.strip_prefix(&format!("{stem}-")).is_some_and(|r| r.ends_with(&ext) && r.len() > ext.len());
        if (logrotate || kube) && e.file_type().is_ok_and(|t| t.is_file()) {
            out.push(e.path());
        }
    }
    out
}

/// Rotated siblings modified at or after `since` other than `old`, oldest first. Compressed
/// ones are reported as gaps (they are not read).
fn newer_siblings(path: &Path, old: &Path, since: Option<std::time::SystemTime>) -> Vec<PathBuf> {
    let mut v: Vec<(std::time::SystemTime, u64, PathBuf)> = Vec::new();
    for p in rotated_siblings(path) {
        if p == old {
            continue;
        }
        let Ok(m) = fs::metadata(&p) else { continue };
        let Ok(t) = m.modified() else { continue };
        if since.is_some_and(|s| t < s) {
            continue;
        }
        if p.extension().is_some_and(|e| e == "gz") {
            tracing::warn!(file = %p.display(), "compressed rotated file not read: its events are a gap");
            continue;
        }
        // NAME.2 is older than NAME.1: a higher number first on equal mtimes
        let num = p.extension().and_then(|e| e.to_str()).and_then(|e| e.parse::<u64>().ok()).unwrap_or(0);
        v.push((t, u64::MAX - num, p));
    }
    v.sort();
    v.into_iter().map(|(_, _, p)| p).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn append(p: &Path, lines: &[String]) {
        let mut f = fs::OpenOptions::new().create(true).append(true).open(p).unwrap();
        for l in lines {
            writeln!(f, "{l}").unwrap();
        }
    }

    fn collect(f: &mut Follower) -> Vec<String> {
        let mut v = Vec::new();
        f.poll(&mut |l| v.push(String::from_utf8_lossy(l).to_string())).unwrap();
        v
    }

    fn lines(a: usize, b: usize) -> Vec<String> {
        (a..b).map(|i| format!("{{\"n\":{i}}}")).collect()
    }

    #[test]
    fn follows_appends_partial_lines_rotation_and_truncation() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("audit.log");
        append(&p, &lines(0, 3));
        let (mut f, r) = Follower::open(&p, None, false, 1 << 20).unwrap();
        assert_eq!(r, Resume::Fresh);
        assert_eq!(collect(&mut f), lines(0, 3));
        // a partial line waits for its newline
        {
            let mut h = fs::OpenOptions::new().append(true).open(&p).unwrap();
            write!(h, "{{\"n\":3").unwrap();
        }
        assert!(collect(&mut f).is_empty());
        {
            let mut h = fs::OpenOptions::new().append(true).open(&p).unwrap();
            writeln!(h, "}}").unwrap();
        }
        assert_eq!(collect(&mut f), lines(3, 4));
        // rename rotation: lines appended to the old file after our last read still count
        append(&p, &lines(4, 6));
        fs::rename(&p, d.path().join("audit-2024-06-01T10-00-00.000.log")).unwrap();
        append(&p, &lines(6, 8));
        assert_eq!(collect(&mut f), lines(4, 8));
        assert_eq!(f.rotations, 1);
        // copytruncate
        fs::write(&p, "").unwrap();
        append(&p, &lines(8, 9));
        assert_eq!(collect(&mut f), lines(8, 9));
        assert_eq!(f.rotations, 2);
        // an over-long line is skipped
        append(&p, &["x".repeat(3000)]);
        append(&p, &lines(9, 10));
        let (mut g, _) = Follower::open(&p, None, false, 1000).unwrap();
        assert_eq!(collect(&mut g), [lines(8, 9), lines(9, 10)].concat());
        assert_eq!(g.too_long, 1);
    }

    #[test]
    fn resumes_without_loss_or_repeats() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("audit.log");
        let posf = d.path().join("audit.pos");
        append(&p, &lines(0, 100));
        let mut got = Vec::new();
        // first run reads some, saves, stops
        let (mut f, _) = Follower::open(&p, Position::load(&posf).unwrap(), false, 1 << 20).unwrap();
        got.extend(collect(&mut f));
        f.position().save(&posf).unwrap();
        drop(f);
        // while down: more lines, a rotation, more lines in the new file
        append(&p, &lines(100, 150));
        fs::rename(&p, d.path().join("audit.log.1")).unwrap();
        append(&p, &lines(150, 170));
        let (mut f, r) = Follower::open(&p, Position::load(&posf).unwrap(), false, 1 << 20).unwrap();
        assert!(matches!(r, Resume::FromRotated(_)), "{r:?}");
        got.extend(collect(&mut f));
        f.position().save(&posf).unwrap();
        drop(f);
        // restart without changes, then appends
        append(&p, &lines(170, 180));
        let (mut f, r) = Follower::open(&p, Position::load(&posf).unwrap(), false, 1 << 20).unwrap();
        assert_eq!(r, Resume::Continued);
        got.extend(collect(&mut f));
        assert_eq!(got, lines(0, 180));
        // a rewritten file (same inode, different content) restarts
        f.position().save(&posf).unwrap();
        drop(f);
        fs::write(&p, lines(0, 200).join("\n") + "\n").unwrap();
        let (_, r) = Follower::open(&p, Position::load(&posf).unwrap(), false, 1 << 20).unwrap();
        assert!(matches!(r, Resume::Restarted(_)), "{r:?}");
        assert_eq!(
            Position::decode(&Position { inode: 1, dev: 2, offset: 3, last_line_hash: 4 }.encode()).map(|p| p.offset),
            Some(3)
        );
    }

    /// Issue 21 item 15: copytruncate, then 1,000 lines written before the next poll.
    #[test]
    fn copytruncate_refilled_before_the_next_poll_loses_nothing() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("audit.log");
        append(&p, &lines(0, 8));
        let (mut f, _) = Follower::open(&p, None, false, 1 << 20).unwrap();
        assert_eq!(collect(&mut f), lines(0, 8));
        // written after our last poll, then copied and truncated (logrotate copytruncate)
        append(&p, &lines(8, 12));
        fs::copy(&p, d.path().join("audit.log.1")).unwrap();
        fs::OpenOptions::new().write(true).open(&p).unwrap().set_len(0).unwrap();
        // refilled past the old offset before we look again
        append(&p, &lines(1000, 2000));
        let got = collect(&mut f);
        assert_eq!(got, [lines(8, 12), lines(1000, 2000)].concat());
        assert_eq!(f.rotations, 1);
    }

    /// Issue 21 item 15: two rotations while stopped; the middle file is read too.
    #[test]
    fn two_rotations_while_stopped_read_every_file() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("audit.log");
        let posf = d.path().join("audit.pos");
        append(&p, &lines(0, 300));
        let (mut f, _) = Follower::open(&p, None, false, 1 << 20).unwrap();
        let mut got = collect(&mut f);
        f.position().save(&posf).unwrap();
        drop(f);
        append(&p, &lines(300, 400));
        fs::rename(&p, d.path().join("audit.log.1")).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        append(&p, &lines(400, 700));
        fs::rename(d.path().join("audit.log.1"), d.path().join("audit.log.2")).unwrap();
        fs::rename(&p, d.path().join("audit.log.1")).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        append(&p, &lines(700, 1000));
        let (mut f, r) = Follower::open(&p, Position::load(&posf).unwrap(), false, 1 << 20).unwrap();
        assert!(matches!(r, Resume::FromRotated(_)), "{r:?}");
        got.extend(collect(&mut f));
        assert_eq!(got.len(), 1000);
        assert_eq!(got, lines(0, 1000));
    }

    /// Issue 21 item 15: an over-long last line before a stop; the restart continues after it.
    #[test]
    fn overlong_last_line_before_a_stop_repeats_nothing() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("audit.log");
        let posf = d.path().join("audit.pos");
        append(&p, &lines(0, 1000));
        append(&p, &["y".repeat(5000)]);
        let (mut f, _) = Follower::open(&p, None, false, 1000).unwrap();
        assert_eq!(collect(&mut f), lines(0, 1000));
        assert_eq!(f.too_long, 1);
        f.position().save(&posf).unwrap();
        drop(f);
        append(&p, &lines(1000, 1010));
        let (mut f, r) = Follower::open(&p, Position::load(&posf).unwrap(), false, 1000).unwrap();
        assert_eq!(r, Resume::Continued);
        assert_eq!(collect(&mut f), lines(1000, 1010));
        // a stop in the middle of an over-long line: the position stays at its start
        {
            let mut h = fs::OpenOptions::new().append(true).open(&p).unwrap();
            write!(h, "{}", "z".repeat(3000)).unwrap();
        }
        assert!(collect(&mut f).is_empty());
        let mid = f.position();
        mid.save(&posf).unwrap();
        drop(f);
        assert_eq!(fs::read(&p).unwrap()[mid.offset as usize - 1], b'\n');
        append(&p, &["zz".into()]);
        append(&p, &lines(1010, 1012));
        let (mut f, r) = Follower::open(&p, Position::load(&posf).unwrap(), false, 1000).unwrap();
        assert_eq!(r, Resume::Continued);
        assert_eq!(collect(&mut f), lines(1010, 1012));
    }
}
