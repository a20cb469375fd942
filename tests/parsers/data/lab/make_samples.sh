#!/bin/sh
# Regenerates the lab samples in this directory (needs root, iproute2, bridge-utils,
# net-tools, ethtool, busybox). Everything happens in a private mount namespace with its
# own /run/netns, so the namespaces (prefix ndlparse-) are invisible to the rest of the
# host and vanish when this script exits; the root namespace is never touched.
#   usage: unshare -m sh make_samples.sh OUTDIR
set -eu
OUT=$(realpath "${1:-.}")
if [ -z "${NDLPARSE_INNER:-}" ]; then
    exec unshare -m env NDLPARSE_INNER=1 sh "$0" "$OUT"
fi
mount --make-rprivate /
mkdir -p /run/netns
mount -t tmpfs ndlparse /run/netns
A=ndlparse-a B=ndlparse-b C=ndlparse-c D=ndlparse-d
for ns in $A $B $C $D; do ip netns add $ns; done
a() { ip -n $A "$@"; }

# A is a flannel-vxlan node, B a pod on it, C the underlay router, D a far network.
a link set lo up; ip -n $B link set lo up; ip -n $D link set lo up
a link add eth0 type veth peer name uplink netns $C
a link set eth0 address 02:00:00:00:00:10 mtu 1500 up
ip -n $C link set uplink address 02:00:00:00:00:01 up
ip -n $C addr add 192.168.50.1/24 dev uplink
ip -n $C addr add fd00:50::1/64 dev uplink nodad
a addr add 192.168.50.10/24 dev eth0
a addr add fd00:50::10/64 dev eth0 nodad
a link add cni0 type bridge
a link set cni0 address 02:00:00:00:01:01 mtu 1450 up
a addr add 10.244.1.1/24 dev cni0
a addr add fd00:244:1::1/64 dev cni0 nodad
a link add vethpod1 type veth peer name eth0 netns $B
a link set vethpod1 address 02:00:00:00:01:02 master cni0 up
ip -n $B link set eth0 address 02:00:00:00:02:02 mtu 1450 up
ip -n $B addr add 10.244.1.2/24 dev eth0
ip -n $B route add default via 10.244.1.1 dev eth0
a link add flannel.1 type vxlan id 1 dstport 8472 nolearning local 192.168.50.10 dev eth0
a link set flannel.1 address 02:00:00:00:0f:01 mtu 1450 up
a addr add 10.244.1.0/32 dev flannel.1
a neigh add 10.244.2.0 dev flannel.1 lladdr 02:00:00:00:0f:02 nud permanent
a neigh add 10.244.3.0 dev flannel.1 lladdr 02:00:00:00:0f:03 nud permanent
a neigh add 192.168.50.11 dev eth0 lladdr 02:00:00:00:00:11 nud reachable
a neigh add 192.168.50.12 dev eth0 lladdr 02:00:00:00:00:12 nud stale
a neigh add fd00:50::11 dev eth0 lladdr 02:00:00:00:00:11 nud permanent router
bridge -n $A fdb append 02:00:00:00:0f:02 dev flannel.1 dst 192.168.50.11 self permanent
bridge -n $A fdb append 02:00:00:00:0f:03 dev flannel.1 dst 192.168.50.12 self permanent
bridge -n $A fdb append 00:00:00:00:00:00 dev flannel.1 dst 192.168.50.13 self permanent
bridge -n $A fdb add 02:00:00:00:02:99 dev vethpod1 master static
a route add 10.244.2.0/24 via 10.244.2.0 dev flannel.1 onlink
a route add 10.244.3.0/24 via 10.244.3.0 dev flannel.1 onlink
a route add default via 192.168.50.1 dev eth0 proto static metric 100
a route add blackhole 10.99.0.0/16
a route add unreachable 10.98.0.0/16 metric 7
a route add prohibit 10.97.0.0/16
a route add throw 10.96.0.0/16 table 100
a route add 10.95.0.0/16 table 100 nexthop via 192.168.50.11 dev eth0 weight 1 \
    nexthop via 192.168.50.12 dev eth0 weight 3
