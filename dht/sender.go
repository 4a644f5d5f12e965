package dht

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	kadpb "github.com/libp2p/go-libp2p-kad-dht/pb"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/parleynet/parley/internal/wire"
)

// rpcTimeout bounds one DHT request to one peer, as kad-dht's own sender
// bounds its reads.
const rpcTimeout = 10 * time.Second

// maxKadMessage is kad-dht's message size limit.
const maxKadMessage = network.MessageSizeMax

// sender is the kad-dht message sender Parley installs instead of
// kad-dht's own: one stream per request (lazy multistream negotiation
// makes that cost no extra round trip), requests to one peer concurrent
// rather than queued, and every request reported to the observers in its
// context. That is how traces see each peer queried, its round-trip time
// and what it answered, and how PutRecord and Provide learn how many
// peers accepted a record: kad-dht itself reports neither.
//
// SendMessage (ADD_PROVIDER) closes its side after writing and waits for
// the peer to close the stream: kad-dht servers close it cleanly after a
// message they accept and reset it after one they refuse, so that close is
// the acknowledgement.
type sender struct {
	host   host.Host
	protos []protocol.ID
}

var _ kadpb.MessageSenderWithDisconnect = (*sender)(nil)

func newSender(h host.Host, protos []protocol.ID) kadpb.MessageSenderWithDisconnect {
	return &sender{host: h, protos: protos}
}

// OnDisconnect implements kadpb.MessageSenderWithDisconnect: there is no
// per-peer state to drop.
func (s *sender) OnDisconnect(context.Context, peer.ID) {}

// SendRequest implements kadpb.MessageSender.
func (s *sender) SendRequest(ctx context.Context, p peer.ID, req *kadpb.Message) (*kadpb.Message, error) {
	obs := observersFrom(ctx)
	start := time.Now()
	for _, o := range obs {
		o.sent(p, req, start)
	}
	resp, err := s.roundTrip(ctx, p, req, true)
	rtt := time.Since(start)
	if err == nil {
		s.host.Peerstore().RecordLatency(p, rtt)
	}
	for _, o := range obs {
		o.done(p, req, resp, rtt, err)
	}
	return resp, err
}

// SendMessage implements kadpb.MessageSender.
func (s *sender) SendMessage(ctx context.Context, p peer.ID, req *kadpb.Message) error {
	obs := observersFrom(ctx)
	start := time.Now()
	for _, o := range obs {
		o.sent(p, req, start)
	}
	_, err := s.roundTrip(ctx, p, req, false)
	rtt := time.Since(start)
	for _, o := range obs {
		o.done(p, req, nil, rtt, err)
	}
	return err
}

func (s *sender) roundTrip(ctx context.Context, p peer.ID, req *kadpb.Message, wantResponse bool) (_ *kadpb.Message, err error) {
	ctx, cancel := context.WithTimeout(ctx, rpcTimeout)
	defer cancel()
	st, err := s.host.NewStream(ctx, p, s.protos...)
	if err != nil {
		return nil, fmt.Errorf("open DHT stream: %w", err)
	}
	// Deadlines are not supported by every transport (mocknet); resetting
	// the stream when the context ends unblocks reads everywhere.
	stop := context.AfterFunc(ctx, func() { st.Reset() })
	defer func() {
		stop()
		if err != nil {
			st.Reset()
			if ctx.Err() != nil {
				err = fmt.Errorf("%w (%v)", ctx.Err(), err)
			}
		} else {
			st.Close()
		}
	}()
	if err := wire.Write(st, req, maxKadMessage); err != nil {
		return nil, fmt.Errorf("send %s: %w", req.GetType(), err)
	}
	if err := st.CloseWrite(); err != nil {
		return nil, fmt.Errorf("send %s: %w", req.GetType(), err)
	}
	if !wantResponse {
		var b [1]byte
		switch _, err := st.Read(b[:]); {
		case errors.Is(err, io.EOF):
			return nil, nil
		case err == nil:
			return nil, fmt.Errorf("%s: unexpected answer", req.GetType())
		default:
			return nil, fmt.Errorf("%s refused: %w", req.GetType(), err)
		}
	}
	resp := new(kadpb.Message)
	if err := wire.NewReader(st, maxKadMessage).Read(resp); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("read %s response: %w", req.GetType(), err)
	}
	return resp, nil
}

// observer watches the requests a lookup sends. Calls for one request
// come in order, sent before done; calls for different requests may be
// concurrent.
type observer interface {
	sent(p peer.ID, req *kadpb.Message, at time.Time)
	done(p peer.ID, req, resp *kadpb.Message, rtt time.Duration, err error)
}

type observersKey struct{}

// withObserver returns a context whose DHT requests o watches, besides
// the observers ctx already has.
func withObserver(ctx context.Context, o observer) context.Context {
	old := observersFrom(ctx)
	obs := make([]observer, len(old), len(old)+1)
	copy(obs, old)
	return context.WithValue(ctx, observersKey{}, append(obs, o))
}

func observersFrom(ctx context.Context) []observer {
	obs, _ := ctx.Value(observersKey{}).([]observer)
	return obs
}

// storeCounter counts the peers that accepted or refused the records or
// provider announcements of one call.
type storeCounter struct {
	typ kadpb.Message_MessageType

	mu       sync.Mutex // guards the following
	accepted int
	refused  int
	lastErr  error
}

func (c *storeCounter) sent(peer.ID, *kadpb.Message, time.Time) {}

func (c *storeCounter) done(_ peer.ID, req, _ *kadpb.Message, _ time.Duration, err error) {
	if req.GetType() != c.typ {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		c.refused++
		c.lastErr = err
		return
	}
	c.accepted++
}

func (c *storeCounter) result() (accepted, refused int, lastErr error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.accepted, c.refused, c.lastErr
}
