// wasmplug-build: -nostdlib -Wl,--no-entry -Wl,--export=grow -Wl,--export=grow_once -O3
// Adversarial: `grow` asks for 16 more pages (1 MiB) forever and ignores
// failures, so only the host ends it: by trapping on a failed grow, by its
// memory limit, or by its timeout. `grow_once(pages)` answers the result of a
// single memory.grow (the previous size in pages, or -1).
#include <stdint.h>

int32_t grow(void) {
    for (;;) {
        // memory.grow has side effects, so the optimizer keeps every call.
        __builtin_wasm_memory_grow(0, 16);
    }
}

int32_t grow_once(int32_t pages) {
    return (int32_t)__builtin_wasm_memory_grow(0, (uint32_t)pages);
}
