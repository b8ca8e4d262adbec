// wasmplug-build: -nostdlib -Wl,--no-entry -mbulk-memory -O3
// Benchmark: a self-contained SHA-256 (FIPS 180-4), no libc.
//
//   sha256_mib(i32 rounds) -> i32  hashes a 1 MiB buffer `rounds` times and
//                                  answers the first 4 digest bytes as a
//                                  big-endian i32; byte i of the buffer is
//                                  (i * 7 + 3) mod 256
//   sha256                         bytes ABI (wasm only): the lower-case hex
//                                  digest of the input, 64 characters
//
// Compiles natively too (`clang -O3 -c sha256.c`) for wasm-vs-native
// benchmarks; the bytes-ABI export exists only in wasm.
#include "wasmplug.h"

#define MIB (1024 * 1024)

typedef struct {
    uint32_t state[8];
    uint64_t length;
    uint8_t block[64];
    uint32_t used;
} sha256_context;

static const uint32_t round_constants[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static uint32_t rotate_right(uint32_t x, uint32_t n) { return (x >> n) | (x << (32 - n)); }

static void sha256_compress(uint32_t state[8], const uint8_t block[64]) {
    uint32_t w[64];
    for (int i = 0; i < 16; i++) {
        w[i] = (uint32_t)block[4 * i] << 24 | (uint32_t)block[4 * i + 1] << 16 |
               (uint32_t)block[4 * i + 2] << 8 | (uint32_t)block[4 * i + 3];
    }
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = rotate_right(w[i - 15], 7) ^ rotate_right(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = rotate_right(w[i - 2], 17) ^ rotate_right(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = state[0], b = state[1], c = state[2], d = state[3];
    uint32_t e = state[4], f = state[5], g = state[6], h = state[7];
    for (int i = 0; i < 64; i++) {
        uint32_t s1 = rotate_right(e, 6) ^ rotate_right(e, 11) ^ rotate_right(e, 25);
        uint32_t choose = (e & f) ^ (~e & g);
        uint32_t t1 = h + s1 + choose + round_constants[i] + w[i];
        uint32_t s0 = rotate_right(a, 2) ^ rotate_right(a, 13) ^ rotate_right(a, 22);
        uint32_t majority = (a & b) ^ (a & c) ^ (b & c);
        uint32_t t2 = s0 + majority;
        h = g;
        g = f;
        f = e;
        e = d + t1;
        d = c;
        c = b;
        b = a;
        a = t1 + t2;
    }
    state[0] += a;
    state[1] += b;
    state[2] += c;
    state[3] += d;
    state[4] += e;
    state[5] += f;
    state[6] += g;
    state[7] += h;
}

static void sha256_init(sha256_context *context) {
    static const uint32_t initial[8] = {
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
    };
    for (int i = 0; i < 8; i++) {
        context->state[i] = initial[i];
    }
    context->length = 0;
    context->used = 0;
}

static void sha256_update(sha256_context *context, const uint8_t *data, size_t len) {
    context->length += len;
    while (len > 0) {
        if (context->used == 0 && len >= 64) {
            sha256_compress(context->state, data);
            data += 64;
            len -= 64;
            continue;
        }
        context->block[context->used++] = *data++;
        len--;
        if (context->used == 64) {
            sha256_compress(context->state, context->block);
            context->used = 0;
        }
    }
}

static void sha256_final(sha256_context *context, uint8_t digest[32]) {
    uint64_t bits = context->length * 8;
    uint8_t padding = 0x80;
    sha256_update(context, &padding, 1);
    padding = 0;
    while (context->used != 56) {
        sha256_update(context, &padding, 1);
    }
    uint8_t length_bytes[8];
    for (int i = 0; i < 8; i++) {
        length_bytes[i] = (uint8_t)(bits >> (56 - 8 * i));
    }
    sha256_update(context, length_bytes, 8);
    for (int i = 0; i < 8; i++) {
        digest[4 * i] = (uint8_t)(context->state[i] >> 24);
        digest[4 * i + 1] = (uint8_t)(context->state[i] >> 16);
        digest[4 * i + 2] = (uint8_t)(context->state[i] >> 8);
        digest[4 * i + 3] = (uint8_t)context->state[i];
    }
}

static uint8_t mebibyte[MIB];
static int mebibyte_filled;

WASMPLUG_EXPORT(sha256_mib) int32_t sha256_mib(int32_t rounds) {
    if (!mebibyte_filled) {
        for (uint32_t i = 0; i < MIB; i++) {
            mebibyte[i] = (uint8_t)(i * 7 + 3);
        }
        mebibyte_filled = 1;
    }
    uint8_t digest[32] = {0};
    for (int32_t round = 0; round < rounds; round++) {
        sha256_context context;
        sha256_init(&context);
        sha256_update(&context, mebibyte, MIB);
        sha256_final(&context, digest);
    }
    return (int32_t)((uint32_t)digest[0] << 24 | (uint32_t)digest[1] << 16 |
                     (uint32_t)digest[2] << 8 | (uint32_t)digest[3]);
}

#ifdef __wasm__

// The input lands in pages grown past the end of memory on first use and
// reused afterwards: input_read has no offset, so the whole input must be in
// memory at once, and there is no malloc without libc.
static uint8_t *input_area;
static size_t input_capacity;

static uint8_t *input_buffer(size_t len) {
    if (input_area != NULL && len <= input_capacity) {
        return input_area;
    }
    size_t pages = (len - input_capacity + 65535) / 65536;
    size_t old_pages = __builtin_wasm_memory_grow(0, pages);
    if (old_pages == (size_t)-1) {
        return NULL;
    }
    if (input_area == NULL) {
        input_area = (uint8_t *)(old_pages * 65536);
    }
    input_capacity += pages * 65536;
    return input_area;
}

WASMPLUG_EXPORT(sha256) int sha256(void) {
    size_t len = wasmplug_input_len();
    uint8_t *input = input_buffer(len);
    if (input == NULL) {
        wasmplug_output_str("cannot grow memory to hold the input");
        return WASMPLUG_ERROR;
    }
    len = wasmplug_input_read(input, len);
    sha256_context context;
    sha256_init(&context);
    sha256_update(&context, input, len);
    uint8_t digest[32];
    sha256_final(&context, digest);
    static const char hex[] = "0123456789abcdef";
    char text[64];
    for (int i = 0; i < 32; i++) {
        text[2 * i] = hex[digest[i] >> 4];
        text[2 * i + 1] = hex[digest[i] & 0xf];
    }
    wasmplug_output_write(text, sizeof text);
    return WASMPLUG_OK;
}

#endif
