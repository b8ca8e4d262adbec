// wasmplug-build: -mexec-model=reactor -O2 -fno-exceptions -fno-rtti -Wl,--strip-debug
// Benchmark: std::sort over n pseudo-random ints, through libc++'s vector
// and wasi-libc's malloc.
//
//   sort_ints(i32 n) -> i32  sorts the first n outputs of the LCG
//                            x = x * 1103515245 + 12345 (mod 2^32, x0 = 42),
//                            each taken as int32, and answers the checksum
//                            h = h * 31 + v[i] (mod 2^32, h0 = 0) of the
//                            sorted values as i32
//
// Compiles natively too (`clang++ -O3 -c sort.cpp`) for wasm-vs-native
// benchmarks.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "wasmplug.h"

WASMPLUG_EXPORT(sort_ints) int32_t sort_ints(int32_t n) {
    if (n < 0) {
        n = 0;
    }
    std::vector<int32_t> values(static_cast<size_t>(n));
    uint32_t x = 42;
    for (int32_t& value : values) {
        x = x * 1103515245u + 12345u;
        value = static_cast<int32_t>(x);
    }
    std::sort(values.begin(), values.end());
    uint32_t checksum = 0;
    for (int32_t value : values) {
        checksum = checksum * 31u + static_cast<uint32_t>(value);
    }
    return static_cast<int32_t>(checksum);
}
