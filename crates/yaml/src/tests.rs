use super::*;
use serde_json::json;
use std::time::{Duration, Instant};

/// One anchor of `n` items referenced by `m` aliases.
pub(crate) fn fan_out(n: usize, m: usize) -> String {
    let mut s = String::from("kind: ConfigMap\nmetadata: {name: x}\nanchor: &a [");
    for i in 0..n {
        s.push_str(&format!("{}v{i}", if i > 0 { "," } else { "" }));
    }
    s.push_str("]\ndata:\n");
    for i in 0..m {
        s.push_str(&format!("  k{i}: *a\n"));
    }
    s
}

/// The classic nested billion laughs: nine strings, then each level is nine aliases of the
/// previous one (9^levels strings once expanded).
pub(crate) fn billion_laughs(levels: usize) -> String {
    let mut s = String::from("a0: &a0 [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n");
    for i in 1..levels {
        let p = i - 1;
        s.push_str(&format!("a{i}: &a{i} [*a{p},*a{p},*a{p},*a{p},*a{p},*a{p},*a{p},*a{p},*a{p}]\n"));
    }
    s
}

#[test]
fn alias_fan_out_is_refused_within_the_budget() {
    // 2,000 items × 2,000 aliases = 4M nodes from ~30 KB.
    let text = fan_out(2_000, 2_000);
    let t = Instant::now();
    let e = from_str_multi(&text).unwrap_err();
    assert!(matches!(e, Error::TooManyNodes { .. } | Error::TooManyBytes { .. }), "{e}");
    assert!(e.line().is_some_and(|l| l > 4), "{e:?}");
    assert!(e.to_string().contains("after alias expansion"), "{e}");
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    // A few aliases of the same anchor are fine, and replay it.
    let docs = from_str_multi(&fan_out(10, 3)).unwrap();
    assert_eq!(docs[0].value["data"]["k2"][9], json!("v9"));
}

#[test]
fn billion_laughs_is_refused_fast() {
    let text = billion_laughs(9);
    assert!(text.len() < 700, "{}", text.len());
    let t = Instant::now();
    let e = from_str_multi(&text).unwrap_err();
    assert!(matches!(e, Error::TooManyNodes { .. } | Error::TooManyBytes { .. }), "{e}");
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    // The tree reader (detection rules) has the same budget.
    assert!(parse_tree(&text, &Limits::for_input(text.len())).is_err());
}

#[test]
fn an_explicit_budget_is_exact() {
    let limits = Limits { max_nodes: 12, max_bytes: 1000, max_depth: 8 };
    // map + key + seq(3) + key + alias(4 nodes) = 1 + 1 + 4 + 1 + 4 = 11.
    assert!(from_str_multi_with("a: &x [1, 2, 3]\nb: *x\n", &limits).is_ok());
    assert!(from_str_multi_with("a: &x [1, 2, 3]\nb: *x\nc: 1\n", &limits).is_err());
    let limits = Limits { max_nodes: 1000, max_bytes: 10, max_depth: 8 };
    let e = from_str_multi_with("a: &x abcdef\nb: *x\n", &limits).unwrap_err();
    assert!(matches!(e, Error::TooManyBytes { line: 2, .. }), "{e:?}");
}

#[test]
fn deep_flow_nesting_is_linear_and_refused() {
    for text in ["[".repeat(100_000), "[a,".repeat(70_000), "{a: ".repeat(50_000)] {
        let t = Instant::now();
        let e = from_str_multi(&text).unwrap_err();
        assert!(matches!(e, Error::TooDeep { .. }), "{e}");
        assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    }
    let mut block = String::new();
    for i in 0..200 {
        block.push_str(&format!("{:indent$}k:\n", "", indent = i * 2));
    }
    assert!(matches!(from_str_multi(&block).unwrap_err(), Error::TooDeep { .. }));
    // Depth through an alias: a deep anchor replayed deep.
    let inner = format!("{}1{}", "[".repeat(70), "]".repeat(70));
    let text = format!("a: &d {inner}\nb: {}*d{}\n", "[".repeat(70), "]".repeat(70));
    assert!(matches!(from_str_multi(&text).unwrap_err(), Error::TooDeep { .. }));
    // Within the limit: fine.
    let ok = format!("{}1{}", "[".repeat(100), "]".repeat(100));
    assert!(from_str_multi(&ok).is_ok());
}

