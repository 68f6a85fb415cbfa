#!/usr/bin/env bash
# NAT lab: two hosts behind real Linux NATs (network namespaces, iptables)
# and a STUN server (coturn) on a simulated internet, all on one machine.
#
#   lab.sh up NAME KIND_A KIND_B [--same-nat] [--ipv6] [--turn lt|secret]
#   lab.sh down NAME
#   lab.sh exec NAME NODE CMD...      NODE: a b ra rb inet
#   lab.sh loss NAME PERCENT [NODE..] random UDP loss (0 = off): on each NAT's WAN side, or
#                                     only on the nodes named: ra/rb (that NAT's WAN side),
#                                     a/b (everything that host sends and receives)
#   lab.sh udp-timeout NAME SECONDS   conntrack UDP timeouts in the NAT routers
#   lab.sh flush NAME                 forget every NAT mapping (conntrack -F)
#   lab.sh direct NAME off|on         drop (off) or pass again (on) the UDP the two hosts'
#                                     public sides send each other directly; what goes
#                                     through the STUN and TURN servers passes: a relayed
#                                     path comes up first, a direct one once it is back on
#   lab.sh turn NAME stop|start       kill the TURN coturn (a relay dying mid-session), or
#                                     start it again as it was (its allocations are gone)
#   lab.sh info NAME                  print the lab's KEY=VALUE description
#   lab.sh list                       names of the labs that exist (to clean up after a crash)
#
# KIND is one of: none (host directly on the internet), full-cone,
# port-restricted, symmetric. With --same-nat both hosts sit on one LAN
# behind one NAT of KIND_A (KIND_B must equal KIND_A or be "-"); a
# full-cone NAT then forwards unsolicited UDP to host a only.
#
# --ipv6 adds an IPv6 internet (2001:db8:ffff::/64 on the bridge) and a
# global IPv6 address for each host, with no NAT but a stateful ip6tables
# firewall in front of it (in its router, or in the host itself for kind
# none): only return traffic of flows the host started comes in. A second
# coturn on TURN_IP/TURN_IP6 answers STUN over IPv6.
#
# --turn lt|secret makes that second coturn a TURN relay (203.0.113.20 and,
# with --ipv6, 2001:db8:ffff::20, UDP 3478) with long-term credentials
# (TURN_USER/TURN_PASSWORD) or a shared secret for time-limited ones
# (TURN_SECRET, coturn's use-auth-secret). Without --turn, TURN_IP exists
# but nothing listens there: a TURN server that is down.
#
# Topology (every address is TEST-NET or 10.x and lives only in namespaces
# this script creates; nothing touches the root namespace's interfaces):
#
#   NAME-inet  bridge br0: 203.0.113.1/24 (gateway for the routers),
#              203.0.113.10 and 203.0.113.11 (coturn, UDP 3478), 198.51.100.1/24,
#              203.0.113.20 (the TURN coturn, with --turn)
#              IPv6: 2001:db8:ffff::1/64, ::20 (second coturn)
#   NAME-ra    wan 198.51.100.11/24 (default via 198.51.100.1), lan 10.1.0.1/24
#   NAME-rb    wan 198.51.100.12/24, lan 10.2.0.1/24
#   NAME-a     eth0 10.1.0.2/24 behind ra, or 198.51.100.21/24 for kind none
#   NAME-b     eth0 10.2.0.2/24 behind rb (10.1.0.3 with --same-nat), or
#              198.51.100.22/24 for kind none
#   IPv6       ra wan 2001:db8:ffff::11, lan 2001:db8:a::1/64; rb wan ::12,
#              lan 2001:db8:b::1/64; a 2001:db8:a::2 (kind none:
#              2001:db8:ffff::21), b 2001:db8:b::2 (2001:db8:a::3 with
#              --same-nat; kind none: 2001:db8:ffff::22)
#
# Interfaces are created directly inside their namespaces, so their names
# (br0, wan, lan, ha, hb, eth0) never clash between labs running at once.
# `up` prints the lab description as KEY=VALUE lines on stdout; state (coturn
# pid and log) lives in ${NATLAB_STATE:-/tmp/natlab}/NAME.
set -euo pipefail