a route add 10.94.0.0/16 via 192.168.50.1 dev eth0 mtu lock 1400 advmss 1360 rtt 10ms \
    initcwnd 10 src 192.168.50.10
a route add 10.93.0.0/16 via 192.168.50.1 dev eth0 table 200 proto bird scope global metric 20
a route add 10.92.0.0/16 dev eth0 scope link table main
a route add 10.90.0.0/24 via 192.168.50.1 dev eth0 realm 5
a route add 10.89.0.0/24 via 192.168.50.1 dev eth0 tos 0x10
a route add local 10.88.0.1 dev lo table 100
a route add 10.87.0.0/24 dev eth0 quickack 1 features ecn congctl bbr
a nexthop add id 10 via 192.168.50.1 dev eth0
a nexthop add id 11 via 192.168.50.11 dev eth0
a nexthop add id 12 group 10/11
a route add 10.86.0.0/24 nhid 12
a route add 10.85.0.0/24 nhid 10
a route add 10.84.0.0/24 encap ip id 100 dst 192.168.50.99 dev flannel.1
a route add 10.82.0.0/24 dev cni0
a route add multicast 224.1.0.0/16 dev eth0 table 100
a route add anycast 10.81.0.1 dev eth0 table local
a route add broadcast 10.80.0.255 dev eth0 table local
a -6 route add 2001:db8:1::/64 via fd00:50::1 dev eth0 metric 1024 pref high
a -6 route add 2001:db8:2::/64 dev eth0 expires 3600
a -6 route add blackhole 2001:db8:dead::/48
a -6 route add unreachable 2001:db8:beef::/48
a -6 route add prohibit 2001:db8:ba0::/48
a -6 route add 2001:db8:3::/64 nexthop via fd00:50::11 dev eth0 weight 1 \
    nexthop via fd00:50::12 dev eth0 weight 2
a -6 route add 2001:db8:4::/64 via fd00:50::1 dev eth0 mtu 1280 table 100
a -6 route add default via fd00:50::1 dev eth0 proto ra metric 1024
a rule add from 10.244.1.0/24 table 100 priority 100
a rule add fwmark 0x10/0xff lookup 200 priority 200
a rule add to 10.96.0.0/16 iif cni0 lookup main suppress_prefixlength 0 priority 300
a rule add not from all table 100 priority 400
a -6 rule add from 2001:db8::/32 table 100 priority 100
# linkdown: a veth whose peer stays down
a link add vdown type veth peer name vdown-p
a link set vdown address 02:00:00:00:07:01; a link set vdown-p address 02:00:00:00:07:02
a link set vdown up
a addr add 10.79.0.1/24 dev vdown
a route add 10.78.0.0/24 via 10.79.0.2 dev vdown
# dead nexthop: one multipath leg on a device we then take down
a link add vdead type veth peer name vdead-p
a link set vdead address 02:00:00:00:07:03; a link set vdead-p address 02:00:00:00:07:04
a link set vdead up; a link set vdead-p up
a addr add 10.77.0.1/24 dev vdead
a route add 10.76.0.0/24 nexthop via 10.77.0.2 dev vdead weight 1 \
    nexthop via 192.168.50.11 dev eth0 weight 1
