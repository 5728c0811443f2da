//! RPM package database cataloger.
//!
//! Reads the three on-disk formats of the rpm package database:
//!
//! * **SQLite** (`rpmdb.sqlite`, rpm ≥ 4.16: Fedora 33+, RHEL 9, CBL-Mariner 2):
//!   table `Packages(hnum INTEGER PRIMARY KEY, blob BLOB)`;
//! * **NDB** (`Packages.db`, SUSE): a slot table followed by `BlbS` blobs;
//! * **Berkeley DB hash** (`Packages`, RHEL/CentOS ≤ 8): hash pages whose values
//!   live in overflow page chains.
//!
//! Every record's value is an rpm *header blob*, from which the identifying tags
//! are extracted by [`parse_header_blob`].
//!
//! All three container formats are decoded here in safe, allocation-bounded
//! Rust: nothing is written to disk and no native database engine sees the
//! (untrusted) bytes. The SQLite reader understands exactly what the rpmdb
//! needs: the schema table and one table B-tree with overflow chains. The
//! write-ahead log (`rpmdb.sqlite-wal`) is a separate file and is not
//! consulted, as with any reader that is handed the main file only.
//!
//! Robustness rules followed throughout: every read goes through bounds-checked
//! accessors, every offset computation is checked, every page is visited at
//! most once (so hostile cycles terminate), and the total number of record
//! bytes extracted from a database may not exceed the size of the database
//! itself (so hostile sharing of pages cannot amplify memory use).

use crate::CatalogError;
use palisade_model::{purl, Package, PackageBuilder, PackageType};

const FMT_DB: &str = "rpmdb";
const FMT_HEADER: &str = "rpm header";
const FMT_SQLITE: &str = "rpm sqlite";
const FMT_NDB: &str = "rpm ndb";
const FMT_BDB: &str = "rpm bdb";

/// One installed package as recorded in the rpm database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpmPackage {
    /// `NAME` (tag 1000).
    pub name: String,
    /// `VERSION` (tag 1001).
    pub version: String,
    /// `RELEASE` (tag 1002).
    pub release: String,
    /// `EPOCH` (tag 1003), when the package has one.
    pub epoch: Option<i32>,
    /// `ARCH` (tag 1022), e.g. `x86_64`, `noarch`.
    pub arch: String,
    /// `SOURCERPM` (tag 1044), e.g. `glibc-2.34-2.cm2.src.rpm`; empty if absent.
    pub source_rpm: String,
    /// `LICENSE` (tag 1014); empty if absent.
    pub license: String,
    /// `VENDOR` (tag 1011); empty if absent.
    pub vendor: String,
}

/// Detects the database format from the bytes and returns its packages.
///
/// Recognised formats: SQLite (header `SQLite format 3\0`), NDB (magic `RpmP`)
/// and Berkeley DB hash (magic `0x061561` in the metadata page, either byte
/// order). `gpg-pubkey` pseudo-packages (imported signing keys) are skipped.
/// Packages come in database order (SQLite: by `hnum`; NDB: by slot; BDB: by page).
///
/// Any structural damage, in the container or in a record, is an error: a
/// partially read database is not silently passed off as complete.
pub fn parse_db(data: &[u8]) -> Result<Vec<RpmPackage>, CatalogError> {
    let mut packages = Vec::new();
    let mut record = 0usize;
    let mut sink = |blob: &[u8]| -> Result<(), CatalogError> {
        record = record.saturating_add(1);
        let pkg = parse_header_blob(blob).map_err(|e| match e {
            CatalogError::Malformed { format, reason } => {
                CatalogError::Malformed { format, reason: format!("record {record}: {reason}") }
            }
            other => other,
        })?;
        if pkg.name != "gpg-pubkey" {
            packages.push(pkg);
        }
        Ok(())
    };
    match detect(data)? {
        DbFormat::Sqlite => sqlite::for_each_blob(data, &mut sink)?,
        DbFormat::Ndb => ndb::for_each_blob(data, &mut sink)?,
        DbFormat::Bdb => bdb::for_each_blob(data, &mut sink)?,
    }
    Ok(packages)
}

/// Cataloger entry point: the packages of the rpm database `data` found at `path`.
///
/// The package version is `[epoch:]version-release`. The PURL carries the
/// vendor-derived namespace (see below), the `arch` qualifier and, when the
/// package has an epoch, the `epoch` qualifier; following the PURL
/// specification for rpm, the PURL version itself is `version-release`
/// without the epoch. The source RPM `foo-1.2-3.el8.src.rpm` gives source
/// name `foo` and source version `1.2-3.el8`.
///
/// The namespace is a lower-case vendor word when the `VENDOR` tag makes it
/// obvious (`Red Hat, Inc.` → `redhat`, `SUSE LLC` → `suse`, `Microsoft
/// Corporation` → `microsoft`, ...), and empty otherwise; callers that know
/// the distribution may override it.
pub fn parse(path: &str, data: &[u8]) -> Result<Vec<Package>, CatalogError> {
    Ok(parse_db(data)?.into_iter().map(|p| to_package(path, p)).collect())
}

/// Parses one rpm header blob, as stored in the package database (no lead, no
/// header magic): `u32` index count, `u32` data length, index entries of
/// (tag, type, offset, count), then the data store; all big-endian.
///
/// `NAME` is required; the other tags default to empty (and the epoch to
/// `None`) when absent. `gpg-pubkey` records are returned like any other.
pub fn parse_header_blob(blob: &[u8]) -> Result<RpmPackage, CatalogError> {
    header::parse(blob)
}

fn to_package(path: &str, p: RpmPackage) -> Package {
    let vr = if p.release.is_empty() { p.version.clone() } else { format!("{}-{}", p.version, p.release) };
    let version = match p.epoch {
        Some(e) => format!("{e}:{vr}"),
        None => vr.clone(),
    };
    let namespace = vendor_namespace(&p.vendor);
    let (source_name, source_version) = match split_source_rpm(&p.source_rpm) {
        Some((n, v)) => (Some(n.to_string()), Some(v.to_string())),
        None => (None, None),
    };
    let mut builder = PackageBuilder::new(PackageType::Rpm, p.name.clone(), version)
        .namespace(namespace)
        .arch(p.arch.clone())
        .source(source_name, source_version)
        .licenses([p.license]);
    if let Some(e) = p.epoch {
        builder = builder.qualifier("epoch", e.to_string());
    }
    let mut pkg = builder.found_in(path).build();
    if let Some(e) = p.epoch {
        // The builder renders `Package::version` (which includes the epoch)
        // into the PURL; the rpm PURL type wants the epoch as a qualifier only.
        let mut qualifiers = Vec::new();
        if !p.arch.is_empty() {
            qualifiers.push(("arch".to_string(), p.arch));
        }
        qualifiers.push(("epoch".to_string(), e.to_string()));
        let ns = Some(namespace).filter(|n| !n.is_empty());
        pkg.purl = purl(PackageType::Rpm, ns, &p.name, &vr, &qualifiers);
    }
    pkg
}

/// Splits `foo-1.2-3.el8.src.rpm` into (`foo`, `1.2-3.el8`).
fn split_source_rpm(s: &str) -> Option<(&str, &str)> {
    let s = s.trim();
    let s = s.strip_suffix(".rpm").unwrap_or(s);
    let s = s.strip_suffix(".src").or_else(|| s.strip_suffix(".nosrc")).unwrap_or(s);
    let (rest, release) = s.rsplit_once('-')?;
    let (name, version) = rest.rsplit_once('-')?;
    if name.is_empty() || version.is_empty() || release.is_empty() {
        return None;
    }
    let version_release = s.get(name.len() + 1..)?;
    Some((name, version_release))
}

