// wasmplug-build: -mexec-model=reactor -O2 -fno-exceptions -fno-rtti -Wl,--strip-debug
// Benchmark: expensive instantiation. A static constructor, run by
// `_initialize` through `__wasm_call_ctors`, fills a 65536-entry table with
// a deliberately slow hash (tens of milliseconds in wasm at -O2), so a
// host that instantiates per call pays it every time and one that reuses or
// snapshots instances does not. Compare with fast_init.
//
//   lookup(i32 i) -> i32  entry i & 0xffff of the table; equal to
//                         fast_init's lookup for every i
#include <cstdint>
#include <vector>

#include "wasmplug.h"

namespace {

constexpr uint32_t table_size = 65536;
constexpr int mixing_rounds = 150;

int32_t compute_entry(uint32_t index) {
    uint32_t x = index * 2654435761u + 1u;
    for (int round = 0; round < mixing_rounds; round++) {
        x ^= x >> 16;
        x *= 0x7feb352du;
        x ^= x >> 15;
        x *= 0x846ca68bu;
        x ^= x >> 16;
        x += static_cast<uint32_t>(round);
    }
    return static_cast<int32_t>(x);
}

std::vector<int32_t> build_table() {
    std::vector<int32_t> table(table_size);
    for (uint32_t i = 0; i < table_size; i++) {
        table[i] = compute_entry(i);
    }
    return table;
}

const std::vector<int32_t> table = build_table();

}  // namespace

WASMPLUG_EXPORT(lookup) int32_t lookup(int32_t index) {
    return table[static_cast<uint32_t>(index) & (table_size - 1)];
}
