// wasmplug-build: -nostdlib -Wl,--no-entry -mbulk-memory -O3
// Adversarial: `flood` (bytes ABI) writes 64 KiB chunks forever; the host's
// output limit must trap it.
#include "wasmplug.h"

#define CHUNK (64 * 1024)

static unsigned char chunk[CHUNK];

WASMPLUG_EXPORT(flood) int flood(void) {
    // Lowers to memory.fill thanks to -mbulk-memory: no memset import.
    __builtin_memset(chunk, 'x', CHUNK);
    for (;;) {
        wasmplug_output_write(chunk, CHUNK);
    }
}
