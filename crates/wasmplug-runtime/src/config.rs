//! Configuration: [`RuntimeConfig`] for the whole runtime, and per plugin a
//! [`PluginConfig`] with its [`Limits`], [`WasiGrants`], [`InstancePolicy`] and
//! [`EngineKind`]. A plugin's manifest (`<name>.toml`) deserializes into a
//! `PluginConfig`; everything missing takes the safe default. Durations and
//! sizes there are plain numbers (milliseconds, bytes) or strings with a unit
//! (`call_timeout_ms = "2s"`, `max_memory_bytes = "64MiB"`), read by
//! [`crate::units`].

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use wasmplug_inspect::RequiredExport;

use crate::units;

/// Settings shared by every plugin a [`crate::Runtime`] loads.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Where compiled modules are cached; `None` compiles every time.
    pub cache_dir: Option<PathBuf>,
    /// How often the shared epoch ticker advances; timeouts are accurate to
    /// about one tick.
    pub epoch_tick: Duration,
    /// Instance slots in the pooling allocator, per engine configuration.
    pub pool_instances: u32,
    /// Largest linear memory any plugin may have, which bounds the per-plugin
    /// [`Limits::max_memory_bytes`].
    pub pool_max_memory_bytes: u64,
    /// How much of each pooled memory and table stays resident between
    /// instances. On Linux 6.7 and later the pages an instance wrote within
    /// it are found with `PAGEMAP_SCAN` and reset in place, instead of being
    /// handed back to the kernel with `madvise`: that costs a TLB shootdown
    /// on every core running the process and a page fault in the next
    /// instance. Elsewhere, and with 0, everything is handed back.
    pub keep_resident_bytes: usize,
    /// How many distinct (fuel, stack size) settings plugins may ask for:
    /// wasmtime fixes both per engine, and each engine reserves its own
    /// instance pool, `pool_instances` × `pool_max_memory_bytes` of address
    /// space (4 TiB with the defaults, of x86-64's 128 TiB). A load that
    /// would need one more engine is refused with
    /// [`crate::RuntimeError::Unsupported`].
    pub max_engines: usize,
    /// Where instances get their memories, tables and stacks: a pool
    /// reserved once per engine (the service), or mappings made for each
    /// instance (a process that makes one call).
    pub instance_allocation: InstanceAllocation,
    /// Compile a module's functions on a thread pool. It pays off for big
    /// modules; a process that compiles one small module and exits spends
    /// more starting the threads than they save.
    pub parallel_compilation: bool,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            cache_dir: None,
            epoch_tick: Duration::from_millis(5),
            pool_instances: 1000,
            pool_max_memory_bytes: 4 << 30,
            keep_resident_bytes: 1 << 20,
            max_engines: 8,
            instance_allocation: InstanceAllocation::Pooled,
            parallel_compilation: true,
        }
    }
}

impl RuntimeConfig {
    /// For a process that loads a plugin, makes a call and exits
    /// (`wasmplug run`): instances mapped on demand instead of a reserved
    /// pool, and compilation on the calling thread. The limits are the same.
    pub fn one_shot() -> Self {
        RuntimeConfig {
            instance_allocation: InstanceAllocation::OnDemand,
            parallel_compilation: false,
            ..RuntimeConfig::default()
        }
    }
}

/// How a [`crate::Runtime`] allocates instances ([`RuntimeConfig::instance_allocation`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InstanceAllocation {
    /// wasmtime's pooling allocator: `pool_instances` slots reserved per
    /// engine, reused from call to call (copy-on-write memory images, pages
    /// reset in place).
    #[default]
    Pooled,
    /// Each instance maps its own memory and unmaps it when dropped: nothing
    /// reserved up front, more work per instance.
    OnDemand,
}

/// Which engine runs a plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    /// Wasmtime with Cranelift: the default.
    #[default]
    Wasmtime,
    /// WasmEdge through wasmedge-sdk; needs the `wasmedge` cargo feature.
    WasmEdge,
}

impl EngineKind {
    /// The engine's name as configuration spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            EngineKind::Wasmtime => "wasmtime",
            EngineKind::WasmEdge => "wasmedge",
        }
    }
}

impl std::str::FromStr for EngineKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "wasmtime" => Ok(EngineKind::Wasmtime),
            "wasmedge" => Ok(EngineKind::WasmEdge),
            other => Err(format!("unknown engine `{other}` (expected wasmtime or wasmedge)")),
        }
    }
}

/// How WasmEdge executes a plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExecutionMode {
    /// WasmEdge's interpreter (the default).
    #[default]
    Interpreter,
    /// Ahead-of-time compiled by WasmEdge's AOT compiler, cached on disk.
    Aot,
}

