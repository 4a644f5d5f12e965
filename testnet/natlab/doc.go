// Package natlab builds, inside Linux network namespaces, a small internet
// with real NAT routers, runs real processes in it, and removes everything
// afterwards, also after a failure. It is a library for tests that need
// real NAT behaviour (hole punching, relays) rather than an imitation.
//
// # Topology
//
//	                 internet namespace <ID>-inet: a router, 203.0.113.1
//	   FORWARD: drop non-public sources; queue packets of delayed links
//	      |                     |                          |
//	  veth, /32 route      veth, /32 route            veth, /32 route
//	      |                     |                          |
//	+-----------+        +-----------+         +------------------------+
//	|  public   |        |  public   |         | NAT 203.0.113.4        |
//	|  host a   |        |  host b   |         | MASQUERADE [--random-  |
//	|.113.2/24  |        |.113.3/24  |         |  fully] out of its WAN |
//	+-----------+        +-----------+         | bridge 10.1.0.1/24     |
//	                                           +------------------------+
//	                                              |                 |
//	                                        +-----------+     +-----------+
//	                                        |  host c   |     |  host d   |
//	                                        | 10.1.0.2  |     | 10.1.0.3  |
//	                                        +-----------+     +-----------+
//
// The internet namespace is a router, not a bridge: each public host and
// NAT has a veth pair to it, an address of the lab's subnet (Config.Subnet,
// 203.0.113.0/24 by default) without an on-link route, and a default route
// via the internet's address. So every packet between two public addresses
// is forwarded by the internet namespace's IP stack and crosses its FORWARD
// chain, where link delays are applied, and where packets with a source
// outside the subnet (a leaking NAT) are dropped.
//
// A NAT router has a public address like a host and a LAN, 10.<n>.0.0/24
// for the lab's nth NAT, on a bridge; its hosts have the LAN's next
// addresses and the NAT as gateway. Hosts on one LAN reach each other
// directly. There is no hairpinning: a host cannot reach its own NAT's
// public address and port to get to a neighbour.
//
// Everything a lab makes is named with its ID, "pl" and six hex digits:
// namespaces <ID>-inet and <ID>-<name>, interfaces <ID>-i<k> (internet
// side), <ID>-p<k> (public side of a host or NAT), <ID>-h<k> and <ID>-l<k>
// (a host's LAN link), <ID>-lan (a NAT's bridge). Veth pairs are created
// with each end directly in its namespace; the lab adds nothing (no
// interface, address, route or rule) to the root namespace, so no traffic
// leaves the lab. /run/parley-natlab/<ID> records the owning process; Sweep
// (called by New) removes leftovers of labs whose owner died.
//
// # NAT types
//
// Cone is MASQUERADE: the mapping is endpoint-independent and keeps the
// host's source port when it is free (a host bound to 4001 appears as
// <NAT>:4001 to every destination). Symmetric is MASQUERADE --random-fully:
// each new destination gets a new random port. Both filter by address and
// port: only packets of connections the host started (conntrack
// ESTABLISHED or RELATED) get in, whether forwarded or to the NAT itself;
// anything else is dropped silently, so an unsolicited connection attempt
// times out. Packets conntrack calls INVALID are dropped too, since they
// would leave un-NATed with a private source.
//
// # Delay
//
// The kernel has no sch_netem, so delays are applied in user space: the
// internet's FORWARD chain jumps to a chain that sends every packet
// entering or leaving a delayed link to NFQUEUE 0 of the internet
// namespace. This process reads that queue (github.com/florianl/go-nfqueue,
// metadata only, no payload copy, GSO packets whole) from a netlink socket
// opened in the internet namespace, holds each packet for the sum of the
// delays of the link it came in on and the link it goes out on, then
// accepts it. Packets of one path leave in the order they came. So a
// packet from a host with a 20 ms link to a host with a 20 ms link waits
// 40 ms, and their round trip takes 80 ms; links of hosts behind a NAT
// share the NAT's delay. Links without a delay are not queued at all. A
// delay is never shorter than set, and late by a fraction of a millisecond
// (this process waking up; a timerfd, not a Go timer, which could be a
// millisecond late): a 20+20 ms round trip measures about 81 ms. The queue
// holds at most 32768 packets; beyond that the kernel drops, like a full
// router buffer. Delays change at run time with Host.SetDelay and
// NAT.SetDelay.
//
// # Processes and sockets
//
// Host.Start runs a long-running process in a host's namespace, with its
// output in Lab.Dir; Host.Run runs a command to completion. Processes are
// started from a thread that entered the namespace (setns), in a process
// group of their own and with SIGKILL as parent-death signal; Close kills
// their groups and then every process left in the lab's namespaces.
// Unlike under `ip netns exec`, processes share the root's mount
// namespace: /sys and /etc are the root's (Go's net package and go-libp2p
// list interfaces over netlink, which shows the namespace's own), and the
// lab has no DNS. Host.Listen, ListenPacket, DialContext and Do open
// sockets of this process inside a host's namespace, for tests that talk
// to a daemon's API on 127.0.0.1 there, or that echo and observe addresses
// in-process.
//
// A lab needs root, iproute2 (ip) and iptables; Available says what is
// missing. go-multiaddr treats the documentation ranges, 203.0.113.0/24
// among them, as unroutable: a go-libp2p node in the lab needs a lab-only
// switch to see its addresses as public.
package natlab

import logging "github.com/ipfs/go-log/v2"

var log = logging.Logger("parley/natlab")