/// A lower-case PURL namespace derived from the `VENDOR` tag, or `""`.
fn vendor_namespace(vendor: &str) -> &'static str {
    const KNOWN: &[(&str, &str)] = &[
        ("red hat", "redhat"),
        ("redhat", "redhat"),
        ("opensuse", "opensuse"),
        ("suse", "suse"),
        ("microsoft", "microsoft"),
        ("centos", "centos"),
        ("fedora", "fedora"),
        ("oracle", "oracle"),
        ("amazon", "amazon"),
        ("rocky", "rocky"),
        ("almalinux", "almalinux"),
    ];
    let v = vendor.to_ascii_lowercase();
    KNOWN.iter().find(|(needle, _)| v.contains(needle)).map_or("", |&(_, ns)| ns)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DbFormat {
    Sqlite,
    Ndb,
    Bdb,
}

fn detect(data: &[u8]) -> Result<DbFormat, CatalogError> {
    if data.starts_with(b"SQLite format 3\0") {
        return Ok(DbFormat::Sqlite);
    }
    if data.starts_with(b"RpmP") {
        return Ok(DbFormat::Ndb);
    }
    if let Some(magic) = read::array::<4>(data, 12) {
        let (le, be) = (u32::from_le_bytes(magic), u32::from_be_bytes(magic));
        if le == bdb::HASH_MAGIC || be == bdb::HASH_MAGIC {
            return Ok(DbFormat::Bdb);
        }
        if le == bdb::BTREE_MAGIC || be == bdb::BTREE_MAGIC {
            return Err(CatalogError::malformed(FMT_BDB, "Berkeley DB btree databases are not rpm Packages databases"));
        }
    }
    Err(CatalogError::malformed(FMT_DB, "not an rpm database (no SQLite, NDB or Berkeley DB hash signature)"))
}

/// Limits on the total size of extracted records: a database cannot hold more
/// record bytes than it has bytes, so anything more means records share
/// storage, which only a hostile file does.
#[derive(Debug)]
struct Budget {
    left: usize,
    format: &'static str,
}

impl Budget {
    fn new(format: &'static str, data: &[u8]) -> Self {
        Budget { left: data.len(), format }
    }
    fn take(&mut self, n: u64) -> Result<usize, CatalogError> {
        match usize::try_from(n).ok().and_then(|n| self.left.checked_sub(n).map(|l| (n, l))) {
            Some((n, left)) => {
                self.left = left;
                Ok(n)
            }
            None => {
                Err(CatalogError::malformed(self.format, format!("record of {n} bytes exceeds what the file can hold")))
            }
        }
    }
}

/// Bounds-checked readers.
mod read {
    /// `N` bytes at `off`, if present.
    pub(super) fn array<const N: usize>(d: &[u8], off: usize) -> Option<[u8; N]> {
        let end = off.checked_add(N)?;
        d.get(off..end)?.try_into().ok()
    }
    pub(super) fn u16_be(d: &[u8], off: usize) -> Option<u16> {
        array::<2>(d, off).map(u16::from_be_bytes)
    }
    pub(super) fn u32_be(d: &[u8], off: usize) -> Option<u32> {
        array::<4>(d, off).map(u32::from_be_bytes)
    }
    pub(super) fn u32_le(d: &[u8], off: usize) -> Option<u32> {
        array::<4>(d, off).map(u32::from_le_bytes)
    }
    /// `len` bytes at `off`, if present.
    pub(super) fn slice(d: &[u8], off: usize, len: usize) -> Option<&[u8]> {
        d.get(off..off.checked_add(len)?)
    }
}

/// The rpm header blob.
mod header {
    use super::{read, RpmPackage, FMT_HEADER};
    use crate::CatalogError;

    /// rpm's own limits (`HEADER_TAGS_MAX`, `HEADER_DATA_MAX`).
    const MAX_TAGS: u32 = 0xffff;
    const MAX_DATA: u32 = 256 * 1024 * 1024;

    const TAG_NAME: u32 = 1000;
    const TAG_VERSION: u32 = 1001;
    const TAG_RELEASE: u32 = 1002;
    const TAG_EPOCH: u32 = 1003;
    const TAG_VENDOR: u32 = 1011;
    const TAG_LICENSE: u32 = 1014;
    const TAG_ARCH: u32 = 1022;
    const TAG_SOURCERPM: u32 = 1044;

    const TYPE_INT32: u32 = 4;
    const TYPE_STRING: u32 = 6;
    const TYPE_STRING_ARRAY: u32 = 8;
    const TYPE_I18NSTRING: u32 = 9;
    const TYPE_MAX: u32 = 9;

    fn err(reason: impl Into<String>) -> CatalogError {
        CatalogError::malformed(FMT_HEADER, reason)
    }

    #[derive(Debug, Clone, Copy)]
    struct Entry {
        tag: u32,
        kind: u32,
        offset: usize,
        count: u32,
    }

    /// Size in bytes of one element of a fixed-size type; `None` for strings.
    fn elem_size(kind: u32) -> Option<u64> {
        match kind {
            0 => Some(0),         // NULL
            1 | 2 | 7 => Some(1), // CHAR, INT8, BIN
            3 => Some(2),         // INT16
            4 => Some(4),         // INT32
            5 => Some(8),         // INT64
            _ => None,            // STRING, STRING_ARRAY, I18NSTRING
        }
    }

    pub(super) fn parse(blob: &[u8]) -> Result<RpmPackage, CatalogError> {
        let il = read::u32_be(blob, 0).ok_or_else(|| err("shorter than its 8-byte preamble"))?;
        let dl = read::u32_be(blob, 4).ok_or_else(|| err("shorter than its 8-byte preamble"))?;
        if il == 0 {
            return Err(err("no index entries"));
        }
        if il > MAX_TAGS {
            return Err(err(format!("{il} index entries (rpm allows at most {MAX_TAGS})")));
        }
        if dl > MAX_DATA {
            return Err(CatalogError::TooLarge { format: FMT_HEADER, size: u64::from(dl), limit: u64::from(MAX_DATA) });
        }
        // il ≤ 0xffff and dl ≤ 256 MiB: these cannot overflow, but stay checked.
        let index_len = usize::try_from(il).ok().and_then(|n| n.checked_mul(16));
        let dl_usize = usize::try_from(dl).ok();
        let (index, store) = match (index_len, dl_usize) {
            (Some(index_len), Some(dl)) => {
                let index = read::slice(blob, 8, index_len);
                let store = 8usize.checked_add(index_len).and_then(|s| read::slice(blob, s, dl));
                (index, store)
            }
            _ => (None, None),
        };
        let (Some(index), Some(store)) = (index, store) else {
            return Err(err(format!("{il} index entries and {dl} data bytes do not fit in {} bytes", blob.len())));
        };

        let mut pkg = RpmPackage {
            name: String::new(),
            version: String::new(),
            release: String::new(),
            epoch: None,
            arch: String::new(),
            source_rpm: String::new(),
            license: String::new(),
            vendor: String::new(),
        };
        let mut have_name = false;
        let mut seen = [false; 8];
        for raw in index.chunks_exact(16) {
            let field = |i: usize| read::u32_be(raw, i * 4).unwrap_or(0);
            let (tag, kind, offset, count) = (field(0), field(1), field(2), field(3));
            let entry = validate(tag, kind, offset, count, store.len())?;
            let slot = match tag {
                TAG_NAME => 0,
                TAG_VERSION => 1,
                TAG_RELEASE => 2,
                TAG_EPOCH => 3,
                TAG_VENDOR => 4,
                TAG_LICENSE => 5,
                TAG_ARCH => 6,
                TAG_SOURCERPM => 7,
                _ => continue,
            };
            // The first occurrence of a tag wins.
            if std::mem::replace(&mut seen[slot], true) {
                continue;
            }
            match tag {
                TAG_EPOCH => pkg.epoch = Some(int32(&entry, store)?),
                _ => {
                    let s = string(&entry, store)?;
                    match tag {
                        TAG_NAME => {
                            pkg.name = s;
                            have_name = true;
                        }
                        TAG_VERSION => pkg.version = s,
                        TAG_RELEASE => pkg.release = s,
                        TAG_VENDOR => pkg.vendor = s,
                        TAG_LICENSE => pkg.license = s,
                        TAG_ARCH => pkg.arch = s,
                        _ => pkg.source_rpm = s,
                    }
                }
            }
        }
        if !have_name || pkg.name.is_empty() {
            return Err(err("no NAME tag"));
        }
        Ok(pkg)
    }

