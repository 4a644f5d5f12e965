// Package dht is Parley's Kademlia layer: go-libp2p-kad-dht run as a
// private network under the protocol prefix /parley (the DHT protocol is
// /parley/kad/1.0.0; a Parley node never joins or answers the public IPFS
// DHT), with Parley's signed records, content provision and lookup tracing.
//
// A DHT is constructed on an existing host (a *node.Node or any
// host.Host) with New and Options, and Close stops everything it started
// (not the host).
//
// # Modes
//
// In server mode a node answers DHT queries and others keep it in their
// routing tables; in client mode it only asks. Supernodes, relay nodes and
// the rendezvous server run as servers, devices behind NAT as clients.
// ModeAuto (the default) follows the host's reachability events
// (event.EvtLocalReachabilityChanged, from AutoNAT or node's forced
// reachability): server while public, client while private or unknown,
// switching as they change. Server reports the current mode.
//
// # Bootstrap
//
// A node bootstraps from static peers (WithBootstrapPeers: configured
// peers, the CLI's --bootstrap) and from sources consulted each time
// (WithBootstrapFunc: typically the supernodes the rendezvous directory
// hands out). It connects to all of them, then refreshes its routing
// table. It bootstraps at start and again whenever its routing table holds
// fewer than four peers, checking every bootstrap interval and retrying a
// failed bootstrap sooner (2 s, doubling). Bootstrap does it at once and
// waits until the routing table holds a server. The routing table refills
// after churn by kad-dht's own means: a dead peer is evicted when a query
// to it fails or when the periodic refresh (WithRefreshInterval) finds it
// silent, and every refresh looks up random keys in each bucket to find
// replacements.
//
// # Records
//
// Values in this DHT are signed records (package dht/records describes
// the encoding and every validation rule):
//
//   - /addr/<device peer ID>: a device's current direct and circuit
//     addresses, sequence number, issue and expiry time, signed with the
//     device key. WithAddressRecords publishes this node's record once
//     bootstrapped, every quarter of the record lifetime, and soon after
//     the host's addresses change; PublishAddrs publishes at once;
//     LookupAddrs finds a peer's, so a contact can be reached while the
//     rendezvous server is down.
//   - /supernode/<peer ID>: a supernode's announcement, same form.
//     SetSupernode(true) keeps it published and also provides the
//     well-known SupernodeCID. FindSupernodes takes the providers of
//     SupernodeCID as candidates and returns only those with a valid
//     signed record, with the record's addresses: a client that knows no
//     supernode can find current ones. A provider entry alone proves
//     nothing, since any DHT server can answer with made-up providers.
//
// Validators (kad-dht runs them on every value it stores or receives)
// refuse values over 4 KiB, malformed or non-canonical encodings, forged
// signatures, a record under another peer's key or another kind's
// namespace, and expired records; no other namespace (not even kad-dht's
// default /pk and /ipns) is accepted. Of two valid records the higher
// sequence number wins, so a server refuses a replayed older record
// (PutRecord then fails with ErrRefused) and lookups settle on the newest
// answer. Sequence numbers must grow across restarts: ClockSeq (the
// default) follows the wall clock; FileSeq persists them in a file.
//
// # Content
//
// Provide stores a provider record for a CID (go-cid, multihash) on the
// servers closest to it and reprovides it every reprovide interval (a
// third of the provider record TTL by default) until Withdraw. Withdrawal
// only stops reproviding: records already stored are not deleted, they
// expire after the provider record TTL (12 h by default), so withdrawn
// content may be found for that long. FindProviders returns providers
// with the addresses they announced. Every Parley node should use the same
// provider record TTL, since the servers holding a record decide when it
// expires.
//
// # Lookups and dead peers
//
// Each request to one peer is bounded by the request timeout
// (WithRequestTimeout, 10 s as in kad-dht). A peer that lets a request
// time out (a machine that vanished with its connections still open) is
// not asked again for 30 s: kad-dht drops it from this node's routing
// table at once, but other peers keep naming it in their answers until
// their own tables catch up. kad-dht ends a lookup only when all of its
// requests have ended, so one silent peer would hold every lookup for the
// whole timeout; FindPeer and FindProviders therefore return as soon as
// they hold their answer (the target connected, max providers found) and
// cancel the rest. Routing-table refresh queries run for three request
// timeouts, so that a refresh that meets a dead peer evicts it.
//
// # Tracing
//
// Parley installs its own kad-dht message sender, which reports every
// request to observers carried in the request's context. NewTrace returns
// a Trace whose Context makes any DHT call observable as it happens: each
// peer queried with its hop, common prefix length and XOR distance to the
// target, each answer with its round-trip time and what it held (closer
// peers, providers, a record), each failure; TraceSummary adds the hop at
// which the answer was found and the total time. The parley-dht CLI prints
// these; the simulation counts hops with them. The same observers let
// PutRecord and Provide report how many peers accepted.
//
// # Routing-table protocol
//
// With WithRoutingTableService a node serves /parley/dht/rt/1.0.0: the
// caller sends an empty RoutingTableRequest (at most 64 bytes) and gets a
// RoutingTableResponse (at most 1 MiB; dht/pb) with a status (OK,
// PERMISSION_DENIED, RATE_LIMITED with a retry delay), whether the node is
// a server, its bucket size, and up to 2048 entries: peer ID, bucket
// (common prefix length), when added, last useful, last successful query,
// whether connected, and up to 4 addresses. RoutingTableOf is the client;
// parley-dht routing-table uses it. Each exchange has a 10 s deadline, and
// one peer may ask 5 times at once, then once every 2 s.
//
// Who may read it is the allow function's decision; nil lets every peer
// read it. Opening it is safe: a routing table holds only DHT servers,
// whose peer IDs and addresses any peer can already collect by sending
// FIND_NODE queries (that is what DHT crawlers do); clients behind NAT are
// never in it. What it adds is timing (when each peer was added and last
// useful), which tells the reader a little about the node's uptime and
// traffic; operators who mind restrict it to their own key.
package dht
