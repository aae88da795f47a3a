# kodama — build, run and test. `make run` and `make test` are the two commands the
# README promises; both install missing Debian packages first (scripts/deps.sh).

CC       ?= cc
PYTHON   ?= /usr/bin/python3
BUILD    ?= build
WARN      = -Wall -Wextra -Werror
CFLAGS   ?= -O2 -g
# Debian's hardening flags, always on (hardening-check verifies them in make test):
# bookworm's dpkg-buildflags puts FORTIFY in CPPFLAGS and leaves out -z now; both
# are here. FORTIFY needs optimisation: with CFLAGS=-O0, also say FORTIFY=. The
# sanitizer builds leave it out, since ASan checks the same calls itself.
FORTIFY  ?= -D_FORTIFY_SOURCE=2
HARDEN_CFLAGS  = $(FORTIFY) -fstack-protector-strong -fstack-clash-protection \
                 -fcf-protection -fPIE
HARDEN_LDFLAGS = -pie -Wl,-z,relro,-z,now -Wl,-z,ibt,-z,shstk
ALL_CFLAGS = -std=c17 -D_GNU_SOURCE -pthread -Isrc $(WARN) $(HARDEN_CFLAGS) $(CFLAGS) \
             $(EXTRA_CFLAGS) -MMD -MP
ALL_LDFLAGS = $(HARDEN_LDFLAGS) $(LDFLAGS) $(EXTRA_LDFLAGS)
LDLIBS   ?= -luring -lssl -lcrypto -pthread -lm
SANFLAGS  = -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer

# One folder per layer (docs/DESIGN.md); every .c below src/ but main.c is the library.
SRC_ALL  = $(sort $(shell find src -name '*.c'))
LIB_SRC  = $(filter-out src/main.c,$(SRC_ALL))
LIB_OBJ  = $(LIB_SRC:src/%.c=$(BUILD)/%.o)
MAIN_OBJ = $(BUILD)/main.o
UNIT_SRC = $(wildcard tests/unit/test_*.c)
UNIT_BIN = $(UNIT_SRC:tests/unit/%.c=$(BUILD)/%)

.PHONY: all run test deps unit integration asan asan-test valgrind soak clang-check bench-quick bench-profile \
        clean fuzz fuzz-build fuzz-bins fuzz-corpus install uninstall checks analyze objects
all: kodama

kodama $(BUILD)/kodama: $(MAIN_OBJ) $(LIB_OBJ)
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/%.o: src/%.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/test_%: tests/unit/test_%.c $(LIB_OBJ)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $^ -lcmocka $(LDLIBS)

deps:
	@scripts/deps.sh

run: deps
	@$(MAKE) --no-print-directory kodama
	./kodama serve

unit: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; $$t; done

# The whole suite once per I/O engine: both must behave the same on the wire.
IO_MODES = epoll uring

integration: kodama
	@set -e; for io in $(IO_MODES); do echo "== integration, serve --io $$io"; \
	    KODAMA_IO=$$io KODAMA_BIN=$(CURDIR)/kodama $(PYTHON) -m pytest -q -rs tests/integration; done

# The same sources, checked by the other compiler: both must stay warning-free.
clang-check:
	@$(MAKE) --no-print-directory BUILD=build/clang CC=clang build/clang/kodama

objects: $(MAIN_OBJ) $(LIB_OBJ)

# The build's own checks (docs/DESIGN.md, "Checked builds"): the layers (no call
# from a lower folder into a higher one, no circle of units), the hardening flags
# in the binary, and two static analyzers with no finding; tests/build shows that
# each check fails on what it is meant to catch.
checks: kodama
	@echo "== layers"
	@$(PYTHON) scripts/check_layers.py $(BUILD)
	@echo "== hardening"
	@$(PYTHON) scripts/check_hardening.py kodama
	@$(MAKE) --no-print-directory analyze
	@echo "== the checks' own tests"
	@$(PYTHON) -m pytest -q tests/build

# clang's static analyzer (scan-build, every checker on by default) and gcc's
# -fanalyzer, each over a build of its own; any finding fails.
analyze:
	@echo "== scan-build (clang static analyzer)"
	@rm -rf build/scan-build
	@scan-build -o build/scan-build/reports --status-bugs $(MAKE) --no-print-directory \
	    BUILD=build/scan-build CC=clang FORTIFY= objects >build/scan-build.log 2>&1 || \
	    { grep -E 'warning:|error:' build/scan-build.log; tail -3 build/scan-build.log; exit 1; }
	@tail -1 build/scan-build.log
	@echo "== gcc -fanalyzer"
	@$(MAKE) --no-print-directory BUILD=build/fanalyzer CFLAGS="-O2 -fanalyzer" objects >/dev/null
	@echo "gcc -fanalyzer: no findings"

