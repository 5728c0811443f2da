//! Language packages embedded in executables.
//!
//! Two kinds of embedded metadata are read:
//!
//! * **Go build info** — every Go binary built in module mode carries the Go
//!   toolchain version and its module list (`go version -m` shows it). The
//!   blob starts with the 14-byte magic `"\xff Go buildinf:"`, 16-byte aligned,
//!   normally at the start of the `.go.buildinfo` section. Both the Go 1.18+
//!   inline format (varint-prefixed strings right after the 32-byte header)
//!   and the older pointer format (virtual addresses of Go string headers,
//!   resolved through the loadable segments) are supported.
//! * **cargo-auditable** — Rust binaries built with `cargo auditable` carry a
//!   zlib-compressed JSON dependency list in the `.dep-v0` section.
//!
//! The executable is parsed once with the `object` crate; all reads are
//! bounds-checked slices of the input, so hostile files can at worst yield
//! no packages.
//!
//! Package choices (documented because Trivy and Syft differ in details):
//!
//! * Go: every dependency is reported under the path and version of its
//!   replacement when a `=>` line follows it — except replacements by a local
//!   directory (`=> ../fork`), which carry no version and are skipped. The
//!   main module is always reported (it is the application); a `(devel)`
//!   version (a local build) is reported as an empty version, as Trivy does. The Go standard library is reported as module `stdlib`
//!   with the toolchain version as a semantic version with a leading `v`, the
//!   way Trivy does: `go1.19.8` → `v1.19.8`, `go1.21rc2` → `v1.21.0-rc.2`,
//!   `go1.20` → `v1.20.0` (the same conversion the Go vulnerability database
//!   uses). Development toolchains (`devel ...`) get no `stdlib` package.
//! * Rust: every package of kind `runtime` (the default kind) is reported,
//!   including the root crate and path (`local`) dependencies, as Trivy and
//!   Syft do; `build`-kind packages (build-dependencies and proc-macros, which
//!   are not linked into the binary) are skipped.

use std::io::Read;

use object::{Object, ObjectSection, ObjectSegment, SegmentFlags};
use palisade_model::{Package, PackageBuilder, PackageType};
use serde::Deserialize;

use crate::CatalogError;

/// The Go build info magic.
const GO_MAGIC: &[u8; 14] = b"\xff Go buildinf:";
/// Alignment of the build info header.
const GO_ALIGN: u64 = 16;
/// Size of the build info header.
const GO_HEADER_LEN: u64 = 32;
/// How far into the `.go.buildinfo` section the header is searched for.
const GO_SECTION_WINDOW: u64 = 64 * 1024;
/// How far into the first writable segment the header is searched for when
/// there is no `.go.buildinfo` section (stripped section headers).
const GO_SEGMENT_WINDOW: u64 = 4 << 20;
/// Longest Go version string accepted.
const GO_MAX_VERSION_LEN: u64 = 1024;
/// Longest module-info string accepted.
const GO_MAX_MODINFO_LEN: u64 = 16 << 20;

/// Most bytes the cargo-auditable JSON may decompress to.
pub const MAX_RUST_AUDIT_JSON: u64 = 8 << 20;
/// Format name used in cargo-auditable errors.
const RUST_AUDIT_FORMAT: &str = "cargo-auditable dependency list";

/// Build information embedded in a Go binary.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GoBuildInfo {
    /// The toolchain version exactly as recorded, e.g. `go1.19.8` or
    /// `go1.22.1 X:boringcrypto`.
    pub go_version: String,
    /// Path of the main module (empty when built outside module mode).
    pub main_path: String,
    /// Version of the main module; `(devel)` for local builds before Go 1.24.
    pub main_version: String,
    /// Dependencies, in the order recorded, with `=>` replacements applied
    /// (the replacement's path, version and sum are the ones given).
    pub deps: Vec<GoModule>,
}

/// One Go module as recorded in the build info.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GoModule {
    /// Module path, e.g. `golang.org/x/text` (a directory for local replacements).
    pub path: String,
    /// Module version, e.g. `v0.3.7` (empty for local replacements).
    pub version: String,
    /// The go.sum hash, e.g. `h1:...` (may be empty).
    pub sum: String,
}

/// Sections of interest, found in one pass over the section table.
#[derive(Default)]
struct Sections<'a> {
    /// Address and contents of `.go.buildinfo` (`__go_buildinfo` in Mach-O).
    go: Option<(u64, &'a [u8])>,
    /// Contents of `.dep-v0` (`__dep_v0` in Mach-O).
    dep: Option<&'a [u8]>,
}

fn scan_sections<'a>(file: &object::File<'a>) -> Sections<'a> {
    let mut found = Sections::default();
    for section in file.sections() {
        let Ok(name) = section.name() else { continue };
        match name {
            ".go.buildinfo" | "__go_buildinfo" if found.go.is_none() => {
                if let Ok(bytes) = section.data() {
                    found.go = Some((section.address(), bytes));
                }
            }
            ".dep-v0" | "__dep_v0" if found.dep.is_none() => {
                if let Ok(bytes) = section.data() {
                    found.dep = Some(bytes);
                }
            }
            _ => {}
        }
        if found.go.is_some() && found.dep.is_some() {
            break;
        }
    }
    found
}

/// The file-backed part of the executable's address space.
struct Memory<'a> {
    /// `(virtual address, bytes)` of each loadable segment (and the build
    /// info section, in case it is not covered by a segment).
    regions: Vec<(u64, &'a [u8])>,
}

impl<'a> Memory<'a> {
    fn new(file: &object::File<'a>, go_section: Option<(u64, &'a [u8])>) -> Self {
        let mut regions: Vec<(u64, &'a [u8])> = go_section.into_iter().collect();
        for segment in file.segments() {
            if let Ok(bytes) = segment.data() {
                if !bytes.is_empty() {
                    regions.push((segment.address(), bytes));
                }
            }
        }
        Memory { regions }
    }

    /// Up to `max` bytes starting at virtual address `addr`, from whichever
    /// region maps the most of them (empty when `addr` is unmapped).
    fn read(&self, addr: u64, max: u64) -> &'a [u8] {
        let max = usize::try_from(max).unwrap_or(usize::MAX);
        let mut best: &'a [u8] = &[];
        for &(base, bytes) in &self.regions {
            let Some(off) = addr.checked_sub(base) else {
                continue;
            };
            let Ok(off) = usize::try_from(off) else {
                continue;
            };
            let Some(rest) = bytes.get(off..) else {
                continue;
            };
            let slice = rest.get(..max.min(rest.len())).unwrap_or_default();
            if slice.len() > best.len() {
                best = slice;
            }
        }
        best
    }

    /// Exactly `len` bytes at `addr`, or `None`.
    fn read_exact(&self, addr: u64, len: u64) -> Option<&'a [u8]> {
        let s = self.read(addr, len);
        (s.len() as u64 == len).then_some(s)
    }
}

