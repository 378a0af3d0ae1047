# fuzz.mk — libFuzzer targets for vlt's parsers (the top Makefile's `make fuzz` runs this).
#
#   make fuzz                            build every tests/fuzz/fuzz_*.c and run each FUZZ_TIME s
#   make -f scripts/fuzz.mk build        build only
#   make -f scripts/fuzz.mk run-tar FUZZ_TIME=180     run one target (fuzz_tar)
#
# Each target tests/fuzz/fuzz_NAME.c is linked with clang -fsanitize=fuzzer,address against an
# archive of data/*.c plus autograd/error.c and autograd/rng.c built with the same sanitizers, so
# only the objects a target needs are pulled in. Corpora grow under build/fuzz/corpus/NAME;
# seed inputs, when present, are read from tests/fuzz/seeds/NAME/. Crashes land in
# build/fuzz/crash-NAME-* and make the run fail.

FUZZ_CC   ?= clang
FUZZ_TIME ?= 60
FUZZ_DIR  := build/fuzz
PKGS      := libcjson libjpeg libturbojpeg libwebp libpng libzstd zlib
FUZZ_CFLAGS := -std=c11 -O1 -g -D_GNU_SOURCE -I. -fno-omit-frame-pointer -fno-sanitize-recover=undefined \
               $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
FUZZ_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lm -lpthread

LIB_SRCS := $(wildcard data/*.c) autograd/error.c autograd/rng.c
LIB_OBJS := $(patsubst %.c,$(FUZZ_DIR)/obj/%.o,$(LIB_SRCS))
TARGETS  := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
BINS     := $(patsubst %,$(FUZZ_DIR)/fuzz_%,$(TARGETS))

.PHONY: all build $(addprefix run-,$(TARGETS))
.SECONDARY:

all: build $(addprefix run-,$(TARGETS))
build: $(BINS)

$(FUZZ_DIR)/obj/%.o: %.c scripts/fuzz.mk
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link,address,undefined -MMD -MP -c $< -o $@

$(FUZZ_DIR)/libvlt_fuzz.a: $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(FUZZ_DIR)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_DIR)/libvlt_fuzz.a scripts/fuzz.mk
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer,address,undefined -MMD -MP -o $@ $(filter %.c %.a,$^) $(FUZZ_LIBS)

$(addprefix run-,$(TARGETS)): run-%: $(FUZZ_DIR)/fuzz_%
	@mkdir -p $(FUZZ_DIR)/corpus/$*
	cd $(FUZZ_DIR) && ./fuzz_$* -max_total_time=$(FUZZ_TIME) -print_final_stats=1 \
	    -artifact_prefix=crash-$*- corpus/$* $(wildcard $(CURDIR)/tests/fuzz/seeds/$*)

-include $(shell find $(FUZZ_DIR) -name '*.d' 2>/dev/null)
