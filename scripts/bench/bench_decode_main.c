// bench_decode_main.c — driver for data/bench_decode.c (built by scripts/bench/bench_decode.sh).
#include "data/bench_decode.h"
int main(int argc, char **argv) { return vlt_bench_decode_main(argc, argv); }