/// Address of the first writable, non-executable loadable segment: where the
/// Go linker puts the build info when there is no dedicated section.
fn first_data_segment(file: &object::File<'_>) -> Option<u64> {
    file.segments().find_map(|segment| {
        let writable_data = match segment.flags() {
            SegmentFlags::Elf { p_flags } => p_flags & (object::elf::PF_W | object::elf::PF_X) == object::elf::PF_W,
            SegmentFlags::MachO { maxprot, initprot, .. } => maxprot == 3 && initprot == 3,
            SegmentFlags::Coff { characteristics } => {
                characteristics & (object::pe::IMAGE_SCN_MEM_WRITE | object::pe::IMAGE_SCN_MEM_EXECUTE)
                    == object::pe::IMAGE_SCN_MEM_WRITE
            }
            _ => false,
        };
        (writable_data && segment.address() != 0).then(|| segment.address())
    })
}

/// Find the 16-byte-aligned build info header in `window` bytes from `start`.
fn find_go_header(mem: &Memory<'_>, start: u64, window: u64) -> Option<u64> {
    let data = mem.read(start, window);
    let first = usize::try_from((GO_ALIGN - start % GO_ALIGN) % GO_ALIGN).ok()?;
    let header_len = usize::try_from(GO_HEADER_LEN).ok()?;
    let mut i = first;
    while let Some(candidate) = data.get(i..i.checked_add(header_len)?) {
        if candidate.starts_with(GO_MAGIC) {
            return start.checked_add(i as u64);
        }
        i = i.checked_add(GO_ALIGN as usize)?;
    }
    None
}

/// Decode an unsigned LEB128 varint (as Go's `binary.Uvarint`).
fn uvarint(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut value: u64 = 0;
    for (i, &b) in bytes.iter().enumerate().take(10) {
        let low = u64::from(b & 0x7f);
        if i == 9 && b > 1 {
            return None; // overflows 64 bits
        }
        value |= low << (7 * i);
        if b & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

/// Read a varint-length-prefixed string at `addr`; returns it and the address after it.
fn read_inline_string<'a>(mem: &Memory<'a>, addr: u64, max_len: u64) -> Option<(&'a [u8], u64)> {
    let prefix = mem.read(addr, 10);
    let (len, n) = uvarint(prefix)?;
    if len > max_len {
        return None;
    }
    let data_addr = addr.checked_add(n as u64)?;
    let s = mem.read_exact(data_addr, len)?;
    Some((s, data_addr.checked_add(len)?))
}

/// Read a Go string header (`ptr`, `len`) at `addr` and the string it points to.
fn read_pointer_string<'a>(
    mem: &Memory<'a>,
    addr: u64,
    ptr_size: u64,
    big_endian: bool,
    max_len: u64,
) -> Option<&'a [u8]> {
    let header = mem.read_exact(addr, ptr_size.checked_mul(2)?)?;
    let ptr = read_ptr(header, 0, ptr_size, big_endian)?;
    let len = read_ptr(header, ptr_size, ptr_size, big_endian)?;
    if len > max_len {
        return None;
    }
    mem.read_exact(ptr, len)
}

/// Read a 4- or 8-byte pointer at `offset` of `bytes`.
fn read_ptr(bytes: &[u8], offset: u64, ptr_size: u64, big_endian: bool) -> Option<u64> {
    let start = usize::try_from(offset).ok()?;
    let slice = bytes.get(start..start.checked_add(usize::try_from(ptr_size).ok()?)?)?;
    match ptr_size {
        4 => {
            let b: [u8; 4] = slice.try_into().ok()?;
            Some(u64::from(if big_endian { u32::from_be_bytes(b) } else { u32::from_le_bytes(b) }))
        }
        8 => {
            let b: [u8; 8] = slice.try_into().ok()?;
            Some(if big_endian { u64::from_be_bytes(b) } else { u64::from_le_bytes(b) })
        }
        _ => None,
    }
}

/// Read the raw `(version, modinfo)` strings of a parsed executable.
fn go_raw<'a>(file: &object::File<'a>, go_section: Option<(u64, &'a [u8])>) -> Option<(&'a [u8], &'a [u8])> {
    let mem = Memory::new(file, go_section);
    let header_addr = match go_section {
        Some((addr, _)) => find_go_header(&mem, addr, GO_SECTION_WINDOW),
        None => None,
    }
    .or_else(|| find_go_header(&mem, first_data_segment(file)?, GO_SEGMENT_WINDOW))?;
    let header = mem.read_exact(header_addr, GO_HEADER_LEN)?;
    let ptr_size = u64::from(*header.get(14)?);
    let flags = *header.get(15)?;
    let (version, modinfo): (&[u8], &[u8]) = if flags & 2 != 0 {
        // Go 1.18+: strings inline after the header.
        let (version, next) = read_inline_string(&mem, header_addr.checked_add(GO_HEADER_LEN)?, GO_MAX_VERSION_LEN)?;
        let modinfo = read_inline_string(&mem, next, GO_MAX_MODINFO_LEN).map(|(s, _)| s).unwrap_or_default();
        (version, modinfo)
    } else {
        // Before Go 1.18: two pointers to Go string headers.
        if ptr_size != 4 && ptr_size != 8 {
            return None;
        }
        let big_endian = flags & 1 != 0;
        let version_ptr = read_ptr(header, 16, ptr_size, big_endian)?;
        let modinfo_ptr = read_ptr(header, 16 + ptr_size, ptr_size, big_endian)?;
        let version = read_pointer_string(&mem, version_ptr, ptr_size, big_endian, GO_MAX_VERSION_LEN)?;
        let modinfo =
            read_pointer_string(&mem, modinfo_ptr, ptr_size, big_endian, GO_MAX_MODINFO_LEN).unwrap_or_default();
        (version, modinfo)
    };
    if version.is_empty() {
        return None;
    }
    // Strip the 16-byte sentinels framing the module info.
    let modinfo = match modinfo.len().checked_sub(17).and_then(|i| modinfo.get(i)) {
        Some(b'\n') if modinfo.len() >= 33 => modinfo.get(16..modinfo.len() - 16).unwrap_or_default(),
        _ => &[][..],
    };
    Some((version, modinfo))
}

