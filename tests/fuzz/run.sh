#!/bin/sh
# run.sh — run the libFuzzer harnesses built by `make fuzz-build`.
#
#   run.sh fuzz SECONDS BUILD NAME...    mutate for SECONDS each, one after the other
#   run.sh corpus 0 BUILD NAME...        run each committed seed once, no mutation
#
# BUILD holds the harnesses (BUILD/fuzz_NAME). Seeds come from
# tests/fuzz/corpus/NAME/, which is only read: `fuzz` works on a scratch copy,
# BUILD/corpus/NAME/, kept between runs so what one run found seeds the next.
# Crash inputs go to BUILD/artifacts/NAME/. Exits non-zero if any harness
# failed; the others still run.
set -u

mode=$1 seconds=$2 build=$3
shift 3
here=$(dirname "$0")
failed=""

for name in "$@"; do
    bin=$build/fuzz_$name
    seeds=$here/corpus/$name
    dict=$here/fuzz_$name.dict
    artifacts=$build/artifacts/$name/
    log=$build/fuzz_$name.log
    mkdir -p "$artifacts"
    set --
    [ -f "$dict" ] && set -- "-dict=$dict"

    if [ "$mode" = corpus ]; then
        # Each seed file named on the command line is run once, as it is.
        nseeds=$(find "$seeds" -type f | wc -l)
        if [ "$nseeds" -eq 0 ]; then
            echo "== fuzz-corpus $name: no seeds in $seeds" >&2
            failed="$failed $name"
            continue
        fi
        find "$seeds" -type f -print0 | xargs -0 "$bin" "$@" -artifact_prefix="$artifacts" \
            >"$log" 2>&1
        rc=$?
        ran=$(grep -c '^Executed ' "$log")
        if [ $rc -ne 0 ] || [ "$ran" -ne "$nseeds" ]; then
            echo "== fuzz-corpus $name: FAILED (exit $rc, $ran of $nseeds seeds run); $log:" >&2
            tail -n 40 "$log" >&2
            failed="$failed $name"
        else
            echo "== fuzz-corpus $name: $ran seeds ok"
        fi
    else
        scratch=$build/corpus/$name
        mkdir -p "$scratch"
        cp "$seeds"/* "$scratch"/
        echo "== fuzz $name: ${seconds}s (log $log)"
        "$bin" "$@" -max_total_time="$seconds" -max_len=1024 -timeout=10 \
            -artifact_prefix="$artifacts" -print_final_stats=1 "$scratch" >"$log" 2>&1
        rc=$?
        if [ $rc -ne 0 ]; then
            echo "== fuzz $name: FAILED (exit $rc); inputs in $artifacts; $log:" >&2
            tail -n 40 "$log" >&2
            failed="$failed $name"
        else
            grep -E '^(stat::number_of_executed_units|stat::new_units_added)' "$log" |
                sed 's/^stat::/   /'
            grep -E '^#[0-9]+.*DONE' "$log" | sed 's/^/   /'
        fi
    fi
done

if [ -n "$failed" ]; then
    echo "fuzz: failed:$failed" >&2
    exit 1
fi
