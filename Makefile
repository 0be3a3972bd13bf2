# mura - the one place for build flags, and every top-level target.
#
#   make            build lib/libmura.a and the tools in bin/
#   make deps       install what is missing (Debian packages), quickly nothing when all is there
#   make check      deps, build, then every test; ends with "N passed, N failed, N skipped"
#                   (tests/t-fuzz.sh replays tests/fuzz's corpora, and fuzzes a few
#                   seconds each where clang has libFuzzer)
#   make check-sanitize
#                   the same tests against a build with ASan and UBSan in build-san/
#   make fuzz       the fuzz harnesses of tests/fuzz (libFuzzer ones in build-fuzz/ where
#                   clang has it); make check builds them
#   make O=DIR      build out of the tree: objects, library, tools and tests in DIR/
#   make demo       deps, build, then the whole pipeline on generated data
#   make bench      performance figures beside PyTorch's (not part of check);
#                   PROFILE=1 adds the engine's time per kind of operation

VERSION    = 0.1.0
PREFIX    ?= /usr/local
CC        ?= cc
PKGS       = vips libpng openblas
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CFLAGS    ?= -O2
CFLAGS    += -std=c11 -Wall -Wextra
CPPFLAGS  += -D_POSIX_C_SOURCE=200809L -DMURA_VERSION_STRING='"$(VERSION)"' -Ilib $(PKG_CFLAGS) -MMD -MP
LDLIBS    += $(PKG_LIBS) -lm -lpthread
# MPI (Open MPI's C bindings), for data-parallel mura-train (lib/dist.c):
# without it the tools build as before and train in one process.  Linked
# --as-needed: only the programs that use lib/dist.c load it.
MPI_CFLAGS := $(shell pkg-config --cflags ompi-c 2>/dev/null)
MPI_LIBS   := $(shell pkg-config --libs ompi-c 2>/dev/null)
ifneq ($(MPI_LIBS),)
LDLIBS    += -Wl,--push-state,--as-needed $(MPI_LIBS) -Wl,--pop-state
endif
# The engine's elementwise loops (lib/nn) only vectorise with -O3's cost model.
NN_CFLAGS  = -O3

# Debian packages: to build, to run the tests' reference peers, for reports.
DEPS_BUILD = build-essential pkg-config libvips-dev libpng-dev libopenblas-dev parallel \
             openmpi-bin libopenmpi-dev
DEPS_TEST  = python3-torch python3-torchvision python3-sklearn python3-numpy python3-optuna python3-pil gnuplot-nox groff-base \
             libtcmalloc-minimal4 libjemalloc2 chromium
DEPS       = $(DEPS_BUILD) $(DEPS_TEST)

# Out of the tree: `make O=DIR` writes every object, the library, the tools
# and the test programs under DIR/, with the tree's layout; without O they
# sit beside their sources.  SANITIZE=1 adds ASan and UBSan (stopping at
# the first report); make check-sanitize is O=build-san SANITIZE=1.
B         := $(if $(O),$(patsubst %/,%,$(O))/)
SAN_FLAGS  = -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -g
ifneq ($(SANITIZE),)
CFLAGS    += $(SAN_FLAGS)
LDFLAGS   += $(SAN_FLAGS)
endif

