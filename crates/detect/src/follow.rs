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
//! Lines longer than the cap are skipped (counted), like [`crate::audit::LineReader`].

use crate::alert::fnv64;
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
    /// Saves atomically (write a temporary file, rename).
    pub fn save(&self, path: &Path) -> io::Result<()> {
        let tmp = path.with_extension("tmp");
        fs::write(&tmp, self.encode())?;
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
}

/// Follows one path; see the module docs.
pub struct Follower {
    path: PathBuf,
    cur: Option<Open>,
    /// A rotated file still being drained before `cur`.
    old: Option<Open>,
    pending: Vec<u8>,
    skipping: bool,
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
    Ok(Open { file, inode, dev, offset })
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
        None => return Ok(None),
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
            old: None,
            pending: Vec::new(),
            skipping: false,
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
                    f.old = Some(o);
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
        let o = self.old.as_ref().or(self.cur.as_ref());
        match o {
            Some(o) => Position { inode: o.inode, dev: o.dev, offset: o.offset, last_line_hash: self.last_hash },
            None => Position::default(),
        }
    }

    /// Reads what is available and hands each complete line (without its newline) to `f`.
    /// Returns the number of lines delivered.
    pub fn poll(&mut self, f: &mut dyn FnMut(&[u8])) -> io::Result<usize> {
        let mut n = 0;
        // drain a rotated file first
        if let Some(mut o) = self.old.take() {
            n += self.read_available(&mut o, f)?;
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
                    if m.len() < o.offset + self.pending.len() as u64 {
                        // copytruncate
                        self.rotations += 1;
                        self.pending.clear();
                        self.skipping = false;
                        o.file.seek(SeekFrom::Start(0))?;
                        o.offset = 0;
                        self.last_hash = 0;
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

    /// A file ended for good: a final line without newline is delivered as a line.
    fn finish_file(&mut self, f: &mut dyn FnMut(&[u8]), n: &mut usize) {
        if !self.pending.is_empty() && !self.skipping {
            f(&self.pending);
            *n += 1;
        }
        self.pending.clear();
        self.skipping = false;
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
                            o.offset += (self.pending.len() + i + 1) as u64;
                            self.pending.clear();
                            self.skipping = false;
                            self.last_hash = 0;
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
                                self.last_hash = 0;
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
                            // count skipped bytes in `pending`'s length without keeping them
                            o.offset += data.len() as u64;
                        } else {
                            self.pending.extend_from_slice(data);
                            if self.pending.len() > self.max_line {
                                self.too_long += 1;
                                self.skipping = true;
                                o.offset += self.pending.len() as u64;
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
}
