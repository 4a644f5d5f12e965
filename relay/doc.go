// Package relay is the supernode role and its client side.
//
// A Supernode runs a circuit relay v2 service on a publicly reachable node
// and keeps itself listed in the rendezvous server's supernode directory by
// announcing its addresses and load (reservations, circuits, bytes relayed)
// at a third of the entry's lifetime. Its default limits let relayed
// connections carry real chat and file streams: no per-circuit duration or
// data cap (go-libp2p's defaults cut a relayed connection after 2 minutes or
// 128 KiB) and 64 KiB copy buffers instead of 2 KiB.
//
// A Reserver runs on a client that is not publicly reachable. It keeps
// reservations on a number of supernodes (two by default, for failover),
// renews them before they expire, replaces a supernode whose connection
// drops, and advertises the resulting circuit addresses
// (<supernode addr>/p2p/<supernode>/p2p-circuit) through the node and a
// callback that updates presence.
package relay

import logging "github.com/ipfs/go-log/v2"

var log = logging.Logger("parley/relay")
