# vlt — top-level build.
#
#   make            the `vlt` binary and libvlt.a (CPU backend)
#   make test       build and run every cmocka suite under tests/
#   make SAN=1 test the same under AddressSanitizer + UndefinedBehaviorSanitizer
#   make CUDA=1     also compile the CUDA kernels (*.cu) with nvcc for sm_90 (+PTX), and link NCCL
#                   when nccl.h is found (NCCL=0 to leave it out)
#   make MPI=1      build with mpicc and the MPI collectives (on by default when mpicc exists)
#   make demo       make synthetic shards and train a small CLIP and CoCa on them
#   make demo-vqa   synthetic VQA: fine-tune the demo CLIP with the classifier answer head
#   make install    PREFIX/bin/vlt and PREFIX/share/vlt (PREFIX=/usr/local by default)
#   make bench      CPU benchmarks (and the GPU one when built with CUDA=1)
#   make fuzz       libFuzzer targets for the parsers (clang)
#
# Every module directory becomes its own archive under build/, so a test links only what it
# uses: tests/test_<module>_*.c link libvlt_<module>.a plus the base (error, rng) and the
# modules listed in DEPS_<module>.

SAN  ?= 0
CUDA ?= 0
# `make` alone builds vlt (the bootstrap rule below is the first in the file, so name the goal).
.DEFAULT_GOAL := all

# --- bare-machine bootstrap ----------------------------------------------------------------------
# The flags below come from pkg-config and the MPI wrapper, which exist only once the Debian
# packages are installed, and make evaluates them while reading this file. So each time it is read
# the package list is checked (scripts/install_deps.sh --check, ~0.1 s); when something is missing
# build/.deps.mk is included and its rule installs the packages. A remade included makefile makes
# GNU make read this file again from the top, so the real build of the same `make test` or
# `make demo` sees the installed headers, libraries and mpicc.
ifeq ($(filter clean deps,$(MAKECMDGOALS)),)
ifneq ($(shell VLT_SAN=$(SAN) bash scripts/install_deps.sh --check >/dev/null 2>&1 || echo missing),)
ifneq ($(MAKE_RESTARTS),)
$(error Debian packages are still missing after scripts/install_deps.sh ran; run it by hand to see why)
endif
include build/.deps.mk
endif
endif
build/.deps.mk: FORCE
	@mkdir -p build
	@VLT_SAN=$(SAN) bash scripts/install_deps.sh
	@echo "# scripts/install_deps.sh installed the missing packages at $$(date -u +%FT%TZ)" > $@

MPI  ?= $(if $(shell command -v mpicc 2>/dev/null),1,0)

MODULES := autograd layers data train checkpoints eval
# What each module's tests link besides the module itself (in link order).
DEPS_autograd    :=
DEPS_data        :=
DEPS_eval        :=
DEPS_checkpoints := autograd
DEPS_layers      := checkpoints data autograd
DEPS_train       := eval layers checkpoints data autograd

BUILD := build$(if $(filter 1,$(SAN)),/san,)$(if $(filter 1,$(CUDA)),/cuda,)$(if $(filter 0,$(MPI)),/nompi,)

PKGS := hdf5 libcjson libjpeg libturbojpeg libwebp libpng libzstd yaml-0.1 zlib
CC   := $(if $(filter 1,$(MPI)),mpicc,cc)
# OpenBLAS's OpenMP build, so that BLAS and vlt's own OpenMP loops share one thread pool
# (the default pthreads build spins its own threads against OpenMP's: 2x slower on 2 cores).
BLAS_DIR := /usr/lib/x86_64-linux-gnu/openblas-openmp
CFLAGS  := -std=c11 -O2 -g -Wall -Wextra -Werror -D_GNU_SOURCE -fopenmp -I. \
           -I/usr/include/x86_64-linux-gnu/openblas-openmp $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS  := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -L$(BLAS_DIR) -Wl,-rpath,$(BLAS_DIR) -lopenblas -lm -lpthread
LDFLAGS := -fopenmp

ifeq ($(MPI),1)
CFLAGS += -DVLT_MPI
endif
ifeq ($(SAN),1)
CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
endif

NVCC ?= nvcc
CUDA_HOME ?= $(patsubst %/bin/nvcc,%,$(shell command -v $(NVCC) 2>/dev/null))
ifeq ($(CUDA),1)
CFLAGS  += -DVLT_HAVE_CUDA -I$(CUDA_HOME)/include  # not VLT_CUDA: that is the device enum
NVFLAGS := -O3 -std=c++17 -I. -DVLT_HAVE_CUDA --expt-relaxed-constexpr \
           -gencode arch=compute_90,code=sm_90 -gencode arch=compute_90,code=compute_90 \
           -Xcompiler -Wall,-Wextra,-fopenmp