STATE_ROOT=${NATLAB_STATE:-/tmp/natlab}
STUN1=203.0.113.10
STUN2=203.0.113.11
STUN_PORT=3478
TURN_IP=203.0.113.20
INET6=2001:db8:ffff
TURN_IP6=$INET6::20
TURN_USER=lab
TURN_PASSWORD=lab-relay-password
TURN_SECRET=lab-shared-secret

die() {
	echo "lab.sh: $*" >&2
	exit 1
}

usage() {
	sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
	exit 2
}

check_name() {
	[[ $1 =~ ^[a-z][a-z0-9]{0,11}$ ]] || die "lab name '$1' must be 1-12 characters of [a-z0-9], starting with a letter"
}

check_kind() {
	case $1 in
	none | full-cone | port-restricted | symmetric) ;;
	*) die "NAT kind '$1' must be one of: none full-cone port-restricted symmetric" ;;
	esac
}

need_tools() {
	local t
	for t in ip iptables ip6tables conntrack turnserver sysctl; do
		command -v "$t" >/dev/null || die "$t not found (apt-get install iproute2 iptables conntrack coturn procps)"
	done
	[ "$(id -u)" -eq 0 ] || die "must run as root (network namespaces and iptables)"
}

ns_exists() { [ -e "/run/netns/$1" ]; }

# nsx NS CMD...: run CMD inside namespace NS.
nsx() {
	local ns=$1
	shift
	ip netns exec "$ns" "$@"
}

# node_ns NAME NODE: the namespace of a lab node.
node_ns() {
	case $2 in
	a | b | ra | rb | inet) echo "$1-$2" ;;
	*) die "node '$2' must be one of: a b ra rb inet" ;;
	esac
}

# routers NAME: the NAT router namespaces that exist in this lab.
routers() {
	local r
	for r in ra rb; do
		if ns_exists "$1-$r"; then echo "$1-$r"; fi
	done
}

new_ns() {
	ip netns add "$1"
	nsx "$1" ip link set lo up
	# No duplicate address detection on the interfaces made in it: their
	# link-local addresses would stay tentative for a second or two, and
	# until then neighbour discovery cannot run, so a host's first IPv6
	# packets (its STUN requests) would go nowhere.
	if nsx "$1" test -e /proc/sys/net/ipv6/conf/default/accept_dad; then
		nsx "$1" sysctl -qw net.ipv6.conf.default.accept_dad=0 net.ipv6.conf.all.accept_dad=0
	fi
}

