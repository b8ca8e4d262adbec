// wasmplug-build: -mexec-model=reactor -O2 -Wl,--strip-debug
// Adversarial: `nap` sleeps inside a WASI host call (nanosleep is
// poll_oneoff). While it sleeps no wasm runs, so epoch interruption cannot
// stop it; the service must end the call at its timeout anyway.
//   nap(ms)   sleeps `ms` milliseconds, then returns `ms`
#include <time.h>

#include "wasmplug.h"

WASMPLUG_EXPORT(nap) int nap(int ms) {
    struct timespec pause = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&pause, 0);
    return ms;
}
