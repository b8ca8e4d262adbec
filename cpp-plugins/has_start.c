// wasmplug-build: -O2 -Wl,--strip-debug
// Adversarial: a WASI *command* (default exec model, a normal `main`), so it
// exports `_start` instead of `_initialize`; a plugin host must notice. It
// also exports `value() -> i32`, which answers 7.
#include "wasmplug.h"

WASMPLUG_EXPORT(value) int value(void) { return 7; }

int main(void) { return 0; }
