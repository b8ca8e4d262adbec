// wasmplug-build: -nostdlib -Wl,--no-entry -Wl,--export=nested_trap -O2 -fno-exceptions -fno-rtti
// Adversarial, for backtraces: `nested_trap` goes through three C++ frames
// in namespaces before it traps, so the host's trap report can show
// demangled names like `wasmplug_demo::inner::explode(int)`. The name
// section must survive the build (no stripping) for that to work.
#include <stdint.h>

namespace wasmplug_demo {

// Volatile so the optimizer cannot fold the whole chain into one trap.
static volatile int32_t start_depth = 0;

namespace inner {

__attribute__((noinline)) int32_t explode(int32_t depth) {
    if (depth >= 0) {
        __builtin_trap();
    }
    return depth;
}

}  // namespace inner

__attribute__((noinline)) int32_t middle(int32_t depth) { return inner::explode(depth + 1) + 1; }

struct Outer {
    __attribute__((noinline)) static int32_t run(int32_t depth) { return middle(depth + 1) * 2; }
};

}  // namespace wasmplug_demo

extern "C" int32_t nested_trap() { return wasmplug_demo::Outer::run(wasmplug_demo::start_depth); }
