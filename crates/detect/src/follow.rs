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
//!   `STEM-TIMESTAMP.EXT`, and the same names ending in `.gz`; oldest first by mtime, then by
//!   number) are read whole before the current file.
//! - **compressed rotated files** (logrotate `compress`/`delaycompress`, kube-apiserver
//!   `--audit-log-compress`): `.gz` siblings are decompressed streaming, at most
//!   [`MAX_DECOMPRESSED`] bytes each, lines capped as in plain files. When the rotated file
//!   holding the saved inode was compressed while the process was down (its inode is gone), the
//!   `.gz` sibling whose decompressed content has the saved line ending at the saved offset is
//!   the one (newest first); it is read from that offset, then the siblings rotated after it. A
//!   `.gz` that cannot be checked (damaged, or over the cap, before the offset) is read whole
//!   and reported as [`GapKind::PossibleDuplicates`]. A copy found after a truncation may be
//!   compressed too.
//! - **gaps**: what cannot be filled — a rotated file that is gone, unreadable, corrupt, over the
//!   cap, a truncation without a copy — is a [`Gap`] in [`Follower::gaps`] (counted, and logged),
//!   besides [`Resume`] for the start.
//!
//! Lines longer than the cap are skipped (counted), like [`crate::audit::LineReader`]. The
//! position never points into a skipped line (it stays at its start until its newline arrives),
//! and a position right after one is recognised on restart by the hash of the line's last
//! [`LONG_TAIL`] bytes, so a stop after an over-long line neither re-reads nor repeats anything.

use crate::alert::fnv64;
use flate2::read::MultiGzDecoder;
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

/// Decompressed bytes read from one compressed rotated file at most: a gzip bomb stops here
/// (reported as [`GapKind::TooLarge`]).
pub const MAX_DECOMPRESSED: u64 = 4 << 30;

/// Events the follower could not read, or may have read twice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gap {
    /// The file concerned (the followed path when the file itself is gone).
    pub file: PathBuf,
    /// What happened.
    pub kind: GapKind,
}

/// Why a [`Gap`] is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GapKind {
    /// The file was rotated while the process was down and the rotated file holding the saved
    /// position was not found (deleted, or compressed beyond recognition): its unread events
    /// are lost.
    Missing,
    /// A rotated file could not be opened.
    Unreadable(String),
    /// A compressed file is corrupt or truncated: the events after the damage are lost.
    Corrupt(String),
    /// A compressed file decompresses to more than this many bytes: the rest is not read.
    TooLarge(u64),
    /// The file was truncated and no copy of it was found: lines written just before the
    /// truncation may be lost.
    TruncatedWithoutCopy,
    /// A compressed file that may hold the saved position could not be checked against it; it
    /// is read whole, so events may be repeated.
    PossibleDuplicates,
}

impl std::fmt::Display for Gap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let file = self.file.display();
        match &self.kind {
            GapKind::Missing => {
                write!(f, "{file}: rotated while stopped and the rotated file is gone; its unread events are lost")
            }
            GapKind::Unreadable(e) => write!(f, "{file}: rotated file unreadable ({e}); its events are lost"),
            GapKind::Corrupt(e) => {
                write!(f, "{file}: compressed file damaged ({e}); the events after the damage are lost")
            }
            GapKind::TooLarge(cap) => write!(f, "{file}: decompresses to more than {cap} bytes; the rest is not read"),
            GapKind::TruncatedWithoutCopy => {
                write!(f, "{file}: truncated and no copy found; lines written just before may be lost")
            }
            GapKind::PossibleDuplicates => {
                write!(f, "{file}: could not be matched to the saved position; read whole, events may repeat")
            }
        }
    }
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

/// A compressed rotated file, decompressed streaming under a cap.
struct GzSrc {
    dec: MultiGzDecoder<File>,
    path: PathBuf,
    /// Decompressed bytes read so far.
    read: u64,
    cap: u64,
    /// Why reading stopped before the end (damage, or the cap).
    broken: Option<GapKind>,
}

