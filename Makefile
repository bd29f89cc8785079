# cairn — one plain Makefile (CONVENTIONS.md 21).
#
#   make            build every binary into $(BUILD)/bin
#   make deps       check (and as root install) the Debian packages we need
#   make test       deps + build + unit, server and integration tests
#   make asan       the same tests built with AddressSanitizer + UBSan
#   make demo       one metad + three chunkd on loopback, mounted at ./mnt
#   make demo-stop  undo make demo
#   make bench      benchmark suite (docs/BENCHMARKS.md)
#   make soak       fsx for 2,000,000 operations (SOAK_OPS, SOAK_SEED)

CC      ?= gcc
PKGS    := fuse3 libcurl libmicrohttpd libcrypto libzstd
SANITIZE ?= 0

ifeq ($(SANITIZE),1)
BUILD   ?= build-asan
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
else
BUILD   ?= build
SANFLAGS :=
endif

WARN    := -Wall -Wextra -Werror -Wmissing-prototypes -Wstrict-prototypes \
           -Wshadow -Wformat=2 -Wno-format-nonliteral -Wvla -Wpointer-arith
CFLAGS  ?= -O2 -g
ALL_CFLAGS := -std=gnu11 $(CFLAGS) $(WARN) $(SANFLAGS) -D_GNU_SOURCE -pthread \
           -MMD -MP -I. $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS  := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lisal -lpthread -lm
ALL_LDFLAGS := $(LDFLAGS) $(SANFLAGS) -pthread

