// wasmplug-build: -nostdlib -Wl,--no-entry -mbulk-memory -O3
// Bytes ABI: `upper` answers its input upper-cased (ASCII only); `fail`
// always fails with the message "bad input" and status 3.
#include "wasmplug.h"

#define MAX_INPUT (1024 * 1024)
#define CHUNK (64 * 1024)

static unsigned char input[MAX_INPUT];

WASMPLUG_EXPORT(upper) int upper(void) {
    if (wasmplug_input_len() > MAX_INPUT) {
        wasmplug_output_str("input is larger than 1 MiB");
        return WASMPLUG_ERROR;
    }
    size_t len = wasmplug_input_read(input, MAX_INPUT);
    // Written in chunks so a host with a small output limit traps on the
    // first write past it, not after one huge copy.
    for (size_t start = 0; start < len; start += CHUNK) {
        size_t end = start + CHUNK < len ? start + CHUNK : len;
        for (size_t i = start; i < end; i++) {
            unsigned char c = input[i];
            if (c >= 'a' && c <= 'z') {
                input[i] = (unsigned char)(c - ('a' - 'A'));
            }
        }
        wasmplug_output_write(input + start, end - start);
    }
    return WASMPLUG_OK;
}

WASMPLUG_EXPORT(fail) int fail(void) {
    wasmplug_output_str("bad input");
    return 3;
}
