//! Small pieces of text rendering shared by the sections: names made safe
//! for one line, and constant expressions (global initialisers, segment
//! offsets) spelled like wasm text.
//!
//! Nothing here may print a walrus id with `Debug`: ids carry an arena number
//! that changes from run to run, and the output must be deterministic.

use std::fmt::Write as _;

use walrus::{ConstExpr, ConstOp};

use crate::report::Indices;
use crate::ValType;

/// A name from the module, with control characters escaped so that one
/// item stays on one line.
pub(crate) fn name(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// A constant expression as wasm text, with indices rather than ids.
pub(crate) fn const_expr(expr: &ConstExpr, indices: &Indices) -> String {
    match expr {
        ConstExpr::Value(value) => value_text(*value),
        ConstExpr::Global(id) => format!("global.get {}", indices.global(*id)),
        ConstExpr::RefNull(ty) => format!("ref.null {}", ValType::from(*ty)),
        ConstExpr::RefFunc(id) => format!("ref.func {}", indices.function(*id)),
        ConstExpr::Extended(ops) => {
            let mut out = String::new();
            for (position, op) in ops.iter().enumerate() {
                if position > 0 {
                    out.push_str(", ");
                }
                out.push_str(&const_op(op, indices));
            }
            out
        }
    }
}

fn value_text(value: walrus::ir::Value) -> String {
    match value {
        walrus::ir::Value::I32(value) => format!("i32.const {value}"),
        walrus::ir::Value::I64(value) => format!("i64.const {value}"),
        walrus::ir::Value::F32(value) => format!("f32.const {value}"),
        walrus::ir::Value::F64(value) => format!("f64.const {value}"),
        walrus::ir::Value::V128(value) => format!("v128.const 0x{value:032x}"),
    }
}

fn const_op(op: &ConstOp, indices: &Indices) -> String {
    match op {
        ConstOp::I32Const(value) => format!("i32.const {value}"),
        ConstOp::I64Const(value) => format!("i64.const {value}"),
        ConstOp::F32Const(value) => format!("f32.const {value}"),
        ConstOp::F64Const(value) => format!("f64.const {value}"),
        ConstOp::V128Const(value) => format!("v128.const 0x{value:032x}"),
        ConstOp::GlobalGet(id) => format!("global.get {}", indices.global(*id)),
        ConstOp::RefNull(ty) => format!("ref.null {}", ValType::from(*ty)),
        ConstOp::RefFunc(id) => format!("ref.func {}", indices.function(*id)),
        ConstOp::I32Add => "i32.add".to_owned(),
        ConstOp::I32Sub => "i32.sub".to_owned(),
        ConstOp::I32Mul => "i32.mul".to_owned(),
        ConstOp::I64Add => "i64.add".to_owned(),
        ConstOp::I64Sub => "i64.sub".to_owned(),
        ConstOp::I64Mul => "i64.mul".to_owned(),
        // GC operators carry type ids; their names are enough here.
        other => {
            let mut debug = String::new();
            let _ = write!(debug, "{other:?}");
            let end = debug.find(|c: char| !c.is_alphanumeric()).unwrap_or(debug.len());
            debug[..end].to_owned()
        }
    }
}
