//! Lockfile catalogers (package-lock, yarn.lock, pnpm-lock, Cargo.lock,
//! Gemfile.lock, composer.lock, deps.json): every input goes through all of
//! them, so one seed of each format exercises the others' error paths too.
//! A cataloger must not panic, and it cannot report more packages than the
//! input has bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;

const PATHS: &[&str] = &[
    "/app/package-lock.json",
    "/app/yarn.lock",
    "/app/pnpm-lock.yaml",
    "/src/Cargo.lock",
    "/app/Gemfile.lock",
    "/app/composer.lock",
    "/app/bin/x.deps.json",
];

fuzz_target!(|data: &[u8]| {
    for path in PATHS {
        if let Some(Ok(pkgs)) = palisade_sbom::analyzer::catalog_bytes(path, 0o644, data) {
            assert!(pkgs.len() <= data.len(), "{path}: {} packages from {} bytes", pkgs.len(), data.len());
        }
    }
});
