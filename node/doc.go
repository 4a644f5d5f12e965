// Package node builds the libp2p host that every Parley role runs on: the
// desktop client, the headless supernode, the rendezvous server and the DHT
// CLI.
//
// A node has a persistent Ed25519 identity (a 0600 key file created on first
// run), listens on TCP and QUIC, secures connections with TLS 1.3
// (preferred: AES-GCM is the cheaper cipher on CPUs with AES instructions)
// or Noise, multiplexes with yamux, runs under an explicit resource
// manager, and enables identify, AutoNAT v2, DCUtR hole punching and the
// circuit relay v2 client.
//
// Reachability is published on the host's event bus as
// event.EvtLocalReachabilityChanged; Node.Reachability returns the latest
// value, and Node.PublicAddrs the addresses AutoNAT v2 confirmed reachable
// from the internet. Node.PathTo says how a connected peer is reached:
// direct, holepunched (a relayed connection DCUtR upgraded), or relayed
// via a supernode.
//
// Hole punching: the node runs go-libp2p's DCUtR service itself, fed with
// its public addresses (listen, mapped and those peers observed it at), and
// adds a watchdog for a start-up race: a peer accepts DCUtR only once it
// knows a public address of its own, and go-libp2p does not try again when
// the first attempt is refused. The watchdog retries a relayed-only
// connection, a bounded number of times, once both sides are ready.
//
// A supernode that stopped answering can be marked down (Node.MarkDown):
// until then it is not dialled, nor dialled through as a relay, so a dial
// to one of its clients goes through their other supernodes at once.
//
// Binaries built with the natlab build tag treat the documentation ranges
// the NAT lab runs on (198.51.100.0/24, 203.0.113.0/24) as public; normal
// builds never do.
//
// For the loopback testnet a node can imitate a NAT (WithNATImitation): it
// declares itself privately reachable and refuses every inbound connection
// that does not arrive through a relay, as a NAT drops unsolicited packets.
package node

import logging "github.com/ipfs/go-log/v2"

var log = logging.Logger("parley/node")
