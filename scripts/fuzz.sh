#!/usr/bin/env bash
# make fuzz: each reader under libFuzzer (with ASan and UBSan) for FUZZ_SECONDS (default 60)
# each, starting from fuzz/corpus/<target>/ (new inputs go to build-fuzz/corpus/<target>/).
# A crash leaves its input in build-fuzz/ and stops with a non-zero status: turn it into a
# regression test.  Prints, per target, the executions reached.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-60}
out=build-fuzz
mkdir -p "$out"
ninja -C build src/builtin_data.c >/dev/null 2>&1 || ninja -C build >/dev/null
builtin=$(find build -name builtin_data.c | head -n 1)
cflags="-std=gnu11 -O1 -g -fsanitize=fuzzer,address,undefined -Iinclude $(pkg-config --cflags openblas lapacke arpack libcjson)"
libs="$(pkg-config --libs openblas lapacke arpack libcjson zlib) -lm"
for target in spec npy csv idx checkpoint; do
  upper=$(echo "$target" | tr a-z A-Z)
  clang $cflags -DTARGET_$upper fuzz/fuzz_readers.c $(find src -name '*.c' -not -path 'src/cli/*' -not -path 'src/report/*') "$builtin" \
    $libs -o "$out/fuzz_$target"
  mkdir -p "$out/corpus/$target"
  echo "fuzz: $target for ${seconds}s"
  "$out/fuzz_$target" -max_total_time="$seconds" -artifact_prefix="$out/crash-$target-" \
    "$out/corpus/$target" "fuzz/corpus/$target" 2>&1 | grep -E "^#[0-9]+.*DONE|ERROR|SUMMARY" | tail -n 3
done