impl GzSrc {
    /// Reads up to `buf.len()` decompressed bytes; 0 at the end, on damage or at the cap (then
    /// `broken` says which).
    fn read(&mut self, buf: &mut [u8]) -> usize {
        if self.broken.is_some() || buf.is_empty() {
            return 0;
        }
        if self.read >= self.cap {
            // at the cap: anything more is over it
            let mut one = [0u8; 1];
            match read_retry(&mut self.dec, &mut one) {
                Ok(0) => {}
                Ok(_) => self.broken = Some(GapKind::TooLarge(self.cap)),
                Err(e) => self.broken = Some(GapKind::Corrupt(e.to_string())),
            }
            return 0;
        }
        let want = (buf.len() as u64).min(self.cap - self.read) as usize;
        match read_retry(&mut self.dec, &mut buf[..want]) {
            Ok(k) => {
                self.read += k as u64;
                k
            }
            Err(e) => {
                self.broken = Some(GapKind::Corrupt(e.to_string()));
                0
            }
        }
    }
}

fn read_retry(r: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match r.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            x => return x,
        }
    }
}

fn is_gz(p: &Path) -> bool {
    p.extension().is_some_and(|e| e == "gz")
}

struct Open {
    file: File,
    /// Set for a compressed file: reads go through the decoder, `offset` counts decompressed
    /// bytes.
    gz: Option<Box<GzSrc>>,
    inode: u64,
    dev: u64,
    offset: u64,
    /// Length and hash of the file's head as last seen (`len` ≤ [`HEAD`]).
    head: (u64, u64),
}

impl Open {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &mut self.gz {
            Some(g) => Ok(g.read(buf)),
            None => self.file.read(buf),
        }
    }

    /// Why a compressed file stopped early, once (see [`GzSrc::broken`]).
    fn take_broken(&mut self) -> Option<(PathBuf, GapKind)> {
        let g = self.gz.as_mut()?;
        let kind = g.broken.take()?;
        Some((g.path.clone(), kind))
    }

    /// Reads and drops decompressed bytes up to offset `to`, feeding them to `tail` if given;
    /// false if the data ended first (then [`Open::take_broken`] says whether it was damage).
    fn skip_to(&mut self, to: u64, mut tail: Option<&mut LineTail>) -> io::Result<bool> {
        let mut buf = vec![0u8; 256 * 1024];
        while self.offset < to {
            let want = (to - self.offset).min(buf.len() as u64) as usize;
            let k = self.read(&mut buf[..want])?;
            if k == 0 {
                return Ok(false);
            }
            if let Some(t) = tail.as_deref_mut() {
                t.feed(&buf[..k]);
            }
            self.offset += k as u64;
        }
        Ok(true)
    }
}

/// The end of a stream read so far: the hash of its last complete line, as
/// [`Position::last_line_hash`] has it (for checking a saved position in a compressed file,
/// which cannot be read backwards).
struct LineTail {
    line: Vec<u8>,
    long: bool,
    tail: Vec<u8>,
    done: Option<u64>,
    max_line: usize,
}

impl LineTail {
    fn new(max_line: usize) -> Self {
        LineTail { line: Vec::new(), long: false, tail: Vec::new(), done: None, max_line }
    }

    fn feed(&mut self, data: &[u8]) {
        let Some(i) = memchr::memrchr(b'\n', data) else {
            self.push(data);
            return;
        };
        let before = &data[..i];
        match memchr::memrchr(b'\n', before) {
            Some(j) => {
                self.reset();
                self.push(&before[j + 1..]);
            }
            None => self.push(before),
        }
        self.done = Some(if self.long { long_line_hash(&self.tail) } else { fnv64(&self.line) });
        self.reset();
        self.push(&data[i + 1..]);
    }

    fn reset(&mut self) {
        self.line.clear();
        self.tail.clear();
        self.long = false;
    }

    fn push(&mut self, d: &[u8]) {
        if !self.long {
            if self.line.len() + d.len() <= self.max_line {
                self.line.extend_from_slice(d);
                return;
            }
            self.long = true;
            push_tail(&mut self.tail, &self.line);
            self.line.clear();
        }
        push_tail(&mut self.tail, d);
    }

    /// The hash of the last line, if what was fed ends with its newline.
    fn complete(&self) -> Option<u64> {
        if self.line.is_empty() && !self.long {
            self.done
        } else {
            None
        }
    }
}