    /// Checks an index entry against the data store, as rpm's `headerVerifyInfo` does.
    fn validate(tag: u32, kind: u32, offset: u32, count: u32, dl: usize) -> Result<Entry, CatalogError> {
        if kind > TYPE_MAX {
            return Err(err(format!("tag {tag} has unknown type {kind}")));
        }
        let off = usize::try_from(offset).ok().filter(|&o| o <= dl);
        let Some(off) = off else {
            return Err(err(format!("tag {tag} offset {offset} is past the data store ({dl} bytes)")));
        };
        if let Some(size) = elem_size(kind) {
            let end = size.checked_mul(u64::from(count)).and_then(|n| n.checked_add(u64::from(offset)));
            if end.is_none_or(|e| e > dl as u64) {
                return Err(err(format!(
                    "tag {tag}: {count} elements at offset {offset} overrun the data store ({dl} bytes)"
                )));
            }
        } else if count == 0 {
            return Err(err(format!("tag {tag}: string entry with no elements")));
        }
        Ok(Entry { tag, kind, offset: off, count })
    }

    fn string(e: &Entry, store: &[u8]) -> Result<String, CatalogError> {
        if !matches!(e.kind, TYPE_STRING | TYPE_I18NSTRING | TYPE_STRING_ARRAY) {
            return Err(err(format!("tag {} has type {}, expected a string", e.tag, e.kind)));
        }
        // STRING has one element; for I18NSTRING and STRING_ARRAY the first
        // element is the one wanted (the C locale, resp. the first value).
        let tail = store.get(e.offset..).unwrap_or_default();
        let Some(len) = tail.iter().position(|&b| b == 0) else {
            return Err(err(format!("tag {} string is not NUL-terminated", e.tag)));
        };
        let bytes = tail.get(..len).unwrap_or_default();
        Ok(String::from_utf8_lossy(bytes).into_owned())
    }

    fn int32(e: &Entry, store: &[u8]) -> Result<i32, CatalogError> {
        if e.kind != TYPE_INT32 || e.count == 0 {
            return Err(err(format!("tag {} has type {} count {}, expected INT32", e.tag, e.kind, e.count)));
        }
        read::array::<4>(store, e.offset)
            .map(i32::from_be_bytes)
            .ok_or_else(|| err(format!("tag {} overruns the data store", e.tag)))
    }
}

/// A read-only SQLite file-format reader, limited to what the rpmdb needs.
///
/// Reference: <https://www.sqlite.org/fileformat2.html>.
mod sqlite {
    use super::{read, Budget, FMT_SQLITE};
    use crate::CatalogError;

    fn err(reason: impl Into<String>) -> CatalogError {
        CatalogError::malformed(FMT_SQLITE, reason)
    }

    const PAGE_INTERIOR_TABLE: u8 = 5;
    const PAGE_LEAF_TABLE: u8 = 13;

