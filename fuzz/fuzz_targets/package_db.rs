//! Text package databases and manifests: the first byte picks the format.
#![no_main]
use libfuzzer_sys::fuzz_target;

const PATHS: &[&str] = &[
    "/var/lib/dpkg/status",
    "/lib/apk/db/installed",
    "/usr/lib/python3/dist-packages/x-1.dist-info/METADATA",
    "/app/node_modules/x/package.json",
    "/app/package-lock.json",
    "/app/yarn.lock",
    "/app/pnpm-lock.yaml",
    "/src/Cargo.lock",
    "/gems/specifications/x-1.gemspec",
    "/app/Gemfile.lock",
    "/app/composer.lock",
    "/app/x.deps.json",
    "/etc/os-release",
];

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else { return };
    let path = PATHS[sel as usize % PATHS.len()];
    let _ = palisade_sbom::analyzer::catalog_bytes(path, 0o644, rest);
    if path == "/etc/os-release" {
        let _ = palisade_sbom::catalog::os::parse_release(path, &String::from_utf8_lossy(rest));
    }
});
