//! Tests over the real feed files in /work/shared/vulndata, malformed records and garbage input.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::io::Write;

use super::*;
use crate::record::{Event, RangeKind, Severity, Status};

const VULNDATA: &str = "/work/shared/vulndata";

fn read(rel: &str) -> Vec<u8> {
    std::fs::read(Path::new(VULNDATA).join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn parse_rel(kind: FeedKind, rel: &str) -> FeedSet {
    parse_file(kind, rel, &read(rel)).unwrap_or_else(|e| panic!("{e}"))
}

fn find<'a>(set: &'a FeedSet, id: &str, package: &str) -> &'a Advisory {
    set.advisories
        .iter()
        .find(|a| a.id == id && a.affected.iter().any(|x| x.package == package))
        .unwrap_or_else(|| panic!("{id} for {package} not found"))
}

fn ev(events: &[(&str, &str)]) -> Vec<Event> {
    events
        .iter()
        .map(|(k, v)| match *k {
            "i" => Event::Introduced(v.to_string()),
            "f" => Event::Fixed(v.to_string()),
            "l" => Event::LastAffected(v.to_string()),
            _ => Event::Limit(v.to_string()),
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// OSV
// ---------------------------------------------------------------------------------------------

#[test]
fn feed_real_osv_go_zip() {
    let set = parse_rel(FeedKind::OsvZip, "osv/Go/all.zip");
    let st = &set.sources[0];
    assert_eq!((st.name.as_str(), st.records, st.skipped), ("osv:Go", 4291, 0));
    assert_eq!(set.advisories.iter().filter(|a| a.withdrawn).count(), 17);
    assert_eq!(set.advisories.iter().filter(|a| !a.withdrawn).count(), 4274);
    let a = find(&set, "GO-2024-2611", "google.golang.org/protobuf");
    assert!(a.aliases.contains(&"CVE-2024-24786".to_string()), "{:?}", a.aliases);
    let af = &a.affected[0];
    assert_eq!((af.ecosystem, af.release.as_str(), af.status), (EcoKind::Go, "", Status::Fixed));
    assert_eq!(af.ranges[0].kind, RangeKind::Semver);
    assert_eq!(af.ranges[0].events, ev(&[("i", "0"), ("f", "1.33.0")]));
    // The standard library keeps the Go database's module name.
    let std = find(&set, "GO-2021-0069", "stdlib");
    assert_eq!(
        std.affected[0].ranges[0].events,
        ev(&[("i", "1.14.0-0"), ("f", "1.14.12"), ("i", "1.15.0-0"), ("f", "1.15.5")])
    );
    assert!(set.advisories.iter().any(|a| a.affected.iter().any(|x| x.package == "toolchain")));
}

#[test]
fn feed_real_osv_crates_zip() {
    let set = parse_rel(FeedKind::OsvZip, "osv/crates.io/all.zip");
    let st = &set.sources[0];
    assert_eq!((st.name.as_str(), st.records, st.skipped), ("osv:crates.io", 1206, 0));
    assert_eq!(set.advisories.iter().filter(|a| a.withdrawn).count(), 13);
    assert!(set.advisories.iter().all(|a| a.affected.iter().all(|x| x.ecosystem == EcoKind::CratesIo)));
    // Every CVSS v3 vector of RustSec gets a computed score; v4 stays unscored.
    let v3: Vec<_> = set.advisories.iter().flat_map(|a| &a.cvss).filter(|c| c.version.starts_with('3')).collect();
    assert_eq!(v3.len(), 360);
    assert!(v3.iter().all(|c| c.score.is_some_and(|s| (0.0..=10.0).contains(&s)) && c.source == "rustsec"));
    assert_eq!(set.advisories.iter().flat_map(|a| &a.cvss).filter(|c| c.version == "4.0").count(), 57);
}

#[test]
fn feed_real_osv_pypi_zip() {
    let set = parse_rel(FeedKind::OsvZip, "osv/PyPI/all.zip");
    let st = &set.sources[0];
    assert_eq!((st.name.as_str(), st.records, st.skipped), ("osv:PyPI", 2661, 0));
    assert!(st.ignored >= 1391, "GIT ranges are dropped and counted: {}", st.ignored);
    assert_eq!(set.advisories.iter().filter(|a| a.withdrawn).count(), 10);
    let a = find(&set, "PYSEC-2018-28", "requests");
    assert!(a.aliases.contains(&"CVE-2018-18074".to_string()));
    assert!(a.summary.starts_with("The Requests package before 2.20.0"));
    let af = &a.affected[0];
    assert_eq!(af.ranges.len(), 1, "the GIT range is dropped");
    assert_eq!(af.ranges[0].kind, RangeKind::Ecosystem);
    assert_eq!(af.ranges[0].events, ev(&[("i", "0"), ("f", "2.20.0")]));
    assert!(af.versions.contains(&"2.19.1".to_string()));
    assert!(set
        .advisories
        .iter()
        .all(|a| a.affected.iter().all(|r| r.ranges.iter().all(|r| r.kind == RangeKind::Ecosystem))));
}

#[test]
fn feed_real_osv_ubuntu_and_others() {
    let set = parse_rel(FeedKind::OsvJson, "upstream-samples/ubuntu/osv/cve/2016/UBUNTU-CVE-2016-20013.json");
    let a = &set.advisories[0];
    assert_eq!(set.sources[0].name, "osv:Ubuntu");
    assert_eq!(a.aliases, vec!["CVE-2016-20013".to_string()], "upstream ids become aliases");
    assert_eq!(a.severity, Some(Severity::Negligible), "Ubuntu priority");
    assert_eq!(a.cvss[0].score, Some(7.5));
    let eg = a.affected.iter().find(|x| x.package == "eglibc").unwrap();
    assert_eq!((eg.ecosystem, eg.release.as_str(), eg.status), (EcoKind::Ubuntu, "14.04", Status::Affected));
    assert_eq!(eg.versions.len(), 29);

    let set = parse_rel(FeedKind::OsvJson, "upstream-samples/ubuntu/osv/cve/2021/UBUNTU-CVE-2021-3782.json");
    let w = set.advisories[0].affected.iter().find(|x| x.release == "22.04").unwrap();
    assert_eq!((w.package.as_str(), w.status), ("wayland", Status::Fixed));
    assert_eq!(w.ranges[0].events, ev(&[("i", "0"), ("f", "1.20.0-1ubuntu0.1")]));
    assert_eq!(set.advisories[0].cvss.len(), 1, "duplicate vectors are kept once");

    let set = parse_rel(FeedKind::OsvJson, "upstream-samples/ubuntu/osv/cve/2013/UBUNTU-CVE-2013-2208.json");
    assert!(set.advisories[0].withdrawn);
    let set = parse_rel(FeedKind::OsvJson, "upstream-samples/ubuntu/osv/usn/USN-5614-1.json");
    assert_eq!(set.advisories[0].affected.len(), 3);

    // Chainguard/Wolfi ecosystems are unknown: nothing usable, counted.
    let set = parse_rel(FeedKind::OsvJson, "upstream-samples/chainguard/input/osv/CGA-224q-ccj5-2p53.json");
    assert_eq!((set.sources[0].records, set.sources[0].ignored), (0, 5));

    let set = parse_rel(FeedKind::OsvJson, "upstream-samples/govulndb/vulndb/ID/GO-2023-1989.json");
    assert_eq!(set.advisories[0].affected[0].ranges[0].events, ev(&[("i", "0"), ("f", "0.10.0")]));
}

// ---------------------------------------------------------------------------------------------
// Alpine
// ---------------------------------------------------------------------------------------------

#[test]
fn feed_real_alpine_secdb() {
    let fixed = |set: &FeedSet, id: &str, pkg: &str| {
        let a = find(set, id, pkg);
        assert_eq!(a.source, "alpine-secdb");
        let af = &a.affected[0];
        assert_eq!((af.ecosystem, af.status), (EcoKind::Alpine, Status::Fixed));
        match af.ranges[0].events.as_slice() {
            [Event::Introduced(z), Event::Fixed(v)] if z == "0" => (af.release.clone(), v.clone()),
            other => panic!("{other:?}"),
        }
    };
    let s310 = parse_rel(FeedKind::AlpineSecdb, "alpine-secdb/v3.10/main.json");
    assert_eq!(s310.sources[0].name, "alpine-secdb:3.10");
    // "CVE-2017-17434-1" and "-2" (rsync) are parts of one CVE.
    assert_eq!((s310.sources[0].records, s310.sources[0].skipped), (1158, 0));
    assert_eq!(fixed(&s310, "CVE-2017-17434", "rsync").1, "3.1.2-r7");
    assert_eq!(fixed(&s310, "CVE-2019-1547", "openssl"), ("3.10".to_string(), "1.1.1d-r0".to_string()));
    assert_eq!(fixed(&s310, "CVE-2018-0734", "openssl"), ("3.10".to_string(), "1.1.1a-r0".to_string()));
    assert_eq!(fixed(&s310, "CVE-2019-14697", "musl"), ("3.10".to_string(), "1.1.22-r3".to_string()));
    // "CVE-2018-7540 XSA-252": the XSA id is an alias; bare XSA ids are advisories of their own.
    assert_eq!(find(&s310, "CVE-2018-7540", "xen").aliases, vec!["XSA-252".to_string()]);
    assert_eq!(fixed(&s310, "XSA-248", "xen").1, "4.10.0-r1");
    // "CVE-2017-12122 TALOS-2017-0488", notes in parentheses dropped.
    assert_eq!(find(&s310, "CVE-2017-12122", "sdl2_image").aliases, vec!["TALOS-2017-0488".to_string()]);
    assert_eq!(fixed(&s310, "CVE-2018-14461", "tcpdump").1, "4.9.3-r0");

    let s311 = parse_rel(FeedKind::AlpineSecdb, "alpine-secdb/v3.11/main.json");
    assert_eq!(s311.sources[0].records, 1179);
    assert_eq!(fixed(&s311, "CVE-2019-1547", "openssl"), ("3.11".to_string(), "1.1.1d-r1".to_string()));
    assert_eq!(fixed(&s311, "CVE-2019-1551", "openssl").1, "1.1.1d-r3");
    assert_eq!(parse_rel(FeedKind::AlpineSecdb, "alpine-secdb/v3.10/community.json").sources[0].records, 712);
    assert_eq!(parse_rel(FeedKind::AlpineSecdb, "alpine-secdb/v3.11/community.json").sources[0].records, 886);

    let late = parse_rel(FeedKind::AlpineSecdb, "alpine-secdb-late/v3.11/main.json");
    assert_eq!(late.sources[0].records, 45);
    assert_eq!(fixed(&late, "CVE-2021-3711", "openssl").1, "1.1.1l-r0");
    let bb = find(&late, "CVE-2021-42373", "busybox");
    assert_eq!(bb.affected[0].status, Status::NotAffected, "the \"0\" key");
    assert!(bb.affected[0].ranges.is_empty());
    let late10 = parse_rel(FeedKind::AlpineSecdb, "alpine-secdb-late/v3.10/main.json");
    assert_eq!(fixed(&late10, "CVE-2021-3450", "openssl"), ("3.10".to_string(), "1.1.1k-r0".to_string()));

    // The repository's YAML form.
    let y = parse_rel(FeedKind::AlpineSecdb, "upstream-samples/alpine/input/secdb/v3.15/main.yaml");
    assert_eq!(y.sources[0].name, "alpine-secdb:3.15");
    assert_eq!(fixed(&y, "CVE-2022-37434", "zlib"), ("3.15".to_string(), "1.2.12-r2".to_string()));
}

// ---------------------------------------------------------------------------------------------
// Debian
// ---------------------------------------------------------------------------------------------

#[test]
fn feed_real_debian_tracker_sample() {
    let set = parse_rel(FeedKind::DebianTracker, "upstream-samples/debian/input/debian.json");
    let st = &set.sources[0];
    assert_eq!((st.name.as_str(), st.records, st.skipped, st.ignored), ("debian-tracker", 6, 0, 1));
    let a = find(&set, "CVE-2008-7220", "prototypejs");
    let s9 = a.affected.iter().find(|x| x.release == "9").unwrap();
    assert_eq!((s9.status, s9.severity), (Status::Fixed, Some(Severity::High)));
    assert_eq!(s9.ranges[0].events, ev(&[("i", "0"), ("f", "1.6.0.2-1")]));
    let n = find(&set, "CVE-2007-2383", "prototypejs");
    assert!(n.affected.iter().all(|x| x.status == Status::NotAffected && x.severity == Some(Severity::Negligible)));
    let c = find(&set, "CVE-2022-0456", "chromium");
    let buster = c.affected.iter().find(|x| x.release == "10").unwrap();
    assert_eq!((buster.status, buster.severity), (Status::EndOfLife, None));
    let bookworm = c.affected.iter().find(|x| x.release == "12").unwrap();
    assert_eq!((bookworm.status, bookworm.severity), (Status::Fixed, None), "\"not yet assigned\"");
    let sope = find(&set, "CVE-2025-53603", "sope");
    assert_eq!(sope.affected.iter().map(|x| x.release.as_str()).collect::<Vec<_>>(), vec!["12", "11", "sid", "13"]);
}

#[test]
fn feed_real_debian_dsa_sample() {
    let set = parse_rel(FeedKind::DebianDsa, "upstream-samples/debian/input/DSA");
    assert_eq!((set.sources[0].records, set.sources[0].ignored), (7, 3));
    let a = find(&set, "DSA-140", "libpng3");
    assert_eq!(a.aliases, vec!["CVE-2002-0660".to_string(), "CVE-2002-0728".to_string()]);
    assert_eq!(a.published.as_deref(), Some("2002-08-05T00:00:00Z"));
    assert_eq!(a.affected.len(), 2);
    assert_eq!(a.affected[1].ranges[0].events, ev(&[("i", "0"), ("f", "1.2.1-1.1.woody.2")]));
    let s = find(&set, "DSA-5970-1", "sope");
    assert_eq!(s.affected[0].release, "12");
}

// ---------------------------------------------------------------------------------------------
// KEV, EPSS, NVD
// ---------------------------------------------------------------------------------------------

#[test]
fn feed_real_kev() {
    let set = parse_rel(FeedKind::Kev, "kev/known_exploited_vulnerabilities.json");
    assert_eq!((set.kev.len(), set.sources[0].skipped), (1404, 0));
    assert_eq!(set.kev.iter().filter(|k| k.ransomware).count(), 293);
    let k = set.kev.iter().find(|k| k.cve == "CVE-2025-48384").unwrap();
    assert_eq!((k.date_added.as_str(), k.due_date.as_str(), k.ransomware), ("2025-08-25", "2025-09-15", false));
    assert!(k.required_action.starts_with("Apply mitigations"));
    let ids: std::collections::HashSet<_> = set.kev.iter().map(|k| &k.cve).collect();
    assert_eq!(ids.len(), 1404);
    assert_eq!(parse_rel(FeedKind::Kev, "upstream-samples/kev/single-entry/example1.json").kev.len(), 1);
}

#[test]
fn feed_real_epss() {
    let set = parse_rel(FeedKind::Epss, "upstream-samples/epss/example-1.csv");
    assert_eq!(set.epss.len(), 5);
    assert_eq!(set.epss[4], ("CVE-1999-0005".to_string(), Epss { score: 0.91963, percentile: 0.99214 }));
    assert_eq!(parse_rel(FeedKind::Epss, "upstream-samples/epss/missing-date.csv").epss.len(), 5);
    let bad = parse_file(FeedKind::Epss, "invalid-header.csv", &read("upstream-samples/epss/invalid-header.csv"));
    assert!(matches!(bad, Err(FeedError::Format { ref file, .. }) if file == "invalid-header.csv"), "{bad:?}");
}

#[test]
fn feed_real_nvd() {
    let set = parse_rel(FeedKind::Nvd, "upstream-samples/nvd/single-entry.json");
    let a = &set.advisories[0];
    assert_eq!((a.id.as_str(), a.source.as_str(), a.severity), ("CVE-2022-1576", "nvd", Some(Severity::Medium)));
    assert!(a.affected.is_empty());
    let cv: Vec<_> =
        a.cvss.iter().map(|c| (c.version.as_str(), c.vector.as_str(), c.score, c.source.as_str())).collect();
    assert_eq!(
        cv,
        vec![
            ("3.1", "CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:U/C:N/I:H/A:N", Some(6.5), "nvd"),
            ("2.0", "AV:N/AC:M/Au:N/C:N/I:P/A:N", Some(4.3), "nvd")
        ]
    );
    let page = parse_rel(FeedKind::Nvd, "upstream-samples/nvd/full-page.json");
    assert_eq!((page.advisories.len(), page.sources[0].skipped), (38, 0));
    let b = page.advisories.iter().find(|a| a.id == "CVE-2023-30781").unwrap();
    assert_eq!((b.severity, b.cvss[0].source.as_str()), (Some(Severity::High), "audit@patchstack.com"));
    assert_eq!(page.advisories.iter().filter(|a| a.cvss.is_empty()).count(), 3);

    // The CVSS formulas reproduce every base score NVD publishes in the samples.
    let mut checked = 0;
    for rel in ["upstream-samples/nvd/single-entry.json", "upstream-samples/nvd/full-page.json"] {
        let doc: serde_json::Value = serde_json::from_slice(&read(rel)).unwrap();
        for v in doc["vulnerabilities"].as_array().unwrap() {
            for (_, list) in v["cve"]["metrics"].as_object().unwrap() {
                for m in list.as_array().unwrap() {
                    let vector = m["cvssData"]["vectorString"].as_str().unwrap();
                    let want = m["cvssData"]["baseScore"].as_f64().unwrap() as f32;
                    let got = if vector.starts_with("CVSS:3") {
                        cvss::v3_base_score(vector)
                    } else {
                        cvss::v2_base_score(vector)
                    };
                    assert_eq!(got, Some(want), "{vector}");
                    checked += 1;
                }
            }
        }
    }
    assert_eq!(checked, 50);
}

// ---------------------------------------------------------------------------------------------
// Native formats
// ---------------------------------------------------------------------------------------------

#[test]
fn feed_real_nodejs_security_wg() {
    let set = parse_rel(FeedKind::NodeSecurityWg, "native-nodejs-security-wg.tar.gz");
    let st = &set.sources[0];
    assert_eq!((st.records, st.skipped), (467, 0));
    assert!(set.advisories.iter().all(|a| a.affected[0].ecosystem == EcoKind::Npm));
    let a = find(&set, "NSWG-ECO-410", "merge-options");
    assert_eq!((a.affected[0].status, a.cvss[0].score), (Status::Affected, Some(2.0)));
    assert_eq!(a.affected[0].ranges[0].events, ev(&[("i", "0"), ("l", "1.0.0")]));
    let p = find(&set, "NSWG-ECO-145", "plotly.js");
    let r: Vec<_> = p.affected[0].ranges.iter().map(|r| r.events.clone()).collect();
    assert_eq!(r, vec![ev(&[("i", "0"), ("f", "1.10.4")]), ev(&[("i", "1.11.0"), ("f", "1.16.0")])]);
    let h = find(&set, "NSWG-ECO-11", "hapi");
    assert_eq!(h.aliases, vec!["CVE-2014-3742".to_string()]);
    assert_eq!(h.affected[0].ranges[1].events, ev(&[("i", "2.1.0"), ("f", "2.2.0")]));
    let e = find(&set, "NSWG-ECO-8", "express");
    assert_eq!(e.affected[0].ranges[1].events, ev(&[("i", "4.0.0"), ("f", "4.5.0")]));
    let all = find(&set, "NSWG-ECO-502", "gitlabhook");
    assert_eq!(all.affected[0].ranges[0].events, ev(&[("i", "0")]));
}

#[test]
fn feed_real_rubysec() {
    let set = parse_rel(FeedKind::RubySec, "native-rubysec.tar.gz");
    let st = &set.sources[0];
    // 1,234 advisories; two (ckeditor CVE-2021-32808, cron_parser CVE-2019-15224) leave no version affected.
    assert_eq!((st.records, st.skipped, st.ignored), (1232, 0, 2));
    let a = find(&set, "CVE-2020-8164", "actionpack");
    assert_eq!(a.aliases, vec!["GHSA-8727-m6gj-mc37".to_string()]);
    let r: Vec<_> = a.affected[0].ranges.iter().map(|r| r.events.clone()).collect();
    assert_eq!(r, vec![ev(&[("i", "4.0.0"), ("f", "5.2.4.3")]), ev(&[("i", "5.3"), ("f", "6.0.3.1")])]);
    // A malicious release: only one version affected.
    let m = find(&set, "CVE-2019-15224", "capistrano-colors");
    assert_eq!((m.affected[0].versions.clone(), m.affected[0].ranges.len()), (vec!["0.5.5".to_string()], 0));
    let never = find(&set, "CVE-2014-2322", "Arabic-Prawn");
    assert_eq!(
        (never.affected[0].status, never.affected[0].ranges[0].events.clone()),
        (Status::Affected, ev(&[("i", "0")]))
    );
    assert!(set.advisories.iter().all(|a| a.affected[0].ecosystem == EcoKind::RubyGems));
}

#[test]
fn feed_real_friendsofphp() {
    let set = parse_rel(FeedKind::FriendsOfPhp, "native-friendsofphp.tar.gz");
    let st = &set.sources[0];
    assert_eq!((st.records, st.skipped), (1592, 0));
    let a = find(&set, "CVE-2019-11458", "cakephp/cakephp");
    let r: Vec<_> = a.affected[0].ranges.iter().map(|r| r.events.clone()).collect();
    assert_eq!(
        r,
        vec![
            ev(&[("i", "3.0.0"), ("f", "3.5.18")]),
            ev(&[("i", "3.6.0"), ("f", "3.6.15")]),
            ev(&[("i", "3.7.0"), ("f", "3.7.7")])
        ]
    );
    let nocve = find(&set, "FRIENDSOFPHP-symfony/symfony/2012-08-28", "symfony/symfony");
    assert!(!nocve.affected[0].ranges.is_empty());
}

// ---------------------------------------------------------------------------------------------
// Directory discovery
// ---------------------------------------------------------------------------------------------

#[test]
fn feed_real_load_dir() {
    let t = std::time::Instant::now();
    let set = load_dir(Path::new(VULNDATA)).unwrap();
    eprintln!("load_dir({VULNDATA}) took {:?}", t.elapsed());
    let stat = |name: &str, path_end: &str| {
        set.sources
            .iter()
            .find(|s| s.name == name && s.path.ends_with(path_end))
            .map(|s| (s.records, s.skipped))
            .unwrap_or_else(|| panic!("no source {name} {path_end}: {:#?}", set.sources))
    };
    assert_eq!(stat("osv:Go", "osv/Go/all.zip"), (4291, 0));
    assert_eq!(stat("osv:crates.io", "osv/crates.io/all.zip"), (1206, 0));
    assert_eq!(stat("osv:PyPI", "osv/PyPI/all.zip"), (2661, 0));
    assert_eq!(stat("alpine-secdb:3.10", "alpine-secdb/v3.10/main.json"), (1158, 0));
    assert_eq!(stat("alpine-secdb:3.11", "alpine-secdb-late/v3.11/main.json"), (45, 0));
    assert_eq!(stat("alpine-secdb:3.15", "v3.15/main.yaml"), (13, 0));
    assert_eq!(stat("kev", "kev/known_exploited_vulnerabilities.json"), (1404, 0));
    assert_eq!(stat("nodejs-security-wg", "native-nodejs-security-wg.tar.gz"), (467, 0));
    assert_eq!(stat("rubysec", "native-rubysec.tar.gz"), (1232, 0));
    assert_eq!(stat("friendsofphp", "native-friendsofphp.tar.gz"), (1592, 0));
    assert_eq!(stat("debian-tracker", "debian/input/debian.json"), (6, 0));
    assert_eq!(stat("debian-dsa", "debian/input/DSA"), (7, 0));
    assert_eq!(stat("nvd", "nvd/full-page.json"), (38, 0));
    assert_eq!(stat("epss", "epss/example-1.csv"), (5, 0));
    // Loose OSV records are grouped per ecosystem under their common directory.
    assert_eq!(stat("osv:Ubuntu", "upstream-samples/ubuntu"), (9, 0));
    assert_eq!(stat("osv:Go", "govulndb/vulndb/ID"), (2, 0));
    // vunnel's snapshots and other upstream formats are not recognised; the bad EPSS sample is an error.
    assert_eq!(set.errors.len(), 1, "{:?}", set.errors);
    assert!(set.errors[0].file().ends_with("epss/invalid-header.csv"));
    // De-duplication: GO-2024-2611 is both in Go/all.zip and in the govulndb sample.
    assert_eq!(set.advisories.iter().filter(|a| a.id == "GO-2024-2611").count(), 1);
    assert_eq!(set.kev.len(), 1404, "sample KEV entries are already in the catalogue");
    assert_eq!(set.epss.len(), 5);
    let alpine = set.advisories.iter().filter(|a| a.source == "alpine-secdb").count();
    assert_eq!(alpine, 712 + 1158 + 886 + 1179 + 28 + 45 + 3 + 13);
}

#[test]
fn feed_load_dir_hostile_tree() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("osv/a")).unwrap();
    std::fs::create_dir_all(root.join(".hidden")).unwrap();
    std::fs::write(root.join(".hidden/x.json"), br#"{"id": "HIDDEN-1", "affected": []}"#).unwrap();
    std::fs::write(
        root.join("osv/a/good.json"),
        br#"{"id": "GHSA-1", "affected": [{"package": {"ecosystem": "npm", "name": "x"}, "versions": ["1.0.0"]}]}"#,
    )
    .unwrap();
    std::fs::write(root.join("osv/a/garbage.json"), b"{\"id\": \"GHSA-2\", \"affected\": [").unwrap();
    std::fs::write(root.join("osv/a/other.json"), br#"{"hello": "world"}"#).unwrap();
    std::fs::write(root.join("random.bin"), [0u8, 1, 2, 3, 255]).unwrap();
    std::fs::write(root.join("broken.zip"), b"PK\x03\x04 not really").unwrap();
    std::fs::write(root.join("my-epss.csv"), b"nope\n").unwrap();
    std::fs::write(root.join("DSA"), b"not a dsa list\n").unwrap();
    std::fs::write(root.join("a.yaml"), b"a: &a [*a]\n").unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(root, root.join("osv/loop")).unwrap();
    let set = load_dir(root).unwrap();
    assert_eq!(set.advisories.iter().map(|a| a.id.as_str()).collect::<Vec<_>>(), vec!["GHSA-1"]);
    assert_eq!(set.errors.len(), 2, "{:?}", set.errors);
    assert!(load_dir(&root.join("random.bin")).is_err());
    assert!(load_dir(&root.join("missing")).is_err());
}

// ---------------------------------------------------------------------------------------------
// Malformed records inside well-formed files
// ---------------------------------------------------------------------------------------------

fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, data) in entries {
        if name.ends_with('/') {
            w.add_directory(*name, zip::write::SimpleFileOptions::default()).unwrap();
        } else {
            w.start_file(*name, zip::write::SimpleFileOptions::default()).unwrap();
            w.write_all(data).unwrap();
        }
    }
    w.finish().unwrap().into_inner()
}

fn tar_gz_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, *data).unwrap();
    }
    let tar = b.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    gz.finish().unwrap()
}