    #[derive(Debug)]
    struct Db<'a> {
        data: &'a [u8],
        page_size: usize,
        usable: usize,
        page_count: usize,
        visited: Vec<bool>,
        budget: Budget,
    }

    /// Calls `f` with the `blob` column of every row of table `Packages`, in rowid order.
    pub(super) fn for_each_blob(
        data: &[u8],
        f: &mut dyn FnMut(&[u8]) -> Result<(), CatalogError>,
    ) -> Result<(), CatalogError> {
        let mut db = Db::open(data)?;
        let mut root = None;
        db.walk_table(1, &mut |payload| {
            let fields = record(payload)?;
            let text = |i: usize| fields.get(i).filter(|f| f.is_text()).map(|f| f.bytes);
            if text(0) == Some(b"table".as_slice())
                && text(1).is_some_and(|n| n.eq_ignore_ascii_case(b"Packages"))
                && root.is_none()
            {
                let page = fields.get(3).and_then(Field::int);
                root = Some(page.ok_or_else(|| err("Packages table has no valid root page"))?);
            }
            Ok(())
        })?;
        let root = root.ok_or_else(|| err("no Packages table"))?;
        let root = u32::try_from(root).map_err(|_| err(format!("Packages root page {root} out of range")))?;
        db.walk_table(root, &mut |payload| {
            let fields = record(payload)?;
            match fields.get(1) {
                Some(field) if field.is_blob() => f(field.bytes),
                _ => Err(err("Packages row without a blob in its second column")),
            }
        })
    }

    impl<'a> Db<'a> {
        fn open(data: &'a [u8]) -> Result<Self, CatalogError> {
            let raw = read::u16_be(data, 16).ok_or_else(|| err("truncated file header"))?;
            let page_size = if raw == 1 { 65536 } else { usize::from(raw) };
            if !page_size.is_power_of_two() || page_size < 512 {
                return Err(err(format!("invalid page size {page_size}")));
            }
            let reserved = data.get(20).copied().map(usize::from).ok_or_else(|| err("truncated file header"))?;
            let usable = page_size.saturating_sub(reserved);
            if usable < 480 {
                return Err(err(format!("usable page size {usable} below the minimum of 480")));
            }
            let page_count = data.len() / page_size;
            Ok(Db {
                data,
                page_size,
                usable,
                page_count,
                visited: vec![false; page_count],
                budget: Budget::new(FMT_SQLITE, data),
            })
        }

        /// Page `n` (1-based), marking it visited; each page may be used once.
        fn page(&mut self, n: u32) -> Result<&'a [u8], CatalogError> {
            let idx = usize::try_from(n).ok().and_then(|n| n.checked_sub(1));
            let seen = idx.and_then(|i| self.visited.get_mut(i));
            let Some(seen) = seen else {
                return Err(err(format!("page {n} outside the file ({} pages)", self.page_count)));
            };
            if std::mem::replace(seen, true) {
                return Err(err(format!("page {n} is referenced twice")));
            }
            let start = idx.and_then(|i| i.checked_mul(self.page_size)).unwrap_or(usize::MAX);
            read::slice(self.data, start, self.page_size).ok_or_else(|| err(format!("page {n} outside the file")))
        }

        /// Walks the table B-tree rooted at `root` in key order, calling `f` with each row's payload.
        fn walk_table(
            &mut self,
            root: u32,
            f: &mut dyn FnMut(&[u8]) -> Result<(), CatalogError>,
        ) -> Result<(), CatalogError> {
            let mut stack = vec![root];
            while let Some(n) = stack.pop() {
                let page = self.page(n)?;
                let hdr = if n == 1 { 100 } else { 0 };
                let kind = page.get(hdr).copied().ok_or_else(|| err("truncated page"))?;
                let cells = read::u16_be(page, hdr + 3).ok_or_else(|| err("truncated page header"))?;
                match kind {
                    PAGE_LEAF_TABLE => {
                        for i in 0..usize::from(cells) {
                            let cell = cell_pointer(page, hdr + 8, i)?;
                            let payload = self.leaf_payload(page, cell)?;
                            f(&payload)?;
                        }
                    }
                    PAGE_INTERIOR_TABLE => {
                        let right = read::u32_be(page, hdr + 8).ok_or_else(|| err("truncated page header"))?;
                        stack.push(right);
                        // Push children right to left so the leftmost is walked first.
                        for i in (0..usize::from(cells)).rev() {
                            let cell = cell_pointer(page, hdr + 12, i)?;
                            let child = read::u32_be(page, cell).ok_or_else(|| err("cell outside its page"))?;
                            stack.push(child);
                        }
                    }
                    other => return Err(err(format!("page {n} has type {other}, expected a table B-tree page"))),
                }
            }
            Ok(())
        }

        /// The full payload of the table-leaf cell at `cell`, following overflow pages.
        fn leaf_payload(&mut self, page: &[u8], cell: usize) -> Result<Vec<u8>, CatalogError> {
            let (size, n1) = varint(page, cell).ok_or_else(|| err("cell outside its page"))?;
            let (_rowid, n2) = varint(page, cell.saturating_add(n1)).ok_or_else(|| err("cell outside its page"))?;
            let start = cell.saturating_add(n1).saturating_add(n2);
            let size = self.budget.take(size)?;
            let u = self.usable;
            let max_local = u - 35;
            let local = if size <= max_local {
                size
            } else {
                let min_local = (u - 12) * 32 / 255 - 23;
                let k = min_local + (size - min_local) % (u - 4);
                if k <= max_local {
                    k
                } else {
                    min_local
                }
            };
            let local_bytes = read::slice(page, start, local).ok_or_else(|| err("cell payload outside its page"))?;
            let mut payload = Vec::with_capacity(size);
            payload.extend_from_slice(local_bytes);
            if local < size {
                let mut next = read::u32_be(page, start.saturating_add(local))
                    .ok_or_else(|| err("overflow pointer outside its page"))?;
                while payload.len() < size {
                    if next == 0 {
                        return Err(err("overflow chain ends early"));
                    }
                    let ovf = self.page(next)?;
                    next = read::u32_be(ovf, 0).ok_or_else(|| err("truncated overflow page"))?;
                    let want = (size - payload.len()).min(u - 4);
                    let chunk = read::slice(ovf, 4, want).ok_or_else(|| err("truncated overflow page"))?;
                    payload.extend_from_slice(chunk);
                }
            }
            Ok(payload)
        }
    }

    fn cell_pointer(page: &[u8], array_start: usize, i: usize) -> Result<usize, CatalogError> {
        let off = i.checked_mul(2).and_then(|o| o.checked_add(array_start));
        off.and_then(|o| read::u16_be(page, o))
            .map(usize::from)
            .ok_or_else(|| err("cell pointer array outside its page"))
    }

    /// A SQLite varint at `pos`: (value, length in bytes).
    fn varint(d: &[u8], pos: usize) -> Option<(u64, usize)> {
        let mut v: u64 = 0;
        for i in 0..9usize {
            let b = *d.get(pos.checked_add(i)?)?;
            if i == 8 {
                return Some(((v << 8) | u64::from(b), 9));
            }
            v = (v << 7) | u64::from(b & 0x7f);
            if b & 0x80 == 0 {
                return Some((v, i + 1));
            }
        }
        None
    }

    #[derive(Debug, Clone, Copy)]
    struct Field<'p> {
        serial: u64,
        bytes: &'p [u8],
    }

    impl Field<'_> {
        fn is_blob(&self) -> bool {
            self.serial >= 12 && self.serial & 1 == 0
        }
        fn is_text(&self) -> bool {
            self.serial >= 13 && self.serial & 1 == 1
        }
        fn int(&self) -> Option<i64> {
            match self.serial {
                1..=6 => {
                    let mut buf = [0u8; 8];
                    let fill = if self.bytes.first().is_some_and(|b| b & 0x80 != 0) { 0xff } else { 0 };
                    buf.fill(fill);
                    let skip = 8usize.checked_sub(self.bytes.len())?;
                    buf.get_mut(skip..)?.copy_from_slice(self.bytes);
                    Some(i64::from_be_bytes(buf))
                }
                8 => Some(0),
                9 => Some(1),
                _ => None,
            }
        }
    }

    /// Content size of a serial type.
    fn serial_len(serial: u64) -> Option<u64> {
        match serial {
            0 | 8 | 9 => Some(0),
            1..=4 => Some(serial),
            5 => Some(6),
            6 | 7 => Some(8),
            10 | 11 => None,
            n => Some((n - 12) / 2),
        }
    }

    /// Decodes a record (row) into its fields.
    fn record(payload: &[u8]) -> Result<Vec<Field<'_>>, CatalogError> {
        let (hsize, mut pos) = varint(payload, 0).ok_or_else(|| err("empty record"))?;
        let hsize = usize::try_from(hsize)
            .ok()
            .filter(|&h| h <= payload.len() && h >= pos)
            .ok_or_else(|| err("record header larger than the record"))?;
        let header = payload.get(..hsize).unwrap_or_default();
        let mut body = hsize;
        let mut fields = Vec::new();
        while pos < hsize {
            let (serial, n) = varint(header, pos).ok_or_else(|| err("truncated record header"))?;
            pos = pos.saturating_add(n);
            let len = serial_len(serial)
                .and_then(|l| usize::try_from(l).ok())
                .ok_or_else(|| err(format!("invalid serial type {serial}")))?;
            let bytes = read::slice(payload, body, len).ok_or_else(|| err("record field past the record"))?;
            body = body.saturating_add(len);
            fields.push(Field { serial, bytes });
        }
        Ok(fields)
    }
}

/// The NDB format of rpm ≥ 4.15 (SUSE).
///
/// A 32-byte header (`RpmP`, version, generation, slot page count; little
/// endian), then slot pages of 4096 bytes holding 16-byte slots (`Slot`,
/// package index, block offset, block count; the first two slots are the
/// header), then blobs in 16-byte blocks, each a 16-byte header (`BlbS`,
/// package index, checksum, length) followed by the header blob.
mod ndb {
    use super::{read, Budget, FMT_NDB};
    use crate::CatalogError;

    const SLOT_PAGE_SIZE: usize = 4096;
    const BLOCK_SIZE: u64 = 16;

    fn err(reason: impl Into<String>) -> CatalogError {
        CatalogError::malformed(FMT_NDB, reason)
    }

