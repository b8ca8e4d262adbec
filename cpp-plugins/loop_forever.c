// wasmplug-build: -nostdlib -Wl,--no-entry -Wl,--export=spin -O3
// Adversarial: `spin` never returns. The flag is volatile, so the optimizer
// must load it on every iteration and cannot delete the loop; only the
// host's timeout (fuel or epoch interruption) ends the call.
#include <stdint.h>

static volatile int32_t keep_spinning = 1;

int32_t spin(void) {
    int32_t iterations = 0;
    while (keep_spinning) {
        iterations++;
    }
    return iterations;
}
