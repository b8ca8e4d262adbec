// wasmplug-build: -nostdlib -Wl,--no-entry -O3
// Benchmark: naive recursive Fibonacci, pure call overhead and arithmetic.
// fib(i32 n) -> i64; fib(0) = 0, fib(1) = 1, fib(30) = 832040.
// Also compiles natively (`clang -O3 -c fib.c`) to compare wasm with native.
#include "wasmplug.h"

WASMPLUG_EXPORT(fib) int64_t fib(int32_t n) {
    if (n < 2) {
        return n;
    }
    return fib(n - 1) + fib(n - 2);
}