# setup_router NS WAN_IP LAN_CIDR KIND DNAT_TARGET WAN_IP6 LAN6_CIDR (the
# last two empty without --ipv6)
setup_router() {
	local ns=$1 wan_ip=$2 lan=$3 kind=$4 target=$5 wan6=$6 lan6=$7
	nsx "$ns" ip addr add "$wan_ip/24" dev wan
	nsx "$ns" ip link set wan up
	nsx "$ns" ip link add lan type bridge
	nsx "$ns" ip addr add "$lan" dev lan
	nsx "$ns" ip link set lan up
	nsx "$ns" ip route add default via 198.51.100.1
	nsx "$ns" sysctl -qw net.ipv4.ip_forward=1
	# Frames bridged between two hosts on the LAN must not cross iptables
	# (the loss rules are for the WAN side only).
	if nsx "$ns" test -e /proc/sys/net/bridge/bridge-nf-call-iptables; then
		nsx "$ns" sysctl -qw net.bridge.bridge-nf-call-iptables=0
	fi
	# Loss rules go into their own chain so `loss` can replace them, and
	# the rules of `direct` into theirs.
	nsx "$ns" iptables -N LABLOSS
	nsx "$ns" iptables -A FORWARD -j LABLOSS
	nsx "$ns" iptables -N LABDIRECT
	nsx "$ns" iptables -A FORWARD -j LABDIRECT
	nsx "$ns" iptables -A FORWARD -o wan -j ACCEPT
	nsx "$ns" iptables -A FORWARD -i wan -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
	case $kind in
	port-restricted)
		# Endpoint-independent mapping (the source port is kept when free),
		# inbound only from the exact address:port contacted.
		nsx "$ns" iptables -t nat -A POSTROUTING -o wan -j MASQUERADE
		;;
	symmetric)
		# A new, random mapped port for every destination.
		nsx "$ns" iptables -t nat -A POSTROUTING -o wan -j MASQUERADE --random-fully
		;;
	full-cone)
		# Port-preserving MASQUERADE out; every inbound UDP datagram goes to
		# the inside host on the same port, whoever sent it.
		nsx "$ns" iptables -t nat -A POSTROUTING -o wan -j MASQUERADE
		nsx "$ns" iptables -t nat -A PREROUTING -i wan -p udp -j DNAT --to-destination "$target"
		nsx "$ns" iptables -A FORWARD -i wan -m conntrack --ctstate DNAT -j ACCEPT
		;;
	esac
	nsx "$ns" iptables -A FORWARD -i wan -j DROP
	# Like any home router, drop unsolicited packets to the router itself.
	# This matters: an accepted one (even answered by ICMP port unreachable)
	# leaves a conntrack entry whose tuple then collides with the mapping the
	# inside host's reply needs, and MASQUERADE picks another port; an early
	# punch probe would turn the port-restricted NAT into a symmetric one.
	# A packet dropped in filter/INPUT never confirms its conntrack entry.
	nsx "$ns" iptables -A INPUT -i wan -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
	nsx "$ns" iptables -A INPUT -i wan -j DROP
	if [ -n "$wan6" ]; then
		# IPv6: routed, no NAT, and a stateful firewall like a home
		# router's: out anything, in only what belongs to a flow the
		# inside host started (ESTABLISHED: the host has sent from that
		# address:port to that address:port).
		nsx "$ns" ip -6 addr add "$wan6/64" dev wan nodad
		nsx "$ns" ip -6 addr add "$lan6" dev lan nodad
		nsx "$ns" ip -6 route add default via "$INET6::1"
		nsx "$ns" sysctl -qw net.ipv6.conf.all.forwarding=1
		if nsx "$ns" test -e /proc/sys/net/bridge/bridge-nf-call-ip6tables; then
			nsx "$ns" sysctl -qw net.bridge.bridge-nf-call-ip6tables=0
		fi
		nsx "$ns" ip6tables -A FORWARD -o wan -j ACCEPT
		nsx "$ns" ip6tables -A FORWARD -i wan -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
		nsx "$ns" ip6tables -A FORWARD -i wan -j DROP
	fi
}

# host_firewall6 NS: the stateful IPv6 firewall of a host on the internet
# itself (kind none): neighbour discovery and return traffic only.
host_firewall6() {
	local ns=$1
	nsx "$ns" ip6tables -A INPUT -i lo -j ACCEPT
	nsx "$ns" ip6tables -A INPUT -p ipv6-icmp -j ACCEPT
	nsx "$ns" ip6tables -A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
	nsx "$ns" ip6tables -A INPUT -j DROP
}

