package relay

import "time"

// Protocol IDs of the supernode role.
const (
	// AuthProtocol is how a client presents its membership certificate
	// to a supernode before reserving a slot or opening a circuit.
	AuthProtocol = "/parley/auth/1.0.0"
	// NoticeProtocol is how a supernode tells the clients it serves that
	// it is leaving.
	NoticeProtocol = "/parley/relay/notice/1.0.0"
)

// Limits of the protocols.
const (
	// maxAuthFrame bounds an AuthRequest or AuthResponse: a certificate
	// (cert.MaxSize) plus framing and a short message.
	maxAuthFrame = 2 << 10
	// maxNoticeFrame bounds a Notice or NoticeAck.
	maxNoticeFrame = 64
	// exchangeTimeout bounds one auth or notice exchange.
	exchangeTimeout = 10 * time.Second
)