/// Hard limits on one call. Each breach is its own [`crate::RuntimeError`].
///
/// In a manifest, `call_timeout_ms` is a number of milliseconds or a string
/// with a unit (`"200ms"`, `"2s"`), and each `*_bytes` a number of bytes or a
/// string with a unit (`"512KiB"`, `"64MiB"`, `"1GiB"`). They are written
/// back as plain numbers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Wall-clock time one call may take, including `_initialize`.
    #[serde(
        rename = "call_timeout_ms",
        serialize_with = "millis::serialize",
        deserialize_with = "units::deserialize_duration"
    )]
    pub call_timeout: Duration,
    /// Fuel budget per call (roughly one unit per wasm instruction); `None`
    /// means unmetered, which is faster.
    pub fuel: Option<u64>,
    /// Largest linear memory the plugin may grow to.
    #[serde(deserialize_with = "units::deserialize_size")]
    pub max_memory_bytes: u64,
    /// Wasm stack the plugin may use.
    #[serde(deserialize_with = "units::deserialize_size")]
    pub max_stack_bytes: usize,
    /// Bytes a call may write through `output_write`.
    #[serde(deserialize_with = "units::deserialize_size")]
    pub max_output_bytes: usize,
    /// Bytes a call may write through `log`, and separately to each of WASI
    /// stdout and stderr.
    #[serde(deserialize_with = "units::deserialize_size")]
    pub max_log_bytes: usize,
    /// Instances of this plugin that may run at once; more calls get `Busy`.
    pub max_concurrent_instances: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            call_timeout: Duration::from_secs(1),
            fuel: None,
            max_memory_bytes: 64 << 20,
            max_stack_bytes: 512 << 10,
            max_output_bytes: 16 << 20,
            max_log_bytes: 64 << 10,
            max_concurrent_instances: 64,
        }
    }
}

/// A host directory made visible to a plugin through WASI.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirGrant {
    /// The directory on the host.
    pub host: PathBuf,
    /// Where the plugin sees it, e.g. `/data`.
    pub guest: String,
    /// Whether the plugin may only read.
    #[serde(default = "yes")]
    pub read_only: bool,
}

impl std::str::FromStr for DirGrant {
    type Err = String;

    /// Parses `HOST::GUEST` (read-only) or `HOST::GUEST::rw`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut parts = s.split("::");
        let (Some(host), Some(guest)) = (parts.next(), parts.next()) else {
            return Err(format!("`{s}` is not HOST::GUEST"));
        };
        let read_only = match parts.next() {
            None | Some("ro") => true,
            Some("rw") => false,
            Some(other) => return Err(format!("`{other}` in `{s}` is neither ro nor rw")),
        };
        if host.is_empty() || guest.is_empty() {
            return Err(format!("`{s}` is not HOST::GUEST"));
        }
        Ok(DirGrant {
            host: host.into(),
            guest: guest.into(),
            read_only,
        })
    }
}

/// What a WASI plugin may see of the host. Nothing by default: no
/// directories, no environment, no arguments, no network. Clocks and random
/// numbers are always available.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WasiGrants {
    /// Environment variables the plugin sees (never the host's own).
    pub env: Vec<(String, String)>,
    /// Directories the plugin may open.
    pub dirs: Vec<DirGrant>,
    /// Command-line arguments the plugin sees.
    pub args: Vec<String>,
}

/// Whether calls share instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "mode", deny_unknown_fields)]
pub enum InstancePolicy {
    /// Every call gets a fresh instance: no state survives a call. The default.
    #[default]
    Fresh,
    /// Calls reuse warm instances from a bounded pool; memory and globals
    /// carry over between calls. An instance is dropped, not reused, after
    /// any failed call, and after `max_uses` calls.
    Reuse {
        /// How many idle instances to keep.
        pool_size: usize,
        /// How many calls one instance serves before it is replaced.
        max_uses: u64,
    },
}

/// Everything about how one plugin is loaded and run.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PluginConfig {
    /// Per-call limits.
    pub limits: Limits,
    /// WASI capabilities.
    pub wasi: WasiGrants,
    /// Exports the plugin must have, with signatures, e.g. `process:(i32)->i32`.
    #[serde(with = "required_exports")]
    pub required_exports: Vec<RequiredExport>,
    /// Which engine runs it.
    pub engine: EngineKind,
    /// How WasmEdge executes it (ignored by wasmtime).
    pub execution_mode: ExecutionMode,
    /// Whether calls share instances.
    pub instances: InstancePolicy,
    /// Run `_initialize` once at load time and start every call from the
    /// state it left (wasmtime only). Fresh state per call without paying
    /// for expensive initialisation on each.
    pub preinitialize: bool,
    /// The SHA-256 (hex) the module must have: a pin that refuses any other
    /// bytes under this manifest. The service and `wasmplug run` check it
    /// before loading (`wasmplug_trust::signing::check_pin`);
    /// [`crate::Runtime::load`] does not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

impl PluginConfig {
    /// Reads a manifest written in TOML.
    pub fn from_toml(text: &str) -> Result<PluginConfig, String> {
        toml::from_str(text).map_err(|error| error.message().to_owned())
    }
}

fn yes() -> bool {
    true
}

mod millis {
    use std::time::Duration;

    use serde::Serializer;

    /// Whole milliseconds; [`crate::units::parse_duration`] keeps parsed
    /// durations within `u64::MAX` of them, so they round-trip.
    pub fn serialize<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(duration.as_millis().try_into().unwrap_or(u64::MAX))
    }
}

mod required_exports {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use wasmplug_inspect::RequiredExport;

