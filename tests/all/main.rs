//! The end-to-end suite, one binary with a module per area: the seed's
//! chain (build, inspect, run, serve), the runtime's limits and
//! capabilities, and the service over a real socket.

mod asynchronous;
mod capabilities;
mod cli;
mod inspect;
mod limits;
mod parity;
mod runtime;
mod serve;
mod trust;