/// Parse the fields of a `mod`, `dep` or `=>` line (after the tag).
fn go_module(fields: &mut std::str::Split<'_, char>) -> GoModule {
    GoModule {
        path: fields.next().unwrap_or_default().to_string(),
        version: fields.next().unwrap_or_default().to_string(),
        sum: fields.next().unwrap_or_default().to_string(),
    }
}

/// Parse the module info text (`runtime/debug.BuildInfo.String` format).
fn parse_modinfo(go_version: String, text: &str) -> GoBuildInfo {
    let mut info = GoBuildInfo { go_version, ..GoBuildInfo::default() };
    // What a `=>` line replaces: None, the main module, or the last dependency.
    enum Last {
        None,
        Main,
        Dep,
    }
    let mut last = Last::None;
    for line in text.split('\n') {
        let mut fields = line.split('\t');
        match fields.next() {
            Some("mod") => {
                let m = go_module(&mut fields);
                info.main_path = m.path;
                info.main_version = m.version;
                last = Last::Main;
            }
            Some("dep") => {
                info.deps.push(go_module(&mut fields));
                last = Last::Dep;
            }
            Some("=>") => {
                let m = go_module(&mut fields);
                match last {
                    Last::Main => {
                        info.main_path = m.path;
                        info.main_version = m.version;
                    }
                    Last::Dep => {
                        if let Some(dep) = info.deps.last_mut() {
                            *dep = m;
                        }
                    }
                    Last::None => {}
                }
                last = Last::None; // a module is replaced at most once
            }
            _ => {}
        }
    }
    info
}

fn go_from_file<'a>(file: &object::File<'a>, go_section: Option<(u64, &'a [u8])>) -> Option<GoBuildInfo> {
    let (version, modinfo) = go_raw(file, go_section)?;
    let version = String::from_utf8_lossy(version).trim().to_string();
    if version.is_empty() {
        return None;
    }
    Some(parse_modinfo(version, &String::from_utf8_lossy(modinfo)))
}

/// Read the Go build information embedded in an executable (ELF, and also
/// Mach-O or PE), or `None` when there is none or it cannot be read.
pub fn go_buildinfo(data: &[u8]) -> Option<GoBuildInfo> {
    let file = object::File::parse(data).ok()?;
    let sections = scan_sections(&file);
    go_from_file(&file, sections.go)
}

/// Convert a Go toolchain version to a semantic version with a leading `v`
/// (`go1.19.8` → `v1.19.8`, `go1.20` → `v1.20.0`, `go1.21rc2` → `v1.21.0-rc.2`,
/// `go1.22.1 X:boringcrypto` → `v1.22.1`). `None` for development builds or
/// anything that does not look like a release.
pub fn go_stdlib_version(go_version: &str) -> Option<String> {
    let token = go_version.split_whitespace().next()?;
    let rest = token.strip_prefix("go")?;
    let core_end = rest.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(rest.len());
    let (core, suffix) = rest.split_at(core_end);
    let parts: Vec<&str> = core.split('.').collect();
    if parts.is_empty() || parts.len() > 3 || parts.iter().any(|p| p.is_empty()) {
        return None;
    }
    let mut version = format!(
        "v{}.{}.{}",
        parts.first().copied().unwrap_or("0"),
        parts.get(1).copied().unwrap_or("0"),
        parts.get(2).copied().unwrap_or("0")
    );
    if !suffix.is_empty() {
        let pre = ["rc", "beta", "alpha"].iter().find_map(|tag| {
            let n = suffix.strip_prefix(tag)?;
            (!n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())).then(|| format!("-{tag}.{n}"))
        });
        match pre {
            Some(p) => version.push_str(&p),
            None if suffix.starts_with('-') || suffix.starts_with('+') => version.push_str(suffix),
            None => {
                version.push('-');
                version.push_str(suffix);
            }
        }
    }
    Some(version)
}

/// Whether a Go module path is a local directory (a `=> ../dir` replacement).
fn is_local_directory(path: &str) -> bool {
    path.starts_with("./")
        || path.starts_with("../")
        || path.starts_with('/')
        || path.starts_with(".\\")
        || path.starts_with("..\\")
        || path == "."
        || path == ".."
        || path.as_bytes().get(1) == Some(&b':')
}

fn go_packages(path: &str, info: &GoBuildInfo) -> Vec<Package> {
    let mut out = Vec::with_capacity(info.deps.len() + 2);
    let mut push = |name: &str, version: &str| {
        out.push(PackageBuilder::new(PackageType::Golang, name, version).found_in(path).build());
    };
    if !info.main_path.is_empty() && !is_local_directory(&info.main_path) {
        let v = if info.main_version == "(devel)" { "" } else { info.main_version.as_str() };
        push(&info.main_path, v);
    }
    for dep in &info.deps {
        if dep.path.is_empty() || is_local_directory(&dep.path) {
            continue;
        }
        push(&dep.path, &dep.version);
    }
    if let Some(v) = go_stdlib_version(&info.go_version) {
        push("stdlib", &v);
    }
    out
}

/// Packages of a Go binary: its dependencies, its main module when it has a
/// real version, and the standard library as `stdlib`. Anything that is not a
/// Go binary yields no packages.
pub fn parse_go(path: &str, data: &[u8]) -> Result<Vec<Package>, CatalogError> {
    Ok(go_buildinfo(data).map(|info| go_packages(path, &info)).unwrap_or_default())
}

/// The cargo-auditable JSON document.
#[derive(Deserialize)]
struct AuditInfo {
    packages: Vec<AuditPackage>,
}