/// A compressed file, opened at its start.
fn open_gz(path: &Path, cap: u64) -> io::Result<Open> {
    let file = File::open(path)?;
    let (inode, dev) = ids(&file.metadata()?);
    let dec = MultiGzDecoder::new(file.try_clone()?);
    let gz = GzSrc { dec, path: path.to_path_buf(), read: 0, cap, broken: None };
    Ok(Open { file, gz: Some(Box::new(gz)), inode, dev, offset: 0, head: (0, 0) })
}

/// Looking for a saved position in a compressed file.
enum GzAt {
    /// Positioned at the offset; the hash of the line ending there (`None`: not a line end).
    At(Open, Option<u64>),
    /// The content ends before the offset: not the file.
    Short,
    /// Damaged or over the cap before the offset: cannot tell.
    Broken,
}

fn gz_open_at(path: &Path, offset: u64, cap: u64, max_line: usize) -> io::Result<GzAt> {
    let mut o = open_gz(path, cap)?;
    let mut tail = LineTail::new(max_line);
    if !o.skip_to(offset, Some(&mut tail))? {
        return Ok(if o.take_broken().is_some() { GzAt::Broken } else { GzAt::Short });
    }
    let h = if offset == 0 { Some(0) } else { tail.complete() };
    Ok(GzAt::At(o, h))
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
    /// Events that could not be read (or may be read twice), oldest first; the caller may take
    /// them (`std::mem::take`) to count and report them.
    pub gaps: Vec<Gap>,
    max_decompressed: u64,
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
    Ok(Open { file, gz: None, inode, dev, offset, head: (0, 0) })
}

