#!/bin/bash
# Checks that BFD works on the OVS userspace datapath and that a port whose BFD session
# fails loses its OpenFlow LIVE state (what FAST_FAILOVER buckets watch), with a silent
# failure: carrier stays up while one side stops delivering (a token bucket smaller
# than any frame).
# Uses its own bridges bfdA/bfdB and veths, removed at the end.  Run as root.
set -u
cleanup() { ovs-vsctl --if-exists del-br bfdA; ovs-vsctl --if-exists del-br bfdB; ip link del bfdA-1 2>/dev/null; ip link del bfdA-2 2>/dev/null; }
cleanup
ip link add bfdA-1 type veth peer name bfdB-1
ip link add bfdA-2 type veth peer name bfdB-2
for i in bfdA-1 bfdB-1 bfdA-2 bfdB-2; do ip link set $i up; done
for b in A B; do
  ovs-vsctl add-br bfd$b -- set bridge bfd$b datapath_type=netdev protocols=OpenFlow13 fail-mode=secure
  ovs-vsctl add-port bfd$b bfd$b-1 -- set interface bfd$b-1 ofport_request=1
  ovs-vsctl add-port bfd$b bfd$b-2 -- set interface bfd$b-2 ofport_request=2
done
for i in bfdA-1 bfdB-1; do ovs-vsctl set interface $i bfd:enable=true bfd:min_tx=100 bfd:min_rx=100 bfd:decay_min_rx=0; done
ovs-ofctl -O OpenFlow13 add-group bfdA 'group_id=1,type=ff,bucket=watch_port:1,actions=output:1,bucket=watch_port:2,actions=output:2'
sleep 3
echo "--- BFD after 3 s:"; ovs-appctl bfd/show bfdA-1 | grep -E "State|Forwarding|Detect"
echo "--- silent failure: bfdB-1 stops delivering (carrier stays up)"
tc qdisc add dev bfdB-1 root tbf rate 8bit burst 32 limit 1
t0=$(date +%s.%N)
for k in $(seq 1 40); do
  if ovs-appctl bfd/show bfdA-1 | grep -q "Forwarding: false"; then t1=$(date +%s.%N); echo "BFD forwarding=false after $(echo "$t1 - $t0" | bc) s"; break; fi
  sleep 0.05
done
ovs-appctl bfd/show bfdA-1 | grep -E "State|Forwarding|Diagnostic" | head -4
echo "--- FF group liveness view:"; ovs-ofctl -O OpenFlow13 dump-group-stats bfdA; ovs-appctl ofproto/list-tunnels >/dev/null 2>&1
ovs-ofctl -O OpenFlow13 dump-ports-desc bfdA | grep -A2 "1(bfdA-1)" | head -3
tc qdisc del dev bfdB-1 root
cleanup
