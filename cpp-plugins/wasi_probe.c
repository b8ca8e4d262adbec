// wasmplug-build: -mexec-model=reactor -O2 -Wl,--strip-debug
// Capability probes over wasi-libc: each export tries one thing a sandbox may
// forbid and answers with a code, so a test can assert what was allowed.
//
//   read_file()    0 if /etc/hostname (or ./hostname) gave at least one byte,
//                  else a positive errno
//   write_file()   0 if /tmp/wasmplug-probe.txt (or ./wasmplug-probe.txt)
//                  could be created and written, else a positive errno
//   env_count()    how many environment variables the plugin sees
//   has_env()      1 if WASMPLUG_PROBE_SECRET is set, else 0
//   read_granted() bytes read from /data/hello.txt, or -errno
//   clock_ok()     1 if clock_gettime gives a non-zero time, else 0
//   random_ok()    1 if getentropy fills a buffer, else 0
//   cat_granted    bytes ABI: the content of /data/hello.txt
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "wasmplug.h"

extern char **environ;

// 0 if `path` opened and yielded at least one byte, else a positive errno.
static int try_read(const char *path) {
    errno = 0;
    FILE *file = fopen(path, "r");
    if (file == NULL) {
        return errno != 0 ? errno : EIO;
    }
    char byte;
    size_t got = fread(&byte, 1, 1, file);
    int error = errno;
    fclose(file);
    if (got == 1) {
        return 0;
    }
    return error != 0 ? error : EIO;
}

// 0 if `path` could be created and written, else a positive errno.
static int try_write(const char *path) {
    errno = 0;
    FILE *file = fopen(path, "w");
    if (file == NULL) {
        return errno != 0 ? errno : EIO;
    }
    int written = fputs("wasmplug probe\n", file) >= 0;
    int error = errno;
    if (fclose(file) != 0 && written) {
        written = 0;
        error = errno;
    }
    if (written) {
        return 0;
    }
    return error != 0 ? error : EIO;
}

WASMPLUG_EXPORT(read_file) int read_file(void) {
    int absolute = try_read("/etc/hostname");
    if (absolute == 0) {
        return 0;
    }
    int relative = try_read("hostname");
    return relative == 0 ? 0 : absolute;
}

WASMPLUG_EXPORT(write_file) int write_file(void) {
    int absolute = try_write("/tmp/wasmplug-probe.txt");
    if (absolute == 0) {
        return 0;
    }
    int relative = try_write("wasmplug-probe.txt");
    return relative == 0 ? 0 : absolute;
}

WASMPLUG_EXPORT(env_count) int env_count(void) {
    int count = 0;
    if (environ != NULL) {
        while (environ[count] != NULL) {
            count++;
        }
    }
    return count;
}

WASMPLUG_EXPORT(has_env) int has_env(void) {
    return getenv("WASMPLUG_PROBE_SECRET") != NULL;
}

WASMPLUG_EXPORT(read_granted) int read_granted(void) {
    errno = 0;
    FILE *file = fopen("/data/hello.txt", "r");
    if (file == NULL) {
        return -(errno != 0 ? errno : EIO);
    }
    char buffer[4096];
    int total = 0;
    size_t got;
    while ((got = fread(buffer, 1, sizeof buffer, file)) > 0) {
        total += (int)got;
    }
    int error = ferror(file) ? errno : 0;
    fclose(file);
    return error != 0 ? -error : total;
}

WASMPLUG_EXPORT(clock_ok) int clock_ok(void) {
    struct timespec now = {0, 0};
    if (clock_gettime(CLOCK_REALTIME, &now) != 0) {
        return 0;
    }
    return now.tv_sec != 0 || now.tv_nsec != 0;
}

WASMPLUG_EXPORT(random_ok) int random_ok(void) {
    unsigned char buffer[32];
    memset(buffer, 0, sizeof buffer);
    return getentropy(buffer, sizeof buffer) == 0;
}

WASMPLUG_EXPORT(cat_granted) int cat_granted(void) {
    errno = 0;
    FILE *file = fopen("/data/hello.txt", "r");
    if (file == NULL) {
        wasmplug_output_str("cannot open /data/hello.txt: ");
        wasmplug_output_str(strerror(errno));
        return WASMPLUG_ERROR;
    }
    char buffer[4096];
    size_t got;
    while ((got = fread(buffer, 1, sizeof buffer, file)) > 0) {
        wasmplug_output_write(buffer, got);
    }
    fclose(file);
    return WASMPLUG_OK;
}