# add_host NAME SIDE KIND ROUTER_NS LAN_IP PUBLIC_IP LAN_IP6 PUBLIC_IP6:
# create host NAME-SIDE either behind ROUTER_NS (on its LAN bridge) or
# directly on the internet (the IPv6 addresses empty without --ipv6).
add_host() {
	local name=$1 side=$2 kind=$3 router=$4 lan_ip=$5 pub_ip=$6 lan_ip6=$7 pub_ip6=$8
	local ns=$name-$side
	new_ns "$ns"
	if [ "$kind" = none ]; then
		nsx "$name-inet" ip link add "h$side" type veth peer name eth0 netns "$ns"
		nsx "$name-inet" ip link set "h$side" master br0 up
		nsx "$ns" ip addr add "$pub_ip/24" dev eth0
		nsx "$ns" ip link set eth0 up
		nsx "$ns" ip route add default via 198.51.100.1
		echo "HOST_${side^^}_IP=$pub_ip"
		if [ -n "$pub_ip6" ]; then
			nsx "$ns" ip -6 addr add "$pub_ip6/64" dev eth0 nodad
			nsx "$ns" ip -6 route add default via "$INET6::1"
			host_firewall6 "$ns"
			echo "HOST_${side^^}_IP6=$pub_ip6"
		fi
	else
		nsx "$router" ip link add "h$side" type veth peer name eth0 netns "$ns"
		nsx "$router" ip link set "h$side" master lan up
		nsx "$ns" ip addr add "$lan_ip/24" dev eth0
		nsx "$ns" ip link set eth0 up
		nsx "$ns" ip route add default via "${lan_ip%.*}.1"
		echo "HOST_${side^^}_IP=$lan_ip"
		if [ -n "$lan_ip6" ]; then
			nsx "$ns" ip -6 addr add "$lan_ip6/64" dev eth0 nodad
			nsx "$ns" ip -6 route add default via "${lan_ip6%::*}::1"
			echo "HOST_${side^^}_IP6=$lan_ip6"
		fi
	fi
	echo "HOST_${side^^}_NS=$ns"
}

add_router() {
	local name=$1 r=$2 wan_ip=$3 lan=$4 kind=$5 target=$6 wan6=$7 lan6=$8
	new_ns "$name-$r"
	nsx "$name-inet" ip link add "$r" type veth peer name wan netns "$name-$r"
	nsx "$name-inet" ip link set "$r" master br0 up
	setup_router "$name-$r" "$wan_ip" "$lan" "$kind" "$target" "$wan6" "$lan6"
	if [ -n "$wan6" ]; then
		# The internet's route to the router's LAN prefix.
		nsx "$name-inet" ip -6 route add "${lan6%::*}::/64" via "$wan6"
	fi
	echo "ROUTER_${r^^}_NS=$name-$r"
	echo "ROUTER_${r^^}_IP=$wan_ip"
}

start_stun() {
	local name=$1 dir=$STATE_ROOT/$1 i
	mkdir -p "$dir"
	: >"$dir/turnserver.log"
	# -n: ignore /etc/turnserver.conf. Debian's copy sets no-rfc5780 and
	# syslog, which would make coturn refuse CHANGE-REQUEST and log nowhere.
	# Without it, two listener addresses give RFC 5780 behaviour discovery
	# (alternate address STUN2, alternate port STUN_PORT+1).
	# Anonymous --stun-only needs no users, but coturn still opens an SQLite
	# db: keep it in the lab's state dir so nothing under /var is touched.
	# Close every inherited descriptor above stderr, then exec, so coturn
	# holds no pipe of whoever called `up` (a caller reading our stdout to
	# EOF would otherwise wait for coturn to exit).
	(
		for fd in $(ls "/proc/$BASHPID/fd"); do
			if [ "$fd" -gt 2 ]; then eval "exec $fd>&-"; fi
		done
		exec ip netns exec "$name-inet" turnserver -n --stun-only --no-cli --no-tls --no-dtls --no-auth \
			-L "$STUN1" -L "$STUN2" --listening-port="$STUN_PORT" \
			--userdb="$dir/turndb" --pidfile="$dir/turnserver.pid" \
			--log-file="$dir/turnserver.log" --simple-log \
			--no-software-attribute
	) </dev/null >/dev/null 2>&1 &
	# Ready when both addresses listen on the STUN port and the alternate port.
	for i in $(seq 1 100); do
		# (coturn opens one socket per thread, so count distinct addr:port.)
		if [ "$(nsx "$name-inet" ss -Hlun "( sport = :$STUN_PORT or sport = :$((STUN_PORT + 1)) )" | awk '{print $4}' | sort -u | wc -l)" -ge 4 ]; then
			return 0
		fi
		sleep 0.05
	done
	cat "$dir/turnserver.log" >&2 || true
	die "coturn did not start listening on $STUN1 and $STUN2 (ports $STUN_PORT and $((STUN_PORT + 1))) within 5 s (log above)"
}

