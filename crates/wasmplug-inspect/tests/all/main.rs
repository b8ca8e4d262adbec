//! The inspector's tests, in one binary: the report over generated modules
//! (snapshots), bad input (one snapshot per kind of error), the plugin
//! contract (one snapshot per violation code), and the no-panic properties.

#[path = "../support/modules.rs"]
mod modules;

mod contract;
mod errors;
mod properties;
mod report;
