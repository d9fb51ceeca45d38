//! JSON call arguments with near-sdk's typing: U128/U64 as decimal strings, account ids validated. Every
//! error names the argument, worded as near-sdk's deserialisation errors:
//! `Failed to deserialize input from JSON.: missing field `<name>``,
//! `Failed to deserialize input from JSON.: invalid `<name>`, expected <what>`.

use serde_json::{Map, Value};

use crate::account::is_valid_account_id;
use crate::env::fail;

const PREFIX: &str = "Failed to deserialize input from JSON.";

/// The arguments object of a call (or a nested object of it).
pub struct Args {
    data: Map<String, Value>,
}

fn invalid(name: &str, expected: &str) -> ! {
    fail(&format!("{}: invalid `{}`, expected {}", PREFIX, name, expected))
}

/// A decimal-digit string in `[0, max]`; near-sdk's U128/U64 reject JSON numbers, signs and blanks.
pub fn parse_uint(value: &Value, max: u128) -> Option<u128> {
    let text = match value {
        Value::String(text) => text,
        _ => return None,
    };
    if text.is_empty() || !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    text.parse::<u128>().ok().filter(|number| *number <= max)
}

impl Args {
    /// Parses the raw input: empty input is `{}`, anything but a JSON object aborts.
    pub fn parse(raw: &[u8]) -> Args {
        if raw.is_empty() {
            return Args { data: Map::new() };
        }
        match serde_json::from_slice::<Value>(raw) {
            Ok(Value::Object(data)) => Args { data },
            Ok(_) => fail(&format!("{}: expected an object", PREFIX)),
            Err(error) => fail(&format!("{}: {}", PREFIX, error)),
        }
    }

    pub fn from_map(data: Map<String, Value>) -> Args {
        Args { data }
    }

    /// The argument as given, `None` when absent.
    pub fn raw(&self, name: &str) -> Option<&Value> {
        self.data.get(name)
    }

    /// Present and not null.
    pub fn has(&self, name: &str) -> bool {
        !matches!(self.data.get(name), None | Some(Value::Null))
    }

    fn get(&self, name: &str) -> &Value {
        match self.data.get(name) {
            Some(value) => value,
            None => fail(&format!("{}: missing field `{}`", PREFIX, name)),
        }
    }

    pub fn string(&self, name: &str) -> String {
        match self.get(name) {
            Value::String(text) => text.clone(),
            _ => invalid(name, "a string"),
        }
    }

    /// A string, `None` when absent or null.
    pub fn optional_string(&self, name: &str) -> Option<String> {
        if self.has(name) {
            Some(self.string(name))
        } else {
            None
        }
    }

    /// A string that is a valid NEAR account id.
    pub fn account_id(&self, name: &str) -> String {
        let value = self.string(name);
        if !is_valid_account_id(&value) {
            fail(&format!("{}: invalid account id `{}`", PREFIX, value));
        }
        value
    }

    pub fn optional_account_id(&self, name: &str) -> Option<String> {
        if self.has(name) {
            Some(self.account_id(name))
        } else {
            None
        }
    }

    /// A U128 decimal string.
    pub fn u128(&self, name: &str) -> u128 {
        parse_uint(self.get(name), u128::MAX).unwrap_or_else(|| invalid(name, "a U128 decimal string"))
    }

    /// A U64 decimal string.
    pub fn u64(&self, name: &str) -> u64 {
        parse_uint(self.get(name), u64::MAX as u128).unwrap_or_else(|| invalid(name, "a U64 decimal string")) as u64
    }

    /// A plain non-negative JSON number (near-sdk's u64/u32 parameters), also accepted as a decimal
    /// string; `default` when absent or null. Values past u64 saturate.
    pub fn integer(&self, name: &str, default: u64) -> u64 {
        match self.data.get(name) {
            None | Some(Value::Null) => default,
            Some(Value::Number(number)) => match number.as_u64() {
                Some(value) => value,
                None => invalid(name, "a number"),
            },
            Some(Value::String(text)) if !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit()) => {
                text.parse::<u64>().unwrap_or(u64::MAX)
            }
            Some(_) => invalid(name, "a number"),
        }
    }

    /// A JSON boolean; `default` when absent or null.
    pub fn boolean(&self, name: &str, default: bool) -> bool {
        match self.data.get(name) {
            None | Some(Value::Null) => default,
            Some(Value::Bool(flag)) => *flag,
            Some(_) => invalid(name, "a boolean"),
        }
    }

    /// A nested object.
    pub fn obj(&self, name: &str) -> Args {
        match self.get(name) {
            Value::Object(map) => Args { data: map.clone() },
            _ => invalid(name, "an object"),
        }
    }
}
