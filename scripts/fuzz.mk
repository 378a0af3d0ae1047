# fuzz.mk — libFuzzer targets for vlt's parsers (the top Makefile's `make fuzz` runs this).
#
#   make fuzz                            build every tests/fuzz/fuzz_*.c and run each FUZZ_TIME s
#   make -f scripts/fuzz.mk build        build only
#   make -f scripts/fuzz.mk list         the targets, one per line, with the parser each one feeds
#   make -f scripts/fuzz.mk run-tar FUZZ_TIME=180     run one target (fuzz_tar)
#   make -f scripts/fuzz.mk ci           every target for FUZZ_CI_TIME s (CI's bounded run)
#
# Each target tests/fuzz/fuzz_NAME.c is linked with clang -fsanitize=fuzzer,address,undefined
# against an archive of the library folders (autograd, layers, data, eval, checkpoints, and train/
# without main.c and the NCCL file) built with the same sanitizers, so only the objects a target
# needs are pulled in. OpenMP pragmas are left off (single-threaded, reproducible runs); -mavx2
# -mfma because clang refuses autograd's 8-wide vector helpers without AVX. Corpora
# grow under build/fuzz/corpus/NAME; seed inputs are read from tests/fuzz/seeds/NAME/. Crashes
# land in build/fuzz/crash-NAME-* and make the run fail. A run also fails on a single input
# slower than FUZZ_TIMEOUT s or using more than FUZZ_RSS MB.

FUZZ_CC      ?= clang
FUZZ_TIME    ?= 60
FUZZ_CI_TIME ?= 5
FUZZ_TIMEOUT ?= 10
FUZZ_RSS     ?= 2048
FUZZ_DIR     := build/fuzz
PKGS         := hdf5 libcjson libjpeg libturbojpeg libwebp libpng libzstd yaml-0.1 zlib
BLAS_DIR     := /usr/lib/x86_64-linux-gnu/openblas-openmp
FUZZ_CFLAGS  := -std=c11 -O1 -g -D_GNU_SOURCE -I. -I/usr/include/x86_64-linux-gnu/openblas-openmp \
                -mavx2 -mfma -fno-omit-frame-pointer -fno-sanitize-recover=undefined -Wno-unknown-pragmas \
                $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
FUZZ_LIBS    := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -L$(BLAS_DIR) -Wl,-rpath,$(BLAS_DIR) -lopenblas \
                -lgomp -lm -lpthread

LIB_SRCS := $(filter-out train/main.c train/dist_nccl.c,\
              $(wildcard autograd/*.c layers/*.c data/*.c eval/*.c checkpoints/*.c train/*.c))
LIB_OBJS := $(patsubst %.c,$(FUZZ_DIR)/obj/%.o,$(LIB_SRCS))
TARGETS  := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
BINS     := $(patsubst %,$(FUZZ_DIR)/fuzz_%,$(TARGETS))
# -timeout/-rss_limit_mb turn hangs and memory bombs into failures; -close_fd_mask is not used so
# that sanitizer reports stay visible.
RUN_FLAGS = -timeout=$(FUZZ_TIMEOUT) -rss_limit_mb=$(FUZZ_RSS) -print_final_stats=1

.PHONY: all build list ci $(addprefix run-,$(TARGETS)) $(addprefix ci-,$(TARGETS))
.SECONDARY:

all: build list $(addprefix run-,$(TARGETS))
build: $(BINS)
ci: build
	@for t in $(TARGETS); do $(MAKE) --no-print-directory -f scripts/fuzz.mk ci-$$t || exit 1; done

list:
	@for t in $(TARGETS); do printf '%-14s %s\n' $$t "$$(sed -n '1s|^// fuzz_[a-z0-9_]*\.c — ||p' tests/fuzz/fuzz_$$t.c)"; done

$(FUZZ_DIR)/obj/%.o: %.c scripts/fuzz.mk
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link,address,undefined -MMD -MP -c $< -o $@

$(FUZZ_DIR)/libvlt_fuzz.a: $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(FUZZ_DIR)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz_util.h $(FUZZ_DIR)/libvlt_fuzz.a scripts/fuzz.mk
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer,address,undefined -MMD -MP -o $@ $(filter %.c %.a,$^) $(FUZZ_LIBS)

$(addprefix run-,$(TARGETS)): run-%: $(FUZZ_DIR)/fuzz_%
	@mkdir -p $(FUZZ_DIR)/corpus/$*
	cd $(FUZZ_DIR) && ./fuzz_$* -max_total_time=$(FUZZ_TIME) $(RUN_FLAGS) \
	    -artifact_prefix=crash-$*- corpus/$* $(wildcard $(CURDIR)/tests/fuzz/seeds/$*)

# CI: a fresh corpus each time (from the seeds only), so a run is bounded and repeatable.
$(addprefix ci-,$(TARGETS)): ci-%: $(FUZZ_DIR)/fuzz_%
	@rm -rf $(FUZZ_DIR)/ci/$* && mkdir -p $(FUZZ_DIR)/ci/$*
	@echo "== fuzz $* ($(FUZZ_CI_TIME) s)"
	@cd $(FUZZ_DIR) && ./fuzz_$* -max_total_time=$(FUZZ_CI_TIME) $(RUN_FLAGS) \
	    -artifact_prefix=crash-$*- ci/$* $(wildcard $(CURDIR)/tests/fuzz/seeds/$*) > ci/$*.log 2>&1 \
	  || { tail -60 ci/$*.log; echo "fuzz_$*: FAILED (log: $(FUZZ_DIR)/ci/$*.log)"; exit 1; }
	@grep -E '^stat::number_of_executed_units|^#[0-9]+ *DONE' $(FUZZ_DIR)/ci/$*.log | tail -2 | tr '\n' ' '; echo

-include $(shell find $(FUZZ_DIR) -name '*.d' 2>/dev/null)
