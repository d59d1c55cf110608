#!/bin/sh
# same_outputs.sh NOETHER DIR [BASELINE_DIR]: runs the noether binary NOETHER on the built-in
# default and every spec in examples/ (info, info --json, symmetries --json, check --json,
# spectrum --json --top 5 --bottom 5, grad --json) and writes each stdout and exit code into
# DIR, wall-clock fields removed ("seconds", "gradients" per second, the "timings" object);
# with BASELINE_DIR it then compares DIR with it byte for byte (exit 1 on any difference).
# Used to show that a refactoring changed no output: run it once on the old binary, once on
# the new one against the first directory.
set -u
BIN=$1 DIR=$2 BASE=${3:-}
cd "$(dirname "$0")/.."
export OPENBLAS_NUM_THREADS=1
mkdir -p "$DIR"
n=0
for spec in "" examples/*.json; do
    name=$(basename "${spec:-default}" .json)
    for cmd in "info" "info --json" "symmetries --json" "check --json" "spectrum --json --top 5 --bottom 5" "grad --json"; do
        out="$DIR/$name.$(echo "$cmd" | tr -c 'a-z0-9\n' '_')"
        # shellcheck disable=SC2086
        "$BIN" $cmd $spec >"$out.raw" 2>"$out.err"
        rc=$?
        sed -e '/^\t*"seconds":/d' -e '/^\t*"gradients":/d' -e '/^\t*"timings":/,/^\t*}/d' "$out.raw" >"$out.out"
        echo "exit $rc" >>"$out.out"
        rm -f "$out.raw"
        n=$((n + 1))
    done
done
echo "$n outputs in $DIR"
[ -z "$BASE" ] && exit 0
if diff -r "$BASE" "$DIR" >"$DIR.diff"; then
    echo "all $n outputs identical to $BASE"
else
    echo "outputs differ from $BASE:"; head -40 "$DIR.diff"; exit 1
fi
