package rendezvous

import (
	"time"

	"github.com/parleynet/parley/internal/seal"
	"github.com/parleynet/parley/rendezvous/pb"
)

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

// Limits of the mailbox. A deposit is the one request that may exceed
// MaxRequestSize: it may be up to MaxDepositSize bytes, and any other
// request over MaxRequestSize is refused.
const (
	// MaxMailCiphertext bounds one sealed copy of a message (a body of
	// 32 KiB sealed with its envelope, see internal/seal).
	MaxMailCiphertext = seal.MaxSealed
	// MaxMailDevices bounds the envelopes of one deposit: a user's active
	// devices with a mailbox key.
	MaxMailDevices = 16
	// MaxMessageID bounds a message ID in bytes.
	MaxMessageID = seal.MaxMessageID
	// MaxDeviceKey bounds a published device key in bytes.
	MaxDeviceKey = seal.MaxDeviceKey
	// MaxDepositSize bounds a deposit request frame.
	MaxDepositSize = MaxMailDevices*(MaxMailCiphertext+256) + 1024
	// MaxFetchMail bounds the mail in one FetchMail answer; the answer
	// also stays under MaxResponseSize.
	MaxFetchMail = 256
	// MaxAckMail bounds the ids in one AckMail request.
	MaxAckMail = 1024
)

// RequestTimeout bounds one request/response exchange on the client and
// server side.
const RequestTimeout = 15 * time.Second

// RequestLimit is the most bytes req may take: MaxDepositSize for a
// deposit, MaxRequestSize for any other request.
func RequestLimit(req *pb.Request) int {
	if req.GetDeposit() != nil {
		return MaxDepositSize
	}
	return MaxRequestSize
}