    /// Calls `f` with every package blob, in slot order.
    pub(super) fn for_each_blob(
        data: &[u8],
        f: &mut dyn FnMut(&[u8]) -> Result<(), CatalogError>,
    ) -> Result<(), CatalogError> {
        if !data.starts_with(b"RpmP") {
            return Err(err("missing RpmP magic"));
        }
        let version = read::u32_le(data, 4).ok_or_else(|| err("truncated header"))?;
        if version != 0 {
            return Err(err(format!("unsupported NDB version {version}")));
        }
        let npages = read::u32_le(data, 12).ok_or_else(|| err("truncated header"))?;
        let slots_end = usize::try_from(npages)
            .ok()
            .and_then(|n| n.checked_mul(SLOT_PAGE_SIZE))
            .filter(|&end| end > 0 && end <= data.len())
            .ok_or_else(|| err(format!("{npages} slot pages do not fit in {} bytes", data.len())))?;
        let slots = data.get(32..slots_end).unwrap_or_default();
        let mut budget = Budget::new(FMT_NDB, data);
        for (i, slot) in slots.chunks_exact(16).enumerate() {
            if !slot.starts_with(b"Slot") {
                return Err(err(format!("slot {i} has a bad magic")));
            }
            let word = |k: usize| read::u32_le(slot, k * 4).unwrap_or(0);
            let (pkg_index, blk_offset, blk_count) = (word(1), word(2), word(3));
            if pkg_index == 0 {
                continue; // free slot
            }
            let start = u64::from(blk_offset) * BLOCK_SIZE;
            let start = usize::try_from(start).map_err(|_| err("blob offset out of range"))?;
            let head = read::slice(data, start, 16)
                .ok_or_else(|| err(format!("package {pkg_index}: blob header outside the file")))?;
            if !head.starts_with(b"BlbS") {
                return Err(err(format!("package {pkg_index}: bad blob magic")));
            }
            let blob_index = read::u32_le(head, 4).unwrap_or(0);
            if blob_index != pkg_index {
                return Err(err(format!("slot for package {pkg_index} points to the blob of package {blob_index}")));
            }
            let len = read::u32_le(head, 12).unwrap_or(0);
            if 16 + u64::from(len) > u64::from(blk_count) * BLOCK_SIZE {
                return Err(err(format!("package {pkg_index}: blob of {len} bytes exceeds its {blk_count} blocks")));
            }
            let len = budget.take(u64::from(len))?;
            let blob = read::slice(data, start.saturating_add(16), len)
                .ok_or_else(|| err(format!("package {pkg_index}: blob extends past the end of the file")))?;
            f(blob)?;
        }
        Ok(())
    }
}

/// Berkeley DB hash databases (`Packages` of rpm < 4.16).
///
/// Page 0 is the hash metadata page; hash pages (types 2 and 13) hold item
/// offsets in key/value pairs; rpm's values are header blobs stored off-page
/// (`H_OFFPAGE` items) in chains of overflow pages (type 7). The file is in the
/// byte order of the machine that wrote it, told apart by the magic number.
mod bdb {
    use super::{read, Budget, FMT_BDB};
    use crate::CatalogError;

    pub(super) const HASH_MAGIC: u32 = 0x0006_1561;
    pub(super) const BTREE_MAGIC: u32 = 0x0005_3162;

    const PAGE_HEADER: usize = 26;
    const P_HASH_UNSORTED: u8 = 2;
    const P_OVERFLOW: u8 = 7;
    const P_HASHMETA: u8 = 8;
    const P_HASH: u8 = 13;
    const H_KEYDATA: u8 = 1;
    const H_OFFPAGE: u8 = 3;

    fn err(reason: impl Into<String>) -> CatalogError {
        CatalogError::malformed(FMT_BDB, reason)
    }

    #[derive(Debug, Clone, Copy)]
    struct Order {
        big_endian: bool,
    }

    impl Order {
        fn u16(self, d: &[u8], off: usize) -> Option<u16> {
            read::array::<2>(d, off).map(
                |b| {
                    if self.big_endian {
                        u16::from_be_bytes(b)
                    } else {
                        u16::from_le_bytes(b)
                    }
                },
            )
        }
        fn u32(self, d: &[u8], off: usize) -> Option<u32> {
            read::array::<4>(d, off).map(
                |b| {
                    if self.big_endian {
                        u32::from_be_bytes(b)
                    } else {
                        u32::from_le_bytes(b)
                    }
                },
            )
        }
    }

    /// Calls `f` with every value (header blob), in page order.
    pub(super) fn for_each_blob(
        data: &[u8],
        f: &mut dyn FnMut(&[u8]) -> Result<(), CatalogError>,
    ) -> Result<(), CatalogError> {
        let magic = read::array::<4>(data, 12).ok_or_else(|| err("truncated metadata page"))?;
        let order = if u32::from_le_bytes(magic) == HASH_MAGIC {
            Order { big_endian: false }
        } else if u32::from_be_bytes(magic) == HASH_MAGIC {
            Order { big_endian: true }
        } else {
            return Err(err("not a Berkeley DB hash database"));
        };
        let page_size = order.u32(data, 20).ok_or_else(|| err("truncated metadata page"))?;
        let page_size = usize::try_from(page_size)
            .ok()
            .filter(|p| p.is_power_of_two() && (512..=65536).contains(p))
            .ok_or_else(|| err(format!("invalid page size {page_size}")))?;
        if data.get(24).copied() != Some(0) {
            return Err(err("encrypted databases are not supported"));
        }
        if data.get(25).copied() != Some(P_HASHMETA) {
            return Err(err("page 0 is not a hash metadata page"));
        }
        let last_pgno = order.u32(data, 32).ok_or_else(|| err("truncated metadata page"))?;
        let page_count = data.len() / page_size;
        let declared = usize::try_from(last_pgno).ok().and_then(|l| l.checked_add(1));
        if declared.is_none_or(|d| d > page_count) {
            return Err(err(format!("metadata names last page {last_pgno} but the file holds {page_count} pages")));
        }
        let pages = declared.unwrap_or(page_count);
        let mut db = Db {
            data,
            page_size,
            order,
            page_count: pages,
            used: vec![false; pages],
            budget: Budget::new(FMT_BDB, data),
        };
        for pgno in 1..pages {
            let page = db.page(pgno)?;
            let kind = page.get(25).copied().unwrap_or(0);
            if kind != P_HASH && kind != P_HASH_UNSORTED {
                continue;
            }
            let entries = order.u16(page, 20).map(usize::from).ok_or_else(|| err("truncated page"))?;
            if entries % 2 != 0 {
                return Err(err(format!("hash page {pgno} has an odd number of items ({entries})")));
            }
            for pair in 0..entries / 2 {
                let key = db.item(page, pair * 2)?;
                let value = db.item(page, pair * 2 + 1)?;
                match value.first().copied() {
                    Some(H_OFFPAGE) => {
                        let blob = db.overflow(value)?;
                        f(&blob)?;
                    }
                    Some(H_KEYDATA) => {
                        // rpm keeps a small bookkeeping record under key 0.
                        let key_is_zero =
                            key.first() == Some(&H_KEYDATA) && key.get(1..).is_some_and(|k| k.iter().all(|&b| b == 0));
                        if !key_is_zero {
                            let blob = value.get(1..).unwrap_or_default();
                            db.budget.take(blob.len() as u64)?;
                            f(blob)?;
                        }
                    }
                    _ => {} // duplicates: not used by rpm
                }
            }
        }
        Ok(())
    }

