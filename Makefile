# cloudauth — the two commands of the quick start are `make demo` and `make test`.
SHELL := /bin/bash
PREFIX ?= /usr/local
CARGO ?= cargo

.PHONY: test-sanitize test-sanitize-rust fuzz test-fuzz
.PHONY: all build deps deps-demo demo test test-lint test-rust test-header test-standin test-c test-c-valgrind \
        test-cpp test-cpp-valgrind test-hostile test-hostile-valgrind test-python test-dotnet test-install test-fleet test-cli test-oidc test-loaded install bench clean \
        test-node test-java \
        test-netfault soak soak-smoke

all: build

deps:
	scripts/ensure-deps.sh

deps-demo:
	scripts/ensure-deps.sh demo

# Builds target/release/libcloudauth.{so,a} and regenerates include/cloudauth.h.
build:
	$(CARGO) build --release

# The main job: a C program gets a token and makes authorized OCR calls against the local stand-in.
demo: deps-demo build
	tests/run/demo.sh

# Every suite, in order of what builds on what. Stops at the first failure.
test: deps build test-header test-lint test-rust test-standin test-c test-c-valgrind test-cpp test-cpp-valgrind \
      test-hostile test-hostile-valgrind test-sanitize test-fuzz test-python test-dotnet test-install test-cli test-oidc \
      test-node test-java \
      test-netfault soak-smoke
	@echo "make test: all suites passed"

# `make test` with two CPU hogs beside it (`yes >/dev/null`, stopped at the end): every timing
# test must hold on a loaded 2-vCPU machine.
test-loaded:
	tests/run/with_cpu_hogs.sh $(MAKE) test

test-header: build
	tests/run/check_header.sh
	tests/run/check_std.sh

test-lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings

test-rust:
	$(CARGO) test

# The shared token caches alone (part of test-rust): 40 processes, three Redis-only groups,
# every failure path; starts its own redis-server on a loopback port.
test-fleet:
	$(CARGO) test --test shared_cache

test-standin:
	python3 tests/standin/test_server.py

test-c: build
	tests/run/c.sh

test-c-valgrind: build
	tests/run/c.sh --valgrind

test-cpp: build
	tests/run/cpp.sh

test-cpp-valgrind: build
	tests/run/cpp.sh --valgrind

# A misbehaving server and a careless caller: every case's code, time bound and message.
test-hostile: build
	tests/run/hostile.sh

test-hostile-valgrind: build
	tests/run/hostile.sh --valgrind

# The C, C++ and hostile suites built with -fsanitize=address,undefined (gcc), the library
# linked as it ships; LeakSanitizer at exit. Any report fails.
test-sanitize: build
	tests/run/c.sh --sanitize
	tests/run/cpp.sh --sanitize
	tests/run/hostile.sh --sanitize

# The Rust side under AddressSanitizer (nightly -Zsanitizer=address, target/asan): the unit
# tests, the C ABI contract, the fuzz corpora and end-to-end requests. Not in `make test`: a
# second build of every dependency (~3 CPU minutes the first time).
test-sanitize-rust:
	tests/run/rust_asan.sh

# Coverage-guided fuzzing (fuzz/, cargo fuzz on nightly, installed when missing): every target
# for FUZZ_SECONDS each; the smoke pass of `make test` runs each for FUZZ_SMOKE_SECONDS.
FUZZ_SECONDS ?= 60
FUZZ_SMOKE_SECONDS ?= 4
fuzz:
	tests/run/fuzz.sh $(FUZZ_SECONDS)

test-fuzz:
	FUZZ_SEED=1 tests/run/fuzz.sh $(FUZZ_SMOKE_SECONDS)

test-python: build
	tests/run/python.sh

test-dotnet: build
	tests/run/dotnet.sh
	tests/run/check_dotnet_pack.sh

# The Java binding (bindings/java): mvn verify (JUnit 5 against the stand-in, the hostile server
# and nginx), the OkHttp interceptor on OkHttp 5, and examples/java against the stand-in.
test-java: build
	tests/run/java.sh

test-install: build
	tests/run/install.sh

# The command-line tool (target/release/cloudauth) against the stand-in.
test-cli: build
	tests/run/cli.sh

# Every client-authentication method, DPoP, discovery and resource indicators against
# oidc-provider (npm) and a resource server that verifies each token's binding.
test-oidc: build
	tests/run/oidc.sh

# The Node.js binding (bindings/node): npm ci, tsc on the types and examples, node --test against
# the stand-in, the hostile server and nginx, the examples.
test-node: build
	tests/run/node.sh

# Installs the shared library (with soname), the static library, the headers, cloudauth.pc,
# the CMake package and the command-line tool (bin/cloudauth) into $(PREFIX).
install: build
	packaging/install.sh "$(PREFIX)"

bench: build
	scripts/ensure-deps.sh bench
	bench/run.sh

clean:
	$(CARGO) clean

# Real network faults: the stand-in on a test host in a network namespace, a veth pair away
# (delay, stalls, 256 kbit/s, resets, 1-byte segments, a blackhole, link down); cloudauth and
# libcurl side by side. Without root / CAP_NET_ADMIN it says so loudly and passes.
test-netfault: build
	tests/netfault/run.sh

# Ten minutes (SOAK_SECONDS to change) of threads and async operations under token rotation,
# 401s, stale connections, redirects and injected faults: zero lost or doubly-acted requests,
# flat RSS and descriptors. Not part of make test; soak-smoke (20 s) is.
soak: build
	tests/soak/run.sh

soak-smoke: build
	SOAK_SECONDS=20 tests/soak/run.sh
