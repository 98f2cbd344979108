#!/usr/bin/env bash
# scale.sh - how cost grows with cluster size (issue 5): write latency at 3, 5 and 7 nodes, and
# the time an eventual write takes to reach every node at 3, 5, 7 and 9 nodes.
#
#   make bench-scale                # builds bin/, then runs this
#   scripts/scale.sh                # the same, with the binaries already in bin/
#
# For each size it starts a fresh local cluster with `kvctl cluster up --nodes N` in a temporary
# data directory (the fixed ports 7001-700N, 7101-710N and 7201-720N must be free: it refuses to
# start otherwise), measures on the quiet cluster first the spread (`kvctl bench spread`: one
# eventual write per round, to each node in turn, every node polled until it serves it), then
# strong and eventual puts against the leader, sequential and with 16 clients (`kvctl bench
# put`), and takes the cluster down and deletes its data, also on failure or Ctrl-C. At the end
# it prints one table and draws docs/scaling.svg from it (scripts/scalereport). It exits
# non-zero when a measurement failed or had errors. About two and a half minutes with the defaults.
#
# Knobs (environment):
#   SCALE_PUT_NODES="3 5 7" SCALE_SPREAD_NODES="3 5 7 9"   sizes of each kind of measurement
#   SCALE_DURATION=5s SCALE_WARMUP=1s    measured time and warm-up of each put row
#   SCALE_CLIENTS=16                     clients of the concurrent put rows
#   SCALE_ROUNDS=100 SCALE_SPREAD_DURATION=20s   spread: rounds, or time, whichever ends first
#   SCALE_POLL_INTERVAL=1ms              spread: rest between two polls of one node
#   SCALE_KEYS=10000 SCALE_VALUE_SIZE=128
#   SCALE_OUT=FILE                       also write the table to FILE and the raw results to FILE.jsonl
#   SCALE_SVG=FILE                       where the plot goes (default docs/scaling.svg; empty: none)
#   BIN=DIR                              where kvctl and kvd are (default: bin/ of this repository)
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${BIN:-$ROOT/bin}
PUT_NODES=${SCALE_PUT_NODES:-3 5 7}
SPREAD_NODES=${SCALE_SPREAD_NODES:-3 5 7 9}
DURATION=${SCALE_DURATION:-5s}
WARMUP=${SCALE_WARMUP:-1s}
CLIENTS=${SCALE_CLIENTS:-16}
ROUNDS=${SCALE_ROUNDS:-100}
SPREAD_DURATION=${SCALE_SPREAD_DURATION:-20s}
POLL_INTERVAL=${SCALE_POLL_INTERVAL:-1ms}
KEYS=${SCALE_KEYS:-10000}
VALUE_SIZE=${SCALE_VALUE_SIZE:-128}
OUT=${SCALE_OUT:-}
SVG=${SCALE_SVG-$ROOT/docs/scaling.svg}

die() { echo "scale.sh: $*" >&2; exit 1; }

[[ -x $BIN/kvctl && -x $BIN/kvd ]] || die "no $BIN/kvctl or $BIN/kvd: run make build (or make bench-scale)"
command -v go >/dev/null || die "the go tool is needed to build scripts/scalereport"
SIZES=$(printf '%s\n' $PUT_NODES $SPREAD_NODES | sort -n -u | paste -sd' ' -)
for n in $SIZES; do
	[[ $n =~ ^[1-9]$ ]] || die "cluster sizes must be 1 to 9 (ports 70N1..), not $n"
done
MAX=$(tr ' ' '\n' <<<"$SIZES" | sort -n | tail -1)

source "$ROOT/scripts/ports.sh"
ports=()
for ((i = 1; i <= MAX; i++)); do ports+=($((7000 + i)) $((7100 + i)) $((7200 + i))); done
busy=$(busy_ports "${ports[@]}")
if [[ -n $busy ]]; then
	die "port(s) $busy are in use; clusters of up to $MAX nodes need 7001-700$MAX, 7101-710$MAX and 7201-720$MAX.
  Stop what holds them first (a running local cluster: bin/kvctl cluster down [--data-dir DIR])."
fi

DATA=$(mktemp -d "${TMPDIR:-/tmp}/dialkv-scale.XXXXXX") || die "mktemp failed"
CLUSTER= # the data directory of the cluster running now, if any
cleanup() {
	trap - EXIT INT TERM
	if [[ -n $CLUSTER && -f $CLUSTER/cluster.json ]]; then
		echo "scale.sh: stopping the cluster" >&2
		"$KVCTL" cluster down --data-dir "$CLUSTER" >/dev/null 2>&1 || echo "scale.sh: cluster down failed: see $CLUSTER" >&2
	fi
	rm -rf "$DATA"
}
trap cleanup EXIT
trap 'echo "scale.sh: interrupted" >&2; exit 130' INT TERM

# Measure the binaries as they are now: a rebuild of bin/ during the run must not change them.
mkdir -p "$DATA/bin" && cp "$BIN/kvctl" "$BIN/kvd" "$DATA/bin/" || die "copying the binaries failed"
KVCTL=$DATA/bin/kvctl
(cd "$ROOT" && go build -tags hashicorpmetrics -o "$DATA/bin/scalereport" ./scripts/scalereport) || die "building scripts/scalereport failed"