asan:
	@$(MAKE) --no-print-directory BUILD=build/asan CFLAGS="$(SANFLAGS)" FORTIFY= \
	    EXTRA_LDFLAGS="-fsanitize=address,undefined" build/asan/kodama unit-asan

unit-asan: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "== $$t (asan)"; $$t; done

asan-test: asan
	@set -e; for io in $(IO_MODES); do echo "== integration (asan), serve --io $$io"; \
	    ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
	    KODAMA_IO=$$io KODAMA_BIN=$(CURDIR)/build/asan/kodama $(PYTHON) -m pytest -q -rs tests/integration; done

# libFuzzer harnesses, one per parser: tests/fuzz/fuzz_NAME.c with its seeds in
# tests/fuzz/corpus/NAME/ (tests/fuzz/README.md). They link against the library
# built by clang with coverage and sanitizers in build/fuzz, apart from the normal
# build. `make fuzz` mutates for FUZZ_SECONDS each (new inputs go to a scratch
# corpus under build/fuzz); `make fuzz-corpus` runs the committed seeds once.
FUZZ_BUILD   = build/fuzz
FUZZ_SRC     = $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_NAMES   = $(FUZZ_SRC:tests/fuzz/fuzz_%.c=%)
FUZZ_BIN     = $(FUZZ_NAMES:%=$(FUZZ_BUILD)/fuzz_%)
FUZZ_SECONDS ?= 60
FUZZ_CFLAGS  = -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined \
               -fno-sanitize-recover=all