# start_turn NAME AUTH IPV6: the second coturn, on TURN_IP (and TURN_IP6):
# a TURN relay with AUTH lt (long-term user) or secret (use-auth-secret),
# or, with AUTH empty, a plain STUN server for IPv6 discovery.
start_turn() {
	local name=$1 auth=$2 ipv6=$3 dir=$STATE_ROOT/$1 i want=1
	local -a args=(-n --no-cli --no-tls --no-dtls --no-tcp --listening-port="$STUN_PORT" -L "$TURN_IP"
		--userdb="$dir/turn2db" --pidfile="$dir/turn2.pid" --log-file="$dir/turn2.log" --simple-log
		--no-software-attribute --no-rfc5780 --realm=natlab)
	if [ "$ipv6" = 1 ]; then
		args+=(-L "$TURN_IP6")
		want=2
	fi
	case $auth in
	lt) args+=(--relay-ip="$TURN_IP" --lt-cred-mech --user="$TURN_USER:$TURN_PASSWORD") ;;
	secret) args+=(--relay-ip="$TURN_IP" --use-auth-secret --static-auth-secret="$TURN_SECRET") ;;
	*) args+=(--stun-only --no-auth) ;;
	esac
	: >"$dir/turn2.log"
	# Kept for `turn start`.
	printf 'auth=%s\nipv6=%s\n' "$auth" "$ipv6" >"$dir/turn2.conf"
	(
		for fd in $(ls "/proc/$BASHPID/fd"); do
			if [ "$fd" -gt 2 ]; then eval "exec $fd>&-"; fi
		done
		exec ip netns exec "$name-inet" turnserver "${args[@]}"
	) </dev/null >/dev/null 2>&1 &
	for i in $(seq 1 100); do
		if [ "$(nsx "$name-inet" ss -Hlun "( sport = :$STUN_PORT )" | awk '{print $4}' | sort -u | grep -c -e "^$TURN_IP:" -e "^\[$TURN_IP6\]:" || true)" -ge "$want" ]; then
			return 0
		fi
		sleep 0.05
	done
	cat "$dir/turn2.log" >&2 || true
	die "the second coturn did not start listening on $TURN_IP (and $TURN_IP6) within 5 s (log above)"
}

