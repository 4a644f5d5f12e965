// Package node builds the libp2p host that every Parley role runs on: the
// desktop client, the headless supernode, the rendezvous server and the DHT
// CLI.
//
// A node has a persistent Ed25519 identity (a 0600 key file created on first
// run), listens on TCP and QUIC, secures connections with Noise or TLS 1.3,
// multiplexes with yamux, runs under an explicit resource manager, and
// enables identify, AutoNAT v2, DCUtR hole punching and the circuit relay v2
// client.
//
// Reachability is published on the host's event bus as
// event.EvtLocalReachabilityChanged; Node.Reachability returns the latest
// value. Node.PathTo says how a connected peer is reached: direct,
// holepunched, or relayed via a supernode.
//
// For the loopback testnet a node can imitate a NAT (WithNATImitation): it
// declares itself privately reachable and refuses every inbound connection
// that does not arrive through a relay, as a NAT drops unsolicited packets.
package node

import logging "github.com/ipfs/go-log/v2"

var log = logging.Logger("parley/node")
