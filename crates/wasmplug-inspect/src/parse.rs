//! Turning bytes into a validated walrus [`walrus::Module`] plus the few
//! things walrus does not keep, in one wasmparser pass.
//!
//! Order matters: the header check names foreign files and components; the
//! wasmparser pass validates the module, so that every error carries the byte
//! offset where it was found, and meanwhile records type-section order,
//! function type indices, code body sizes and custom sections (walrus
//! deduplicates types, drops sizes, and folds `name` and `producers` away);
//! only a module that passed is handed to walrus.

use std::panic::{self, AssertUnwindSafe};

use wasmparser::{
    BinaryReader, CompositeInnerType, KnownCustom, Parser, Payload, TypeRef, ValidPayload, Validator, WasmFeatures,
};

use crate::custom::{CustomSectionInfo, ProducerEntry, Producers, TargetFeature};
use crate::error::{check_header, one_line};
use crate::types::{TypeInfo, TypeKind};
use crate::{InspectError, Signature};

/// What the wasmparser pass records besides validating.
#[derive(Debug, Default)]
pub(crate) struct Scan {
    /// The type section, in order, without walrus's deduplication.
    pub types: Vec<TypeInfo>,
    /// The type index of every function, imported ones first.
    pub function_type_indices: Vec<u32>,
    /// The type index of every tag, imported ones first.
    pub tag_type_indices: Vec<u32>,
    /// Body size in bytes of every defined function, in order.
    pub code_sizes: Vec<u64>,
    /// Every custom section, in file order.
    pub custom_sections: Vec<CustomSectionInfo>,
    /// The decoded `producers` section, if present and readable.
    pub producers: Option<Producers>,
    /// The decoded `target_features` section, in order.
    pub target_features: Vec<TargetFeature>,
}

/// Checks the header, validates with wasmparser, then parses with walrus.
pub(crate) fn parse(bytes: &[u8]) -> Result<(walrus::Module, Scan), InspectError> {
    check_header(bytes)?;
    let scan = scan(bytes)?;
    let module = parse_with_walrus(bytes)?;
    Ok((module, scan))
}

/// The proposals walrus 0.28 parses: wasmparser's defaults plus legacy
/// exceptions and wide arithmetic. Validating with the same set means a
/// module that passes here is one walrus reads.
fn features() -> WasmFeatures {
    WasmFeatures::default() | WasmFeatures::LEGACY_EXCEPTIONS | WasmFeatures::WIDE_ARITHMETIC
}

fn scan(bytes: &[u8]) -> Result<Scan, InspectError> {
    let mut scan = Scan::default();
    let mut validator = Validator::new_with_features(features());
    let mut allocations = Default::default();
    let mut parser = Parser::new(0);
    parser.set_features(features());
    let error = |error: wasmparser::BinaryReaderError| InspectError::from_wasmparser(&error);
    for payload in parser.parse_all(bytes) {
        let payload = payload.map_err(error)?;
        match validator.payload(&payload).map_err(error)? {
            ValidPayload::Func(function, body) => {
                let mut function = function.into_validator(allocations);
                function.validate(&body).map_err(error)?;
                allocations = function.into_allocations();
            }
            ValidPayload::Parser(_) => {
                return Err(InspectError::Unsupported {
                    message: "nested modules and components are not core WebAssembly".to_owned(),
                });
            }
            ValidPayload::Ok | ValidPayload::End(_) => {}
        }
        record(&mut scan, payload).map_err(error)?;
    }
    Ok(scan)
}