LIB_SRC   := $(sort $(wildcard lib/*.c lib/*/*.c))
LIB_OBJ   := $(addprefix $(B),$(LIB_SRC:.c=.o))
LIB_A     := $(B)lib/libmura.a
TOOLS     := $(patsubst %.c,$(B)%,$(sort $(wildcard bin/mura-*.c)))
TESTS_C   := $(patsubst %.c,$(B)%,$(sort $(wildcard tests/*.c)))
TESTS_SH  := $(sort $(wildcard tests/t-*.sh))
# The fuzz harnesses (tests/fuzz, run by tests/t-fuzz.sh): each is built as
# a replay of its corpus through tests/fuzz/replay.c, like the tests (with
# the sanitizers under SANITIZE=1); and where $(FUZZ_CC) links libFuzzer, as
# a libFuzzer program in $(FUZZ_DIR), over its own instrumented copies of
# the few library files the harnesses need.
FUZZ      := $(patsubst %.c,$(B)%,$(sort $(wildcard tests/fuzz/fuzz-*.c)))
FUZZ_DIR  := $(B)build-fuzz
FUZZ_BIN  := $(patsubst tests/fuzz/%.c,$(FUZZ_DIR)/%,$(sort $(wildcard tests/fuzz/fuzz-*.c)))
FUZZ_LIB  := $(patsubst %,$(FUZZ_DIR)/lib/%.o,error json keyset metrics rng safetensors split tensor util)
FUZZ_CC    = clang
FUZZ_FLAGS = -std=c11 -Wall -Wextra -g -O1 -fno-omit-frame-pointer \
             -fsanitize=address,undefined -fno-sanitize-recover=all
DEPFILES  := $(LIB_OBJ:.o=.d) $(TOOLS:=.d) $(TESTS_C:=.d) $(FUZZ:=.d) $(B)tests/fuzz/replay.d \
             $(FUZZ_LIB:.o=.d) $(FUZZ_BIN:=.d)

.PHONY: all deps check check-sanitize fuzz fuzz-libfuzzer demo bench bench-preprocess clean install uninstall
.DELETE_ON_ERROR:

all: $(LIB_A) $(TOOLS)

# Quiet by default; `make V=1` shows the commands.
Q = $(if $(V),,@)
# Out of the tree, a target's folder is made first (mkdir -p: -j safe).
MKDIR = $(if $(B),@mkdir -p $(@D))
$(B)lib/%.o: lib/%.c
	@$(if $(Q),echo "  CC      $@")
	$(MKDIR)
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(filter $(B)lib/nn/%,$(LIB_OBJ)): CFLAGS += $(NN_CFLAGS)
$(B)lib/dist.o: CPPFLAGS += $(if $(MPI_LIBS),-DMURA_MPI $(MPI_CFLAGS))
# Built with MPI or without: a stamp named after it, so that installing (or
# removing) libopenmpi-dev rebuilds lib/dist.o.
MPI_STAMP := $(B)lib/.mpi-$(if $(MPI_LIBS),on,off)
$(B)lib/dist.o: $(MPI_STAMP)
$(MPI_STAMP):
	@mkdir -p $(@D) && rm -f $(B)lib/.mpi-on $(B)lib/.mpi-off && touch $@
# conv3.c's kernel means a += x * w as one fused multiply-add (see there)
$(B)lib/nn/conv3.o: CFLAGS += -ffp-contract=fast
# Adam's sqrtf without the errno check that keeps its loop scalar (the
# same values: errno is all it changes)
$(B)lib/nn/optim.o: CFLAGS += -fno-math-errno

$(LIB_A): $(LIB_OBJ)
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@.tmp && $(AR) rcs $@.tmp $^ && mv $@.tmp $@

$(B)bin/mura-%: bin/mura-%.c $(LIB_A)
	@$(if $(Q),echo "  CCLD    $@")
	$(MKDIR)
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ $< $(LIB_A) $(LDFLAGS) $(LDLIBS)

$(B)tests/%: tests/%.c $(LIB_A)
	@$(if $(Q),echo "  CCLD    $@")
	$(MKDIR)
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ $< $(LIB_A) $(LDFLAGS) $(LDLIBS)

$(B)tests/fuzz/replay.o: tests/fuzz/replay.c
	@$(if $(Q),echo "  CC      $@")
	$(MKDIR)
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(B)tests/fuzz/fuzz-%: tests/fuzz/fuzz-%.c $(B)tests/fuzz/replay.o $(LIB_A)
	@$(if $(Q),echo "  CCLD    $@")
	$(MKDIR)
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ $< $(B)tests/fuzz/replay.o $(LIB_A) $(LDFLAGS) $(LDLIBS)

# The replays always; the libFuzzer programs only where a probe links one
# (else $(FUZZ_DIR) goes, and t-fuzz.sh says, SKIPPED, that it only replayed).
fuzz: $(FUZZ)
	@mkdir -p $(FUZZ_DIR) && \
	if printf 'int LLVMFuzzerTestOneInput(const char *d, long n) { return 0; }\n' | \
	    $(FUZZ_CC) -x c -fsanitize=fuzzer,address,undefined -o $(FUZZ_DIR)/probe - >/dev/null 2>&1; then \
	    rm -f $(FUZZ_DIR)/probe && $(MAKE) --no-print-directory fuzz-libfuzzer; \
	else \
	    rm -rf $(FUZZ_DIR); \
	fi

fuzz-libfuzzer: $(FUZZ_BIN)
	@:
# Built only by pattern rules, yet kept: no rebuild on the next make.
.SECONDARY: $(FUZZ_LIB) $(B)tests/fuzz/replay.o

$(FUZZ_DIR)/lib/%.o: lib/%.c
	@$(if $(Q),echo "  FUZZCC  $@")
	@mkdir -p $(@D)
	$(Q)$(FUZZ_CC) $(CPPFLAGS) $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_DIR)/fuzz-%: tests/fuzz/fuzz-%.c $(FUZZ_LIB)
	@$(if $(Q),echo "  FUZZLD  $@")
	$(Q)$(FUZZ_CC) $(CPPFLAGS) $(FUZZ_FLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_LIB) -lm

# Install missing Debian packages.  One dpkg-query call answers "all there?"
# in a few milliseconds; only then is apt-get considered.
deps:
	@missing=$$(dpkg-query -W -f='$${Package} $${db:Status-Abbrev}\n' $(DEPS) 2>/dev/null \
	    | awk '$$2 == "ii" { ok[$$1] = 1 } END { n = split("$(DEPS)", a, " "); \
	           for (i = 1; i <= n; i++) if (!(a[i] in ok)) printf "%s ", a[i] }'); \
	if [ -n "$$missing" ]; then \
	    if [ "$$(id -u)" != 0 ]; then \
	        echo "make deps: missing Debian packages: $$missing" >&2; \
	        echo "make deps: run as root:  apt-get update && apt-get install -y $$missing" >&2; \
	        exit 1; \
	    fi; \
	    echo "make deps: installing $$missing"; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get install -y -q $$missing || { apt-get update -q && apt-get install -y -q $$missing; } \
	        || { echo "make deps: apt-get failed" >&2; exit 1; }; \
	fi

check: deps
	@$(MAKE) --no-print-directory all $(TESTS_C) fuzz
	@sh tests/run.sh $(TESTS_C) $(TESTS_SH)

# Every test against the ASan + UBSan build in build-san/ (MURA_BUILD tells
# the tests where its programs are; MURA_MAKE_ARGS, how t-install makes it).
# A report stops the program with its own exit status, never 1 (a tool's
# failure), and lands as a file in build-san/reports, which tests/run.sh
# counts as a failure of the test that made it.
SAN_MAKE_ARGS = O=build-san SANITIZE=1
SAN_LOGS = $(CURDIR)/build-san/reports
SAN_ENV = MURA_BUILD='$(CURDIR)/build-san' MURA_MAKE_ARGS='$(SAN_MAKE_ARGS)' MURA_SAN_LOGS='$(SAN_LOGS)' \
          ASAN_OPTIONS='exitcode=86:detect_leaks=1:log_path=$(SAN_LOGS)/asan' \
          UBSAN_OPTIONS='exitcode=87:print_stacktrace=1:log_path=$(SAN_LOGS)/ubsan'
check-sanitize: deps
	@$(MAKE) --no-print-directory $(SAN_MAKE_ARGS) all $(TESTS_C:%=build-san/%) fuzz
	@rm -rf '$(SAN_LOGS)' && mkdir -p '$(SAN_LOGS)'
	@$(SAN_ENV) sh tests/run.sh $(TESTS_C:%=build-san/%) $(TESTS_SH)

demo: deps
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory -f pipelines/demo.mk

bench: deps
	@$(MAKE) --no-print-directory all
	@$(if $(PROFILE),MURA_PROFILE=1 )sh tests/bench/run.sh

bench-preprocess: deps
	@$(MAKE) --no-print-directory all
	@sh tests/bench/preprocess.sh

clean:
	rm -f $(LIB_A) $(LIB_OBJ) $(B)lib/.mpi-on $(B)lib/.mpi-off $(TOOLS) $(TESTS_C) $(FUZZ) $(B)tests/fuzz/replay.o $(DEPFILES)
	rm -rf $(FUZZ_DIR) build-san

# Installation: tools, library and headers with a pkg-config file, man pages,
# and the pipelines under share/mura.  DESTDIR is honoured.
BINDIR   = $(PREFIX)/bin
LIBDIR   = $(PREFIX)/lib
INCDIR   = $(PREFIX)/include/mura
MANDIR   = $(PREFIX)/share/man
SHAREDIR = $(PREFIX)/share/mura
# Public headers: the library's API.  The engine's inside (the layers,
# threads and kernels behind lib/nn/model.h) and the generator's private
# header stay in the source tree.
LIB_PRIV_HDR := lib/cam_cmap.h lib/nn/net.h lib/nn/ops.h lib/nn/thread.h lib/nn/vit.h lib/nn/conv3_kernel.h \
                $(wildcard lib/synth/*.h)
LIB_HDR := $(filter-out $(LIB_PRIV_HDR),$(sort $(wildcard lib/*.h lib/*/*.h)))
MANPAGES := $(sort $(wildcard man/man*/*.[0-9]))

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(SHAREDIR)/pipelines
	install -m 755 $(TOOLS) $(DESTDIR)$(BINDIR)
	install -m 644 $(LIB_A) $(DESTDIR)$(LIBDIR)
	printf '%s\n' 'prefix=$(PREFIX)' 'includedir=$${prefix}/include/mura' 'libdir=$${prefix}/lib' '' \
	  'Name: mura' 'Description: abnormality detection in musculoskeletal radiographs' \
	  'Version: $(VERSION)' 'Requires: $(PKGS)$(if $(MPI_LIBS), ompi-c)' 'Cflags: -I$${includedir}' \
	  'Libs: -L$${libdir} -lmura -lm -lpthread$(if $(SANITIZE), $(SAN_FLAGS))' \
	  > $(DESTDIR)$(LIBDIR)/pkgconfig/mura.pc
	for h in $(LIB_HDR); do install -D -m 644 $$h $(DESTDIR)$(INCDIR)/$${h#lib/}; done
	for m in $(MANPAGES); do install -D -m 644 $$m $(DESTDIR)$(MANDIR)/$${m#man/}; done
	for p in $(wildcard pipelines/*); do install -m 644 $$p $(DESTDIR)$(SHAREDIR)/pipelines; done

uninstall:
	rm -f $(addprefix $(DESTDIR)$(BINDIR)/,$(notdir $(TOOLS)))
	rm -f $(DESTDIR)$(LIBDIR)/libmura.a $(DESTDIR)$(LIBDIR)/pkgconfig/mura.pc
	rm -rf $(DESTDIR)$(INCDIR) $(DESTDIR)$(SHAREDIR)
	rm -f $(addprefix $(DESTDIR)$(MANDIR)/,$(MANPAGES:man/%=%))

-include $(DEPFILES)