#[test]
fn feed_osv_zip_bad_entries_are_skipped() {
    let good = br#"{"id": "PYSEC-1", "affected": [{"package": {"ecosystem": "PyPI", "name": "a"}, "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.0"}]}]}]}"#;
    let unknown = br#"{"id": "X-1", "affected": [{"package": {"ecosystem": "Nope", "name": "a"}, "versions": ["1"]}]}"#;
    let broken_versions = br#"{"id": "PYSEC-2", "affected": [{"package": {"ecosystem": "PyPI", "name": "b"}, "ranges": [{"type": "ECOSYSTEM", "events": "oops"}], "versions": [1, null, "2.0"]}]}"#;
    let data = zip_of(&[
        ("dir/", b""),
        ("PYSEC-1.json", good),
        ("bad.json", b"{ not json"),
        ("noid.json", b"{\"affected\": []}"),
        ("X-1.json", unknown),
        ("PYSEC-2.json", broken_versions),
        ("README.txt", b"ignored"),
    ]);
    let set = parse_file(FeedKind::OsvZip, "t.zip", &data).unwrap();
    let st = &set.sources[0];
    assert_eq!((st.records, st.skipped), (2, 2), "bad JSON and a record without id");
    assert!(st.ignored >= 3, "unknown ecosystem entry, its empty advisory, the eventless range: {}", st.ignored);
    let b = set.advisories.iter().find(|a| a.id == "PYSEC-2").unwrap();
    assert_eq!((b.affected[0].ranges.len(), b.affected[0].versions.clone()), (0, vec!["2.0".to_string()]));
    assert!(parse_file(FeedKind::OsvZip, "t.zip", b"PK\x03\x04garbage").is_err());
    assert!(parse_file(FeedKind::OsvZip, "t.zip", b"").is_err());
}