/// One package of the cargo-auditable JSON document.
#[derive(Deserialize)]
struct AuditPackage {
    name: String,
    version: String,
    /// `runtime` (the default, omitted) or `build`.
    #[serde(default)]
    kind: Option<String>,
}

/// Packages from the contents of a cargo-auditable `.dep-v0` section
/// (zlib-compressed JSON). Errors when the data does not decompress, is
/// larger than [`MAX_RUST_AUDIT_JSON`] once decompressed, or is not the
/// expected JSON.
pub fn parse_rust_audit_section(path: &str, compressed: &[u8]) -> Result<Vec<Package>, CatalogError> {
    let mut json = Vec::new();
    flate2::read::ZlibDecoder::new(compressed)
        .take(MAX_RUST_AUDIT_JSON + 1)
        .read_to_end(&mut json)
        .map_err(|e| CatalogError::malformed(RUST_AUDIT_FORMAT, format!("zlib: {e}")))?;
    if json.len() as u64 > MAX_RUST_AUDIT_JSON {
        return Err(CatalogError::malformed(
            RUST_AUDIT_FORMAT,
            format!("decompresses to more than {MAX_RUST_AUDIT_JSON} bytes"),
        ));
    }
    let info: AuditInfo =
        serde_json::from_slice(&json).map_err(|e| CatalogError::malformed(RUST_AUDIT_FORMAT, e.to_string()))?;
    Ok(info
        .packages
        .into_iter()
        .filter(|p| p.kind.as_deref().is_none_or(|k| k == "runtime"))
        .filter(|p| !p.name.is_empty())
        .map(|p| PackageBuilder::new(PackageType::Cargo, p.name, p.version).found_in(path).build())
        .collect())
}

/// Packages of a Rust binary built with `cargo auditable`. Executables
/// without a `.dep-v0` section (or that are not executables) yield none.
pub fn parse_rust_audit(path: &str, data: &[u8]) -> Result<Vec<Package>, CatalogError> {
    let Ok(file) = object::File::parse(data) else {
        return Ok(Vec::new());
    };
    match scan_sections(&file).dep {
        Some(section) => parse_rust_audit_section(path, section),
        None => Ok(Vec::new()),
    }
}