# Only the objects a harness calls into get linked.
$(BUILD)/libkodama.a: $(LIB_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

$(BUILD)/fuzz_%: tests/fuzz/fuzz_%.c $(BUILD)/libkodama.a
	$(CC) $(ALL_CFLAGS) -fsanitize=fuzzer -Itests/fuzz $(ALL_LDFLAGS) -o $@ \
	    $< $(BUILD)/libkodama.a $(LDLIBS)

fuzz-build:
	@$(MAKE) --no-print-directory BUILD=$(FUZZ_BUILD) CC=clang CFLAGS="$(FUZZ_CFLAGS)" FORTIFY= fuzz-bins

fuzz-bins: $(FUZZ_BIN)
	@:

fuzz: fuzz-build
	@tests/fuzz/run.sh fuzz $(FUZZ_SECONDS) $(FUZZ_BUILD) $(FUZZ_NAMES)

fuzz-corpus: fuzz-build
	@tests/fuzz/run.sh corpus 0 $(FUZZ_BUILD) $(FUZZ_NAMES)
# valgrind memcheck over the integration tests marked `valgrind` (a short subset, ~40 s):
# no error and no definite, indirect or possible leak in serve or the clients.
# epoll only (KODAMA_IO=epoll): memcheck does not model io_uring. What the kernel writes
# into our malloc'd buffers through the shared rings stays "undefined" to it (false
# "uninitialised" reports wherever kodama looks at received data), what we hand the
# kernel goes unchecked, and valgrind 3.19 runs io_uring_enter holding its
# one-thread-at-a-time lock, so serve with more than one loop (the default) hangs.
VALGRIND = valgrind --tool=memcheck --error-exitcode=99 --leak-check=full \
    --errors-for-leak-kinds=definite,indirect,possible \
    --show-leak-kinds=definite,indirect,possible --track-fds=no -q
VALGRIND_TIME_SCALE = 10

valgrind: kodama
	@echo "== integration subset under valgrind memcheck, serve --io epoll"
	@KODAMA_IO=epoll KODAMA_BIN=$(CURDIR)/kodama KODAMA_WRAPPER="$(VALGRIND)" \
	    KODAMA_TIME_SCALE=$(VALGRIND_TIME_SCALE) $(PYTHON) -m pytest -q -rs -m valgrind tests/integration

# Ten minutes of mixed and abusive load against one server, sampling its RSS and
# descriptors each second (tests/soak/soak.py), then a server run out of
# descriptors again and again on every listening socket (tests/soak/exhaust.py);
# not part of `make test`.
SOAK_SECONDS ?= 600
SOAK_EXHAUST_SECONDS ?= 60

soak: kodama
	$(PYTHON) tests/soak/soak.py --seconds $(SOAK_SECONDS) --kodama $(CURDIR)/kodama \
	    --out $(BUILD)/soak
	$(PYTHON) tests/soak/exhaust.py --seconds $(SOAK_EXHAUST_SECONDS) --kodama $(CURDIR)/kodama

# The comparison harness and the profile on tiny runs: checks that they run and
# write well-formed reports, not the numbers (without --quick they do).
bench-quick: kodama
	bench/compare.sh --quick -o $(BUILD)/bench/RESULTS-quick.md
	$(PYTHON) bench/check_table.py $(BUILD)/bench/RESULTS-quick.md
	bench/profile.sh --quick -o $(BUILD)/bench/PROFILE-quick.md
	@for c in tcp64 udp64 hello; do grep -q "^| $$c | [0-9]" $(BUILD)/bench/PROFILE-quick.md || \
	    { echo "bench-quick: no $$c row in $(BUILD)/bench/PROFILE-quick.md" >&2; exit 1; }; done
	bench/relay.sh --quick -o $(BUILD)/bench/RELAY-quick.md >/dev/null
	@for r in kodama socat haproxy; do grep -q "^| 1 MiB × 4 conns | $$r | [0-9]" $(BUILD)/bench/RELAY-quick.md || \
	    { echo "bench-quick: no $$r row in $(BUILD)/bench/RELAY-quick.md" >&2; exit 1; }; done
	bench/tls.sh --quick -o $(BUILD)/bench/TLS-quick.md >/dev/null
	@for c in "full handshake" "resumed (--resume)"; do for s in kodama nginx; do \
	    grep -q "^| $$c | $$s | [1-9][0-9]* | [0-9.]* | [0-9]* % | 0 |$$" $(BUILD)/bench/TLS-quick.md || \
	    { echo "bench-quick: no $$c row for $$s in $(BUILD)/bench/TLS-quick.md" >&2; exit 1; }; done; done

# Where the server's user-space instructions per message go (callgrind), and its
# user/kernel CPU split; writes bench/PROFILE.md in about a minute (bench-quick runs
# its --quick form).
bench-profile: kodama
	bench/profile.sh

test: deps
	@$(MAKE) --no-print-directory kodama clang-check
	@$(MAKE) --no-print-directory checks
	@$(MAKE) --no-print-directory unit
	@$(MAKE) --no-print-directory fuzz-corpus
	@$(MAKE) --no-print-directory integration
	@$(MAKE) --no-print-directory asan-test
	@$(MAKE) --no-print-directory valgrind
	@$(MAKE) --no-print-directory bench-quick

# Installed like any tool: `make install PREFIX=/usr DESTDIR=/tmp/pkg` for a package.
# The units' ExecStart= names /usr/local/bin/kodama, rewritten here to BINDIR. With
# PREFIX=/usr they land in /usr/lib/systemd/system (Debian's /lib/systemd/system on a
# merged /usr); with /usr/local, in /usr/local/lib/systemd/system, which systemd
# also reads. `systemctl daemon-reload` afterwards.
PREFIX  ?= /usr/local
BINDIR  ?= $(PREFIX)/bin
MANDIR  ?= $(PREFIX)/share/man
UNITDIR ?= $(PREFIX)/lib/systemd/system
UNITS    = kodama.socket kodama-hello.socket kodama.service kodama-inetd.socket \
           kodama-inetd@.service

install: kodama
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(UNITDIR)
	install -m 755 kodama $(DESTDIR)$(BINDIR)/kodama
	install -m 644 docs/kodama.1 $(DESTDIR)$(MANDIR)/man1/kodama.1
	@set -e; for u in $(UNITS); do \
	    sed 's|/usr/local/bin/kodama|$(BINDIR)/kodama|g' contrib/systemd/$$u >$(BUILD)/$$u; \
	    echo "install -m 644 contrib/systemd/$$u $(DESTDIR)$(UNITDIR)/$$u"; \
	    install -m 644 $(BUILD)/$$u $(DESTDIR)$(UNITDIR)/$$u; rm -f $(BUILD)/$$u; done

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/kodama $(DESTDIR)$(MANDIR)/man1/kodama.1
	rm -f $(UNITS:%=$(DESTDIR)$(UNITDIR)/%)

clean:
	rm -rf build kodama

-include $(LIB_OBJ:.o=.d) $(MAIN_OBJ:.o=.d) $(wildcard $(BUILD)/fuzz_*.d)
