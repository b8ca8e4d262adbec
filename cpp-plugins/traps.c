// wasmplug-build: -nostdlib -Wl,--no-entry -Wl,--export=unreachable_trap -Wl,--export=div_zero -Wl,--export=out_of_bounds -O2
// Adversarial: one export per kind of trap the host must report.
//
//   unreachable_trap() -> i32   executes `unreachable`
//   div_zero(i32 d) -> i32      1 / d with i32.div_s: traps when d == 0
//   out_of_bounds() -> i32      loads from 0xFFFFFFF0, far past memory
#include <stdint.h>

// Volatile so the compiler cannot see the 1: it would otherwise rewrite 1 / d
// as a comparison and never emit i32.div_s.
static volatile int32_t numerator = 1;

int32_t unreachable_trap(void) { __builtin_trap(); }

int32_t div_zero(int32_t divisor) { return numerator / divisor; }

int32_t out_of_bounds(void) {
    volatile int32_t *far_away = (volatile int32_t *)(uintptr_t)0xFFFFFFF0u;
    return *far_away;
}
