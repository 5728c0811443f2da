//! Every feed parser: the first byte picks the format.
#![no_main]
use libfuzzer_sys::fuzz_target;
use palisade_vulndb::feed::{parse_file, FeedKind};

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else { return };
    let kind = FeedKind::ALL[sel as usize % FeedKind::ALL.len()];
    if let Ok(set) = parse_file(kind, "fuzz", rest) {
        // Whatever parses must also build into a database and match without panicking.
        let input = palisade_vulndb::db::BuildInput {
            advisories: set.advisories,
            kev: set.kev,
            epss: set.epss,
            sources: vec![],
        };
        let _ = palisade_vulndb::db::build(input, 0);
    }
});
