#!/bin/sh
# Instructions per scope, counted by callgrind: exact and repeatable, where the timed
# table of scope_overhead is noisy. Meson registers it as the 'scope_instructions'
# benchmark when valgrind is installed; by hand:
#
#     bench/instructions.sh BUILDDIR/bench/scope_overhead [N] [--annotate]
#
# It runs `scope_overhead --instructions N` (N iterations of every variant, default
# 100000) under `valgrind --tool=callgrind` and prints instructions (Ir) per iteration.
# When scope_overhead was built with <valgrind/callgrind.h>, one run marks each variant
# with a callgrind dump; otherwise each variant runs alone with N and 2N iterations and
# the difference is divided by N, which cancels start-up and exit.
# --annotate also prints callgrind_annotate's per-function split of variant (b).
# Exits 77 (skipped) when valgrind is missing.
set -eu

usage() {
    echo "usage: $0 PATH/TO/scope_overhead [N] [--annotate]" >&2
    exit 2
}

exe=
n=100000
annotate=0
for arg in "$@"; do
    case $arg in
    --annotate) annotate=1 ;;
    -h | --help) usage ;;
    *[!0-9]*) [ -z "$exe" ] || usage; exe=$arg ;;
    *) n=$arg ;;
    esac
done
[ -n "$exe" ] && [ -x "$exe" ] || usage
[ "$n" -ge 1 ] || usage

if ! command -v valgrind >/dev/null 2>&1; then
    echo "valgrind not found: skipped"
    exit 77
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

# Total Ir of one callgrind output file.
ir_of() {
    awk '/^summary:/ { print $2; exit }' "$1"
}

# callgrind FILE ARGS...: run the benchmark under callgrind, output to $tmp/FILE.
callgrind() {
    out=$1
    shift
    valgrind --tool=callgrind --compress-strings=no --compress-pos=no \
        --callgrind-out-file="$tmp/$out" "$exe" "$@" \
        >"$tmp/$out.stdout" 2>"$tmp/$out.stderr" || {
        echo "callgrind run failed:" >&2
        cat "$tmp/$out.stderr" >&2
        exit 1
    }
}

variants="empty floor scope stopped disabled sib1 sib2 sib8 sib100 sib1000 depth3 recurse"

callgrind all --instructions "$n"
if grep -q '^callgrind-requests: yes' "$tmp/all.stdout"; then
    method="one run, a callgrind dump after each variant"
    for v in $variants; do
        f=$(grep -l "^desc: Trigger: Client Request: bench:$v\$" "$tmp"/all.* 2>/dev/null |
            head -n 1)
        [ -n "$f" ] || { echo "no callgrind dump for $v" >&2; exit 1; }
        echo "$v $(ir_of "$f")" >>"$tmp/ir"
    done
else
    method="two runs per variant (N and 2N iterations), difference / N"
    for v in $variants; do
        callgrind "$v.1" --instructions "$n" --only "$v"
        callgrind "$v.2" --instructions $((2 * n)) --only "$v"
        echo "$v $(($(ir_of "$tmp/$v.2") - $(ir_of "$tmp/$v.1")))" >>"$tmp/ir"
    done
fi

echo "## scope_instructions"
echo
echo "valgrind --tool=callgrind, N = $n iterations per variant; $method."
echo
awk -v n="$n" '
    { ir[$1] = $2 / n }
    END {
        label["empty"] = "empty loop iteration"
        label["floor"] = "(a) floor: 2 × timestamp + add into a __thread"
        label["scope"] = "(b) PROBE_SCOPE, recording"
        label["stopped"] = "(c) PROBE_SCOPE, stopped"
        label["disabled"] = "(d) PROBE_SCOPE, -DPROBE_DISABLE"
        label["sib1"] = "(g) K=1 siblings: a child scope, with its call"
        label["sib2"] = "(g) K=2 siblings: a child scope, with its call"
        label["sib8"] = "(g) K=8 siblings: a child scope, with its call"
        label["sib100"] = "(g) K=100 siblings: a child scope, with its call"
        label["sib1000"] = "(g) K=1000 siblings: a child scope, with its call"
        label["depth3"] = "(i) depth 3: three nested scopes (per iteration)"
        label["recurse"] = "(j) recursion 3 deep: three scopes and calls (per iteration)"
        nv = split("floor empty scope stopped disabled sib1 sib2 sib8 sib100 sib1000 depth3 recurse", order, " ")
        print "| variant | Ir per iteration | minus the empty loop | × floor (Ir) |"
        print "|---|---:|---:|---:|"
        for (i = 1; i <= nv; i++) {
            v = order[i]
            x = ir["floor"] > 0 ? ir[v] / ir["floor"] : 0
            printf "| %s | %.2f | %.2f | %.2f |\n", label[v], ir[v], ir[v] - ir["empty"], x
        }
    }' "$tmp/ir"

if [ "$annotate" = 1 ]; then
    f=$(grep -l '^desc: Trigger: Client Request: bench:scope$' "$tmp"/all.* 2>/dev/null |
        head -n 1 || true)
    if [ -z "$f" ]; then
        echo
        echo "--annotate needs a scope_overhead built with <valgrind/callgrind.h>"
        exit 0
    fi
    echo
    echo "Where the instructions of (b) go: self Ir per function, per iteration."
    echo
    echo "| function | object | Ir per iteration |"
    echo "|---|---|---:|"
    # Self cost: every cost line under fn=, except the one after calls= (that one is
    # the inclusive cost of the call). Needs --compress-strings=no (see callgrind()).
    awk -v n="$n" '
        /^ob=/ { ob = substr($0, 4); sub(/.*\//, "", ob); next }
        /^fn=/ { fn = substr($0, 4) " | " ob; next }
        /^calls=/ { skip = 1; next }
        /^[0-9+-]/ { if (skip) { skip = 0; next } self[fn] += $2; next }
        END { for (f in self) if (self[f] / n >= 0.01) printf "| %s | %.2f |\n", f, self[f] / n }
    ' "$f" | sort -t '|' -k 4 -rn
fi