#[test]
fn feed_tarballs_bad_entries_are_skipped() {
    let good = br#"{"id": 1, "module_name": "a", "vulnerable_versions": "<1.0.0", "patched_versions": ">=1.0.0"}"#;
    let data = tar_gz_of(&[
        ("wg/npm/1.json", good),
        ("wg/npm/2.json", b"{oops"),
        ("wg/npm/3.json", br#"{"id": 3, "module_name": "b", "vulnerable_versions": ">=1.0.0 <"}"#),
        ("wg/npm/index.json", b"{}"),
        ("wg/core/1.json", b"{}"),
    ]);
    let set = parse_file(FeedKind::NodeSecurityWg, "wg.tar.gz", &data).unwrap();
    assert_eq!((set.sources[0].records, set.sources[0].skipped), (1, 2));
    assert_eq!(set.advisories[0].affected[0].status, Status::Fixed);

    let data = tar_gz_of(&[
        ("db/gems/a/CVE-2020-1111.yml", b"gem: a\ncve: 2020-1111\npatched_versions: ['>= 1.2']\n"),
        ("db/gems/b/x.yml", b"gem: b\npatched_versions: ['>= = 1']\n"),
        ("db/gems/c/y.yml", b"gem: [unclosed\n"),
        ("db/rubies/ruby/z.yml", b"engine: ruby\n"),
        ("db/.github/w.yml", b"x: 1\n"),
    ]);
    let set = parse_file(FeedKind::RubySec, "rubysec.tar.gz", &data).unwrap();
    assert_eq!((set.sources[0].records, set.sources[0].skipped), (1, 2));
    assert_eq!(set.advisories[0].affected[0].ranges[0].events, ev(&[("i", "0"), ("f", "1.2")]));

    let data = tar_gz_of(&[
        (
            "v/p/CVE-2020-2222.yaml",
            b"reference: composer://v/p\ncve: CVE-2020-2222\nbranches:\n  m:\n    versions: ['<2.0']\n",
        ),
        ("v/p/bad.yaml", b"reference: composer://v/p\nbranches: [1]\n"),
    ]);
    let set = parse_file(FeedKind::FriendsOfPhp, "fop.tar.gz", &data).unwrap();
    assert_eq!((set.sources[0].records, set.sources[0].skipped), (1, 1));

    // A truncated archive keeps what was read before the damage.
    let full = tar_gz_of(&[("wg/npm/1.json", good), ("wg/npm/4.json", &[b' '; 20_000])]);
    let set = parse_file(FeedKind::NodeSecurityWg, "cut.tar.gz", &full[..full.len() - 30]).unwrap();
    assert_eq!((set.sources[0].records, set.sources[0].skipped), (1, 1));
    // Not an archive at all.
    assert!(parse_file(FeedKind::RubySec, "x.tar.gz", b"\x1f\x8b\x08\x00garbage").is_err());
}

#[test]
fn feed_bounded_reads() {
    let big = vec![b'a'; 1000];
    assert_eq!(archive::read_bounded(&big[..], 999).unwrap(), None);
    assert_eq!(archive::read_bounded(&big[..], 1000).unwrap().map(|v| v.len()), Some(1000));
    // A gzip bomb in miniature against a small limit.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&vec![0u8; 4 << 20]).unwrap();
    let gz = gz.finish().unwrap();
    assert!(gz.len() < 64 << 10);
    assert_eq!(archive::read_bounded(flate2::read::GzDecoder::new(&gz[..]), 1 << 20).unwrap(), None);
}

// ---------------------------------------------------------------------------------------------
// Garbage input never panics
// ---------------------------------------------------------------------------------------------

const ALL_KINDS: [FeedKind; 11] = FeedKind::ALL;

#[test]
fn feed_garbage_never_panics() {
    let mut inputs: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"null".to_vec(),
        b"[]".to_vec(),
        b"{}".to_vec(),
        b"\"str\"".to_vec(),
        "[".repeat(100_000).into_bytes(),
        "{\"a\":".repeat(50_000).into_bytes(),
        "- ".repeat(50_000).into_bytes(),
        (0..3000).map(|i| format!("{}k{i}:\n", " ".repeat(i))).collect::<String>().into_bytes(),
        b"a: &a [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\ng: [*f, *f, *f, *f, *f, *f, *f, *f, *f]\n".to_vec(),
        br#"{"distroversion": 5, "packages": {"x": 1}}"#.to_vec(),
        br#"{"distroversion": "v3.1", "packages": [{"pkg": {"name": "a", "secfixes": {"1": [[1], {"a": 2}, "CVE-2020-1234 ((((", ")))) XSA-1"]}}}]}"#.to_vec(),
        br#"{"vulnerabilities": [{"cve": {"id": "CVE-1", "metrics": {"cvssMetricV31": [{"cvssData": {"vectorString": "CVSS:3.1/AV:N/AV:N", "baseScore": "x"}}]}}}, 5, null]}"#.to_vec(),
        br#"{"id": "A", "affected": [{"package": {"ecosystem": "Ubuntu:", "name": ""}}, {"package": {"ecosystem": "npm", "name": "x"}, "ranges": [{"type": "SEMVER", "events": [{"introduced": "0", "fixed": "1", "x": 2}]}]}], "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:X/C:H/I:H/A:H"}]}"#.to_vec(),
        br#"{"pkg": {"CVE-2020-1234": {"releases": {"x": {"status": "resolved", "fixed_version": 5}, "y": 1}}}}"#.to_vec(),
        b"[01 Jan 2020] DSA-1 x\n\t{CVE-1\n\t[ - \n\t[sid]\n\t[sid] - a <weird>\n[bad\n".to_vec(),
        b"cve,epss,percentile\nCVE-2020-1234,NaN,inf\n,,\nCVE-2020-1234,0.1\n".to_vec(),
        b"gem: x\npatched_versions: {a: 1}\n".to_vec(),
        b"gem: x\nunaffected_versions: ['~> ', '< ', '~> a.b']\n".to_vec(),
        b"reference: composer://\nbranches: {a: {versions: [1, '>']}}\n".to_vec(),
        br#"{"id": 1, "module_name": "x", "vulnerable_versions": "^99999999999999999999.0.0 || ~18446744073709551615.18446744073709551615"}"#.to_vec(),
        br#"{"id": 1, "module_name": "x", "vulnerable_versions": ">18446744073709551615.18446744073709551615.18446744073709551615"}"#.to_vec(),
    ];
    // Deterministic pseudo-random bytes, with and without format-like prefixes.
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..40 {
        let len = 1 + (i * 97) % 3000;
        let mut v = Vec::with_capacity(len + 8);
        match i % 5 {
            1 => v.extend_from_slice(&[0x1f, 0x8b, 0x08, 0x00]),
            2 => v.extend_from_slice(b"PK\x03\x04"),
            3 => v.extend_from_slice(b"{\""),
            4 => v.extend_from_slice(b"cve,epss,percentile\n"),
            _ => {}
        }
        for _ in 0..len {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            v.push((state >> 24) as u8);
        }
        inputs.push(v);
    }
    // Truncated and bit-flipped real files.
    for rel in [
        "upstream-samples/debian/input/debian.json",
        "upstream-samples/nvd/single-entry.json",
        "alpine-secdb-late/v3.11/main.json",
        "upstream-samples/ubuntu/osv/cve/2016/UBUNTU-CVE-2016-20013.json",
        "upstream-samples/alpine/input/secdb/v3.15/main.yaml",
        "upstream-samples/debian/input/DSA",
    ] {
        let data = read(rel);
        for cut in [1, data.len() / 3, data.len() / 2, data.len().saturating_sub(1)] {
            inputs.push(data[..cut].to_vec());
        }
        for k in 1..6 {
            let mut d = data.clone();
            let at = (k * 7919) % d.len();
            d[at] ^= 0x55;
            inputs.push(d);
        }
    }
    let native = tar_gz_of(&[("x/npm/1.json", b"{\"id\":1}"), ("x/a/b.yml", b"gem: [")]);
    inputs.push(native[..native.len() - 10].to_vec());
    let z = zip_of(&[("a.json", b"{\"id\": \"A\"}")]);
    for cut in [4, 30, z.len() - 5] {
        inputs.push(z[..cut].to_vec());
    }
    for (n, input) in inputs.iter().enumerate() {
        for kind in ALL_KINDS {
            let t = std::time::Instant::now();
            let _ = parse_file(kind, "garbage", input);
            if t.elapsed().as_millis() > 50 {
                eprintln!("slow: input {n} kind {kind}: {:?}", t.elapsed());
            }
        }
        let _ = sniff_json(input);
        let _ = debian::looks_like_dsa_list(input);
    }
}

