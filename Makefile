# The two commands: `make demo` (the main job on the built-in default) and `make test`.
# Each installs what it needs (scripts/setup.sh), builds with Meson/Ninja, and runs.
BUILD   ?= build
PREFIX  ?= /usr/local
OUT     ?= noether-demo
NOETHER := $(BUILD)/noether

.PHONY: all setup build demo test sanitize fuzz bench install uninstall dist distcheck clean

all: build

setup:
	@scripts/setup.sh

$(BUILD)/build.ninja:
	meson setup $(BUILD) --prefix=$(abspath $(PREFIX))

build: setup $(BUILD)/build.ninja
	ninja -C $(BUILD)

demo: build
	$(NOETHER) demo -o $(OUT)

# Exact comparisons need one BLAS thread (OpenBLAS differs in the last bits otherwise).
# --verbose: a line as each test starts and ends (progress), the failures in full.
# Then the Python module's tests (python/tests, pytest with Debian's python3 and torch).
PYTEST := PYTHONDONTWRITEBYTECODE=1 PYTHONPATH=$(BUILD)/python NOETHER_BUILD=$(abspath $(BUILD)) /usr/bin/python3 -m pytest -p no:cacheprovider
test: build
	OPENBLAS_NUM_THREADS=1 $(BUILD)/noether-tests --jobs 2 --verbose
	OPENBLAS_NUM_THREADS=1 $(PYTEST) -q python/tests

# The test suite under AddressSanitizer and UndefinedBehaviorSanitizer (leaks included),
# in a build of its own; the tests also run the sanitized noether binary.
sanitize: setup
	test -f $(BUILD)-asan/build.ninja || meson setup $(BUILD)-asan -Db_sanitize=address,undefined \
	  -Db_lundef=false -Dbuildtype=debugoptimized
	ninja -C $(BUILD)-asan
	OPENBLAS_NUM_THREADS=1 ASAN_OPTIONS=detect_leaks=1 LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  $(BUILD)-asan/noether-tests --jobs 2 --verbose

# Every reader under libFuzzer for FUZZ_SECONDS (default 60) each; not part of make test.
fuzz: build
	NOETHER_EXTRA_PACKAGES="clang libclang-rt-14-dev" scripts/setup.sh
	scripts/fuzz.sh

# Benchmarks are programs, not tests: they print measured ratios and never fail on time.
# The machine's limit: the BLAS kernel a user gets (this workplace sets OPENBLAS_CORETYPE to
# the AVX2 one; the bench unsets it, and bench_blas.c still measures that kernel beside).
# BLIS (libblis-pthread-dev) only for the comparison: a build configured before it was
# installed is reconfigured to find it.
bench: setup $(BUILD)/build.ninja
	NOETHER_EXTRA_PACKAGES="python3-torch python3-numpy python3-scipy time libblis-pthread-dev" scripts/setup.sh
	ninja -C $(BUILD) && ninja -C $(BUILD) noether-bench noether-bench-gemm
	ninja -C $(BUILD) noether-bench-gemm-blis 2>/dev/null || \
	  (meson setup --reconfigure $(BUILD) >/dev/null && ninja -C $(BUILD) noether-bench-gemm-blis)
	env -u OPENBLAS_CORETYPE $(BUILD)/noether-bench $(CURDIR) $(BUILD)/bench.csv
	env -u OPENBLAS_CORETYPE PYTHONPATH=$(BUILD)/python /usr/bin/python3 bench/bench_python.py
	ninja -C $(BUILD) noether-bench-mpi
	@echo "strong scaling, Fashion-MNIST MLP (d = 269322), 4096 samples, blocks of 8 products, one BLAS thread a rank:"
	@echo "ranks,samples,samples_per_rank,d,k,s_per_block,s_allreduce,s_compute,MB_per_allreduce" | tee $(BUILD)/bench_mpi.csv
	for np in 1 2; do OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1 \
	  mpirun -np $$np $(BUILD)/noether-bench-mpi examples/fashion_mlp.json 4096 8 3 $(BUILD)/bench_mpi.csv || exit 1; done

# make install PREFIX=DIR (default /usr/local; DESTDIR=STAGE stages it for a package): the
# command, the shared and static library, noether.h, noether.pc, the manual page, the bash
# completion, examples and docs under share/.  What it installed is listed in
# BUILD/install-manifest.txt, which make uninstall removes, files and the folders it created
# (meson's own install log is overwritten by the test suite's staged installs).
install: build
	meson configure $(BUILD) --prefix=$(abspath $(PREFIX))
	meson install -C $(BUILD)
	cp $(BUILD)/meson-logs/install-log.txt $(BUILD)/install-manifest.txt

uninstall:
	scripts/uninstall.sh $(BUILD)/install-manifest.txt

# The versioned source tarball of the committed HEAD, BUILD/meson-dist/noether-VERSION.tar.xz;
# make distcheck also unpacks it in a temporary folder and runs its make test there (slow).
dist: setup $(BUILD)/build.ninja
	meson dist -C $(BUILD) --no-tests

distcheck: dist
	scripts/distcheck.sh $(BUILD)/meson-dist

clean:
	rm -rf $(BUILD) $(BUILD)-asan build-fuzz $(OUT)
