//! Compact JSON output, byte for byte what Python's `json.dumps(value, separators=(",", ":"))` writes:
//! no spaces, keys in insertion order, every character outside printable ASCII escaped as `\uXXXX`.

use serde_json::Value;

/// `text` as a JSON string literal.
pub fn string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    push_string(&mut out, text);
    out
}

/// A JSON string holding the decimal digits of `number` (near-sdk's U128 / U64 encoding).
pub fn decimal<N: std::fmt::Display>(number: N) -> String {
    format!("\"{}\"", number)
}

pub fn push_string(out: &mut String, text: &str) {
    out.push('"');
    for ch in text.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(ch),
            _ => {
                let mut units = [0u16; 2];
                for unit in ch.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{:04x}", unit));
                }
            }
        }
    }
    out.push('"');
}

/// Any JSON value (as parsed from the arguments), written back in the same compact form.
pub fn value(value: &Value) -> String {
    let mut out = String::new();
    push_value(&mut out, value);
    out
}

pub fn push_value(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(number) => out.push_str(&number.to_string()),
        Value::String(text) => push_string(out, text),
        Value::Array(items) => {
            out.push('[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                push_value(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (index, (key, item)) in map.iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                push_string(out, key);
                out.push(':');
                push_value(out, item);
            }
            out.push('}');
        }
    }
}

pub fn bool(flag: bool) -> String {
    (if flag { "true" } else { "false" }).to_string()
}

/// A JSON list of already encoded values.
pub fn list<I: IntoIterator<Item = String>>(items: I) -> String {
    let mut out = String::from("[");
    for (index, item) in items.into_iter().enumerate() {
        if index > 0 {
            out.push(',');
        }
        out.push_str(&item);
    }
    out.push(']');
    out
}

/// Builds a JSON object field by field, in the order the fields are added.
pub struct Object {
    out: String,
}

impl Default for Object {
    fn default() -> Self {
        Self::new()
    }
}

impl Object {
    pub fn new() -> Self {
        Object { out: String::from("{") }
    }

    fn key(&mut self, key: &str) {
        if self.out.len() > 1 {
            self.out.push(',');
        }
        push_string(&mut self.out, key);
        self.out.push(':');
    }

    /// A field whose value is already JSON.
    pub fn raw(mut self, key: &str, json: &str) -> Self {
        self.key(key);
        self.out.push_str(json);
        self
    }

    pub fn str(mut self, key: &str, text: &str) -> Self {
        self.key(key);
        push_string(&mut self.out, text);
        self
    }

    /// A string field, or `null`.
    pub fn opt_str(self, key: &str, text: Option<&str>) -> Self {
        match text {
            Some(text) => self.str(key, text),
            None => self.raw(key, "null"),
        }
    }

    /// A number written as a decimal string (U128 / U64).
    pub fn decimal<N: std::fmt::Display>(self, key: &str, number: N) -> Self {
        self.raw(key, &decimal(number))
    }

    /// A plain JSON number.
    pub fn number(self, key: &str, number: u64) -> Self {
        self.raw(key, &number.to_string())
    }

    pub fn bool(self, key: &str, flag: bool) -> Self {
        self.raw(key, &bool(flag))
    }

    /// The encoded object.
    pub fn finish(mut self) -> String {
        self.out.push('}');
        self.out
    }
}

/// A NEP-297 event log line: `EVENT_JSON:{"standard","version","event","data":[<data>]}`.
pub fn event_log(standard: &str, version: &str, event: &str, data: &str) -> String {
    let payload = Object::new()
        .str("standard", standard)
        .str("version", version)
        .str("event", event)
        .raw("data", &format!("[{}]", data))
        .finish();
    format!("EVENT_JSON:{}", payload)
}