fn record(scan: &mut Scan, payload: Payload<'_>) -> wasmparser::Result<()> {
    match payload {
        Payload::TypeSection(reader) => {
            for group in reader {
                for sub_type in group?.into_types() {
                    let index = scan.types.len() as u32;
                    scan.types.push(match &sub_type.composite_type.inner {
                        CompositeInnerType::Func(ty) => TypeInfo {
                            index,
                            kind: TypeKind::Func,
                            signature: Some(Signature::from_wasmparser(ty)),
                        },
                        CompositeInnerType::Array(_) => TypeInfo::other(index, TypeKind::Array),
                        CompositeInnerType::Struct(_) => TypeInfo::other(index, TypeKind::Struct),
                        CompositeInnerType::Cont(_) => TypeInfo::other(index, TypeKind::Cont),
                    });
                }
            }
        }
        Payload::ImportSection(reader) => {
            for import in reader.into_imports() {
                match import?.ty {
                    TypeRef::Func(index) | TypeRef::FuncExact(index) => scan.function_type_indices.push(index),
                    TypeRef::Tag(tag) => scan.tag_type_indices.push(tag.func_type_idx),
                    _ => {}
                }
            }
        }
        Payload::FunctionSection(reader) => {
            for index in reader {
                scan.function_type_indices.push(index?);
            }
        }
        Payload::TagSection(reader) => {
            for tag in reader {
                scan.tag_type_indices.push(tag?.func_type_idx);
            }
        }
        Payload::CodeSectionEntry(body) => {
            scan.code_sizes.push(body.range().len() as u64);
        }
        Payload::CustomSection(reader) => {
            scan.custom_sections.push(CustomSectionInfo {
                name: reader.name().to_owned(),
                size_bytes: reader.range().len() as u64,
                data_size_bytes: reader.data().len() as u64,
            });
            match reader.as_known() {
                // A broken producers section is the producer's problem, not a
                // reason to refuse the module: walrus ignores it too.
                KnownCustom::Producers(producers) => scan.producers = read_producers(producers).ok(),
                KnownCustom::Unknown if reader.name() == "target_features" => {
                    scan.target_features =
                        read_target_features(reader.data(), reader.data_offset()).unwrap_or_default();
                }
                _ => {}
            }
        }
        _ => {}
    }
    Ok(())
}

fn read_producers(reader: wasmparser::ProducersSectionReader<'_>) -> wasmparser::Result<Producers> {
    let mut producers = Producers::default();
    for field in reader {
        let field = field?;
        let entries = field
            .values
            .into_iter()
            .map(|value| {
                value.map(|value| ProducerEntry {
                    name: value.name.to_owned(),
                    version: value.version.to_owned(),
                })
            })
            .collect::<wasmparser::Result<Vec<_>>>()?;
        match field.name {
            "language" => producers.language.extend(entries),
            "processed-by" => producers.processed_by.extend(entries),
            "sdk" => producers.sdk.extend(entries),
            _ => {}
        }
    }
    Ok(producers)
}

/// The tool-conventions `target_features` section: a count, then per
/// feature a prefix byte (`+` used, `-` disallowed, `=` required) and a name.
fn read_target_features(data: &[u8], offset: usize) -> wasmparser::Result<Vec<TargetFeature>> {
    let mut reader = BinaryReader::new(data, offset);
    let count = reader.read_var_u32()?;
    let mut features = Vec::new();
    for _ in 0..count {
        let prefix = reader.read_u8()?;
        let name = reader.read_string()?;
        features.push(TargetFeature {
            prefix: char::from(prefix).to_string(),
            name: name.to_owned(),
        });
    }
    Ok(features)
}

fn parse_with_walrus(bytes: &[u8]) -> Result<walrus::Module, InspectError> {
    let mut config = walrus::ModuleConfig::new();
    config.generate_producers_section(false);
    // The validator has accepted the module, so walrus should too; should it
    // still panic on something it does not support, the gate reports that
    // instead of taking the host down.
    let result = panic::catch_unwind(AssertUnwindSafe(|| config.parse(bytes)));
    match result {
        Ok(Ok(module)) => Ok(module),
        Ok(Err(error)) => {
            let offset = error
                .chain()
                .find_map(|cause| cause.downcast_ref::<wasmparser::BinaryReaderError>())
                .map(wasmparser::BinaryReaderError::offset);
            let message = one_line(&format!("{error:#}"));
            Err(match offset {
                Some(offset) => InspectError::Malformed {
                    offset: Some(offset),
                    message,
                },
                None => InspectError::Unsupported { message },
            })
        }
        Err(panic) => {
            let detail = panic
                .downcast_ref::<&str>()
                .map(|text| (*text).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            Err(InspectError::Unsupported {
                message: one_line(&format!("walrus could not read the module: {detail}")),
            })
        }
    }
}
