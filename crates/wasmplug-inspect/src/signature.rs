//! Value types and function signatures, printed and parsed the way
//! `wasm-objdump` writes them: `(i32, i64) -> f64`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A WebAssembly value type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ValType {
    /// 32-bit integer.
    I32,
    /// 64-bit integer.
    I64,
    /// 32-bit float.
    F32,
    /// 64-bit float.
    F64,
    /// 128-bit vector.
    V128,
    /// A reference type other than `funcref` and `externref` (GC and
    /// exception-handling proposals).
    Ref,
    /// A nullable reference to any function.
    FuncRef,
    /// A nullable reference to a host value.
    ExternRef,
}

impl ValType {
    /// The type's name as wasm text and `wasm-objdump` spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            ValType::I32 => "i32",
            ValType::I64 => "i64",
            ValType::F32 => "f32",
            ValType::F64 => "f64",
            ValType::V128 => "v128",
            ValType::Ref => "ref",
            ValType::FuncRef => "funcref",
            ValType::ExternRef => "externref",
        }
    }
}

impl From<walrus::ValType> for ValType {
    fn from(value: walrus::ValType) -> Self {
        match value {
            walrus::ValType::I32 => ValType::I32,
            walrus::ValType::I64 => ValType::I64,
            walrus::ValType::F32 => ValType::F32,
            walrus::ValType::F64 => ValType::F64,
            walrus::ValType::V128 => ValType::V128,
            walrus::ValType::Ref(reference) => reference.into(),
        }
    }
}

impl From<walrus::RefType> for ValType {
    fn from(value: walrus::RefType) -> Self {
        if value == walrus::RefType::FUNCREF {
            ValType::FuncRef
        } else if value == walrus::RefType::EXTERNREF {
            ValType::ExternRef
        } else {
            ValType::Ref
        }
    }
}

impl From<wasmparser::ValType> for ValType {
    fn from(value: wasmparser::ValType) -> Self {
        match value {
            wasmparser::ValType::I32 => ValType::I32,
            wasmparser::ValType::I64 => ValType::I64,
            wasmparser::ValType::F32 => ValType::F32,
            wasmparser::ValType::F64 => ValType::F64,
            wasmparser::ValType::V128 => ValType::V128,
            wasmparser::ValType::Ref(reference) => reference.into(),
        }
    }
}

impl From<wasmparser::RefType> for ValType {
    fn from(value: wasmparser::RefType) -> Self {
        if value == wasmparser::RefType::FUNCREF {
            ValType::FuncRef
        } else if value == wasmparser::RefType::EXTERNREF {
            ValType::ExternRef
        } else {
            ValType::Ref
        }
    }
}

impl fmt::Display for ValType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ValType {
    type Err = SignatureParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "i32" => Ok(ValType::I32),
            "i64" => Ok(ValType::I64),
            "f32" => Ok(ValType::F32),
            "f64" => Ok(ValType::F64),
            "v128" => Ok(ValType::V128),
            "funcref" => Ok(ValType::FuncRef),
            "externref" => Ok(ValType::ExternRef),
            other => Err(SignatureParseError(format!("unknown value type `{other}`"))),
        }
    }
}

/// A function signature: parameter and result types.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Signature {
    /// Parameter types, in order.
    pub params: Vec<ValType>,
    /// Result types, in order.
    pub results: Vec<ValType>,
}

impl Signature {
    /// Builds a signature from parameter and result types.
    pub fn new(params: impl Into<Vec<ValType>>, results: impl Into<Vec<ValType>>) -> Self {
        Signature {
            params: params.into(),
            results: results.into(),
        }
    }

    pub(crate) fn from_walrus(ty: &walrus::FunctionType) -> Self {
        Signature {
            params: ty.params().iter().copied().map(Into::into).collect(),
            results: ty.results().iter().copied().map(Into::into).collect(),
        }
    }

    pub(crate) fn from_wasmparser(ty: &wasmparser::FuncType) -> Self {
        Signature {
            params: ty.params().iter().copied().map(Into::into).collect(),
            results: ty.results().iter().copied().map(Into::into).collect(),
        }
    }
}

/// Written like `wasm-objdump`: `(i32, i64) -> f64`, `() -> nil` for no result.
impl fmt::Display for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_list(f, &self.params)?;
        f.write_str(" -> ")?;
        match self.results.as_slice() {
            [] => f.write_str("nil"),
            [one] => write!(f, "{one}"),
            many => write_list(f, many),
        }
    }
}

fn write_list(f: &mut fmt::Formatter<'_>, types: &[ValType]) -> fmt::Result {
    f.write_str("(")?;
    for (index, ty) in types.iter().enumerate() {
        if index > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{ty}")?;
    }
    f.write_str(")")
}

/// A signature written by a person could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SignatureParseError(String);

impl SignatureParseError {
    pub(crate) fn new(message: String) -> Self {
        SignatureParseError(message)
    }
}

/// Parses `(i32,i64)->f64`, `(i32) -> i32`, `() -> nil`, `()->()` and `()->(i32, i32)`.
impl FromStr for Signature {
    type Err = SignatureParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (params, results) = s
            .split_once("->")
            .ok_or_else(|| SignatureParseError(format!("signature `{s}` has no `->`, expected e.g. `(i32)->i32`")))?;
        let params = parse_list(params.trim(), s)?;
        let results = match results.trim() {
            "nil" | "" => Vec::new(),
            list if list.starts_with('(') => parse_list(list, s)?,
            single => vec![single.parse()?],
        };
        Ok(Signature { params, results })
    }
}

fn parse_list(list: &str, whole: &str) -> Result<Vec<ValType>, SignatureParseError> {
    let inner = list
        .strip_prefix('(')
        .and_then(|rest| rest.strip_suffix(')'))
        .ok_or_else(|| SignatureParseError(format!("signature `{whole}`: `{list}` is not a parenthesised list")))?;
    if inner.trim().is_empty() {
        return Ok(Vec::new());
    }
    inner.split(',').map(str::parse).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_round_trip_through_text() {
        for text in [
            "(i32) -> i32",
            "() -> nil",
            "(i32, i64, f32, f64) -> f64",
            "() -> (i32, i64)",
        ] {
            let signature: Signature = text.parse().unwrap();
            assert_eq!(signature.to_string(), text);
        }
        assert_eq!("(i32)->i32".parse::<Signature>().unwrap().to_string(), "(i32) -> i32");
        assert!("i32 -> i32".parse::<Signature>().is_err());
        assert!("(i33) -> i32".parse::<Signature>().is_err());
    }
}
