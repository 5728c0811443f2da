//! `db build --from DIR…` as a library call, shared by the CLI and the server: read every feed
//! under the directories, build the database, and replace the one at the target only when
//! [`replace_refusals`](crate::db::replace_refusals) has no objection.

use crate::db::{self, BuildInput, DbError, SourceInfo, VulnDb};
use crate::feed::{self, FeedError, FeedSet};
use std::path::{Path, PathBuf};

/// Why a build did not produce a database.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A directory could not be read.
    #[error("reading feeds under {}: {error}", dir.display())]
    Feeds {
        /// The directory.
        dir: PathBuf,
        /// Cause.
        error: FeedError,
    },
    /// A directory holds nothing this build reads.
    #[error("no recognised feeds under {}", .0.display())]
    NoFeeds(PathBuf),
    /// The new database would lose data or came from failing feeds: the current one is kept.
    #[error("{} not {} ({} problem(s): {})", target.display(), if *replacing { "replaced" } else { "written" }, refusals.len(), refusals.join("; "))]
    Refused {
        /// The target path.
        target: PathBuf,
        /// Whether a database existed there.
        replacing: bool,
        /// Each reason.
        refusals: Vec<String>,
    },
    /// Reading or writing the database failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

/// What a build accepts.
#[derive(Debug, Clone, Copy, Default)]
pub struct BuildOptions {
    /// Accept losing a source group or more than 10 % of the records (`--allow-shrink`).
    pub allow_shrink: bool,
    /// Per-file feed errors are warnings instead of refusals (`--allow-feed-errors`).
    pub allow_feed_errors: bool,
}

/// A successful build.
#[derive(Debug)]
pub struct Built {
    /// The database now at the target.
    pub db: VulnDb,
    /// Its size in bytes.
    pub bytes: usize,
    /// Warnings (skipped records, feed errors accepted by the options).
    pub warnings: Vec<String>,
}

/// Merge feed sets into build input.
pub fn merge(sets: Vec<FeedSet>) -> BuildInput {
    let mut input = BuildInput::default();
    for s in sets {
        input.advisories.extend(s.advisories);
        input.kev.extend(s.kev);
        input.epss.extend(s.epss);
        input.sources.extend(s.sources.into_iter().map(|x| SourceInfo {
            name: x.name,
            path: x.path,
            records: x.records,
            skipped: x.skipped,
        }));
    }
    input
}

/// Build from every feed under `dirs` and write it atomically to `target` (refusing, and keeping
/// the current file, as [`BuildError::Refused`] says). `now_unix` stamps the build.
pub fn build_from_dirs(
    dirs: &[PathBuf],
    target: &Path,
    opts: BuildOptions,
    now_unix: u64,
) -> Result<Built, BuildError> {
    let mut sets = Vec::new();
    let mut errors = Vec::new();
    for dir in dirs {
        let mut s = feed::load_dir(dir).map_err(|error| BuildError::Feeds { dir: dir.clone(), error })?;
        errors.extend(s.errors.drain(..).map(|e| e.to_string()));
        if s.sources.is_empty() && errors.is_empty() {
            return Err(BuildError::NoFeeds(dir.clone()));
        }
        sets.push(s);
    }
    let input = merge(sets);
    let mut warnings: Vec<String> = input
        .sources
        .iter()
        .filter(|s| s.skipped > 0)
        .map(|s| format!("{}: {} malformed records skipped", s.name, s.skipped))
        .collect();
    let bytes = db::build(input, now_unix);
    let new = VulnDb::from_bytes(target, bytes.clone())?;
    let prev = match VulnDb::open(target) {
        Ok(d) => Some(d),
        Err(DbError::Missing { .. }) => None,
        Err(e) => {
            warnings.push(format!("the current database is unreadable and will be replaced: {e}"));
            None
        }
    };
    if opts.allow_feed_errors {
        warnings.extend(errors.drain(..).map(|e| format!("feed file failed (accepted): {e}")));
    }
    let refusals = db::replace_refusals(prev.as_ref().map(|d| d.meta()), new.meta(), &errors, opts.allow_shrink);
    if !refusals.is_empty() {
        return Err(BuildError::Refused { target: target.to_path_buf(), replacing: prev.is_some(), refusals });
    }
    db::write_atomic(target, &bytes)?;
    Ok(Built { db: VulnDb::open(target)?, bytes: bytes.len(), warnings })
}
