// wasmplug-build: -nostdlib -Wl,--no-entry -Wl,--export=use_secret -O2
// wasmplug-allow-imports: env
// Adversarial: imports `env.host_secret`, a module outside the plugin
// contract (only `wasmplug` and `wasi_snapshot_preview1` are allowed), so
// the inspector must flag it and the host must refuse it.
#include <stdint.h>

__attribute__((import_module("env"), import_name("host_secret"))) int32_t host_secret(void);

int32_t use_secret(void) { return host_secret(); }