#[test]
fn feed_errors_name_the_file() {
    for kind in ALL_KINDS {
        match parse_file(kind, "some/file.name", b"\x00\x01\x02 definitely not a feed") {
            Err(e) => {
                assert_eq!(e.file(), "some/file.name");
                assert!(e.to_string().starts_with("some/file.name: "), "{e}");
            }
            Ok(set) => panic!("{kind}: accepted garbage: {:?}", set.sources),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Decompression bombs (issue 21 items 11 and 28)
// ---------------------------------------------------------------------------------------------

/// `n` concatenated gzip members, each `member_mib` MiB of zeros (cheap to build, large to inflate).
fn gzip_zeros(member_mib: usize, n: usize) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&vec![0u8; member_mib << 20]).unwrap();
    let member = gz.finish().unwrap();
    member.repeat(n)
}

#[test]
fn feed_gzip_bomb_is_a_limit_error_not_memory() {
    // 272 MiB of zeros from a few MiB of gzip: past MAX_GUNZIP_BYTES, refused before more is held.
    let bomb = gzip_zeros(16, 17);
    assert!(bomb.len() < 4 << 20, "{}", bomb.len());
    match parse_file(FeedKind::Epss, "epss.csv.gz", &bomb) {
        Err(FeedError::Limit { what, limit, .. }) => {
            assert_eq!(what, "decompressed gzip size");
            assert_eq!(limit, MAX_GUNZIP_BYTES);
        }
        other => panic!("expected a limit error, got {:?}", other.map(|s| s.epss.len())),
    }
    // A small gzip CSV still parses.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&read("upstream-samples/epss/example-1.csv")).unwrap();
    let ok = parse_file(FeedKind::Epss, "epss.csv.gz", &gz.finish().unwrap()).unwrap();
    assert_eq!(ok.epss.len(), 5);
}

#[test]
fn feed_zip_bomb_entry_is_a_feed_error() {
    let good = br#"{"id":"GO-1","modified":"2024-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"Go","name":"example.com/m"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"1.0.0"}]}]}]}"#;
    let zeros = vec![b' '; 24 << 20];
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let deflate = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    w.start_file("GO-1.json", deflate).unwrap();
    w.write_all(good).unwrap();
    w.start_file("GO-2.json", deflate).unwrap();
    w.write_all(&zeros).unwrap();
    let bomb = w.finish().unwrap().into_inner();
    assert!(bomb.len() < 1 << 20, "{}", bomb.len());
    match parse_file(FeedKind::OsvZip, "all.zip", &bomb) {
        Err(FeedError::Limit { what, .. }) => assert_eq!(what, "zip entry decompression ratio"),
        other => panic!("expected a limit error, got {:?}", other.map(|s| s.advisories.len())),
    }
    // Found by load_dir, it is reported as that file's error (and db build refuses on it).
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("osv/Go")).unwrap();
    std::fs::write(dir.path().join("osv/Go/all.zip"), &bomb).unwrap();
    let set = load_dir(dir.path()).unwrap();
    assert_eq!(set.errors.len(), 1);
    assert!(set.errors[0].file().ends_with("all.zip"));
    assert!(set.advisories.is_empty());
    // The same entries without the bomb parse.
    let fine = zip_of(&[("GO-1.json", good)]);
    assert_eq!(parse_file(FeedKind::OsvZip, "all.zip", &fine).unwrap().advisories.len(), 1);
}
