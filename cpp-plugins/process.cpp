// wasmplug-build: -nostdlib -Wl,--no-entry -Wl,--export=process -O3
// The seed plugin: the smallest thing wasmplug can load. process(21) == 43.
extern "C" int process(int x) { return (x * 2) + 1; }
