# ports.sh: sourced by bench.sh and scale.sh, which start local clusters on fixed ports.

# port_busy PORT: something listens on PORT (TCP, or UDP for gossip).
port_busy() {
	if command -v ss >/dev/null; then
		[[ -n $(ss -Hlntu "sport = :$1" 2>/dev/null) ]]
	else
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
	fi
}

# busy_ports PORT...: prints the ones something listens on, space-separated.
busy_ports() {
	local p busy=()
	for p in "$@"; do port_busy "$p" && busy+=("$p"); done
	echo "${busy[*]}"
}