a link set vdead down
# PMTU exceptions (route cache): C forwards to D over a 1280-byte link
ip -n $C link add tod type veth peer name fromc netns $D
ip -n $C link set tod address 02:00:00:00:06:01 mtu 1280 up
ip -n $D link set fromc address 02:00:00:00:06:02 mtu 1280 up
ip -n $C addr add fd00:60::1/64 dev tod nodad
ip -n $D addr add fd00:60::2/64 dev fromc nodad
ip -n $C addr add 192.168.60.1/24 dev tod
ip -n $D addr add 192.168.60.2/24 dev fromc
ip -n $D -6 route add default via fd00:60::1
ip -n $D route add default via 192.168.60.1
ip netns exec $C sysctl -qw net.ipv6.conf.all.forwarding=1 net.ipv4.ip_forward=1
a route add 192.168.60.0/24 via 192.168.50.1 dev eth0
a -6 route add fd00:60::/64 via fd00:50::1 dev eth0
sleep 1
ip netns exec $A ping -q -c 2 -W 1 -s 1400 fd00:60::2 >/dev/null || true
ip netns exec $A ping -q -c 1 -W 1 192.168.60.2 >/dev/null || true
# the first oversized ping learns the PMTU, the second one leaves the cache entry
ip netns exec $A ping -q -c 1 -W 1 -s 1400 -M do 192.168.60.2 >/dev/null 2>&1 || true
ip netns exec $A ping -q -c 1 -W 1 -s 1400 -M do 192.168.60.2 >/dev/null 2>&1 || true
ip netns exec $A ping -q -c 1 -W 1 192.168.50.1 >/dev/null || true

# Outputs, byte for byte as the tools print them.
cap() { # cap NS FILE CMD...
    cap_ns=$1 cap_file=$2; shift 2
    ip netns exec "$cap_ns" "$@" >"$OUT/$cap_file" 2>&1 || true
}
for ns in a b; do
    n=ndlparse-$ns
    cap $n ${ns}__ip-d-j-link.json ip -d -j link
    cap $n ${ns}__ip-j-addr.json ip -j addr
    cap $n ${ns}__ip-d-j-route-show-table-all.json ip -d -j route show table all
    cap $n ${ns}__ip-d-link.txt ip -d link
    cap $n ${ns}__ip-addr.txt ip addr
    cap $n ${ns}__ip-route-show-table-all.txt ip route show table all
done
cap $A a__ip-d-j-6-route-show-table-all.json ip -d -j -6 route show table all
cap $A a__ip-j-rule.json ip -j rule
cap $A a__ip-j-6-rule.json ip -j -6 rule
cap $A a__ip-j-neigh.json ip -j neigh
cap $A a__bridge-d-j-fdb-show.json bridge -d -j fdb show
cap $A a__bridge-d-j-link.json bridge -d -j link
cap $A a__bridge-d-link.txt bridge -d link
cap $A a__ip-rule.txt ip rule
cap $A a__ip-d-s-j-link.json ip -d -s -j link
cap $A a__ip-d-s-link.txt ip -d -s link
cap $A a__ip-6-route-show-table-all.txt ip -6 route show table all
cap $A a__ip-d-route-show-table-all.txt ip -d route show table all
cap $A a__ip-route-show-cache.txt ip route show cache
cap $A a__ip-6-route-show-cache.txt ip -6 route show cache
cap $A a__ip-neigh.txt ip neigh
cap $A a__bridge-fdb-show.txt bridge fdb show
cap $A a__ethtool-i_vethpod1.txt ethtool -i vethpod1
cap $A a__ethtool-k_vethpod1.txt ethtool -k vethpod1
cap $A a__ethtool_vethpod1.txt ethtool vethpod1
cap $A a__ethtool-i_flannel.1.txt ethtool -i flannel.1
cap $A a__sysctl-a.txt sysctl -a
cap $A a__sysctl-errors.txt sysctl net.ipv4.ip_forward net.ipv4.conf.flannel/1.forwarding no.such.key net.bridge.bridge-nf-call-iptables
cap $A a__busybox-ip-addr.txt busybox ip addr
cap $A a__busybox-ip-link.txt busybox ip link
cap $A a__busybox-ip-route.txt busybox ip route
cap $A a__busybox-ip-neigh.txt busybox ip neigh
for ns in $A $B $C $D; do ip netns del $ns; done