# Each directory is a static library; a file named main.c is a binary's entry
# point and stays out of its directory's library so tests can link the rest.
COMMON_SRC := $(wildcard common/*.c)
META_SRC   := $(filter-out server/meta/main.c,$(wildcard server/meta/*.c))
CHUNK_SRC  := $(filter-out server/chunk/main.c,$(wildcard server/chunk/*.c))
CACHE_SRC  := $(wildcard cache/*.c)
CLIENT_SRC := $(wildcard client/*.c)
FUSE_SRC   := $(filter-out fuse/main.c fuse/mount_cairn.c,$(wildcard fuse/*.c))
CLI_SRC    := $(filter-out cli/main.c,$(wildcard cli/*.c))

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))

LIBCOMMON := $(BUILD)/lib/libcommon.a
LIBMETA   := $(BUILD)/lib/libmeta.a
LIBCHUNK  := $(BUILD)/lib/libchunk.a
LIBCACHE  := $(BUILD)/lib/libcache.a
LIBCLIENT := $(BUILD)/lib/libclient.a
LIBFUSE   := $(BUILD)/lib/libcfuse.a
LIBCLI    := $(BUILD)/lib/libcli.a

BINS := $(BUILD)/bin/cairn-metad $(BUILD)/bin/cairn-chunkd
ifneq ($(wildcard fuse/main.c),)
BINS += $(BUILD)/bin/cairn-mount
endif
ifneq ($(wildcard fuse/mount_cairn.c),)
BINS += $(BUILD)/bin/mount.cairn
endif
ifneq ($(wildcard cli/main.c),)
BINS += $(BUILD)/bin/cairn
endif

UNIT_SRC   := $(wildcard tests/unit/test_*.c)
UNIT_BINS  := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))
SERVER_SRC := $(wildcard tests/server/srv_*.c)
SERVER_BINS := $(patsubst tests/server/%.c,$(BUILD)/tests/%,$(SERVER_SRC))
TESTLIB_SRC := $(wildcard tests/lib/*.c)
TOOL_SRC   := $(wildcard tests/tools/*.c)
TOOL_BINS  := $(patsubst tests/tools/%.c,$(BUILD)/tests/%,$(TOOL_SRC))
# tests/posix/*.c form one conformance program; tests/fsx/*.c the exerciser.
POSIX_SRC  := $(wildcard tests/posix/*.c)
FSX_SRC    := $(wildcard tests/fsx/*.c)
ifneq ($(POSIX_SRC),)
TOOL_BINS  += $(BUILD)/tests/posix_suite
endif
ifneq ($(FSX_SRC),)
TOOL_BINS  += $(BUILD)/tests/fsx
endif

.PHONY: all deps test unit asan demo demo-stop bench soak clean install man-options
all: deps-quiet $(BINS)

deps:
	@scripts/deps.sh

deps-quiet:
	@scripts/deps.sh --quiet

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

define mklib
$(1): $(call obj,$(2))
	@mkdir -p $$(dir $$@)
	@rm -f $$@
	ar rcs $$@ $$^ $$(if $$^,,$$(BUILD)/obj/empty.o)
endef

$(BUILD)/obj/empty.o:
	@mkdir -p $(dir $@)
	echo 'typedef int cairn_empty_unit;' | $(CC) $(ALL_CFLAGS) -x c -c -o $@ -

$(eval $(call mklib,$(LIBCOMMON),$(COMMON_SRC)))
$(eval $(call mklib,$(LIBMETA),$(META_SRC)))
$(eval $(call mklib,$(LIBCHUNK),$(CHUNK_SRC)))
$(eval $(call mklib,$(LIBCACHE),$(CACHE_SRC)))
$(eval $(call mklib,$(LIBCLIENT),$(CLIENT_SRC)))
$(eval $(call mklib,$(LIBFUSE),$(FUSE_SRC)))
$(eval $(call mklib,$(LIBCLI),$(CLI_SRC)))
$(LIBMETA) $(LIBCHUNK) $(LIBCACHE) $(LIBCLIENT) $(LIBFUSE) $(LIBCLI): | $(BUILD)/obj/empty.o

ALL_LIBS := $(LIBCLI) $(LIBFUSE) $(LIBCLIENT) $(LIBCACHE) $(LIBMETA) $(LIBCHUNK) $(LIBCOMMON)

$(BUILD)/bin/cairn-metad: $(call obj,server/meta/main.c) $(LIBMETA) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/bin/cairn-chunkd: $(call obj,server/chunk/main.c) $(LIBCHUNK) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/bin/cairn-mount: $(call obj,fuse/main.c) $(LIBFUSE) $(LIBCLIENT) $(LIBCACHE) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/bin/mount.cairn: $(call obj,fuse/mount_cairn.c) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/bin/cairn: $(call obj,cli/main.c) $(LIBCLI) $(LIBCLIENT) $(LIBCACHE) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS)

TESTLIB_OBJ := $(call obj,$(TESTLIB_SRC))

# Unit tests link only the libraries their name says they test, so work in
# progress in one module never breaks another module's tests:
# test_meta_* -> server/meta, test_chunk_* -> server/chunk, test_client_* and
# test_cache_* -> client/ + cache/, test_fuse_* -> fuse/, others -> common/.
TEST_CC = $(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $< $(TESTLIB_OBJ)
$(BUILD)/tests/test_meta_%: tests/unit/test_meta_%.c $(TESTLIB_OBJ) $(LIBMETA) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(TEST_CC) $(LIBMETA) $(LIBCOMMON) $(LDLIBS) -lcmocka
$(BUILD)/tests/test_chunk_%: tests/unit/test_chunk_%.c $(TESTLIB_OBJ) $(LIBCHUNK) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(TEST_CC) $(LIBCHUNK) $(LIBCOMMON) $(LDLIBS) -lcmocka
$(BUILD)/tests/test_client_%: tests/unit/test_client_%.c $(TESTLIB_OBJ) $(LIBCLIENT) $(LIBCACHE) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(TEST_CC) $(LIBCLIENT) $(LIBCACHE) $(LIBCOMMON) $(LDLIBS) -lcmocka
$(BUILD)/tests/test_cache_%: tests/unit/test_cache_%.c $(TESTLIB_OBJ) $(LIBCACHE) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(TEST_CC) $(LIBCACHE) $(LIBCOMMON) $(LDLIBS) -lcmocka
$(BUILD)/tests/test_fuse_%: tests/unit/test_fuse_%.c $(TESTLIB_OBJ) $(LIBFUSE) $(LIBCLIENT) $(LIBCACHE) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(TEST_CC) $(LIBFUSE) $(LIBCLIENT) $(LIBCACHE) $(LIBCOMMON) $(LDLIBS) -lcmocka
$(BUILD)/tests/test_%: tests/unit/test_%.c $(TESTLIB_OBJ) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(TEST_CC) $(LIBCOMMON) $(LDLIBS) -lcmocka
# Server tests drive real daemons over HTTP; they link common/ and the harness
# (srv_client* also link the client library, to act as one or more clients).
$(BUILD)/tests/srv_client%: tests/server/srv_client%.c $(TESTLIB_OBJ) $(LIBCLIENT) $(LIBCACHE) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(TEST_CC) $(LIBCLIENT) $(LIBCACHE) $(LIBCOMMON) $(LDLIBS) -lcmocka
$(BUILD)/tests/srv_%: tests/server/srv_%.c $(TESTLIB_OBJ) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(TEST_CC) $(LIBCOMMON) $(LDLIBS) -lcmocka
$(BUILD)/tests/%: tests/tools/%.c $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $< $(LIBCOMMON) $(LDLIBS)

$(BUILD)/tests/posix_suite: $(call obj,$(POSIX_SRC)) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/fsx: $(call obj,$(FSX_SRC)) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS)

unit-bins: $(UNIT_BINS)
test-bins: $(BINS) $(UNIT_BINS) $(SERVER_BINS) $(TOOL_BINS)

# The runner prints one line per test and ends with "N passed, N failed".
test: deps
	@$(MAKE) --no-print-directory test-bins
	@BUILD=$(BUILD) tests/run.sh

unit: deps-quiet
	@$(MAKE) --no-print-directory test-bins
	@BUILD=$(BUILD) tests/run.sh unit

asan:
	@$(MAKE) --no-print-directory SANITIZE=1 deps-quiet
	@$(MAKE) --no-print-directory SANITIZE=1 test-bins
	@BUILD=build-asan ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 tests/run.sh unit server

demo: all
	@scripts/demo.sh start

demo-stop:
	@scripts/demo.sh stop

bench: all
	@scripts/bench.sh

# The long run of the randomized exerciser (t_fsx runs 100,000 operations in
# make test); a failure keeps the operation log and prints the seed.
SOAK_OPS ?= 2000000
soak: deps-quiet
	@$(MAKE) --no-print-directory test-bins
	@BUILD=$(BUILD) FSX_OPS=$(SOAK_OPS) $(if $(SOAK_SEED),FSX_SEED=$(SOAK_SEED)) FSX_REMOUNTS=40 \
		bash tests/integration/t_fsx.sh

PREFIX ?= /usr/local
install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)/sbin
	install -m 0755 $(filter-out %/mount.cairn,$(BINS)) $(DESTDIR)$(PREFIX)/bin/
	if [ -f $(BUILD)/bin/mount.cairn ]; then install -m 0755 $(BUILD)/bin/mount.cairn $(DESTDIR)/sbin/; fi
	install -d $(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/share/man/man7 $(DESTDIR)$(PREFIX)/share/man/man8
	for m in man/*.[178]; do [ -f "$$m" ] && install -m 0644 $$m $(DESTDIR)$(PREFIX)/share/man/man$${m##*.}/; done; true

clean:
	rm -rf build build-asan

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