cmd_up() {
	[ $# -ge 3 ] || usage
	local name=$1 ka=$2 kb=$3 same=0 ipv6=0 turn=""
	shift 3
	while [ $# -gt 0 ]; do
		case $1 in
		--same-nat) same=1 ;;
		--ipv6) ipv6=1 ;;
		--turn)
			[ $# -ge 2 ] || die "--turn needs lt or secret"
			turn=$2
			shift
			case $turn in lt | secret) ;; *) die "--turn '$turn' must be lt or secret" ;; esac
			;;
		*) die "unknown option '$1'" ;;
		esac
		shift
	done
	check_name "$name"
	need_tools
	check_kind "$ka"
	if [ "$same" = 1 ]; then
		[ "$kb" = - ] && kb=$ka
		[ "$kb" = "$ka" ] || die "--same-nat puts both hosts behind one NAT: KIND_B must be '-' or equal KIND_A"
		[ "$ka" != none ] || die "--same-nat needs a NAT kind other than none"
	fi
	check_kind "$kb"
	ns_exists "$name-inet" && die "lab '$name' already exists (lab.sh down $name)"

	# Whatever fails half-way is undone.
	UP_OK=0
	UP_NAME=$name
	trap 'if [ "${UP_OK:-0}" != 1 ]; then cmd_down "$UP_NAME" >/dev/null 2>&1 || true; fi' EXIT
	mkdir -p "$STATE_ROOT/$name"
	{
		echo "NAME=$name"
		echo "KIND_A=$ka"
		echo "KIND_B=$kb"
		echo "SAME_NAT=$same"
		echo "STUN1=$STUN1:$STUN_PORT"
		echo "STUN2=$STUN2:$STUN_PORT"
		echo "INET_NS=$name-inet"
		echo "TURN=$TURN_IP:$STUN_PORT"
		if [ "$ipv6" = 1 ]; then
			echo "STUN6=[$TURN_IP6]:$STUN_PORT"
			echo "TURN6=[$TURN_IP6]:$STUN_PORT"
		fi
		case $turn in
		lt) echo "TURN_USER=$TURN_USER" && echo "TURN_PASSWORD=$TURN_PASSWORD" ;;
		secret) echo "TURN_SECRET=$TURN_SECRET" ;;
		esac

		new_ns "$name-inet"
		nsx "$name-inet" ip link add br0 type bridge
		nsx "$name-inet" ip addr add 203.0.113.1/24 dev br0
		nsx "$name-inet" ip addr add "$STUN1/24" dev br0
		nsx "$name-inet" ip addr add "$STUN2/24" dev br0
		nsx "$name-inet" ip addr add "$TURN_IP/24" dev br0
		nsx "$name-inet" ip addr add 198.51.100.1/24 dev br0
		nsx "$name-inet" ip link set br0 up
		nsx "$name-inet" sysctl -qw net.ipv4.ip_forward=1
		if nsx "$name-inet" test -e /proc/sys/net/bridge/bridge-nf-call-iptables; then
			nsx "$name-inet" sysctl -qw net.bridge.bridge-nf-call-iptables=0
		fi
		local wa6="" la6="" wb6="" lb6="" ha6="" hb6="" pa6="" pb6=""
		if [ "$ipv6" = 1 ]; then
			nsx "$name-inet" ip -6 addr add "$INET6::1/64" dev br0 nodad
			nsx "$name-inet" ip -6 addr add "$TURN_IP6/64" dev br0 nodad
			nsx "$name-inet" sysctl -qw net.ipv6.conf.all.forwarding=1
			if nsx "$name-inet" test -e /proc/sys/net/bridge/bridge-nf-call-ip6tables; then
				nsx "$name-inet" sysctl -qw net.bridge.bridge-nf-call-ip6tables=0
			fi
			wa6=$INET6::11 la6=2001:db8:a::1/64 wb6=$INET6::12 lb6=2001:db8:b::1/64
			ha6=2001:db8:a::2 hb6=2001:db8:b::2 pa6=$INET6::21 pb6=$INET6::22
		fi

		if [ "$same" = 1 ]; then
			add_router "$name" ra 198.51.100.11 10.1.0.1/24 "$ka" 10.1.0.2 "$wa6" "$la6"
			add_host "$name" a "$ka" "$name-ra" 10.1.0.2 "" "$ha6" ""
			add_host "$name" b "$kb" "$name-ra" 10.1.0.3 "" "${ha6:+2001:db8:a::3}" ""
		else
			if [ "$ka" != none ]; then
				add_router "$name" ra 198.51.100.11 10.1.0.1/24 "$ka" 10.1.0.2 "$wa6" "$la6"
			fi
			add_host "$name" a "$ka" "$name-ra" 10.1.0.2 198.51.100.21 "$ha6" "$pa6"
			if [ "$kb" != none ]; then
				add_router "$name" rb 198.51.100.12 10.2.0.1/24 "$kb" 10.2.0.2 "$wb6" "$lb6"
			fi
			add_host "$name" b "$kb" "$name-rb" 10.2.0.2 198.51.100.22 "$hb6" "$pb6"
		fi
	} >"$STATE_ROOT/$name/info.tmp"
	start_stun "$name"
	if [ -n "$turn" ] || [ "$ipv6" = 1 ]; then
		start_turn "$name" "$turn" "$ipv6"
	fi
	mv "$STATE_ROOT/$name/info.tmp" "$STATE_ROOT/$name/info"
	UP_OK=1
	cat "$STATE_ROOT/$name/info"
}

