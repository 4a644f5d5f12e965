// Package splice is the relay fast path: a supernode pairs two plain TCP
// connections, one from each peer, and copies bytes between them with
// splice(2), while the peers run their own libp2p upgrade (TLS 1.3 or
// Noise, then yamux) end to end over the pair. The supernode forwards
// ciphertext it can neither read nor alter, and spends no CPU on crypto;
// circuit relay v2 stays for reservations, hole-punch coordination and as
// the fallback.
//
// # Protocol
//
// /parley/splice/1.0.0 (peer A → supernode S): A, holding a circuit to B
// through S, sends one Request naming B and closes its side. S checks that
// A and B both hold a live admission (presented a membership certificate
// on /parley/auth/1.0.0) and that B is connected to it, makes two one-time
// tokens (128 random bits each, one per side, valid TokenTTL, default
// 10 s), and offers the splice to B on /parley/splice/offer/1.0.0: one
// Offer (A's peer ID, B's token, the TCP address of the splice listener,
// the TTL), answered by one OfferAck. B accepts only an offer for a peer
// it holds a circuit to through S, with an address on the IP address it
// reaches S at. S then answers A with one Response: OK with A's token,
// the address and the TTL, or NOT_ADMITTED, NOT_CONNECTED, DECLINED,
// LIMITED (retry after retry_after_ms), BAD_REQUEST, UNAVAILABLE, each with
// a message for people. Frames are length-delimited protobuf (package
// internal/wire) of at most 512 bytes; each exchange has a 10 s deadline.
//
// The splice listener: each peer opens a TCP connection to the address
// and writes a 20-byte hello, "PSP1" and its token, within 5 s. A token is
// good once: it is forgotten when presented, whatever follows. It must
// come from an IP address its peer is connected to S from. An unknown,
// used, expired or misplaced token, or anything that is not a hello, is
// answered by closing the connection, no byte forwarded. When both sides
// of a pair arrived, S writes one byte, 0x01, to each and from then on
// copies bytes both ways until both directions end (a half-close is
// passed on; an error closes both).
//
// Over the paired connection A runs the host's outbound upgrade expecting
// B's peer ID, and B the inbound one expecting A's: the secure channel
// authenticates both ends, so S (or anyone holding a token) cannot stand
// in for either. The connection joins each host's swarm (see
// node.UpgradeSpliced) with the remote address
// /ip4/<S>/tcp/<port>/p2p/<S>/parley-splice, labelled "relayed via S"; the
// swarm prefers it to the circuit for new streams.
//
// # Limits and metrics
//
// Splices pending or open: at most PerPeer (16) involving one peer and
// 1024 in all; TCP connections from one IP address: 64.
// The server counts splices open and bytes spliced (Tracer); package
// relay folds them into the load it announces to the directory.
//
// # Clients
//
// A Client runs on every device. When its host opens a circuit to a peer
// (as the dialer) and the pair has no other connection, it asks the
// circuit's supernode for a splice, once hole punching to that peer is
// over (at most 30 s): a spliced connection ends hole
// punching, and a direct connection is better still. A NAT-imitating
// node, or one without an address to punch from, asks at once. A
// refusal, or a
// supernode without the service, leaves the circuit as it is. When a
// spliced connection dies, new streams take whatever connection is left
// (the circuit, or one through another supernode), and a new circuit
// through another supernode brings a new splice.
package splice

import logging "github.com/ipfs/go-log/v2"

var log = logging.Logger("parley/relay/splice")
