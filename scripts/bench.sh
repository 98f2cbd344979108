#!/usr/bin/env bash
# bench.sh - the standard load matrix (issue 5) against a fresh local 3-node cluster.
#
#   make bench                      # builds bin/, then runs this
#   scripts/bench.sh                # the same, with the binaries already in bin/
#
# It starts a new cluster with `kvctl cluster up` in a temporary data directory (on ports
# 7001-7003, 7101-7103 and 7201-7203, which must be free: it refuses otherwise; BENCH_BASE_PORT=B
# moves them to B+1..B+3, B+101..B+103 and B+201..B+203, e.g. beside a running local cluster),
# runs each row
# of the matrix with `kvctl bench`, prints one table (ops/s, p50, p99, errors per row), and
# tears the cluster down and deletes its data, also on failure or Ctrl-C. It exits non-zero
# when any row failed or had errors. About two and a half minutes with the defaults.
#
# Every row runs against the leader (the client's first endpoint), except the last two, which
# run against a follower: strong puts forwarded to the leader, strong reads with a read index
# fetched from it.
#
# Knobs (environment):
#   BENCH_DURATION=10s BENCH_WARMUP=2s   measured time and warm-up of each row
#   BENCH_CLIENTS=64                     clients of the concurrent rows
#   BENCH_KEYS=10000 BENCH_VALUE_SIZE=128
#   BENCH_OUT=FILE                       also write the table, and each row's JSON report, to FILE
#   BIN=DIR                              where kvctl and kvd are (default: bin/ of this repository)
#
#   scripts/bench.sh anchors [strong|eventual]
#
# runs the shared side-by-side harness (ANCHORS, default ../shared/bench/run-anchors.sh next to
# this repository: physical limits, raw hashicorp/raft, etcd, Redis, a bare Go HTTP server) with
# a fresh 3-node dialkv as its store (ports 17001-17003, 17101-17103, 17201-17203), through the
# same load generator. Its "put" workload writes at the level given (default strong); get-lin
# reads strong, get-ser reads eventual. For eventual puts, PHASES="etcd memkv store" keeps the
# run short while still measuring etcd and the bare server in the same run. Results land in
# RUN_DIR (default: a run-dialkv-LEVEL folder next to run-anchors.sh). ANCHOR_RUNS=N repeats the
# whole harness N times (the machine is noisy: one run moves by tens of per cent) and then prints
# each row's median and range over the N runs (docs/performance.md section 10 used 3). Last, it
# prints issue 5's targets that the half can speak to, per run and on the median
# (scripts/anchorverdict; `go run ./scripts/anchorverdict RUN.jsonl...` over both halves' history
# files gives the whole verdict). Each row runs 10 s or 100,000 operations, whichever is first
# (ANCHOR_DURATION, ANCHOR_OPS: passed to the harness as its DURATION and OPS).
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${BIN:-$ROOT/bin}
KVCTL=$BIN/kvctl
DURATION=${BENCH_DURATION:-10s}
WARMUP=${BENCH_WARMUP:-2s}
CLIENTS=${BENCH_CLIENTS:-64}
KEYS=${BENCH_KEYS:-10000}
VALUE_SIZE=${BENCH_VALUE_SIZE:-128}
OUT=${BENCH_OUT:-}
BASE=${BENCH_BASE_PORT:-7000}
[[ $BASE =~ ^[0-9]+$ ]] && ((BASE >= 1024 && BASE + 203 <= 65535)) || { echo "bench.sh: BENCH_BASE_PORT must be 1024-65332, not $BASE" >&2; exit 2; }
PORTS=()
for off in 0 100 200; do for i in 1 2 3; do PORTS+=($((BASE + off + i))); done; done

die() { echo "bench.sh: $*" >&2; exit 1; }

[[ -x $KVCTL && -x $BIN/kvd ]] || die "no $KVCTL or $BIN/kvd: run make build (or make bench)"

