// wasmplug-build: -mexec-model=reactor -O2 -fno-exceptions -fno-rtti -Wl,--strip-debug
// Benchmark: cheap instantiation, the twin of slow_init. No work at init;
// `lookup(i)` computes entry i on first use and caches it, so the cost moves
// from instantiation into the first call for each index.
//
//   lookup(i32 i) -> i32  entry i & 0xffff; equal to slow_init's lookup
#include <cstdint>

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

int32_t table[table_size];
bool computed[table_size];

}  // namespace

WASMPLUG_EXPORT(lookup) int32_t lookup(int32_t index) {
    uint32_t slot = static_cast<uint32_t>(index) & (table_size - 1);
    if (!computed[slot]) {
        table[slot] = compute_entry(slot);
        computed[slot] = true;
    }
    return table[slot];
}