    pub fn serialize<S: Serializer>(exports: &[RequiredExport], serializer: S) -> Result<S::Ok, S::Error> {
        exports
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .serialize(serializer)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<RequiredExport>, D::Error> {
        Vec::<String>::deserialize(deserializer)?
            .iter()
            .map(|text| text.parse().map_err(serde::de::Error::custom))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_defaults_and_overrides() {
        let config = PluginConfig::from_toml(
            r#"
            required_exports = ["process:(i32)->i32"]
            [limits]
            call_timeout_ms = 250
            fuel = 1000000
            [wasi]
            env = [["MODE", "test"]]
            dirs = [{ host = "/srv/data", guest = "/data" }]
            [instances]
            mode = "reuse"
            pool_size = 4
            max_uses = 100
            "#,
        )
        .unwrap();
        assert_eq!(config.limits.call_timeout, Duration::from_millis(250));
        assert_eq!(config.limits.fuel, Some(1_000_000));
        assert_eq!(config.limits.max_memory_bytes, Limits::default().max_memory_bytes);
        assert!(config.wasi.dirs[0].read_only);
        assert_eq!(
            config.instances,
            InstancePolicy::Reuse {
                pool_size: 4,
                max_uses: 100
            }
        );
        assert_eq!(config.required_exports[0].to_string(), "process:(i32) -> i32");
        assert!(PluginConfig::from_toml("[limits]\ncall_timeout = 3").is_err());
    }

    #[test]
    fn manifest_limits_take_units_or_plain_numbers() {
        let with_units = PluginConfig::from_toml(
            r#"
            [limits]
            call_timeout_ms = "2s"
            max_memory_bytes = "16MiB"
            max_stack_bytes = "256 KiB"
            max_output_bytes = "1GiB"
            max_log_bytes = "4096B"
            "#,
        )
        .unwrap();
        let plain = PluginConfig::from_toml(
            r#"
            [limits]
            call_timeout_ms = 2000
            max_memory_bytes = 16777216
            max_stack_bytes = 262144
            max_output_bytes = 1073741824
            max_log_bytes = 4096
            "#,
        )
        .unwrap();
        assert_eq!(with_units, plain);
        assert_eq!(
            with_units.limits,
            Limits {
                call_timeout: Duration::from_secs(2),
                max_memory_bytes: 16 << 20,
                max_stack_bytes: 256 << 10,
                max_output_bytes: 1 << 30,
                max_log_bytes: 4096,
                ..Limits::default()
            }
        );
        assert_eq!(
            PluginConfig::from_toml("[limits]\ncall_timeout_ms = \"250ms\"")
                .unwrap()
                .limits
                .call_timeout,
            Duration::from_millis(250)
        );

        // Written back, limits are plain numbers that read the same again.
        let written = toml::to_string(&with_units).unwrap();
        assert!(written.contains("call_timeout_ms = 2000\n"), "{written}");
        assert!(written.contains("max_memory_bytes = 16777216\n"), "{written}");
        assert_eq!(PluginConfig::from_toml(&written).unwrap(), with_units);
    }

    #[test]
    fn the_readme_manifest_example_reads_as_it_says() {
        let readme = include_str!("../../../README.md");
        let (_, after) = readme.split_once("```toml\n").expect("README has a manifest example");
        let (example, _) = after.split_once("```").expect("the example ends");
        let config = PluginConfig::from_toml(example).unwrap();
        assert_eq!(
            config.limits,
            Limits {
                fuel: Some(10_000_000),
                ..Limits::default()
            },
            "the example spells out the defaults"
        );
    }

    #[test]
    fn manifest_limits_with_bad_units_are_refused_naming_the_units() {
        for (manifest, expected) in [
            (
                "call_timeout_ms = \"5 parsecs\"",
                "`5 parsecs` has an unknown unit `parsecs`: a duration takes ms or s (a plain number is milliseconds)",
            ),
            (
                "max_memory_bytes = \"64MB\"",
                "`64MB` has an unknown unit `MB`: a size takes B, KiB, MiB or GiB (a plain number is bytes)",
            ),
            (
                "max_memory_bytes = \"17179869184GiB\"",
                "`17179869184GiB` is too large: this size can be at most 18446744073709551615 bytes",
            ),
            (
                "max_stack_bytes = -1",
                "invalid value: integer `-1`, expected a whole number of bytes, or a string such as \"64MiB\" or \"512KiB\"",
            ),
            (
                "call_timeout_ms = 1.5",
                "invalid type: floating point `1.5`, expected a whole number of milliseconds, or a string such as \"200ms\" or \"2s\"",
            ),
        ] {
            let error = PluginConfig::from_toml(&format!("[limits]\n{manifest}\n")).unwrap_err();
            assert_eq!(error, expected, "{manifest}");
        }
    }

    #[test]
    fn dir_grants_parse() {
        let grant: DirGrant = "/srv/data::/data".parse().unwrap();
        assert!(grant.read_only);
        let grant: DirGrant = "/tmp/x::/out::rw".parse().unwrap();
        assert!(!grant.read_only);
        assert!("/tmp".parse::<DirGrant>().is_err());
    }
}