/// Hash of the line that ends just before `offset` (the byte at `offset - 1` must be `\n`).
fn line_hash_before(file: &mut File, offset: u64, max_line: usize) -> io::Result<Option<u64>> {
    if offset == 0 {
        return Ok(Some(0));
    }
    // the line, its newline, and the newline before it (a line of exactly `max_line` bytes
    // is delivered, not skipped)
    let window = offset.min(max_line as u64 + 2);
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
        Follower::open_limited(path, resume, from_end, max_line, MAX_DECOMPRESSED)
    }

    /// [`Follower::open`] reading at most `max_decompressed` bytes out of each compressed
    /// rotated file.
    pub fn open_limited(
        path: &Path,
        resume: Option<Position>,
        from_end: bool,
        max_line: usize,
        max_decompressed: u64,
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
            gaps: Vec::new(),
            max_decompressed,
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
            // rotated and compressed, and the inode reused by the new file; or truncated
            // (copytruncate) and the copy compressed: the `.gz` holding the saved line
            if let Some((gz_path, o, verified)) = f.find_compressed(&pos)? {
                f.start_rotated(path, &gz_path, o, verified, pos.last_line_hash);
                return Ok((f, Resume::FromRotated(gz_path)));
            }
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
        let cap = f.max_decompressed;
        match found {
            Some(old_path) => {
                // verified: positioned at the saved offset; unverified: from the start
                let start = if is_gz(&old_path) {
                    // a compressed file we were reading when stopped
                    match gz_open_at(&old_path, pos.offset, cap, max_line)? {
                        GzAt::At(o, h) if h == Some(pos.last_line_hash) => Some((o, true)),
                        GzAt::Broken => Some((open_gz(&old_path, cap)?, false)),
                        _ => None,
                    }
                } else {
                    let mut o = open_at(&old_path, 0)?;
                    if line_hash_before(&mut o.file, pos.offset, max_line)? == Some(pos.last_line_hash) {
                        o.file.seek(SeekFrom::Start(pos.offset))?;
                        o.offset = pos.offset;
                        Some((o, true))
                    } else {
                        None
                    }
                };
                match start {
                    Some((o, verified)) => {
                        f.start_rotated(path, &old_path, o, verified, pos.last_line_hash);
                        Ok((f, Resume::FromRotated(old_path)))
                    }
                    None => match f.find_compressed(&pos)? {
                        // the inode was reused after the file was compressed
                        Some((gz_path, o, verified)) => {
                            f.start_rotated(path, &gz_path, o, verified, pos.last_line_hash);
                            Ok((f, Resume::FromRotated(gz_path)))
                        }
                        None => Ok((
                            f,
                            Resume::Restarted(format!("{} no longer matches the saved position", old_path.display())),
                        )),
                    },
                }
            }
            // compressed while we were away (logrotate `compress`): its inode is gone, its content
            // is in a `.gz` sibling
            None => match f.find_compressed(&pos)? {
                Some((gz_path, o, verified)) => {
                    f.start_rotated(path, &gz_path, o, verified, pos.last_line_hash);
                    Ok((f, Resume::FromRotated(gz_path)))
                }
                None => {
                    f.gap(path.to_path_buf(), GapKind::Missing);
                    Ok((f, Resume::Restarted("the file was rotated and the rotated file is gone".into())))
                }
            },
        }
    }

    /// Queues the rotated file holding the saved position (`o`: at the saved offset when
    /// `verified`, else at its start) and the siblings rotated after it.
    fn start_rotated(&mut self, path: &Path, old_path: &Path, o: Open, verified: bool, last_hash: u64) {
        if verified {
            self.last_hash = last_hash;
        } else {
            self.gap(old_path.to_path_buf(), GapKind::PossibleDuplicates);
        }
        self.old.push_back(o);
        // rotated again (and again) while we were away: the newer siblings follow
        for p in newer_siblings(path, old_path) {
            let o = if is_gz(&p) { open_gz(&p, self.max_decompressed) } else { open_at(&p, 0) };
            match o {
                Ok(o) => self.old.push_back(o),
                Err(e) => self.gap(p, GapKind::Unreadable(e.to_string())),
            }
        }
    }

    /// The compressed sibling holding the saved position: the newest whose decompressed content
    /// has the saved line ending at the saved offset (`true`), else the newest that could not
    /// be checked (damaged or over the cap before the offset; `false`, opened at its start).
    fn find_compressed(&mut self, pos: &Position) -> io::Result<Option<(PathBuf, Open, bool)>> {
        let mut cands: Vec<_> = rotated_siblings(&self.path)
            .into_iter()
            .filter(|p| is_gz(p))
            .filter_map(|p| Some((age_key(&p)?, p)))
            .collect();
        cands.sort();
        let mut unverified = None;
        for (_, p) in cands.into_iter().rev() {
            match gz_open_at(&p, pos.offset, self.max_decompressed, self.max_line) {
                Ok(GzAt::At(o, h)) if h == Some(pos.last_line_hash) => return Ok(Some((p, o, true))),
                Ok(GzAt::Broken) if unverified.is_none() => unverified = Some(p),
                Ok(_) => {}
                Err(e) => tracing::debug!(file = %p.display(), error = %e, "compressed sibling unreadable"),
            }
        }
        match unverified {
            Some(p) => {
                let o = open_gz(&p, self.max_decompressed)?;
                Ok(Some((p, o, false)))
            }
            None => Ok(None),
        }
    }

    /// Records (and logs) a gap.
    fn gap(&mut self, file: PathBuf, kind: GapKind) {
        let g = Gap { file, kind };
        tracing::warn!(gap = %g, "events not read");
        self.gaps.push(g);
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
            self.end_compressed(&mut o);
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
            self.end_compressed(&mut copy.1);
            self.finish_file(f, n);
        } else if o.offset > 0 {
            self.gap(self.path.clone(), GapKind::TruncatedWithoutCopy);
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
            if is_gz(&p) {
                // copytruncate + compress: the copy was compressed before we looked
                let Ok(mut c) = open_gz(&p, self.max_decompressed) else { continue };
                let mut head = vec![0u8; len as usize];
                let k = c.read(&mut head).ok()?;
                let mut got = k;
                while got < head.len() {
                    match c.read(&mut head[got..]) {
                        Ok(0) | Err(_) => break,
                        Ok(k) => got += k,
                    }
                }
                c.offset = got as u64;
                if got == head.len() && fnv64(&head) == hash && c.skip_to(o.offset, None).unwrap_or(false) {
                    return Some((p, c));
                }
                continue;
            }
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

    /// A compressed file that stopped early (damage, or the cap): the gap is recorded, and the
    /// line cut there is not a line.
    fn end_compressed(&mut self, o: &mut Open) {
        if let Some((p, kind)) = o.take_broken() {
            self.pending.clear();
            self.skipping = false;
            self.skip_len = 0;
            self.skip_tail.clear();
            self.gap(p, kind);
        }
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
            let k = match o.read(&mut chunk) {
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

/// The order of rotated files, oldest first: mtime (logrotate keeps it when compressing), then
/// the rotation number (`NAME.2` is older than `NAME.1`, `.gz` or not), then the name
/// (kube-apiserver's timestamps sort as text).
fn age_key(p: &Path) -> Option<(std::time::SystemTime, u64, String)> {
    let t = fs::metadata(p).ok()?.modified().ok()?;
    let name = p.file_name()?.to_string_lossy().into_owned();
    let plain = name.strip_suffix(".gz").unwrap_or(&name);
    let num = plain.rsplit_once('.').and_then(|(_, e)| e.parse::<u64>().ok()).unwrap_or(0);
    Some((t, u64::MAX - num, name))
}

/// Rotated siblings rotated after `old` (compressed or not), oldest first (see [`age_key`]).
fn newer_siblings(path: &Path, old: &Path) -> Vec<PathBuf> {
    let since = age_key(old);
    let mut v: Vec<_> = rotated_siblings(path)
        .into_iter()
        .filter(|p| p != old)
        .filter_map(|p| Some((age_key(&p)?, p)))
        .filter(|(k, _)| since.as_ref().is_none_or(|s| k > s))
        .collect();
    v.sort();
    v.into_iter().map(|(_, p)| p).collect()
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

    /// Compresses `p` into `p.gz` as logrotate does (mtime kept) and removes `p`.
    fn gzip(p: &Path) -> PathBuf {
        let gz = PathBuf::from(format!("{}.gz", p.display()));
        let data = fs::read(p).unwrap();
        let mtime = fs::metadata(p).unwrap().modified().unwrap();
        let mut e = flate2::write::GzEncoder::new(File::create(&gz).unwrap(), flate2::Compression::fast());
        e.write_all(&data).unwrap();
        e.finish().unwrap();
        File::options().write(true).open(&gz).unwrap().set_modified(mtime).unwrap();
        fs::remove_file(p).unwrap();
        gz
    }

    fn tick() {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }

    /// Issue 21 item 15: rotations with logrotate `compress` (the file holding the saved inode
    /// is compressed: its inode is gone) and `delaycompress`, while stopped.
    #[test]
    fn rotation_and_gzip_while_stopped_lose_and_repeat_nothing() {
        for delay in [false, true] {
            let d = tempfile::tempdir().unwrap();
            let p = d.path().join("audit.log");
            let posf = d.path().join("audit.pos");
            let n = |i: usize| d.path().join(format!("audit.log.{i}"));
            // an old rotation, read long ago: never read again
            append(&n(3), &lines(5000, 5100));
            gzip(&n(3));
            tick();
            append(&p, &lines(0, 300));
            let (mut f, _) = Follower::open(&p, None, false, 1 << 20).unwrap();
            let mut got = collect(&mut f);
            f.position().save(&posf).unwrap();
            drop(f);
            // while stopped: two rotations
            append(&p, &lines(300, 400));
            fs::rename(&p, n(1)).unwrap();
            if !delay {
                gzip(&n(1));
            }
            tick();
            append(&p, &lines(400, 700));
            if delay {
                fs::rename(n(1), n(2)).unwrap();
                gzip(&n(2));
            } else {
                fs::rename(d.path().join("audit.log.1.gz"), d.path().join("audit.log.2.gz")).unwrap();
            }
            fs::rename(&p, n(1)).unwrap();
            if !delay {
                gzip(&n(1));
            }
            tick();
            append(&p, &lines(700, 1000));
            let (mut f, r) = Follower::open(&p, Position::load(&posf).unwrap(), false, 1 << 20).unwrap();
            assert_eq!(r, Resume::FromRotated(d.path().join("audit.log.2.gz")), "delay {delay}");
            got.extend(collect(&mut f));
            assert_eq!(got.len(), 1000, "delay {delay}");
            assert_eq!(got, lines(0, 1000), "delay {delay}");
            assert!(f.gaps.is_empty(), "{:?}", f.gaps);
            // and on from there
            f.position().save(&posf).unwrap();
            drop(f);
            append(&p, &lines(1000, 1010));
            let (mut f, r) = Follower::open(&p, Position::load(&posf).unwrap(), false, 1 << 20).unwrap();
            assert_eq!(r, Resume::Continued);
            assert_eq!(collect(&mut f), lines(1000, 1010));
        }
    }

    /// A stop while a compressed file was being read: the position is in its decompressed
    /// content, and the restart continues there.
    #[test]
    fn resumes_inside_a_compressed_file() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("audit.log");
        append(&p, &lines(0, 10));
        let (mut f, _) = Follower::open(&p, None, false, 1 << 20).unwrap();
        assert_eq!(collect(&mut f), lines(0, 10));
        let saved = f.position();
        drop(f);
        append(&p, &lines(10, 20));
        fs::rename(&p, d.path().join("audit.log.1")).unwrap();
        let gz = gzip(&d.path().join("audit.log.1"));
        append(&p, &lines(20, 30));
        let (f, r) = Follower::open(&p, Some(saved), false, 1 << 20).unwrap();
        assert_eq!(r, Resume::FromRotated(gz.clone()));
        // stopped before reading: the position names the .gz and the decompressed offset
        let mid = f.position();
        assert_eq!(mid.offset, saved.offset);
        drop(f);
        let (mut f, r) = Follower::open(&p, Some(mid), false, 1 << 20).unwrap();
        assert_eq!(r, Resume::FromRotated(gz));
        assert_eq!(collect(&mut f), lines(10, 30));
        assert!(f.gaps.is_empty(), "{:?}", f.gaps);
    }

    /// Issue 21 item 15: a damaged `.gz` sibling is a gap; the files after it are still read.
    #[test]
    fn corrupt_gz_sibling_is_a_gap_and_following_continues() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("audit.log");
        let posf = d.path().join("audit.pos");
        let n = |i: usize| d.path().join(format!("audit.log.{i}"));
        append(&p, &lines(0, 100));
        let (mut f, _) = Follower::open(&p, None, false, 1 << 20).unwrap();
        let mut got = collect(&mut f);
        f.position().save(&posf).unwrap();
        drop(f);
        append(&p, &lines(100, 200));
        fs::rename(&p, n(1)).unwrap();
        tick();
        append(&p, &lines(200, 300));
        fs::rename(n(1), n(2)).unwrap();
        fs::rename(&p, n(1)).unwrap();
        let gz = gzip(&n(1));
        // cut in the middle of its data
        let bytes = fs::read(&gz).unwrap();
        fs::write(&gz, &bytes[..bytes.len() / 2]).unwrap();
        tick();
        append(&p, &lines(300, 400));
        let (mut f, r) = Follower::open(&p, Position::load(&posf).unwrap(), false, 1 << 20).unwrap();
        assert_eq!(r, Resume::FromRotated(n(2)));
        got.extend(collect(&mut f));
        assert_eq!(got[..200], lines(0, 200));
        assert_eq!(got[got.len() - 100..], lines(300, 400));
        // what could be decompressed before the damage, in order, whole lines only
        let middle = &got[200..got.len() - 100];
        assert!(middle.len() < 100 && lines(200, 300).starts_with(middle), "{middle:?}");
        assert_eq!(f.gaps.len(), 1, "{:?}", f.gaps);
        assert_eq!(f.gaps[0].file, gz);
        assert!(matches!(f.gaps[0].kind, GapKind::Corrupt(_)), "{:?}", f.gaps);
        // following goes on
        append(&p, &lines(400, 410));
        assert_eq!(collect(&mut f), lines(400, 410));

        // garbage instead of deflate data in the file holding the saved position: it cannot
        // be checked, so it is read whole (possible duplicates) and is a gap too
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("audit.log");
        append(&p, &lines(0, 100));
        let (mut f, _) = Follower::open(&p, None, false, 1 << 20).unwrap();
        collect(&mut f);
        let saved = f.position();
        drop(f);
        append(&p, &lines(100, 200));
        fs::rename(&p, d.path().join("audit.log.1")).unwrap();
        let gz = gzip(&d.path().join("audit.log.1"));
        let mut bytes = fs::read(&gz).unwrap();
        for b in &mut bytes[10..] {
            *b = 0xff;
        }
        fs::write(&gz, &bytes).unwrap();
        append(&p, &lines(200, 210));
        let (mut f, r) = Follower::open(&p, Some(saved), false, 1 << 20).unwrap();
        assert_eq!(r, Resume::FromRotated(gz.clone()));
        assert_eq!(collect(&mut f), lines(200, 210));
        let kinds: Vec<_> = f.gaps.iter().map(|g| (&g.file, &g.kind)).collect();
        assert!(
            matches!(kinds[..], [(a, GapKind::PossibleDuplicates), (b, GapKind::Corrupt(_))] if *a == gz && *b == gz),
            "{kinds:?}"
        );
    }

    /// Issue 21 item 15: a gzip bomb among the rotated files stops at the cap (a gap), quickly,
    /// and the current file is read after it.
    #[test]
    fn gzip_bomb_sibling_stops_at_the_cap() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("audit.log");
        let posf = d.path().join("audit.pos");
        append(&p, &lines(0, 10));
        let (mut f, _) = Follower::open(&p, None, false, 1 << 20).unwrap();
        let mut got = collect(&mut f);
        f.position().save(&posf).unwrap();
        drop(f);
        append(&p, &lines(10, 20));
        fs::rename(&p, d.path().join("audit.log.2")).unwrap();
        tick();
        // 64 MiB of short lines in about 64 KiB
        let bomb = d.path().join("audit.log.1.gz");
        {
            let mut e = flate2::write::GzEncoder::new(File::create(&bomb).unwrap(), flate2::Compression::best());
            let block = "{}\n".repeat(1 << 18);
            for _ in 0..(64 << 20) / block.len() {
                e.write_all(block.as_bytes()).unwrap();
            }
            e.finish().unwrap();
        }
        assert!(fs::metadata(&bomb).unwrap().len() < 1 << 20);
        tick();
        append(&p, &lines(20, 30));
        let cap = 1 << 20;
        let t = std::time::Instant::now();
        let (mut f, r) = Follower::open_limited(&p, Position::load(&posf).unwrap(), false, 1 << 20, cap).unwrap();
        assert_eq!(r, Resume::FromRotated(d.path().join("audit.log.2")));
        let mut bomb_lines = 0usize;
        f.poll(&mut |l| {
            if l == b"{}" {
                bomb_lines += 1;
            } else {
                got.push(String::from_utf8_lossy(l).to_string());
            }
        })
        .unwrap();
        assert!(t.elapsed() < std::time::Duration::from_secs(10), "{:?}", t.elapsed());
        assert_eq!(got, lines(0, 30));
        assert_eq!(bomb_lines as u64, cap / 3, "whole lines up to the cap");
        assert_eq!(f.gaps, vec![Gap { file: bomb, kind: GapKind::TooLarge(cap) }]);
    }

    /// copytruncate + compress: the copy was compressed before the next poll.
    #[test]
    fn copytruncate_with_a_compressed_copy_loses_nothing() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("audit.log");
        append(&p, &lines(0, 8));
        let (mut f, _) = Follower::open(&p, None, false, 1 << 20).unwrap();
        assert_eq!(collect(&mut f), lines(0, 8));
        append(&p, &lines(8, 12));
        fs::copy(&p, d.path().join("audit.log.1")).unwrap();
        fs::OpenOptions::new().write(true).open(&p).unwrap().set_len(0).unwrap();
        gzip(&d.path().join("audit.log.1"));
        append(&p, &lines(1000, 2000));
        assert_eq!(collect(&mut f), [lines(8, 12), lines(1000, 2000)].concat());
        assert!(f.gaps.is_empty(), "{:?}", f.gaps);
        // without any copy: a gap
        fs::OpenOptions::new().write(true).open(&p).unwrap().set_len(0).unwrap();
        append(&p, &lines(0, 1));
        assert_eq!(collect(&mut f), lines(0, 1));
        assert_eq!(f.gaps, vec![Gap { file: p.clone(), kind: GapKind::TruncatedWithoutCopy }]);
    }

    /// A line of exactly the cap is delivered, and a position after it is recognised.
    #[test]
    fn a_line_of_exactly_the_cap_resumes() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("audit.log");
        append(&p, &lines(0, 2));
        append(&p, &["w".repeat(1000)]);
        let (mut f, _) = Follower::open(&p, None, false, 1000).unwrap();
        assert_eq!(collect(&mut f).len(), 3);
        let saved = f.position();
        drop(f);
        append(&p, &lines(2, 3));
        let (mut f, r) = Follower::open(&p, Some(saved), false, 1000).unwrap();
        assert_eq!(r, Resume::Continued);
        assert_eq!(collect(&mut f), lines(2, 3));
    }
}