# anchors LEVEL: the shared harness with dialkv as the store.
anchors() {
	local level=$1 harness=${ANCHORS:-$ROOT/../shared/bench/run-anchors.sh} i j peers cmds="" rc
	case $level in strong | eventual) ;; *) die "anchors: level must be strong or eventual, not $level" ;; esac
	[[ -f $harness ]] || die "anchors: no $harness (set ANCHORS=path/to/run-anchors.sh)"
	ANCHORS_DIR=$(mktemp -d "${TMPDIR:-/tmp}/dialkv-anchors.XXXXXX") || die "mktemp failed"
	local dir=$ANCHORS_DIR
	trap 'rm -rf "$ANCHORS_DIR"' EXIT
	cp "$BIN/kvd" "$dir/kvd" # a rebuild of bin/ during the run must not change what is measured
	for i in 1 2 3; do
		peers=$(for j in 1 2 3; do [[ $j == "$i" ]] || printf '127.0.0.1:1720%s,' "$j"; done)
		cmds+="$dir/kvd --id n$i --http 127.0.0.1:1700$i --raft 127.0.0.1:1710$i --data-dir $dir/n$i"
		cmds+=" --bootstrap n1=127.0.0.1:17101,n2=127.0.0.1:17102,n3=127.0.0.1:17103 --gossip 127.0.0.1:1720$i"
		cmds+=" --gossip-profile local --gossip-join ${peers%,} --cluster-label anchors --log-level warn"$'\n'
	done
	export STORE_NAME="dialkv($level put)" STORE_NODE_CMDS="$cmds"
	export STORE_ENDPOINTS=127.0.0.1:17001,127.0.0.1:17002,127.0.0.1:17003
	export STORE_READY_CMD='for p in 17001 17002 17003; do curl -fs http://127.0.0.1:$p/v1/health/ready || exit 1; done'
	export STORE_WORKLOADS=${STORE_WORKLOADS:-put-seq@leader,put-seq@follower,put,get-lin-seq@leader,get-lin,get-ser}
	# One line: the harness evals it.
	STORE_LOADGEN_ARGS="-http-put 'PUT http://{ep}/v1/kv/{key}?consistency=$level'"
	STORE_LOADGEN_ARGS+=" -http-get-lin 'GET http://{ep}/v1/kv/{key}?consistency=strong'"
	STORE_LOADGEN_ARGS+=" -http-get-ser 'GET http://{ep}/v1/kv/{key}?consistency=eventual'"
	STORE_LOADGEN_ARGS+=" -http-role 'GET http://{ep}/v1/status?local=true'"
	export STORE_LOADGEN_ARGS
	export RUN_DIR=${RUN_DIR:-$(dirname "$harness")/run-dialkv-$level}
	# Every row runs 10 s or 100,000 operations, whichever comes first (ANCHOR_DURATION,
	# ANCHOR_OPS; this script's own DURATION is the matrix's). With the harness's own caps
	# (20,000 operations or 30 s) a read row at 20-35k ops/s lasted under a second: two such
	# rows on the same code differed by 60 %, two 10-second rows by 8 % (docs/performance.md
	# section 12). Now the shortest rows run about 3 s.
	export OPS=${ANCHOR_OPS:-100000} DURATION=${ANCHOR_DURATION:-10s}
	local runs=${ANCHOR_RUNS:-1} run before after
	[[ $runs =~ ^[1-9][0-9]*$ ]] || die "ANCHOR_RUNS must be a positive count, not '$runs'"
	before=$(ls "$RUN_DIR"/history/*.jsonl 2>/dev/null | sort)
	rc=0
	for ((run = 1; run <= runs; run++)); do
		((runs > 1)) && echo "bench.sh: anchors run $run of $runs" >&2
		rm -rf "$dir"/n[0-9]* # every run starts the store empty, as it starts etcd
		bash "$harness" || {
			rc=$?
			break
		}
	done
	after=$(ls "$RUN_DIR"/history/*.jsonl 2>/dev/null | sort)
	if ((rc == 0 && runs > 1)); then
		echo
		echo "Medians over the $runs runs (ratios: take them within each run, from the tables above):"
		# shellcheck disable=SC2046 # one argument per new history file
		"$(dirname "$harness")/bin/phys" summarize $(comm -13 <(echo "$before") <(echo "$after")) || rc=$?
	fi
	if ((rc == 0)); then
		# The targets this half can speak to, per run and on the median (scripts/anchorverdict; give
		# it both halves' history files for the whole verdict).
		echo
		# shellcheck disable=SC2046 # one argument per new history file
		(cd "$ROOT" && go run -tags hashicorpmetrics ./scripts/anchorverdict $(comm -13 <(echo "$before") <(echo "$after"))) || rc=$?
	fi
	rm -rf "$dir"
	exit $rc
}
case ${1:-matrix} in
matrix) ;;
anchors) anchors "${2:-strong}" ;;
*) die "usage: scripts/bench.sh [anchors [strong|eventual]]" ;;
esac

source "$ROOT/scripts/ports.sh"
busy=$(busy_ports "${PORTS[@]}")
if [[ -n $busy ]]; then
	die "port(s) $busy are in use; the cluster needs $((BASE + 1))-$((BASE + 3)), $((BASE + 101))-$((BASE + 103)) and $((BASE + 201))-$((BASE + 203)).
  Stop what holds them first (a running local cluster: bin/kvctl cluster down [--data-dir DIR]),
  or move the bench's cluster: BENCH_BASE_PORT=27000 make bench"
fi

DATA=$(mktemp -d "${TMPDIR:-/tmp}/dialkv-bench.XXXXXX") || die "mktemp failed"
CLUSTER=$DATA/cluster
cleanup() {
	trap - EXIT INT TERM
	if [[ -f $CLUSTER/cluster.json ]]; then
		echo "bench.sh: stopping the cluster" >&2
		"$KVCTL" cluster down --data-dir "$CLUSTER" >/dev/null 2>&1 || echo "bench.sh: cluster down failed: see $CLUSTER" >&2
	fi
	rm -rf "$DATA"
}
trap cleanup EXIT
trap 'echo "bench.sh: interrupted" >&2; exit 130' INT TERM

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)
echo "bench.sh: starting a 3-node cluster in $CLUSTER" >&2
"$KVCTL" cluster up --nodes 3 --base-port "$BASE" --data-dir "$CLUSTER" >&2 || die "cluster up failed (node logs were shown above)"
ENDPOINTS=127.0.0.1:$((BASE + 1)),127.0.0.1:$((BASE + 2)),127.0.0.1:$((BASE + 3))

# The client talks to the first endpoint it is given. Which node leads is up to the election, so
# the rows put the leader first (the strong path without a forwarding hop, and the same path in
# every run); the "via follower" rows put a follower first, to show what forwarding costs.
status=$("$KVCTL" status --json --endpoints "$ENDPOINTS") || die "kvctl status failed"
LEADER=$(grep -o '"leader":"[^"]*"' <<<"$status" | head -1 | cut -d'"' -f4)
LEADER_HTTP=$(grep -o "\"id\":\"$LEADER\",\"http\":\"[^\"]*\"" <<<"$status" | cut -d'"' -f8)
[[ -n $LEADER && -n $LEADER_HTTP ]] || die "cannot tell the leader from kvctl status: $status"
FOLLOWERS=$(tr ',' '\n' <<<"$ENDPOINTS" | grep -vx "$LEADER_HTTP" | paste -sd, -)
AT_LEADER=$LEADER_HTTP,$FOLLOWERS
AT_FOLLOWER=$FOLLOWERS,$LEADER_HTTP
echo "bench.sh: leader $LEADER at $LEADER_HTTP" >&2

# field JSON NAME: the number NAME of the report's "total" object; top JSON NAME: a top-level one.
field() { sed -n 's/.*"total":{\([^}]*\)}.*/\1/p' <<<"$1" | grep -o "\"$2\":[-0-9.e+]*" | head -1 | cut -d: -f2; }
top() { grep -o "\"$2\":[-0-9.e+]*" <<<"$1" | head -1 | cut -d: -f2; }

# wait_backlog: wait (up to 30 s) until no node holds uncommitted eventual writes, so that the
# committer's catching up does not leak into the next row.
wait_backlog() {
	local i st
	for ((i = 0; i < 60; i++)); do
		st=$("$KVCTL" status --json --endpoints "$AT_LEADER" 2>/dev/null) || { sleep 0.5; continue; }
		[[ -z $(grep -o '"backlog":[1-9][0-9]*' <<<"$st") ]] && return 0
		sleep 0.5
	done
	echo "bench.sh: eventual backlog not drained after 30s; going on" >&2
}

ROWS=()   # formatted table lines
STOLEN=() # rows during which the hypervisor took 5 % or more of the machine's CPU
failed=0
# row NAME CLIENTS WORKLOAD FLAGS... (against the leader, or a follower when $AT is set so)
AT=$AT_LEADER
row() {
	local name=$1 clients=$2 workload=$3 out rc
	shift 3
	echo "bench.sh: --- $name ($clients clients)" >&2
	out=$("$KVCTL" bench "$workload" --endpoints "$AT" --json -- --clients "$clients" --duration "$DURATION" \
		--warmup "$WARMUP" --keys "$KEYS" --value-size "$VALUE_SIZE" "$@" 2> >(tee "$DATA/stderr" >&2))
	rc=$?
	# kvctl handles Ctrl-C itself and exits 1, and bash then takes the signal as handled: stop here.
	if ((rc != 0)) && grep -q "interrupted" "$DATA/stderr"; then
		echo "bench.sh: interrupted" >&2
		exit 130
	fi
	[[ -n $OUT ]] && echo "$name: $out" >>"$OUT.jsonl"
	if [[ -z $(field "$out" ops) ]]; then
		ROWS+=("$(printf '%-24s %7s  %s' "$name" "$clients" "FAILED (kvctl bench exit $rc)")")
		failed=1
		return
	fi
	local steal
	steal=$(top "$out" steal_pct)
	ROWS+=("$(printf '%-24s %7s %10.0f %9.2f %9.2f %8s %8.0f %8.0f %8.0f' "$name" "$clients" "$(field "$out" ops_per_s)" \
		"$(field "$out" p50_ms)" "$(field "$out" p99_ms)" "$(field "$out" errors)" \
		"$(top "$out" loadgen_cpu_pct)" "$(top "$out" machine_busy_pct)" "${steal:--1}")")
	# The hypervisor running other machines on our CPUs (steal) makes a row say more about the
	# host than about dialkv.
	if [[ -n $steal ]] && awk -v s="$steal" 'BEGIN { exit !(s >= 5) }'; then
		STOLEN+=("$name")
	fi
	((rc == 0)) || failed=1
}

row "strong put" "$CLIENTS" put --write-consistency strong
row "strong get" "$CLIENTS" get --read-consistency strong # writes every key first
row "strong put sequential" 1 put --write-consistency strong
row "eventual put" "$CLIENTS" put --write-consistency eventual
wait_backlog
row "eventual get" "$CLIENTS" get --read-consistency eventual --populate=false
row "bounded get" "$CLIENTS" get --read-consistency bounded --populate=false
row "mixed 90/10 strong" "$CLIENTS" mixed --read-ratio 0.9 --populate=false
AT=$AT_FOLLOWER
row "strong put via follower" "$CLIENTS" put --write-consistency strong
row "strong get on follower" "$CLIENTS" get --read-consistency strong --populate=false

{
	echo "# make bench $(date -u +%FT%TZ): $(nproc) cores, $(awk '/MemTotal/{printf "%.1f GiB", $2/1048576}' /proc/meminfo)," \
		"commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet 2>/dev/null || echo '+dirty')"
	echo "# 3 local nodes; one shared client at the leader ($LEADER_HTTP), the last two rows at a follower"
	echo "# $DURATION per row after $WARMUP warm-up; $KEYS keys, $VALUE_SIZE-byte values"
	echo "# load average before: $LOAD_BEFORE; after: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)"
	echo "# kvctl%: CPU the load generator used (100 = one core); busy%: the whole machine (100 = all cores);"
	echo "#   steal%: CPU the hypervisor gave to other machines (100 = all cores; -1 unknown)"
	printf '%-24s %7s %10s %9s %9s %8s %8s %8s %8s\n' "row" "clients" "ops/s" "p50 ms" "p99 ms" "errors" "kvctl%" "busy%" "steal%"
	printf '%s\n' "${ROWS[@]}"
	if ((${#STOLEN[@]})); then
		echo "# WARNING: the hypervisor took 5 % or more of the CPU during: $(IFS=,; echo "${STOLEN[*]}" | sed 's/,/, /g')."
		echo "#   Those rows measured the host's other tenants as much as dialkv: compare them with no other run."
	fi
} | tee ${OUT:+"$OUT"}
if ((failed)); then
	echo "bench.sh: some rows failed or had errors (see above)" >&2
	exit 1
fi
