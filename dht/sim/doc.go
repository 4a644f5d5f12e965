// Package sim simulates a Parley DHT of many server nodes in one process,
// to measure lookups at scale: every node runs this repository's dht
// package (kad-dht under /parley, Parley's validators, message sender and
// traces) on a host of libp2p's in-process mock network (mocknet), since
// real sockets cannot reach thousands of nodes on one machine.
//
// Mocknet only connects peers joined by a link, and linking every pair
// beforehand costs memory quadratic in the number of nodes; here a node's
// host links itself to a peer the first time it dials it. During
// measurements every DHT message arrives a configurable one-way latency
// after it was sent, and a new connection costs a round trip (none while
// the network is being built, to build it quickly). Mocknet's own link
// latency is not used: it is skipped for a stream that closes right after
// writing, which is how every DHT request and answer goes. Failed dials
// back off as the swarm's do.
//
// A network is built the way a real one grows: nodes join a few at a time,
// each bootstrapping from three random nodes already in, then every node
// refreshes its routing table once. Measure then runs FindPeer and
// FindProviders lookups from random nodes and reports, per kind, the share
// that succeeded and the median and 95th percentile of their hops and
// time. Hops are counted by a dht.Trace: the peers a lookup starts from
// are hop 1, a peer first named by a hop-h peer is hop h+1, and a lookup's
// hops are those of the first peer whose answer held the result. A FindPeer
// querier is first disconnected from its target (kad-dht answers from its
// connections otherwise), and a FindProviders querier never holds a copy of
// the provider record itself, so every measured lookup goes through the
// network.
//
// Kill removes a share of the nodes without warning. In the silent mode
// (the default) a killed node keeps its open connections but never
// answers, as a machine that lost power or network: requests to it wait
// for the request timeout, and dialling it fails after a dial delay.
// DropDeadConnections then closes those half-open connections, as
// connection keepalives do some tens of seconds later. In crash mode its
// connections are closed at once, as the kernel of a crashed process
// does. Refresh runs one routing-table refresh on every surviving node,
// which is what kad-dht does every refresh interval; the dead entries it
// queries are evicted and replaced.
//
// The benchmarks in this package run the measurements; see
// BenchmarkLookups and BenchmarkChurn for the environment variables that
// choose the sizes.
package sim
