// wasmplug-build: -nostdlib -Wl,--no-entry -Wl,--export=call_missing -O2
// Adversarial: imports `wasmplug.does_not_exist`, which the host does not
// provide, so instantiation must fail with a clear error naming it.
#include <stdint.h>

__attribute__((import_module("wasmplug"), import_name("does_not_exist"))) int32_t does_not_exist(void);

int32_t call_missing(void) { return does_not_exist(); }
