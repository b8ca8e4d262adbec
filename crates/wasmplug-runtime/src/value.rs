//! [`Value`]: the numbers typed calls pass to and get back from plugins, and
//! how they are parsed from text (the CLI) and JSON (the service) by the
//! export's signature.

use std::fmt;

use serde::Serialize;
use wasmplug_inspect::ValType;

/// A WebAssembly number.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Value {
    /// 32-bit integer.
    I32(i32),
    /// 64-bit integer.
    I64(i64),
    /// 32-bit float.
    F32(f32),
    /// 64-bit float.
    F64(f64),
}

impl Value {
    /// The value's type.
    pub fn ty(&self) -> ValType {
        match self {
            Value::I32(_) => ValType::I32,
            Value::I64(_) => ValType::I64,
            Value::F32(_) => ValType::F32,
            Value::F64(_) => ValType::F64,
        }
    }

    /// Parses text as a value of `ty`: decimal or `0x` hexadecimal integers
    /// (negative allowed), and floats including `inf`, `-inf` and `nan`.
    pub fn parse(text: &str, ty: ValType) -> Result<Value, String> {
        let text = text.trim();
        match ty {
            ValType::I32 => {
                parse_int(text, i32::MIN.into(), u32::MAX.into()).map(|wide| Value::I32(wide as u32 as i32))
            }
            ValType::I64 => {
                parse_int(text, i64::MIN.into(), u64::MAX.into()).map(|wide| Value::I64(wide as u64 as i64))
            }
            ValType::F32 => text
                .parse::<f32>()
                .map(Value::F32)
                .map_err(|_| format!("`{text}` is not a number")),
            ValType::F64 => text
                .parse::<f64>()
                .map(Value::F64)
                .map_err(|_| format!("`{text}` is not a number")),
            other => Err(format!("{other} values cannot be passed in typed calls")),
        }
    }

    /// Converts a JSON value to a value of `ty`. Integers must be integral and
    /// in range; floats accept any JSON number, and the strings `"inf"`,
    /// `"-inf"` and `"nan"` that JSON cannot spell.
    pub fn from_json(json: &serde_json::Value, ty: ValType) -> Result<Value, String> {
        match (ty, json) {
            (ValType::I32 | ValType::I64, serde_json::Value::Number(number)) => {
                let wide = if let Some(signed) = number.as_i64() {
                    i128::from(signed)
                } else if let Some(unsigned) = number.as_u64() {
                    i128::from(unsigned)
                } else {
                    return Err(format!("{number} is not an integer"));
                };
                let (min, max) = match ty {
                    ValType::I32 => (i128::from(i32::MIN), i128::from(u32::MAX)),
                    _ => (i128::from(i64::MIN), i128::from(u64::MAX)),
                };
                if wide < min || wide > max {
                    return Err(format!("{number} is out of range for {ty}"));
                }
                Ok(match ty {
                    ValType::I32 => Value::I32(wide as u32 as i32),
                    _ => Value::I64(wide as u64 as i64),
                })
            }
            (ValType::F32, serde_json::Value::Number(number)) => number
                .as_f64()
                .map(|float| Value::F32(float as f32))
                .ok_or_else(|| format!("{number} is not a number")),
            (ValType::F64, serde_json::Value::Number(number)) => number
                .as_f64()
                .map(Value::F64)
                .ok_or_else(|| format!("{number} is not a number")),
            (ValType::F32 | ValType::F64, serde_json::Value::String(text))
                if matches!(text.as_str(), "inf" | "-inf" | "nan" | "+inf") =>
            {
                Value::parse(text, ty)
            }
            (ValType::I32 | ValType::I64 | ValType::F32 | ValType::F64, other) => {
                Err(format!("expected a number, got {}", json_kind(other)))
            }
            (other, _) => Err(format!("{other} values cannot be passed in typed calls")),
        }
    }

    /// The value as JSON: numbers, with non-finite floats as strings.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self.as_json()).unwrap_or_else(|_| unreachable!("a number or a string"))
    }

    /// The value as the service and `wasmplug run --json` write it (see
    /// [`Value::to_json`]), serialised without building a JSON tree.
    pub fn as_json(self) -> AsJson {
        AsJson(self)
    }
}

/// A [`Value`] serialised as JSON: a number, or for a non-finite float the
/// string `Display` gives (`NaN`, `inf`, `-inf`), which JSON has no number for.
#[derive(Debug, Clone, Copy)]
pub struct AsJson(Value);

impl Serialize for AsJson {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::I32(value) => serializer.serialize_i32(value),
            Value::I64(value) => serializer.serialize_i64(value),
            Value::F32(value) if value.is_finite() => serializer.serialize_f64(f64::from(value)),
            Value::F64(value) if value.is_finite() => serializer.serialize_f64(value),
            other => serializer.collect_str(&other),
        }
    }
}

/// Prints like `wasmedge` and `wasmtime run` do: plain decimal numbers.
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::I32(value) => write!(f, "{value}"),
            Value::I64(value) => write!(f, "{value}"),
            Value::F32(value) => write!(f, "{value}"),
            Value::F64(value) => write!(f, "{value}"),
        }
    }
}

fn parse_int(text: &str, min: i128, max: i128) -> Result<i128, String> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let magnitude = match digits.strip_prefix("0x").or_else(|| digits.strip_prefix("0X")) {
        Some(hex) => i128::from_str_radix(hex, 16),
        None => digits.parse::<i128>(),
    }
    .map_err(|_| format!("`{text}` is not an integer"))?;
    let value = if negative { -magnitude } else { magnitude };
    if value < min || value > max {
        return Err(format!("`{text}` is out of range"));
    }
    Ok(value)
}

fn json_kind(json: &serde_json::Value) -> &'static str {
    match json {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_text_by_type() {
        assert_eq!(Value::parse("21", ValType::I32), Ok(Value::I32(21)));
        assert_eq!(Value::parse("-7", ValType::I32), Ok(Value::I32(-7)));
        assert_eq!(Value::parse("0xffffffff", ValType::I32), Ok(Value::I32(-1)));
        assert_eq!(
            Value::parse("4294967296", ValType::I32),
            Err("`4294967296` is out of range".into())
        );
        assert_eq!(Value::parse("1.5", ValType::I32), Err("`1.5` is not an integer".into()));
        assert_eq!(
            Value::parse("-9223372036854775808", ValType::I64),
            Ok(Value::I64(i64::MIN))
        );
        assert_eq!(Value::parse("2.5", ValType::F32), Ok(Value::F32(2.5)));
        assert_eq!(Value::parse("abc", ValType::F64), Err("`abc` is not a number".into()));
    }

    #[test]
    fn converts_json_by_type() {
        let json = |text: &str| serde_json::from_str::<serde_json::Value>(text).unwrap();
        assert_eq!(Value::from_json(&json("21"), ValType::I32), Ok(Value::I32(21)));
        assert_eq!(
            Value::from_json(&json("1.5"), ValType::I32),
            Err("1.5 is not an integer".into())
        );
        assert_eq!(
            Value::from_json(&json("\"21\""), ValType::I32),
            Err("expected a number, got a string".into())
        );
        assert_eq!(Value::from_json(&json("3"), ValType::F64), Ok(Value::F64(3.0)));
        assert_eq!(
            Value::from_json(&json("\"inf\""), ValType::F64),
            Ok(Value::F64(f64::INFINITY))
        );
        assert_eq!(Value::F64(f64::NAN).to_json(), json("\"NaN\""));
    }
}
