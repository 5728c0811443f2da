//! Root filesystems (`dir:PATH`): how node filesystems are scanned.
//!
//! The tree is walked without following symlinks (they are recorded and
//! resolved inside the root later, like image symlinks), so no path outside
//! the root is ever read. `/proc`, `/sys` and `/dev` under the root are skipped.

use crate::walk::{normalize_path, Analyzer, FileMeta, LayerResult, Link};
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Directories under the root that are never walked (virtual filesystems).
pub const SKIPPED: [&str; 3] = ["/proc", "/sys", "/dev"];

/// Walk `root`, handing wanted files to `analyzer`.
pub fn walk_dir<A: Analyzer>(root: &Path, analyzer: &A) -> std::io::Result<LayerResult<A::Output>> {
    let meta = std::fs::metadata(root)?;
    if !meta.is_dir() {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a directory"));
    }
    let mut out = LayerResult::default();
    let mut stack = vec![(root.to_path_buf(), "/".to_string())];
    while let Some((dir, ipath)) = stack.pop() {
        let rd = match std::fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) => {
                out.warnings.push(format!("{}: {e}", dir.display()));
                continue;
            }
        };
        let mut children: Vec<_> = rd.filter_map(|e| e.ok()).collect();
        children.sort_by_key(|e| e.file_name());
        for entry in children.into_iter().rev() {
            out.entries += 1;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let inner = normalize_path(&format!("{ipath}/{name}"));
            let ft = match entry.file_type() {
                Ok(ft) => ft,
                Err(_) => continue,
            };
            if ft.is_dir() {
                if !SKIPPED.contains(&inner.as_str()) {
                    stack.push((entry.path(), inner));
                }
            } else if ft.is_symlink() {
                if let Ok(t) = std::fs::read_link(entry.path()) {
                    out.links.push((inner, Link::Symlink(t.to_string_lossy().into_owned())));
                }
            } else if ft.is_file() {
                let md = match entry.metadata() {
                    Ok(m) => m,
                    Err(_) => continue,
                };
                let fm = FileMeta { path: &inner, size: md.len(), mode: md.permissions().mode() };
                if analyzer.wants(&fm) {
                    match File::open(entry.path()) {
                        Ok(f) => match analyzer.analyze(&fm, &mut f.take(md.len())) {
                            Ok(Some(v)) => out.files.push((inner.clone(), v)),
                            Ok(None) => {}
                            Err(e) => out.warnings.push(format!("{inner}: {e}")),
                        },
                        Err(e) => out.warnings.push(format!("{inner}: {e}")),
                    }
                }
            }
        }
    }
    Ok(out)
}
