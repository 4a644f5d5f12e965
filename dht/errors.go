package dht

import (
	"errors"

	"github.com/libp2p/go-libp2p/core/routing"
)

var (
	// ErrNotFound means a lookup completed without finding what it looked
	// for. It is routing.ErrNotFound, which kad-dht returns.
	ErrNotFound = routing.ErrNotFound
	// ErrNoPeers means the node knows no DHT server to ask: bootstrap has
	// not succeeded (yet).
	ErrNoPeers = errors.New("no DHT peers: bootstrap has not succeeded")
	// ErrRefused means every peer that was asked to store a record or a
	// provider announcement refused it, for example because it holds a
	// record with a higher sequence number.
	ErrRefused = errors.New("every peer refused to store it")
	// ErrClosed is returned by calls on a closed DHT.
	ErrClosed = errors.New("DHT closed")
	// ErrPermissionDenied means a node does not let the caller read its
	// routing table.
	ErrPermissionDenied = errors.New("permission denied")
	// ErrRateLimited means a node refused a routing-table request because
	// the caller asked too often.
	ErrRateLimited = errors.New("rate limited")
	// ErrMalformed means a peer sent a message that does not decode or
	// breaks a field rule.
	ErrMalformed = errors.New("malformed message")
)