RESULTS=$DATA/results.jsonl
: >"$RESULTS"
failed=0
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)
STARTED=$(date -u +%FT%TZ)
SECONDS=0

# measure NODES ROW CLIENTS kvctl-bench-args...: one measurement, appended to the results.
measure() {
	local nodes=$1 row=$2 clients=$3 out rc
	shift 3
	echo "scale.sh: --- $nodes nodes: $row ($clients clients)" >&2
	out=$("$KVCTL" bench "$@" --json 2> >(tee "$DATA/stderr" >&2))
	rc=$?
	# kvctl handles Ctrl-C itself and exits 1, and bash then takes the signal as handled: stop here.
	if ((rc != 0)) && grep -q "interrupted" "$DATA/stderr"; then
		echo "scale.sh: interrupted" >&2
		exit 130
	fi
	[[ $out == "{"* ]] || out=null
	printf '{"nodes":%d,"row":"%s","clients":%d,"exit":%d,"report":%s}\n' "$nodes" "$row" "$clients" "$rc" "$out" >>"$RESULTS"
	((rc == 0)) || failed=1
}

for n in $SIZES; do
	CLUSTER=$DATA/n$n
	echo "scale.sh: starting a $n-node cluster in $CLUSTER" >&2
	"$KVCTL" cluster up --nodes "$n" --data-dir "$CLUSTER" >&2 || die "cluster up --nodes $n failed (node logs were shown above)"
	ALL=$(for ((i = 1; i <= n; i++)); do printf '127.0.0.1:%d,' $((7000 + i)); done)
	ALL=${ALL%,}

	if [[ " $SPREAD_NODES " == *" $n "* ]]; then
		measure "$n" spread 0 spread --endpoints "$ALL" --rounds "$ROUNDS" --duration "$SPREAD_DURATION" \
			--warmup "$WARMUP" --poll-interval "$POLL_INTERVAL" --value-size "$VALUE_SIZE"
	fi
	if [[ " $PUT_NODES " == *" $n "* ]]; then
		# The client talks to its first endpoint: put the leader first, so every size measures the
		# same path (no forwarding hop) whichever node won the election.
		status=$("$KVCTL" status --json --endpoints "$ALL") || die "kvctl status failed"
		leader=$(grep -o '"leader":"[^"]*"' <<<"$status" | head -1 | cut -d'"' -f4)
		leader_http=$(grep -o "\"id\":\"$leader\",\"http\":\"[^\"]*\"" <<<"$status" | cut -d'"' -f8)
		[[ -n $leader && -n $leader_http ]] || die "cannot tell the leader from kvctl status: $status"
		at_leader=$leader_http,$(tr ',' '\n' <<<"$ALL" | grep -vx "$leader_http" | paste -sd, -)
		echo "scale.sh: leader $leader at $leader_http" >&2
		for level in strong eventual; do
			for clients in 1 "$CLIENTS"; do
				measure "$n" "$level put" "$clients" put --endpoints "$at_leader" --write-consistency "$level" \
					--clients "$clients" --duration "$DURATION" --warmup "$WARMUP" --keys "$KEYS" --value-size "$VALUE_SIZE"
			done
		done
	fi

	"$KVCTL" cluster down --data-dir "$CLUSTER" >&2 || echo "scale.sh: cluster down failed: see $CLUSTER" >&2
	rm -rf "$CLUSTER"
	CLUSTER=
done

COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet HEAD 2>/dev/null || echo '+dirty')
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)
{
	echo "# make bench-scale $STARTED: $(nproc) cores, $(awk '/MemTotal/{printf "%.1f GiB", $2/1048576}' /proc/meminfo), commit $COMMIT, ${SECONDS}s"
	echo "# local clusters of $SIZES nodes; puts: one shared client at the leader, $DURATION per row after $WARMUP warm-up, $KEYS keys, $VALUE_SIZE-byte values"
	echo "# spread: $ROUNDS rounds or $SPREAD_DURATION, one eventual write per round to each node in turn, every node polled every $POLL_INTERVAL;"
	echo "#   count = complete rounds, times from sending the write until the last node served it; errors = failed writes + incomplete rounds"
	echo "# load average before: $LOAD_BEFORE; after: $LOAD_AFTER"
	echo "# kvctl%: CPU the load generator used (100 = one core); busy%: the whole machine (100 = all cores); steal%: CPU the hypervisor gave other machines"
	"$DATA/bin/scalereport" -in "$RESULTS" ${SVG:+-svg "$SVG"} -caption "$STARTED, $(nproc) cores, commit $COMMIT; load average ${LOAD_BEFORE%% *} before, ${LOAD_AFTER%% *} after" ||
		echo "scale.sh: scalereport failed; the raw results were: $(cat "$RESULTS")"
} | tee ${OUT:+"$OUT"}
[[ -n $OUT ]] && cp "$RESULTS" "$OUT.jsonl"
[[ -n $SVG ]] && echo "scale.sh: plot written to $SVG" >&2
if ((failed)); then
	echo "scale.sh: some measurements failed or had errors (see above)" >&2
	exit 1
fi