#[test]
fn yaml_1_1_scalars_as_kubectl_reads_them() {
    let text = "t: [y, Y, yes, Yes, YES, on, On, ON, true, True, TRUE]\n\
                f: [n, N, no, No, NO, off, Off, OFF, false, False, FALSE]\n\
                s: [yES, oN, 'yes', \"on\", !!str yes, YES!, \"true\"]\n\
                nul: [~, null, Null, NULL, !!null '']\n\
                i: [0, 12, -7, +3, 0x1F, 0o17, 017, 0b101, -0b11, 1_000, 9223372036854775807, 18446744073709551615]\n\
                fl: [1.5, .5, -1.5e3, 1e3, 08, 6.0]\n\
                str: [.inf, -.Inf, .nan, 2024-01-02, 1.2.3, 0x, abc, 12:30]\n\
                tagged: [!!int '7', !!float 2, !!bool 'on', !custom 5]\n";
    let v = &from_str_multi(text).unwrap()[0].value;
    assert!(v["t"].as_array().unwrap().iter().all(|b| b == &json!(true)), "{}", v["t"]);
    assert!(v["f"].as_array().unwrap().iter().all(|b| b == &json!(false)), "{}", v["f"]);
    assert!(v["s"].as_array().unwrap().iter().all(Value::is_string), "{}", v["s"]);
    assert!(v["nul"].as_array().unwrap().iter().all(Value::is_null), "{}", v["nul"]);
    assert_eq!(
        v["i"],
        json!([0, 12, -7, 3, 31, 15, 15, 5, -3, 1000, 9223372036854775807_i64, 18446744073709551615_u64])
    );
    assert_eq!(v["fl"], json!([1.5, 0.5, -1500.0, 1000.0, 8.0, 6.0]));
    assert!(v["str"].as_array().unwrap().iter().all(Value::is_string), "{}", v["str"]);
    assert_eq!(v["tagged"], json!([7, 2.0, true, "5"]));
    assert!(from_str_multi("a: !!int abc\n").is_err());
}

#[test]
fn keys_merges_and_documents() {
    let text = "yes: 1\non: 2\n0x10: 3\nplain: 4\n---\nbase: &b {a: 1, b: 2}\nm:\n  <<: *b\n  b: 3\n\
                l:\n  <<: [{x: 1}, {x: 2, z: 2}]\n--- 7\n";
    let docs = from_str_multi(text).unwrap();
    assert_eq!(docs.len(), 3);
    assert_eq!(docs[0].value, json!({"true": 2, "16": 3, "plain": 4}));
    assert_eq!(docs[1].value["m"], json!({"a": 1, "b": 3}));
    assert_eq!(docs[1].value["l"], json!({"x": 1, "z": 2}));
    assert_eq!((docs[1].line, docs[2].value.clone()), (6, json!(7)));
    assert!(from_str_multi("? [a]\n: 1\n").is_err(), "a sequence key has no JSON form");
    assert!(from_str_multi("a: *nope\n").is_err());
    assert!(matches!(from_str_multi("a: [1, 2\nb: 3\n").unwrap_err(), Error::Syntax { .. }));
}

#[test]
fn typed_reading_and_positions() {
    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    struct C {
        enabled: bool,
        #[serde(default)]
        names: Vec<String>,
    }
    let c: C = from_str("enabled: on\nnames: [a, b]\n").unwrap();
    assert!(c.enabled && c.names == ["a", "b"]);
    assert!(matches!(from_str::<C>("enabled: 1\nx: 2\n").unwrap_err(), Error::Deserialize(_)));
    assert!(matches!(from_str::<Value>("a: 1\n---\nb: 2\n").unwrap_err(), Error::MultipleDocuments(2)));
    assert_eq!(from_str::<Value>("").unwrap(), Value::Null);
    let (v, w) = from_slice::<Value>(b"a: x\xFF\n").unwrap();
    assert_eq!(v, json!({"a": "x\u{fffd}"}));
    assert!(w.is_some());
    let e = from_str_multi("a: 1\nb: [\n").unwrap_err();
    assert_eq!(e.clone().offset_lines(10).line(), e.line().map(|l| l + 10));
    let nodes = parse_tree("a: 1\nb:\n  - x\n  - !!str 'y'\n", &Limits::for_input(100)).unwrap();
    let Kind::Map(entries) = &nodes[0].kind else { panic!("not a map") };
    let Kind::Seq(items) = &entries[1].1.kind else { panic!("not a seq") };
    assert_eq!(
        (items[1].line, items[1].col, items[1].tag.as_deref()),
        (4, 11, Some("!!str")),
        "a tagged scalar is marked at its text"
    );
    assert!(matches!(items[1].kind, Kind::Scalar(_, Style::SingleQuoted)));
}

#[test]
fn core_schema_keeps_yaml_1_1_booleans_as_text() {
    let (v, _): (serde_json::Value, _) =
        crate::from_slice_in(b"a: [y, yes, on, no, true, False, 1.5, 0x10]\ny: 1\n", crate::Schema::Core).unwrap();
    assert_eq!(v["a"], serde_json::json!(["y", "yes", "on", "no", true, false, 1.5, 16]));
    assert_eq!(v["y"], 1);
    let (k, _): (serde_json::Value, _) = crate::from_slice(b"a: [y, yes]\n").unwrap();
    assert_eq!(k["a"], serde_json::json!([true, true]));
}

#[test]
fn tree_booleans_by_schema() {
    let nodes = parse_tree("[yes, on, y, true, FALSE, 'true', !!str true]\n", &Limits::for_input(100)).unwrap();
    let Kind::Seq(items) = &nodes[0].kind else { panic!("not a seq") };
    let kubectl: Vec<_> = items.iter().map(|n| n.as_bool_in(Schema::Kubectl)).collect();
    let core: Vec<_> = items.iter().map(|n| n.as_bool_in(Schema::Core)).collect();
    assert_eq!(kubectl, [Some(true), Some(true), Some(true), Some(true), Some(false), None, None]);
    assert_eq!(core, [None, None, None, Some(true), Some(false), None, None]);
    assert_eq!(kubectl, items.iter().map(Node::as_bool).collect::<Vec<_>>());
}
