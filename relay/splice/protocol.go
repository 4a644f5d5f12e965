package splice

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// Protocol IDs of the relay fast path.
const (
	// Protocol is how an admitted peer asks its supernode for a splice to
	// another peer.
	Protocol = "/parley/splice/1.0.0"
	// OfferProtocol is how the supernode tells the other peer.
	OfferProtocol = "/parley/splice/offer/1.0.0"
)

// Limits of the protocol.
const (
	// maxFrame bounds every message of Protocol and OfferProtocol: a peer
	// ID, a token, a multiaddr and a short message.
	maxFrame = 512
	// exchangeTimeout bounds one request or offer exchange.
	exchangeTimeout = 10 * time.Second
	// TokenSize is the size of a one-time token: 128 random bits.
	TokenSize = 16
	// helloSize is the size of a hello: magic and token.
	helloSize = len(helloMagic) + TokenSize
	// upgradeTimeout bounds the end-to-end upgrade over a spliced pair.
	upgradeTimeout = 15 * time.Second
)

// helloMagic starts a hello, so that a stray connection (a port scan, an
// HTTP client) is told apart from a token at once.
const helloMagic = "PSP1"

// okByte is what the supernode writes to each side once it paired them.
const okByte = 0x01

// Token is a one-time splice token.
type Token [TokenSize]byte

func (t Token) String() string { return hex.EncodeToString(t[:4]) + "…" }

func newToken() (Token, error) {
	var t Token
	if _, err := rand.Read(t[:]); err != nil {
		return t, fmt.Errorf("make a splice token: %w", err)
	}
	return t, nil
}

// tokenFrom reads a token from a message field.
func tokenFrom(b []byte) (Token, error) {
	var t Token
	if len(b) != TokenSize {
		return t, fmt.Errorf("token of %d bytes, want %d", len(b), TokenSize)
	}
	copy(t[:], b)
	return t, nil
}

// encodeHello is what a peer writes first on its TCP connection to the
// splice listener.
func encodeHello(t Token) []byte {
	return append([]byte(helloMagic), t[:]...)
}

// errBadHello is returned by parseHello for anything but a hello.
var errBadHello = errors.New("not a splice hello")

// parseHello decodes a hello of exactly helloSize bytes.
func parseHello(b []byte) (Token, error) {
	if len(b) != helloSize || !bytes.HasPrefix(b, []byte(helloMagic)) {
		return Token{}, errBadHello
	}
	return tokenFrom(b[len(helloMagic):])
}
