# The machine the benchmarks run on is shared: sourced by bench/*.sh to see how busy it is and to
# wait for a quiet moment before a measurement.

# Prints the machine's busy CPU over the next $1 seconds (default 2), in percent of one core
# (2 cores fully busy = 200), from /proc/stat: everything but idle and iowait.
machine_busy_pct() {
    local seconds=${1:-2} a b
    a=$(head -1 /proc/stat)
    sleep "$seconds"
    b=$(head -1 /proc/stat)
    awk -v a="$a" -v b="$b" -v s="$seconds" 'BEGIN {
        n = split(a, x); split(b, y); busy = 0
        for (i = 2; i <= 9 && i <= n; i++) if (i != 5 && i != 6) busy += y[i] - x[i]
        printf "%.0f\n", busy / s
    }'
}

# Waits until the machine is below $QUIET_PCT (default 25) percent busy, checking every 2 s for at
# most $QUIET_WAIT seconds (default 300); prints what it saw. Never fails: a measurement taken on a
# busy machine is still taken, and the report says how busy it was.
wait_for_quiet() {
    local limit=${QUIET_PCT:-25} wait=${QUIET_WAIT:-300} waited=0 busy
    while :; do
        busy=$(machine_busy_pct 2)
        if [ "$busy" -le "$limit" ]; then
            echo "   machine busy ${busy}% before the run (waited ${waited}s)"
            return 0
        fi
        waited=$((waited + 2))
        if [ "$waited" -ge "$wait" ]; then
            echo "   machine still busy ${busy}% after ${waited}s; measuring anyway"
            return 0
        fi
    done
}

# Prints what is being measured: the date, the cores, and the commit of $1 (the repository root),
# marked when src/ differs from it (other people edit the tree while benchmarks run), and, given
# a binary as $2, its modification time and the start of its SHA-256.
describe_build() {
    local root=$1 binary=${2:-} rev dirty=
    rev=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
    git -C "$root" diff --quiet HEAD -- src 2>/dev/null || dirty=" (+ uncommitted changes in src/)"
    if [ -n "$(git -C "$root" ls-files --others --exclude-standard -- src 2>/dev/null)" ]; then
        dirty="$dirty (+ untracked files in src/)"
    fi
    echo "== $(date -u +%FT%TZ), $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), tradewatch $rev$dirty"
    if [ -n "$binary" ]; then
        echo "   binary built $(date -u -r "$binary" +%FT%TZ), sha256 $(sha256sum "$binary" | cut -c1-12)"
    fi
}
