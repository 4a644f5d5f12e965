// Package relay is the supernode role and its client side.
//
// # Supernodes
//
// A Supernode runs a circuit relay v2 service on a publicly reachable node.
// It grants reservations and circuits only to admitted peers: a client
// first presents its membership certificate (package rendezvous/cert) on
// AuthProtocol, and the relay's ACL then allows it to reserve a slot, or
// to open a circuit to a peer that holds one, until the certificate
// expires. A peer whose certificate expired without a renewal (a revoked
// device) loses its slot. Beyond admission the relay enforces Limits:
// slots in all and per IP address, circuits per peer, optional
// per-circuit duration and data caps (none by default: admitted users
// relay real chat and file streams), and 64 KiB copy buffers.
//
// A supernode also runs the relay fast path (package relay/splice,
// Config.SpliceListen): an admitted peer holding a circuit to another
// admitted peer asks for a splice, both open a plain TCP connection to
// the supernode's splice listener with a one-time token, and the
// supernode copies bytes between the two with splice(2) while the peers
// run their own TLS 1.3 and yamux end to end: it forwards what it can
// neither read nor alter, at a fraction of a circuit's CPU. Circuits stay
// for reservations, hole-punch coordination and as the fallback. Spliced
// connections count among the circuits, and their bytes among the bytes
// relayed, in the load announced to the directory; the metrics tracer
// sees them apart.
//
// A supernode announces itself to one or more rendezvous directories with
// its load (reservations, circuits, bytes relayed, CPU) and capacity; the
// directory answers whether it is active (handed out to clients) or a
// standby (see rendezvous/server.ElectionConfig). Shutdown leaves gracefully: the
// directories stop handing the supernode out, every client holding a slot
// gets a leaving notice and moves, and only then do the relay and its
// circuits stop.
//
// A Volunteer runs the supernode role on a client device while it is
// eligible: AutoNAT v2 confirmed a public address, the device has been up
// long enough, its operator allows it (Mode), and it has CPU, load and
// file-descriptor headroom.
//
// # Clients
//
// A Reserver runs on a client that is not publicly reachable. It keeps
// reservations on two supernodes (Want), presenting its Passport before
// each, renews them, pings the supernodes it uses every 5 s and replaces
// one that misses two pings in a row, moves away from one that sends a
// leaving notice, and advertises the resulting circuit addresses
// (<supernode addr>/p2p/<supernode>/p2p-circuit) through the node and a
// callback that updates presence. A Passport also admits the device to a
// contact's supernodes before it dials the contact through them.
//
// # Protocols
//
// /parley/auth/1.0.0 (client → supernode): the client sends one
// AuthRequest carrying its certificate and closes its side; the supernode
// answers with one AuthResponse and closes the stream. Frames are
// length-delimited protobuf (package internal/wire) of at most 2 KiB; the
// exchange has a 10 s deadline. Statuses: OK (admitted_until is when the
// certificate expires), BAD_REQUEST (malformed frame, no certificate),
// INVALID (forged, re-encoded, unknown issuer, or issued to another peer:
// do not retry with it), EXPIRED (log in again for a fresh one),
// RATE_LIMITED (retry after retry_after_ms; 10 at once then one per 6 s per
// peer, 200 then 20 a second per IP address), UNAVAILABLE (the supernode is
// leaving). Every refusal carries a message for people. A client presents
// again when its certificate is renewed (at half its lifetime) and after
// its connection to the supernode closed, since admissions live in the
// supernode's memory.
//
// /parley/relay/notice/1.0.0 (supernode → client holding a slot): the
// supernode sends one Notice (KIND_LEAVING with grace_ms); the client
// reserves elsewhere, publishes its new circuit addresses, and answers
// with a NoticeAck (moved true when it holds a slot on another
// supernode). Frames are at most 64 bytes.
package relay

import logging "github.com/ipfs/go-log/v2"

var log = logging.Logger("parley/relay")
