// wasmplug-build: -nostdlib -Wl,--no-entry -Wl,--export=add_i32 -Wl,--export=mul_i64 -Wl,--export=scale_f32 -Wl,--export=hypot_f64 -Wl,--export=mix -Wl,--export=answer -Wl,--export=divide -Wl,--export=negate_i64 -O3
// Typed calls: one export per value type and a few combinations of them, so
// the host's conversion between its values and wasm's can be checked.
#include <stdint.h>

int32_t add_i32(int32_t a, int32_t b) { return a + b; }

int64_t mul_i64(int64_t a, int64_t b) { return a * b; }

float scale_f32(float value, float factor) { return value * factor; }

double hypot_f64(double x, double y) { return __builtin_sqrt(x * x + y * y); }

double mix(int32_t a, int64_t b, float c, double d) {
    return (double)a + (double)b + (double)c + d;
}

int32_t answer(void) { return 42; }

// i32.div_s traps on a zero divisor (and on INT32_MIN / -1): the host must
// report that as a trap, not crash.
int32_t divide(int32_t a, int32_t b) { return a / b; }

int64_t negate_i64(int64_t x) { return -x; }