/// Catalog an executable: Go modules and cargo-auditable crates. Files that
/// are not ELF, or ELF files that `object` cannot parse, yield no packages.
///
/// An unreadable cargo-auditable section is an error, unless the same file
/// also produced Go packages (then it is logged and the Go packages returned).
pub fn parse(path: &str, data: &[u8]) -> Result<Vec<Package>, CatalogError> {
    if !data.starts_with(b"\x7fELF") {
        return Ok(Vec::new());
    }
    let Ok(file) = object::File::parse(data) else {
        return Ok(Vec::new());
    };
    let sections = scan_sections(&file);
    let mut out = go_from_file(&file, sections.go).map(|info| go_packages(path, &info)).unwrap_or_default();
    if let Some(section) = sections.dep {
        match parse_rust_audit_section(path, section) {
            Ok(pkgs) => out.extend(pkgs),
            Err(e) if !out.is_empty() => {
                tracing::warn!(path, error = %e, "ignoring cargo-auditable data")
            }
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::path::Path;
    use std::process::Command;
    use std::sync::OnceLock;

    // ---------------------------------------------------------------- helpers

    const BASE: u64 = 0x40_0000;
    const CONTENT_OFFSET: u64 = 0x1000;

    /// A minimal little-endian ELF64 executable: one RW PT_LOAD segment
    /// mapping the whole file at `BASE`, and the given sections laid out from
    /// file offset 0x1000 (16-aligned; section `i` at `BASE + its offset`).
    /// Without section headers when `with_shdrs` is false.
    fn mini_elf(sections: &[(&str, &[u8])], with_shdrs: bool) -> Vec<u8> {
        let mut body = vec![0u8; CONTENT_OFFSET as usize];
        let mut placed = Vec::new();
        for (name, data) in sections {
            body.resize(body.len().next_multiple_of(16), 0);
            placed.push((*name, body.len() as u64, data.len() as u64));
            body.extend_from_slice(data);
        }
        // .shstrtab
        let mut shstrtab = vec![0u8];
        let mut name_offsets = Vec::new();
        for (name, _, _) in &placed {
            name_offsets.push(shstrtab.len() as u32);
            shstrtab.extend_from_slice(name.as_bytes());
            shstrtab.push(0);
        }
        let shstrtab_name = shstrtab.len() as u32;
        shstrtab.extend_from_slice(b".shstrtab\0");
        let shstrtab_off = body.len() as u64;
        body.extend_from_slice(&shstrtab);
        body.resize(body.len().next_multiple_of(8), 0);
        let shoff = body.len() as u64;
        let shnum = placed.len() as u16 + 2;
        if with_shdrs {
            body.extend_from_slice(&[0u8; 64]);
            let mut shdr = |name: u32, ty: u32, flags: u64, addr: u64, off: u64, size: u64| {
                body.extend_from_slice(&name.to_le_bytes());
                body.extend_from_slice(&ty.to_le_bytes());
                body.extend_from_slice(&flags.to_le_bytes());
                body.extend_from_slice(&addr.to_le_bytes());
                body.extend_from_slice(&off.to_le_bytes());
                body.extend_from_slice(&size.to_le_bytes());
                body.extend_from_slice(&0u32.to_le_bytes());
                body.extend_from_slice(&0u32.to_le_bytes());
                body.extend_from_slice(&16u64.to_le_bytes());
                body.extend_from_slice(&0u64.to_le_bytes());
            };
            for ((_, off, size), name) in placed.iter().zip(&name_offsets) {
                shdr(*name, 1, 3, BASE + off, *off, *size);
            }
            shdr(shstrtab_name, 3, 0, 0, shstrtab_off, shstrtab.len() as u64);
        }
        let total = body.len() as u64;
        let mut h = Vec::new();
        h.extend_from_slice(b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0");
        h.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
        h.extend_from_slice(&62u16.to_le_bytes()); // x86-64
        h.extend_from_slice(&1u32.to_le_bytes());
        h.extend_from_slice(&0u64.to_le_bytes()); // entry
        h.extend_from_slice(&64u64.to_le_bytes()); // phoff
        h.extend_from_slice(&(if with_shdrs { shoff } else { 0 }).to_le_bytes());
        h.extend_from_slice(&0u32.to_le_bytes());
        h.extend_from_slice(&64u16.to_le_bytes());
        h.extend_from_slice(&56u16.to_le_bytes());
        h.extend_from_slice(&1u16.to_le_bytes());
        h.extend_from_slice(&64u16.to_le_bytes());
        h.extend_from_slice(&(if with_shdrs { shnum } else { 0 }).to_le_bytes());
        h.extend_from_slice(&(if with_shdrs { shnum - 1 } else { 0 }).to_le_bytes());
        // PT_LOAD, RW
        h.extend_from_slice(&1u32.to_le_bytes());
        h.extend_from_slice(&6u32.to_le_bytes());
        h.extend_from_slice(&0u64.to_le_bytes());
        h.extend_from_slice(&BASE.to_le_bytes());
        h.extend_from_slice(&BASE.to_le_bytes());
        h.extend_from_slice(&total.to_le_bytes());
        h.extend_from_slice(&total.to_le_bytes());
        h.extend_from_slice(&0x1000u64.to_le_bytes());
        body[..h.len()].copy_from_slice(&h);
        body
    }

    fn varint(mut v: u64, out: &mut Vec<u8>) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }

    /// Frame module info with the 16-byte sentinels the go command adds.
    fn framed(modinfo: &str) -> Vec<u8> {
        let mut v = b"0w\xaf\x0c\x92t\x08\x02A\xe1\xc1\x07\xe6\xd6\x18\xe6".to_vec();
        v.extend_from_slice(modinfo.as_bytes());
        v.extend_from_slice(b"\xf92C1\x86\x18 r\x00\x82B\x10A\x16\xd8\xf2");
        v
    }

    fn inline_blob(version: &str, modinfo: &[u8]) -> Vec<u8> {
        let mut blob = GO_MAGIC.to_vec();
        blob.push(8);
        blob.push(2);
        blob.resize(32, 0);
        varint(version.len() as u64, &mut blob);
        blob.extend_from_slice(version.as_bytes());
        varint(modinfo.len() as u64, &mut blob);
        blob.extend_from_slice(modinfo);
        blob
    }

    const MODINFO: &str = "path\texample.com/app\n\
        mod\texample.com/app\tv1.4.0\th1:main=\n\
        dep\tgolang.org/x/text\tv0.3.7\th1:text=\n\
        dep\tgithub.com/orig/lib\tv1.0.0\th1:orig=\n\
        =>\tgithub.com/fork/lib\tv1.0.1\th1:fork=\n\
        dep\texample.com/local\tv0.0.0\n\
        =>\t../local\t\t\n\
        build\t-compiler=gc\n";

    fn names(pkgs: &[Package]) -> Vec<(String, String)> {
        pkgs.iter().map(|p| (p.name.clone(), p.version.clone())).collect()
    }

    /// Build a real Go binary (with two dependencies from a file-based module
    /// proxy, one of them replaced) once per test run; `None` without `go`.
    fn real_go_binary() -> Option<&'static [u8]> {
        static BIN: OnceLock<Option<Vec<u8>>> = OnceLock::new();
        BIN.get_or_init(build_go_binary).as_deref()
    }

    fn write_module_to_proxy(proxy: &Path, module: &str, version: &str, declared: &str, src: &str) {
        let dir = proxy.join(module).join("@v");
        std::fs::create_dir_all(&dir).unwrap();
        let gomod = format!("module {declared}\n\ngo 1.16\n");
        std::fs::write(dir.join("list"), format!("{version}\n")).unwrap();
        std::fs::write(
            dir.join(format!("{version}.info")),
            format!("{{\"Version\":\"{version}\",\"Time\":\"2023-01-01T00:00:00Z\"}}"),
        )
        .unwrap();
        std::fs::write(dir.join(format!("{version}.mod")), &gomod).unwrap();
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
        zip.start_file(format!("{module}@{version}/go.mod"), opts).unwrap();
        zip.write_all(gomod.as_bytes()).unwrap();
        zip.start_file(format!("{module}@{version}/lib.go"), opts).unwrap();
        zip.write_all(src.as_bytes()).unwrap();
        let bytes = zip.finish().unwrap().into_inner();
        std::fs::write(dir.join(format!("{version}.zip")), bytes).unwrap();
    }

    fn build_go_binary() -> Option<Vec<u8>> {
        if Command::new("go").arg("version").output().is_err() {
            eprintln!("`go` not on PATH: skipping the real Go binary tests");
            return None;
        }
        let tmp = tempfile::tempdir().unwrap();
        let proxy = tmp.path().join("proxy");
        write_module_to_proxy(
            &proxy,
            "example.com/plain",
            "v1.0.0",
            "example.com/plain",
            "package plain\n\nfunc Hello() string { return \"plain\" }\n",
        );
        write_module_to_proxy(
            &proxy,
            "example.com/dep",
            "v1.2.3",
            "example.com/dep",
            "package dep\n\nfunc Name() string { return \"dep\" }\n",
        );
        write_module_to_proxy(
            &proxy,
            "example.com/fork",
            "v0.9.0",
            "example.com/dep",
            "package dep\n\nfunc Name() string { return \"fork\" }\n",
        );
        let app = tmp.path().join("app");
        std::fs::create_dir_all(&app).unwrap();
        std::fs::write(
            app.join("go.mod"),
            "module example.com/hello\n\ngo 1.16\n\nrequire (\n\texample.com/plain v1.0.0\n\texample.com/dep v1.2.3\n)\n\n\
             replace example.com/dep v1.2.3 => example.com/fork v0.9.0\n",
        )
        .unwrap();
        std::fs::write(
            app.join("main.go"),
            "package main\n\nimport (\n\t\"fmt\"\n\t\"example.com/dep\"\n\t\"example.com/plain\"\n)\n\n\
             func main() { fmt.Println(plain.Hello(), dep.Name()) }\n",
        )
        .unwrap();
        let cache = std::env::temp_dir().join("palisade-test-gocache");
        let out = app.join("hello");
        let result = Command::new("go")
            .args(["build", "-o"])
            .arg(&out)
            .arg(".")
            .current_dir(&app)
            .env("GOPROXY", format!("file://{}", proxy.display()))
            .env("GOFLAGS", "-mod=mod -modcacherw")
            .env("GOSUMDB", "off")
            .env("GONOSUMDB", "example.com")
            .env("GOPRIVATE", "")
            .env("GOMODCACHE", tmp.path().join("modcache"))
            .env("GOPATH", tmp.path().join("gopath"))
            .env("GOCACHE", &cache)
            .env("GOENV", "off")
            .env("GOWORK", "off")
            .env("GOTOOLCHAIN", "local")
            .env("GO111MODULE", "on")
            .env("CGO_ENABLED", "0")
            .output()
            .unwrap();
        assert!(result.status.success(), "go build failed: {}", String::from_utf8_lossy(&result.stderr));
        Some(std::fs::read(out).unwrap())
    }

    // ------------------------------------------------------------------ tests

    #[test]
    fn real_go_binary_build_info() {
        let Some(bin) = real_go_binary() else { return };
        let info = go_buildinfo(bin).expect("build info");
        assert!(info.go_version.starts_with("go1."), "{}", info.go_version);
        assert_eq!(info.main_path, "example.com/hello");
        assert_eq!(info.main_version, "(devel)");
        let deps: Vec<(&str, &str)> = info.deps.iter().map(|d| (d.path.as_str(), d.version.as_str())).collect();
        assert!(deps.contains(&("example.com/plain", "v1.0.0")), "{deps:?}");
        assert!(deps.contains(&("example.com/fork", "v0.9.0")), "{deps:?}");
        assert!(!deps.iter().any(|d| d.0 == "example.com/dep"), "{deps:?}");
        assert!(info.deps.iter().all(|d| d.sum.starts_with("h1:")), "{:?}", info.deps);

        let pkgs = parse("/app/hello", bin).unwrap();
        assert_eq!(pkgs, parse_go("/app/hello", bin).unwrap());
        let got = names(&pkgs);
        let stdlib = go_stdlib_version(&info.go_version).unwrap();
        assert!(stdlib.starts_with("v1."));
        assert!(got.contains(&("stdlib".into(), stdlib)), "{got:?}");
        assert!(got.contains(&("example.com/plain".into(), "v1.0.0".into())));
        assert!(got.contains(&("example.com/fork".into(), "v0.9.0".into())));
        assert!(got.contains(&("example.com/hello".into(), String::new())), "(devel) main module, no version");
        assert!(pkgs.iter().all(|p| p.kind == PackageType::Golang && p.found_in == "/app/hello"));
        let plain = pkgs.iter().find(|p| p.name == "example.com/plain").unwrap();
        assert_eq!(plain.purl, "pkg:golang/example.com/plain@v1.0.0");
        // Not a cargo-auditable binary.
        assert!(parse_rust_audit("/app/hello", bin).unwrap().is_empty());
    }

    #[test]
    fn real_go_binary_without_section_headers() {
        let Some(bin) = real_go_binary() else { return };
        let mut bin = bin.to_vec();
        // Remove the section header table: e_shoff, e_shnum, e_shstrndx.
        bin[0x28..0x30].fill(0);
        bin[0x3c..0x40].fill(0);
        let file = object::File::parse(&*bin).unwrap();
        assert_eq!(file.sections().count(), 0);
        let info = go_buildinfo(&bin).expect("found through the data segment");
        assert_eq!(info.main_path, "example.com/hello");
        assert_eq!(info.deps.len(), 2);
    }

    #[test]
    fn real_go_binary_truncations_and_mutations_never_panic() {
        let Some(bin) = real_go_binary() else { return };
        let len = bin.len();
        let magic_at = bin.windows(GO_MAGIC.len()).position(|w| w == GO_MAGIC).unwrap();
        let mut cuts: Vec<usize> = (0..=64).map(|i| len * i / 64).collect();
        cuts.extend([1, 4, 16, 63, 64, 65, 120, magic_at, magic_at + 15, magic_at + 33, magic_at + 200]);
        for cut in cuts {
            let cut = cut.min(len);
            let _ = parse("/x", &bin[..cut]);
            let _ = go_buildinfo(&bin[..cut]);
        }
        // Deterministic pseudo-random mutations, concentrated on the ELF
        // headers, the program/section header tables and the build info.
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let shoff = u64::from_le_bytes(bin[0x28..0x30].try_into().unwrap()) as usize;
        let hot = [0usize, 64, magic_at, shoff.min(len - 1)];
        for round in 0..300 {
            let mut m = bin.to_vec();
            for _ in 0..(1 + round % 8) {
                let r = next() as usize;
                let base = hot[r % hot.len()];
                let pos = (base + (r >> 8) % 512).min(len - 1);
                m[pos] = (next() & 0xff) as u8;
            }
            let _ = parse("/x", &m);
            let _ = go_buildinfo(&m);
        }
        // Pathological lengths in the inline header.
        let mut m = bin.to_vec();
        m[magic_at + 32..magic_at + 42].fill(0xff);
        assert!(go_buildinfo(&m).is_none());
    }

    #[test]
    fn inline_format_in_section() {
        let blob = inline_blob("go1.21rc2", &framed(MODINFO));
        let elf = mini_elf(&[(".go.buildinfo", &blob)], true);
        let info = go_buildinfo(&elf).unwrap();
        assert_eq!(info.go_version, "go1.21rc2");
        assert_eq!(info.main_path, "example.com/app");
        assert_eq!(info.main_version, "v1.4.0");
        assert_eq!(
            info.deps,
            vec![
                GoModule { path: "golang.org/x/text".into(), version: "v0.3.7".into(), sum: "h1:text=".into() },
                GoModule { path: "github.com/fork/lib".into(), version: "v1.0.1".into(), sum: "h1:fork=".into() },
                GoModule { path: "../local".into(), version: String::new(), sum: String::new() },
            ]
        );
        let got = names(&parse("/bin/app", &elf).unwrap());
        assert_eq!(
            got,
            vec![
                ("example.com/app".to_string(), "v1.4.0".to_string()),
                ("golang.org/x/text".into(), "v0.3.7".into()),
                ("github.com/fork/lib".into(), "v1.0.1".into()),
                ("stdlib".into(), "v1.21.0-rc.2".into()),
            ]
        );
    }

    #[test]
    fn inline_format_without_section_headers() {
        let blob = inline_blob("go1.20", &framed(MODINFO));
        // Put some unaligned decoy magic first.
        let mut decoy = vec![0u8; 3];
        decoy.extend_from_slice(GO_MAGIC);
        decoy.resize(40, 0);
        let elf = mini_elf(&[(".data", &decoy), (".go.buildinfo", &blob)], false);
        let info = go_buildinfo(&elf).unwrap();
        assert_eq!(info.go_version, "go1.20");
        assert_eq!(info.deps.len(), 3);
        assert!(names(&parse_go("/a", &elf).unwrap()).contains(&("stdlib".into(), "v1.20.0".into())));
    }

    /// The pre-1.18 format: pointers to Go string headers.
    fn pointer_blob(section_addr: u64, ptr_size: u64, big_endian: bool, version: &str, modinfo: &[u8]) -> Vec<u8> {
        let put = |v: u64, out: &mut Vec<u8>| match (ptr_size, big_endian) {
            (4, false) => out.extend_from_slice(&(v as u32).to_le_bytes()),
            (4, true) => out.extend_from_slice(&(v as u32).to_be_bytes()),
            (_, false) => out.extend_from_slice(&v.to_le_bytes()),
            (_, true) => out.extend_from_slice(&v.to_be_bytes()),
        };
        // Layout: header (32) | version hdr (2*ptr) | modinfo hdr (2*ptr) | version | modinfo
        let vhdr = section_addr + 32;
        let mhdr = vhdr + 2 * ptr_size;
        let vdata = mhdr + 2 * ptr_size;
        let mdata = vdata + version.len() as u64;
        let mut blob = GO_MAGIC.to_vec();
        blob.push(ptr_size as u8);
        blob.push(u8::from(big_endian));
        put(vhdr, &mut blob);
        put(mhdr, &mut blob);
        blob.resize(32, 0);
        put(vdata, &mut blob);
        put(version.len() as u64, &mut blob);
        put(mdata, &mut blob);
        put(modinfo.len() as u64, &mut blob);
        blob.extend_from_slice(version.as_bytes());
        blob.extend_from_slice(modinfo);
        blob
    }

    #[test]
    fn pointer_format() {
        let addr = BASE + CONTENT_OFFSET;
        for (ptr_size, be) in [(8, false), (4, false), (8, true), (4, true)] {
            let blob = pointer_blob(addr, ptr_size, be, "go1.16.15", &framed(MODINFO));
            for with_shdrs in [true, false] {
                let elf = mini_elf(&[(".go.buildinfo", &blob)], with_shdrs);
                let info = go_buildinfo(&elf).unwrap_or_else(|| panic!("{ptr_size} {be} {with_shdrs}"));
                assert_eq!(info.go_version, "go1.16.15");
                assert_eq!(info.main_path, "example.com/app");
                assert_eq!(info.deps.len(), 3);
            }
        }
        // Dangling pointers: no build info, no panic.
        let mut blob = pointer_blob(addr, 8, false, "go1.16.15", &framed(MODINFO));
        blob[16..24].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(go_buildinfo(&mini_elf(&[(".go.buildinfo", &blob)], true)).is_none());
        let mut blob = pointer_blob(addr, 8, false, "go1.16.15", &framed(MODINFO));
        blob[32 + 8..32 + 16].copy_from_slice(&u64::MAX.to_le_bytes()); // version length
        assert!(go_buildinfo(&mini_elf(&[(".go.buildinfo", &blob)], true)).is_none());
        // Bad pointer size.
        let mut blob = pointer_blob(addr, 8, false, "go1.16.15", &framed(MODINFO));
        blob[14] = 3;
        assert!(go_buildinfo(&mini_elf(&[(".go.buildinfo", &blob)], true)).is_none());
    }

    #[test]
    fn modinfo_without_sentinels_or_modules() {
        // GOPATH-mode binary: version only.
        let blob = inline_blob("go1.19.8", b"");
        let elf = mini_elf(&[(".go.buildinfo", &blob)], true);
        let info = go_buildinfo(&elf).unwrap();
        assert_eq!(info, GoBuildInfo { go_version: "go1.19.8".into(), ..Default::default() });
        assert_eq!(names(&parse("/a", &elf).unwrap()), vec![("stdlib".to_string(), "v1.19.8".to_string())]);
        // Unframed module info is ignored, as Go does.
        let blob = inline_blob("go1.19.8", MODINFO.as_bytes());
        assert!(go_buildinfo(&mini_elf(&[(".go.buildinfo", &blob)], true)).unwrap().deps.is_empty());
        // Empty version: not a Go binary.
        let blob = inline_blob("", &framed(MODINFO));
        assert!(go_buildinfo(&mini_elf(&[(".go.buildinfo", &blob)], true)).is_none());
    }

    #[test]
    fn stdlib_versions() {
        assert_eq!(go_stdlib_version("go1.19.8").as_deref(), Some("v1.19.8"));
        assert_eq!(go_stdlib_version("go1.20").as_deref(), Some("v1.20.0"));
        assert_eq!(go_stdlib_version("go1.21rc2").as_deref(), Some("v1.21.0-rc.2"));
        assert_eq!(go_stdlib_version("go1.19beta1").as_deref(), Some("v1.19.0-beta.1"));
        assert_eq!(go_stdlib_version("go1.22.1 X:boringcrypto").as_deref(), Some("v1.22.1"));
        assert_eq!(go_stdlib_version("go1.21.0-bigcorp").as_deref(), Some("v1.21.0-bigcorp"));
        assert_eq!(go_stdlib_version("devel go1.23-abcdef Tue"), None);
        assert_eq!(go_stdlib_version("go"), None);
        assert_eq!(go_stdlib_version("go1..2"), None);
        assert_eq!(go_stdlib_version(""), None);
    }

    #[test]
    fn not_executables() {
        assert!(parse("/x", b"").unwrap().is_empty());
        assert!(parse("/x", b"#!/bin/sh\necho hi\n").unwrap().is_empty());
        assert!(parse("/x", b"\x7fELF").unwrap().is_empty());
        assert!(parse_go("/x", b"\x7fELF\x02\x01\x01").unwrap().is_empty());
        assert!(parse_rust_audit("/x", b"garbage").unwrap().is_empty());
        assert!(go_buildinfo(&[0xffu8; 4096]).is_none());
        // ELF without any build info.
        let elf = mini_elf(&[(".data", b"hello world")], true);
        assert!(parse("/x", &elf).unwrap().is_empty());
        assert!(go_buildinfo(&elf).is_none());
        // Magic in a PE/Mach-O shaped buffer is not searched without a container.
        let mut raw = GO_MAGIC.to_vec();
        raw.resize(64, 0);
        assert!(go_buildinfo(&raw).is_none());
    }

    fn zlib(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    const AUDIT_JSON: &str = r#"{"packages":[
        {"name":"myapp","version":"0.1.0","source":"local","dependencies":[1,2,3],"root":true},
        {"name":"serde","version":"1.0.190","source":"crates.io","dependencies":[3]},
        {"name":"cc","version":"1.0.83","source":"crates.io","kind":"build"},
        {"name":"itoa","version":"1.0.9","source":"crates.io","kind":"runtime"},
        {"name":"fork","version":"0.2.0","source":"git","extra_field":{"x":1}}
    ],"format":1}"#;

    #[test]
    fn rust_audit_section_decoding() {
        let pkgs = parse_rust_audit_section("/bin/myapp", &zlib(AUDIT_JSON.as_bytes())).unwrap();
        assert_eq!(
            names(&pkgs),
            vec![
                ("myapp".to_string(), "0.1.0".to_string()),
                ("serde".into(), "1.0.190".into()),
                ("itoa".into(), "1.0.9".into()),
                ("fork".into(), "0.2.0".into()),
            ]
        );
        assert!(pkgs.iter().all(|p| p.kind == PackageType::Cargo && p.found_in == "/bin/myapp"));
        assert_eq!(pkgs[1].purl, "pkg:cargo/serde@1.0.190");
        // Errors: not zlib, not JSON, wrong JSON, too large.
        assert!(parse_rust_audit_section("/x", b"not zlib").is_err());
        assert!(parse_rust_audit_section("/x", &zlib(b"{\"packages\":")).is_err());
        assert!(parse_rust_audit_section("/x", &zlib(b"[1,2]")).is_err());
        let bomb = zlib(&vec![b' '; (MAX_RUST_AUDIT_JSON + 10) as usize]);
        assert!(bomb.len() < 64 * 1024);
        assert!(matches!(parse_rust_audit_section("/x", &bomb), Err(CatalogError::Malformed { .. })));
        // Exactly at the limit is fine (whitespace padding around valid JSON).
        let mut padded = br#"{"packages":[]}"#.to_vec();
        padded.resize(MAX_RUST_AUDIT_JSON as usize, b' ');
        assert!(parse_rust_audit_section("/x", &zlib(&padded)).unwrap().is_empty());
        // Truncated stream.
        let z = zlib(AUDIT_JSON.as_bytes());
        for cut in 0..z.len() {
            let _ = parse_rust_audit_section("/x", &z[..cut]);
        }
    }

    #[test]
    fn rust_audit_in_elf() {
        let z = zlib(AUDIT_JSON.as_bytes());
        let elf = mini_elf(&[(".text", b"\x90\x90"), (".dep-v0", &z)], true);
        let pkgs = parse_rust_audit("/bin/myapp", &elf).unwrap();
        assert_eq!(pkgs.len(), 4);
        assert_eq!(parse("/bin/myapp", &elf).unwrap(), pkgs);
        // Corrupt section: an error.
        let elf = mini_elf(&[(".dep-v0", b"garbage")], true);
        assert!(parse("/bin/myapp", &elf).is_err());
        // ... unless Go packages were found too.
        let blob = inline_blob("go1.19.8", b"");
        let elf = mini_elf(&[(".go.buildinfo", &blob), (".dep-v0", b"garbage")], true);
        assert_eq!(names(&parse("/x", &elf).unwrap()), vec![("stdlib".to_string(), "v1.19.8".to_string())]);
        // Both present and valid.
        let elf = mini_elf(&[(".go.buildinfo", &blob), (".dep-v0", &z)], true);
        assert_eq!(parse("/x", &elf).unwrap().len(), 5);
    }

    #[test]
    fn mini_elf_mutations_never_panic() {
        let addr = BASE + CONTENT_OFFSET;
        let z = zlib(AUDIT_JSON.as_bytes());
        let inputs = [
            mini_elf(&[(".go.buildinfo", &inline_blob("go1.19.8", &framed(MODINFO))), (".dep-v0", &z)], true),
            mini_elf(&[(".go.buildinfo", &pointer_blob(addr, 8, false, "go1.16", &framed(MODINFO)))], true),
            mini_elf(&[(".go.buildinfo", &pointer_blob(addr, 4, true, "go1.16", &framed(MODINFO)))], false),
        ];
        let mut seed: u64 = 0x1234_5678_9abc_def1;
        for input in &inputs {
            for cut in 0..input.len() {
                if cut % 7 == 0 || cut < 200 {
                    let _ = parse("/x", &input[..cut]);
                }
            }
            for round in 0..2000 {
                let mut m = input.clone();
                for _ in 0..(1 + round % 4) {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    let pos = if seed & 1 == 0 {
                        (seed >> 8) as usize % 0x100
                    } else {
                        CONTENT_OFFSET as usize + (seed >> 8) as usize % (m.len() - CONTENT_OFFSET as usize)
                    };
                    m[pos] = (seed >> 40) as u8;
                }
                let _ = parse("/x", &m);
                let _ = go_buildinfo(&m);
            }
        }
    }

    #[test]
    fn uvarint_edges() {
        assert_eq!(uvarint(&[0]), Some((0, 1)));
        assert_eq!(uvarint(&[0x96, 0x01]), Some((150, 2)));
        assert_eq!(uvarint(&[0x80]), None);
        assert_eq!(uvarint(&[0xff; 10]), None);
        assert_eq!(uvarint(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]), Some((u64::MAX, 10)));
        assert_eq!(uvarint(&[]), None);
    }
}