cmd_down() {
	[ $# -eq 1 ] || usage
	local name=$1 ns node pid pids="" alive
	check_name "$name"
	# Every process still inside one of this lab's namespaces (coturn, peers)
	# belongs to the lab: stop it, then remove the namespaces, which takes
	# their interfaces with them.
	for node in a b ra rb inet; do
		ns=$name-$node
		if ns_exists "$ns"; then pids="$pids $(ip netns pids "$ns" 2>/dev/null || true)"; fi
	done
	# coturn takes 1.5 s to honour SIGTERM and has nothing worth flushing:
	# give everything 0.5 s, then SIGKILL what is left.
	for pid in $pids; do kill "$pid" 2>/dev/null || true; done
	for _ in $(seq 1 10); do
		alive=""
		for pid in $pids; do
			if kill -0 "$pid" 2>/dev/null; then alive="$alive $pid"; fi
		done
		pids=$alive
		[ -z "$pids" ] && break
		sleep 0.05
	done
	for pid in $pids; do kill -9 "$pid" 2>/dev/null || true; done
	for node in a b ra rb inet; do
		ns=$name-$node
		if ns_exists "$ns"; then ip netns del "$ns" 2>/dev/null || true; fi
	done
	rm -rf "${STATE_ROOT:?}/$name"
}

cmd_exec() {
	[ $# -ge 3 ] || usage
	local name=$1 node=$2
	shift 2
	check_name "$name"
	local ns
	ns=$(node_ns "$name" "$node")
	ns_exists "$ns" || die "lab '$name' has no node '$node'"
	exec ip netns exec "$ns" "$@"
}

cmd_loss() {
	[ $# -ge 2 ] || usage
	local name=$1 pct=$2 r p ns
	shift 2
	check_name "$name"
	[[ $pct =~ ^[0-9]{1,2}$|^100$ ]] || die "loss '$pct' must be a whole percentage 0-100"
	p=$(printf '0.%02d' "$pct")
	[ "$pct" = 100 ] && p=1
	local nodes=("$@")
	[ ${#nodes[@]} -gt 0 ] || nodes=(ra rb)
	for r in "${nodes[@]}"; do
		case $r in
		ra | rb)
			ns="$name-$r"
			ns_exists "$ns" || continue # a lab without that NAT (kind none, --same-nat)
			nsx "$ns" iptables -F LABLOSS
			if [ "$pct" != 0 ]; then
				# Each datagram crosses the WAN side of a NAT once in each direction.
				nsx "$ns" iptables -A LABLOSS -i wan -p udp -m statistic --mode random --probability "$p" -j DROP
				nsx "$ns" iptables -A LABLOSS -o wan -p udp -m statistic --mode random --probability "$p" -j DROP
			fi
			;;
		a | b)
			# A lossy host link: every UDP datagram the host sends or
			# receives (its LAN peer's too, which never reaches a NAT).
			ns="$name-$r"
			ns_exists "$ns" || die "lab '$name' has no node '$r'"
			nsx "$ns" iptables -N LABLOSS 2>/dev/null || nsx "$ns" iptables -F LABLOSS
			nsx "$ns" iptables -C INPUT -j LABLOSS 2>/dev/null || nsx "$ns" iptables -A INPUT -j LABLOSS
			nsx "$ns" iptables -C OUTPUT -j LABLOSS 2>/dev/null || nsx "$ns" iptables -A OUTPUT -j LABLOSS
			if [ "$pct" != 0 ]; then
				nsx "$ns" iptables -A LABLOSS -p udp -m statistic --mode random --probability "$p" -j DROP
			fi
			;;
		*) die "loss: node '$r' must be ra, rb, a or b" ;;
		esac
	done
}

cmd_udp_timeout() {
	[ $# -eq 2 ] || usage
	local name=$1 secs=$2 r
	check_name "$name"
	[[ $secs =~ ^[1-9][0-9]{0,5}$ ]] || die "timeout '$secs' must be a whole number of seconds >= 1"
	for r in $(routers "$name"); do
		# _stream applies once a flow has seen replies (an established punch).
		nsx "$r" sysctl -qw net.netfilter.nf_conntrack_udp_timeout="$secs" \
			net.netfilter.nf_conntrack_udp_timeout_stream="$secs"
	done
}

cmd_flush() {
	[ $# -eq 1 ] || usage
	local r
	check_name "$1"
	for r in $(routers "$1"); do
		nsx "$r" conntrack -F >/dev/null 2>&1 || true
	done
}

cmd_direct() {
	[ $# -eq 2 ] || usage
	local name=$1 mode=$2 r
	check_name "$name"
	case $mode in off | on) ;; *) die "direct: '$mode' must be off or on" ;; esac
	for r in $(routers "$name"); do
		nsx "$r" iptables -F LABDIRECT
		if [ "$mode" = off ]; then
			# The hosts' public sides (NAT WAN addresses, hosts without a
			# NAT) are all in 198.51.100.0/24; the servers are not.
			nsx "$r" iptables -A LABDIRECT -p udp -d 198.51.100.0/24 -j DROP
			nsx "$r" iptables -A LABDIRECT -p udp -s 198.51.100.0/24 -j DROP
		fi
	done
}

# turn_pids NAME: the pids of the TURN coturn (the one whose pid file is
# turn2.pid) in the lab's internet namespace.
turn_pids() {
	local pid
	for pid in $(ip netns pids "$1-inet" 2>/dev/null || true); do
		if tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- '--pidfile=[^ ]*/turn2.pid'; then
			echo "$pid"
		fi
	done
}

cmd_turn() {
	[ $# -eq 2 ] || usage
	local name=$1 mode=$2 dir=$STATE_ROOT/$1 pid auth="" ipv6=0 i
	check_name "$name"
	[ -f "$dir/turn2.conf" ] || die "lab '$name' has no TURN coturn (up with --turn or --ipv6)"
	case $mode in
	stop)
		# SIGKILL: it dies as a crashed server would, telling nobody.
		for pid in $(turn_pids "$name"); do kill -9 "$pid" 2>/dev/null || true; done
		for i in $(seq 1 100); do
			[ -z "$(turn_pids "$name")" ] && return 0
			sleep 0.05
		done
		die "the TURN coturn of lab '$name' did not stop"
		;;
	start)
		[ -z "$(turn_pids "$name")" ] || die "the TURN coturn of lab '$name' is running"
		auth=$(sed -n 's/^auth=//p' "$dir/turn2.conf")
		ipv6=$(sed -n 's/^ipv6=//p' "$dir/turn2.conf")
		start_turn "$name" "$auth" "$ipv6"
		;;
	*) die "turn: '$mode' must be stop or start" ;;
	esac
}

cmd_info() {
	[ $# -eq 1 ] || usage
	check_name "$1"
	cat "$STATE_ROOT/$1/info" 2>/dev/null || die "lab '$1' is not up"
}

cmd_list() {
	[ $# -eq 0 ] || usage
	local f
	for f in /run/netns/*-inet; do
		[ -e "$f" ] || continue
		f=${f##*/}
		echo "${f%-inet}"
	done
}

[ $# -ge 1 ] || usage
sub=$1
shift
case $sub in
up) cmd_up "$@" ;;
down) cmd_down "$@" ;;
exec) cmd_exec "$@" ;;
loss) cmd_loss "$@" ;;
udp-timeout) cmd_udp_timeout "$@" ;;
flush) cmd_flush "$@" ;;
direct) cmd_direct "$@" ;;
turn) cmd_turn "$@" ;;
info) cmd_info "$@" ;;
list) cmd_list "$@" ;;
-h | --help | help) usage ;;
*) die "unknown subcommand '$sub' (up down exec loss udp-timeout flush direct turn info list)" ;;
esac