LDLIBS  += -L$(CUDA_HOME)/lib64 -lcublasLt -lcublas -lcudart -lstdc++
# NCCL (the GPU collectives of train/dist_nccl.c) when its header is found; NCCL=0 leaves it out.
NCCL ?= $(if $(wildcard $(CUDA_HOME)/include/nccl.h /usr/include/nccl.h),1,0)
ifeq ($(NCCL),1)
CFLAGS  += -DVLT_HAVE_NCCL
LDLIBS  += -lnccl
endif
endif

# --- sources -----------------------------------------------------------------------------------
module_c  = $(filter-out train/main.c,$(wildcard $(1)/*.c))
module_cu = $(if $(filter 1,$(CUDA)),$(wildcard $(1)/*.cu),)
module_objs = $(patsubst %.c,$(BUILD)/obj/%.o,$(call module_c,$(1))) \
              $(patsubst %.cu,$(BUILD)/obj/%.cu.o,$(call module_cu,$(1)))
BASE_OBJS := $(BUILD)/obj/autograd/error.o $(BUILD)/obj/autograd/rng.o
ALL_OBJS  := $(foreach m,$(MODULES),$(call module_objs,$(m)))

TEST_SRCS := $(wildcard tests/test_*.c)
TEST_BINS := $(patsubst tests/%.c,$(BUILD)/tests/%,$(TEST_SRCS))
test_module = $(word 2,$(subst _, ,$(notdir $(1))))

.PHONY: all test demo demo-vqa bench fuzz clean deps install FORCE
.SECONDARY:
.SECONDEXPANSION:

# ./vlt points at the plain or CUDA build; a sanitizer build never takes it over.
all: $(BUILD)/vlt $(BUILD)/libvlt.a
	@$(if $(filter 1,$(SAN)),true,ln -sf $(BUILD)/vlt vlt)

deps:
	@VLT_SAN=$(SAN) bash scripts/install_deps.sh

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/obj/%.cu.o: %.cu
	@mkdir -p $(dir $@)
	$(NVCC) $(NVFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/lib/libvlt_%.a: $$(call module_objs,$$*)
	@mkdir -p $(dir $@)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/lib/libvlt_base.a: $(BASE_OBJS)
	@mkdir -p $(dir $@)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/libvlt.a: $(ALL_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/vlt: $(BUILD)/obj/train/main.o $(foreach m,train eval layers checkpoints data autograd,$(BUILD)/lib/libvlt_$(m).a)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: tests/%.c $$(foreach m,$$(call test_module,$$*) $$(DEPS_$$(call test_module,$$*)),$(BUILD)/lib/libvlt_$$(m).a) $(BUILD)/lib/libvlt_base.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -o $@ $(filter %.c %.a,$^) $(LDFLAGS) $(LDLIBS) -lcmocka

# `make test` runs every suite; TESTS=pattern picks some (make test TESTS=data).
test: all $(TEST_BINS)
	@VLT_BUILD=$(BUILD) bash scripts/run_tests.sh $(BUILD)/tests $(TESTS)

demo: all
	VLT=$(BUILD)/vlt bash scripts/demo.sh

demo-vqa: all
	VLT=$(BUILD)/vlt bash scripts/demo_vqa.sh

# `make install PREFIX=...`: PREFIX/bin/vlt and its data folder PREFIX/share/vlt (model configs,
# example run configs, the tokenizer vocabulary), which the installed vlt finds next to itself.
PREFIX ?= /usr/local
VLT_SHARE = $(DESTDIR)$(PREFIX)/share/vlt
install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(VLT_SHARE)/configs/model $(VLT_SHARE)/configs/run $(VLT_SHARE)/assets
	install -m 755 $(BUILD)/vlt $(DESTDIR)$(PREFIX)/bin/vlt
	install -m 644 configs/model/*.json $(VLT_SHARE)/configs/model/
	install -m 644 configs/run/*.yaml $(VLT_SHARE)/configs/run/
	install -m 644 $(filter-out assets/zeroshot,$(wildcard assets/*)) $(VLT_SHARE)/assets/
	install -d $(VLT_SHARE)/assets/zeroshot
	install -m 644 assets/zeroshot/* $(VLT_SHARE)/assets/zeroshot/
	@echo "installed $(DESTDIR)$(PREFIX)/bin/vlt and $(VLT_SHARE)/"

bench: all
	bash scripts/bench/run_all.sh $(BUILD)

fuzz:
	$(MAKE) -f scripts/fuzz.mk

clean:
	rm -rf build vlt

-include $(shell find build -name '*.d' 2>/dev/null)
