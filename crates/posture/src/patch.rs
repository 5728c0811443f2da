//! JSON Patch (RFC 6902) builders for remediation.

use serde_json::{json, Map, Value};

fn unesc(t: &str) -> String {
    t.replace("~1", "/").replace("~0", "~")
}

/// Operations that set the field at `ptr` to `value`, creating missing parent objects.
pub fn set(root: &Value, ptr: &str, value: Value) -> Value {
    let tokens: Vec<&str> = ptr.split('/').skip(1).collect();
    let mut cur = root;
    let mut depth = 0;
    for t in &tokens {
        let next = match cur {
            Value::Object(m) => m.get(&unesc(t)),
            Value::Array(a) => t.parse::<usize>().ok().and_then(|i| a.get(i)),
            _ => None,
        };
        match next {
            Some(n) => {
                cur = n;
                depth += 1;
            }
            None => break,
        }
    }
    if depth == tokens.len() {
        return json!([{ "op": "replace", "path": ptr, "value": value }]);
    }
    // `cur` is the deepest existing node; it must be an object to add to it.
    let parent_path: String = tokens[..depth].iter().map(|t| format!("/{t}")).collect();
    if !cur.is_object() {
        // A junk value sits in the way: replace it with the right shape.
        let mut v = value;
        for t in tokens[depth..].iter().skip(1).rev() {
            let mut m = Map::new();
            m.insert(unesc(t), v);
            v = Value::Object(m);
        }
        if depth == 0 {
            return json!([]);
        }
        let mut m = Map::new();
        m.insert(unesc(tokens[depth]), v);
        return json!([{ "op": "replace", "path": parent_path, "value": Value::Object(m) }]);
    }
    let mut v = value;
    for t in tokens[depth + 1..].iter().rev() {
        let mut m = Map::new();
        m.insert(unesc(t), v);
        v = Value::Object(m);
    }
    json!([{ "op": "add", "path": format!("{parent_path}/{}", tokens[depth]), "value": v }])
}

/// Operation removing the field at `ptr`.
pub fn remove(ptr: &str) -> Value {
    json!([{ "op": "remove", "path": ptr }])
}

/// Operation appending `value` to the array at `ptr` (creating it when missing).
pub fn append(root: &Value, ptr: &str, value: Value) -> Value {
    match root.pointer(ptr) {
        Some(Value::Array(_)) => json!([{ "op": "add", "path": format!("{ptr}/-"), "value": value }]),
        _ => set(root, ptr, Value::Array(vec![value])),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_parents() {
        let root = json!({"spec": {"containers": [{"name": "a"}]}});
        assert_eq!(
            set(&root, "/spec/containers/0/securityContext/privileged", json!(false)),
            json!([{"op": "add", "path": "/spec/containers/0/securityContext", "value": {"privileged": false}}])
        );
        let root = json!({"spec": {"containers": [{"name": "a", "securityContext": {"privileged": true}}]}});
        assert_eq!(
            set(&root, "/spec/containers/0/securityContext/privileged", json!(false)),
            json!([{"op": "replace", "path": "/spec/containers/0/securityContext/privileged", "value": false}])
        );
        let root = json!({"spec": {"containers": [{"name": "a", "securityContext": "junk"}]}});
        assert_eq!(
            set(&root, "/spec/containers/0/securityContext/privileged", json!(false)),
            json!([{"op": "replace", "path": "/spec/containers/0/securityContext", "value": {"privileged": false}}])
        );
        let root = json!({"a": {"b": ["x"]}});
        assert_eq!(append(&root, "/a/b", json!("y")), json!([{"op": "add", "path": "/a/b/-", "value": "y"}]));
        assert_eq!(append(&root, "/a/c", json!("y")), json!([{"op": "add", "path": "/a/c", "value": ["y"]}]));
    }
}