    #[derive(Debug)]
    struct Db<'a> {
        data: &'a [u8],
        page_size: usize,
        order: Order,
        page_count: usize,
        /// Overflow pages already consumed.
        used: Vec<bool>,
        budget: Budget,
    }

    impl<'a> Db<'a> {
        fn page(&self, pgno: usize) -> Result<&'a [u8], CatalogError> {
            let start = pgno.checked_mul(self.page_size);
            start
                .filter(|_| pgno < self.page_count)
                .and_then(|s| read::slice(self.data, s, self.page_size))
                .ok_or_else(|| err(format!("page {pgno} outside the file")))
        }

        /// Item `i` of a hash page: from its offset to the start of the previous item.
        fn item(&self, page: &'a [u8], i: usize) -> Result<&'a [u8], CatalogError> {
            let at = |k: usize| {
                k.checked_mul(2)
                    .and_then(|o| o.checked_add(PAGE_HEADER))
                    .and_then(|o| self.order.u16(page, o))
                    .map(usize::from)
            };
            let start = at(i).ok_or_else(|| err("item index outside its page"))?;
            let end = match i.checked_sub(1) {
                None => self.page_size,
                Some(prev) => at(prev).ok_or_else(|| err("item index outside its page"))?,
            };
            page.get(start..end)
                .filter(|item| !item.is_empty() && start >= PAGE_HEADER)
                .ok_or_else(|| err(format!("item {i} has an invalid extent {start}..{end}")))
        }

        /// The value of an `H_OFFPAGE` item, gathered from its overflow chain.
        fn overflow(&mut self, item: &[u8]) -> Result<Vec<u8>, CatalogError> {
            let first = self.order.u32(item, 4).ok_or_else(|| err("truncated off-page item"))?;
            let total = self.order.u32(item, 8).ok_or_else(|| err("truncated off-page item"))?;
            let total = self.budget.take(u64::from(total))?;
            let mut value = Vec::with_capacity(total);
            let mut next = first;
            while next != 0 {
                let pgno = usize::try_from(next).map_err(|_| err("overflow page number out of range"))?;
                let used = self
                    .used
                    .get_mut(pgno)
                    .filter(|_| pgno != 0)
                    .ok_or_else(|| err(format!("overflow page {pgno} outside the file")))?;
                if std::mem::replace(used, true) {
                    return Err(err(format!("overflow page {pgno} is referenced twice")));
                }
                let page = self.page(pgno)?;
                if page.get(25).copied() != Some(P_OVERFLOW) {
                    return Err(err(format!("page {pgno} in an overflow chain is not an overflow page")));
                }
                let len = self.order.u16(page, 22).map(usize::from).ok_or_else(|| err("truncated page"))?;
                let chunk = read::slice(page, PAGE_HEADER, len)
                    .ok_or_else(|| err(format!("overflow page {pgno} claims {len} bytes")))?;
                if chunk.len() > total - value.len() {
                    return Err(err("overflow chain longer than its item"));
                }
                value.extend_from_slice(chunk);
                next = self.order.u32(page, 16).ok_or_else(|| err("truncated page"))?;
            }
            if value.len() != total {
                return Err(err(format!("overflow chain holds {} of {total} bytes", value.len())));
            }
            Ok(value)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SQLITE_DB: &str =
        concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/pkgdb/rpm/cbl-mariner-2.0--rpmdb.sqlite");
    const NDB_DB: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/pkgdb/rpm/sle15-bci--Packages.db");
    const BDB_DB: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/pkgdb/rpm/libuuid--Packages");

    fn load(path: &str) -> Vec<u8> {
        std::fs::read(path).expect("test database under ../shared/pkgdb/rpm")
    }

    fn find<'a>(pkgs: &'a [RpmPackage], name: &str) -> &'a RpmPackage {
        pkgs.iter().find(|p| p.name == name).expect("package present")
    }

    fn blobs(data: &[u8]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut sink = |b: &[u8]| -> Result<(), CatalogError> {
            out.push(b.to_vec());
            Ok(())
        };
        match detect(data).expect("format") {
            DbFormat::Sqlite => sqlite::for_each_blob(data, &mut sink),
            DbFormat::Ndb => ndb::for_each_blob(data, &mut sink),
            DbFormat::Bdb => bdb::for_each_blob(data, &mut sink),
        }
        .expect("blobs");
        out
    }

    #[test]
    fn sqlite_mariner() {
        let data = load(SQLITE_DB);
        let pkgs = parse_db(&data).expect("parse");
        assert_eq!(pkgs.len(), 129);
        assert_eq!(pkgs[0].name, "mariner-release");
        assert_eq!(pkgs[128].name, "sqlite");
        assert_eq!(
            find(&pkgs, "openssl-libs"),
            &RpmPackage {
                name: "openssl-libs".into(),
                version: "1.1.1k".into(),
                release: "7.cm2".into(),
                epoch: None,
                arch: "x86_64".into(),
                source_rpm: "openssl-1.1.1k-7.cm2.src.rpm".into(),
                license: "OpenSSL".into(),
                vendor: "Microsoft Corporation".into(),
            }
        );
        let ca = find(&pkgs, "ca-certificates-tools");
        assert_eq!(ca.epoch, Some(1));
        assert_eq!((ca.version.as_str(), ca.release.as_str()), ("2.0.0", "1.cm2"));
        assert_eq!(ca.arch, "noarch");
        assert_eq!(ca.source_rpm, "ca-certificates-2.0.0-1.cm2.src.rpm");
        assert_eq!(pkgs.iter().filter(|p| p.epoch.is_some()).count(), 3);
        let stdcxx = find(&pkgs, "libstdc++");
        assert_eq!(stdcxx.source_rpm, "gcc-11.2.0-1.cm2.src.rpm");
        assert!(pkgs.iter().all(|p| p.vendor == "Microsoft Corporation"));
    }

    /// Cross-check the pure-Rust SQLite reader against SQLite itself.
    #[test]
    fn sqlite_reader_agrees_with_sqlite() {
        use rusqlite::{Connection, OpenFlags};
        let uri = format!("file:{SQLITE_DB}?immutable=1");
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI;
        let conn = Connection::open_with_flags(uri, flags).expect("open");
        let mut stmt = conn.prepare("SELECT blob FROM Packages ORDER BY hnum").expect("prepare");
        let expected: Vec<Vec<u8>> =
            stmt.query_map([], |r| r.get(0)).expect("query").collect::<Result<_, _>>().expect("rows");
        assert_eq!(expected.len(), 129);
        assert!(blobs(&load(SQLITE_DB)) == expected, "blobs differ from SQLite's");
    }

    #[test]
    fn ndb_sle15() {
        let data = load(NDB_DB);
        let pkgs = parse_db(&data).expect("parse");
        assert_eq!(pkgs.len(), 35);
        assert_eq!(pkgs[0].name, "system-user-root");
        assert_eq!(pkgs[34].name, "rpm-ndb");
        let glibc = find(&pkgs, "glibc");
        assert_eq!((glibc.version.as_str(), glibc.release.as_str()), ("2.31", "9.3.2"));
        assert_eq!(glibc.arch, "x86_64");
        assert_eq!(glibc.source_rpm, "glibc-2.31-9.3.2.src.rpm");
        assert_eq!(glibc.vendor, "SUSE LLC <https://www.suse.com/>");
        let gcc = find(&pkgs, "libgcc_s1");
        assert_eq!(gcc.version, "11.2.1+git610");
        assert_eq!(gcc.source_rpm, "gcc11-11.2.1+git610-1.3.9.src.rpm");
        assert_eq!(gcc.license, "GPL-3.0-or-later WITH GCC-exception-3.1");
        assert_eq!(find(&pkgs, "file-magic").arch, "noarch");
        assert!(pkgs.iter().all(|p| p.epoch.is_none()));
    }

    #[test]
    fn bdb_libuuid() {
        let data = load(BDB_DB);
        let pkgs = parse_db(&data).expect("parse");
        assert_eq!(
            pkgs,
            vec![RpmPackage {
                name: "libuuid".into(),
                version: "2.32.1".into(),
                release: "42.el8_8".into(),
                epoch: None,
                arch: "x86_64".into(),
                source_rpm: "util-linux-2.32.1-42.el8_8.src.rpm".into(),
                license: "BSD".into(),
                vendor: "Red Hat, Inc.".into(),
            }]
        );
        // The value spans the 20 overflow pages 3..=22.
        assert_eq!(blobs(&data)[0].len(), 0x13bf0);
    }

    #[test]
    fn bdb_big_endian() {
        // Byte-swap every metadata/page-header field of the real file.
        let mut data = load(BDB_DB);
        let ps = 4096;
        let swap = |d: &mut [u8], off: usize, n: usize| d[off..off + n].reverse();
        for f in [8, 12, 16, 20, 28, 32] {
            swap(&mut data, f, 4);
        }
        for p in 1..data.len() / ps {
            let base = p * ps;
            for f in [8, 12, 16] {
                swap(&mut data, base + f, 4);
            }
            let n = u16::from_le_bytes([data[base + 20], data[base + 21]]) as usize;
            for f in [20, 22] {
                swap(&mut data, base + f, 2);
            }
            if matches!(data[base + 25], 2 | 13) {
                for i in 0..n {
                    let at = base + 26 + 2 * i;
                    let off = u16::from_le_bytes([data[at], data[at + 1]]) as usize;
                    swap(&mut data, at, 2);
                    if data[base + off] == 3 {
                        swap(&mut data, base + off + 4, 4);
                        swap(&mut data, base + off + 8, 4);
                    }
                }
            }
        }
        let pkgs = parse_db(&data).expect("parse");
        assert_eq!(pkgs.len(), 1);
        assert_eq!(pkgs[0].name, "libuuid");
    }

    #[test]
    fn catalog_packages() {
        let pkgs = parse("/var/lib/rpm/rpmdb.sqlite", &load(SQLITE_DB)).expect("parse");
        assert_eq!(pkgs.len(), 129);
        let p = pkgs.iter().find(|p| p.name == "openssl-libs").expect("openssl-libs");
        assert_eq!(p.version, "1.1.1k-7.cm2");
        assert_eq!(p.kind, PackageType::Rpm);
        assert_eq!(p.arch.as_deref(), Some("x86_64"));
        assert_eq!(p.source_name.as_deref(), Some("openssl"));
        assert_eq!(p.source_version.as_deref(), Some("1.1.1k-7.cm2"));
        assert_eq!(p.licenses, vec!["OpenSSL".to_string()]);
        assert_eq!(p.found_in, "/var/lib/rpm/rpmdb.sqlite");
        assert_eq!(p.purl, "pkg:rpm/microsoft/openssl-libs@1.1.1k-7.cm2?arch=x86_64");
        let ca = pkgs.iter().find(|p| p.name == "ca-certificates-tools").expect("ca");
        assert_eq!(ca.version, "1:2.0.0-1.cm2");
        assert_eq!(ca.purl, "pkg:rpm/microsoft/ca-certificates-tools@2.0.0-1.cm2?arch=noarch&epoch=1");

        let pkgs = parse("/var/lib/rpm/Packages.db", &load(NDB_DB)).expect("parse");
        let p = pkgs.iter().find(|p| p.name == "libgcc_s1").expect("libgcc_s1");
        assert_eq!(p.source_name.as_deref(), Some("gcc11"));
        assert_eq!(p.source_version.as_deref(), Some("11.2.1+git610-1.3.9"));
        assert_eq!(p.purl, "pkg:rpm/suse/libgcc_s1@11.2.1%2Bgit610-1.3.9?arch=x86_64");

        let pkgs = parse("/var/lib/rpm/Packages", &load(BDB_DB)).expect("parse");
        assert_eq!(pkgs[0].purl, "pkg:rpm/redhat/libuuid@2.32.1-42.el8_8?arch=x86_64");
        assert_eq!(pkgs[0].source_name.as_deref(), Some("util-linux"));
    }

    #[test]
    fn source_rpm_split() {
        assert_eq!(split_source_rpm("foo-1.2-3.el8.src.rpm"), Some(("foo", "1.2-3.el8")));
        assert_eq!(split_source_rpm("util-linux-2.32.1-42.el8_8.src.rpm"), Some(("util-linux", "2.32.1-42.el8_8")));
        assert_eq!(split_source_rpm("kernel-5.14-1.nosrc.rpm"), Some(("kernel", "5.14-1")));
        assert_eq!(split_source_rpm("foo-1.2.src.rpm"), None);
        assert_eq!(split_source_rpm(""), None);
        assert_eq!(split_source_rpm("-1-2.src.rpm"), None);
    }

    #[test]
    fn vendor_namespaces() {
        assert_eq!(vendor_namespace("Microsoft Corporation"), "microsoft");
        assert_eq!(vendor_namespace("SUSE LLC <https://www.suse.com/>"), "suse");
        assert_eq!(vendor_namespace("openSUSE"), "opensuse");
        assert_eq!(vendor_namespace("Red Hat, Inc."), "redhat");
        assert_eq!(vendor_namespace("Fedora Project"), "fedora");
        assert_eq!(vendor_namespace("Acme Widgets"), "");
        assert_eq!(vendor_namespace(""), "");
    }

    enum Val<'a> {
        S(&'a str),
        I(i32),
    }

    /// A header blob with the given tags (strings as STRING, ints as INT32).
    fn make_header(tags: &[(u32, Val<'_>)]) -> Vec<u8> {
        let mut index = Vec::new();
        let mut store = Vec::new();
        for (tag, v) in tags {
            let (kind, off) = match v {
                Val::S(s) => {
                    let off = store.len();
                    store.extend_from_slice(s.as_bytes());
                    store.push(0);
                    (6u32, off)
                }
                Val::I(i) => {
                    while store.len() % 4 != 0 {
                        store.push(0);
                    }
                    let off = store.len();
                    store.extend_from_slice(&i.to_be_bytes());
                    (4u32, off)
                }
            };
            for w in [*tag, kind, off as u32, 1] {
                index.extend_from_slice(&w.to_be_bytes());
            }
        }
        let mut blob = Vec::new();
        blob.extend_from_slice(&(tags.len() as u32).to_be_bytes());
        blob.extend_from_slice(&(store.len() as u32).to_be_bytes());
        blob.extend_from_slice(&index);
        blob.extend_from_slice(&store);
        blob
    }

    /// An NDB database holding `blobs`.
    fn make_ndb(blobs: &[Vec<u8>]) -> Vec<u8> {
        let mut db = vec![0u8; 4096];
        db[..4].copy_from_slice(b"RpmP");
        db[8..12].copy_from_slice(&1u32.to_le_bytes());
        db[12..16].copy_from_slice(&1u32.to_le_bytes());
        for slot in db[32..].chunks_exact_mut(16) {
            slot[..4].copy_from_slice(b"Slot");
        }
        for (i, blob) in blobs.iter().enumerate() {
            let idx = i as u32 + 1;
            let start = db.len();
            db.extend_from_slice(b"BlbS");
            db.extend_from_slice(&idx.to_le_bytes());
            db.extend_from_slice(&0u32.to_le_bytes());
            db.extend_from_slice(&(blob.len() as u32).to_le_bytes());
            db.extend_from_slice(blob);
            db.resize(db.len().div_ceil(16) * 16 + 16, 0);
            let blocks = ((db.len() - start) / 16) as u32;
            let slot = 32 + 16 * i;
            db[slot + 4..slot + 8].copy_from_slice(&idx.to_le_bytes());
            db[slot + 8..slot + 12].copy_from_slice(&((start / 16) as u32).to_le_bytes());
            db[slot + 12..slot + 16].copy_from_slice(&blocks.to_le_bytes());
        }
        db
    }

    #[test]
    fn synthetic_headers_and_gpg_pubkey_skipped() {
        let foo = make_header(&[
            (1000, Val::S("foo")),
            (1001, Val::S("1.0")),
            (1002, Val::S("2")),
            (1003, Val::I(7)),
            (1022, Val::S("aarch64")),
            (1044, Val::S("foo-1.0-2.src.rpm")),
        ]);
        let key = make_header(&[(1000, Val::S("gpg-pubkey")), (1001, Val::S("fd431d51")), (1002, Val::S("4ae0493b"))]);
        let p = parse_header_blob(&foo).expect("foo");
        assert_eq!(p.epoch, Some(7));
        assert_eq!(p.license, "");
        assert_eq!(parse_header_blob(&key).expect("key").name, "gpg-pubkey");

        let db = make_ndb(&[key.clone(), foo.clone(), key]);
        let pkgs = parse_db(&db).expect("ndb");
        assert_eq!(pkgs, vec![p]);
        let pkgs = parse("/p", &db).expect("parse");
        assert_eq!(pkgs[0].version, "7:1.0-2");
        assert_eq!(pkgs[0].purl, "pkg:rpm/foo@1.0-2?arch=aarch64&epoch=7");
    }

    #[test]
    fn header_validation() {
        // Missing NAME.
        assert!(parse_header_blob(&make_header(&[(1001, Val::S("1"))])).is_err());
        // Wrong type for NAME.
        assert!(parse_header_blob(&make_header(&[(1000, Val::I(1))])).is_err());
        // Huge counts in a tiny blob: an error, not an allocation.
        let mut blob = vec![0u8; 8];
        blob[..4].copy_from_slice(&0xffffu32.to_be_bytes());
        blob[4..].copy_from_slice(&0x0fff_ffffu32.to_be_bytes());
        assert!(parse_header_blob(&blob).is_err());
        blob[..4].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(parse_header_blob(&blob).is_err());
        blob[..4].copy_from_slice(&1u32.to_be_bytes());
        blob[4..].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(parse_header_blob(&blob), Err(CatalogError::TooLarge { .. })));
        // Offset past the store, and an unterminated string.
        let mut good = make_header(&[(1000, Val::S("x"))]);
        good[16..20].copy_from_slice(&100u32.to_be_bytes());
        assert!(parse_header_blob(&good).is_err());
        let mut good = make_header(&[(1000, Val::S("x"))]);
        let last = good.len() - 1;
        good[last] = b'y';
        assert!(parse_header_blob(&good).is_err());
        // Not a database at all.
        assert!(parse_db(b"").is_err());
        assert!(parse_db(b"hello world, not an rpmdb").is_err());
    }

    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            x
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
    }

    /// Must return (Ok or Err) without panicking; the result is irrelevant.
    fn survive(data: &[u8]) {
        let _ = parse("/fuzz", data);
    }

    #[test]
    fn truncated_inputs_do_not_panic() {
        for path in [SQLITE_DB, NDB_DB, BDB_DB] {
            let data = load(path);
            let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
            for n in 0..300 {
                survive(&data[..n.min(data.len())]);
            }
            for _ in 0..120 {
                let n = rng.below(data.len());
                survive(&data[..n]);
            }
            for n in [data.len() - 1, data.len() / 2, 4096, 4097, 8192] {
                let r = parse_db(&data[..n]);
                assert!(r.is_err() || r.is_ok_and(|p| p.len() <= 129));
            }
        }
        let blob = &blobs(&load(NDB_DB))[0];
        for n in 0..blob.len() {
            let _ = parse_header_blob(&blob[..n]);
        }
    }

    #[test]
    fn mutated_inputs_do_not_panic() {
        let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
        for (path, rounds) in [(SQLITE_DB, 60), (NDB_DB, 150), (BDB_DB, 400)] {
            let orig = load(path);
            let mut data = orig.clone();
            for _ in 0..rounds {
                let flips = 1 + rng.below(16);
                let mut touched = Vec::new();
                for _ in 0..flips {
                    // Half of the flips land in the first pages, where the structure is.
                    let span = if rng.next() & 1 == 0 { orig.len().min(16384) } else { orig.len() };
                    let at = rng.below(span);
                    data[at] ^= 1 << rng.below(8);
                    touched.push(at);
                }
                survive(&data);
                for at in touched {
                    data[at] = orig[at];
                }
            }
        }
        // Header blobs: flip bits, overwrite words with extreme values.
        let blob = blobs(&load(NDB_DB)).swap_remove(0);
        for _ in 0..3000 {
            let mut b = blob.clone();
            for _ in 0..1 + rng.below(4) {
                let at = rng.below(b.len().min(512));
                if rng.below(3) == 0 && at + 4 <= b.len() {
                    let v = [0u32, 1, 0xffff, 0x7fff_ffff, u32::MAX][rng.below(5)];
                    b[at..at + 4].copy_from_slice(&v.to_be_bytes());
                } else {
                    b[at] ^= 1 << rng.below(8);
                }
            }
            let _ = parse_header_blob(&b);
        }
    }

    #[test]
    fn random_inputs_do_not_panic() {
        let mut rng = XorShift(0xdead_beef_cafe_f00d);
        let prefixes: [&[u8]; 4] = [b"SQLite format 3\0", b"RpmP", b"", b""];
        for round in 0..600 {
            let len = rng.below(if round % 4 == 0 { 70_000 } else { 5000 });
            let mut data: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            match round % 5 {
                0 | 1 => {
                    let p = prefixes[round % 2];
                    let n = p.len().min(data.len());
                    data[..n].copy_from_slice(&p[..n]);
                    if round % 2 == 0 && data.len() > 21 {
                        // A plausible page size makes the reader go deeper.
                        data[16] = 2;
                        data[17] = 0;
                        data[20] = 0;
                    } else if data.len() > 16 {
                        data[4..8].fill(0);
                        data[12..16].copy_from_slice(&1u32.to_le_bytes());
                    }
                }
                2 if data.len() > 36 => {
                    data[12..16].copy_from_slice(&bdb::HASH_MAGIC.to_le_bytes());
                    data[20..24].copy_from_slice(&512u32.to_le_bytes());
                    data[24] = 0;
                    data[25] = 8;
                    let last = (data.len() / 512).saturating_sub(1) as u32;
                    data[32..36].copy_from_slice(&last.to_le_bytes());
                    // Make some pages hash pages and some overflow pages.
                    for p in 1..data.len() / 512 {
                        data[p * 512 + 25] = [2, 7, 13][rng.below(3)];
                    }
                }
                _ => {}
            }
            survive(&data);
        }
    }
}
