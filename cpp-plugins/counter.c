// wasmplug-build: -nostdlib -Wl,--no-entry -Wl,--export=next -O3
// State that lives in the instance: a fresh instance per call always answers
// 1, a reused instance answers 1, 2, 3, ...
#include <stdint.h>

static int32_t counter;

int32_t next(void) { return ++counter; }
