//! Who may run and change wasmplug plugins.
//!
//! - [`signing`]: module signatures in the WebAssembly tool-conventions
//!   format (`Signatures.md`, as the `wasmsign2` crate and CLI write them),
//!   the trusted keys a service accepts, and a manifest's `sha256` pin.
//! - [`tokens`]: named bearer tokens with a role and the plugin names they
//!   may touch, kept hashed in a token file that is re-read on change.
//! - [`audit`]: the append-only trail of every change, one JSON line each.

pub mod audit;
pub mod signing;
pub mod tokens;
