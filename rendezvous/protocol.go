package rendezvous

import "time"

// ProtocolID is the rendezvous protocol.
const ProtocolID = "/parley/rendezvous/1.0.0"

// Limits of the wire protocol. A frame above its limit is refused with
// STATUS_BAD_REQUEST and the stream is closed.
const (
	MaxRequestSize  = 16 << 10  // one client request
	MaxResponseSize = 512 << 10 // one server response (a login snapshot is the largest)
	MaxAddrs        = 32        // addresses in one request
	MaxAddrLen      = 256       // bytes in one binary multiaddr
	MaxSupernodes   = 16        // supernodes in one list
	MaxRTTHints     = 32        // round-trip measurements sent with a supernode listing
)

// RequestTimeout bounds one request/response exchange on the client and
// server side.
const RequestTimeout = 15 * time.Second
