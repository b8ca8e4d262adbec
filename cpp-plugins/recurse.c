// wasmplug-build: -nostdlib -Wl,--no-entry -Wl,--export=deep -O3
// Adversarial: `deep(n)` recurses without end. The store after the call
// keeps the call out of tail position, so the optimizer cannot turn it into
// a loop; the wasm call stack overflows and the host must trap, not crash.
// Nothing lives on the shadow stack in linear memory, so it is the engine's
// stack that runs out, not the plugin's data that gets overwritten.
#include <stdint.h>

static volatile int32_t depth_reached;

// The endless recursion is the point of this plugin.
#pragma clang diagnostic ignored "-Winfinite-recursion"

int32_t deep(int32_t n) {
    depth_reached = n;
    int32_t below = deep(n + 1);
    depth_reached = below;
    return below + n;
}
