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

// DefaultRequestTimeout bounds one DHT request to one peer, as kad-dht's
// own sender bounds its reads.
const DefaultRequestTimeout = 10 * time.Second

const (
	// silentFor is how long a peer that let a request time out is not
	// asked again: requests to it fail at once meanwhile. kad-dht drops
	// such a peer from the routing table at the first failure, but other
	// peers' answers keep naming it until their own tables catch up, and
	// every lookup that asked it again would wait the whole timeout.
	silentFor = 30 * time.Second
	// maxSilent bounds the peers remembered as silent.
	maxSilent = 4096
)

// errSilent is the error of a request not sent to a silent peer.
var errSilent = errors.New("not asked: it let a request time out moments ago")

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
//
// A peer that lets a request time out is not asked again for silentFor:
// a dead machine keeps its place in other peers' answers for a while, and
// kad-dht waits for every request of a lookup before it returns.
type sender struct {
	host    host.Host
	protos  []protocol.ID
	timeout time.Duration

	mu     sync.Mutex            // guards the following
	silent map[peer.ID]time.Time // until when
}

var _ kadpb.MessageSenderWithDisconnect = (*sender)(nil)

// newSender returns the builder kad-dht calls.
func newSender(timeout time.Duration) func(host.Host, []protocol.ID) kadpb.MessageSenderWithDisconnect {
	return func(h host.Host, protos []protocol.ID) kadpb.MessageSenderWithDisconnect {
		return &sender{host: h, protos: protos, timeout: timeout, silent: make(map[peer.ID]time.Time)}
	}
}

// isSilent reports whether p let a request time out within silentFor.
func (s *sender) isSilent(p peer.ID, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	until, ok := s.silent[p]
	if ok && now.After(until) {
		delete(s.silent, p)
		return false
	}
	return ok
}

// noteOutcome remembers p as silent after a timeout of its own, and
// forgets it after an answer.
func (s *sender) noteOutcome(p peer.ID, timedOut bool, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !timedOut {
		delete(s.silent, p)
		return
	}
	if len(s.silent) >= maxSilent {
		for q, until := range s.silent {
			if now.After(until) {
				delete(s.silent, q)
			}
		}
		if len(s.silent) >= maxSilent {
			return
		}
	}
	s.silent[p] = now.Add(silentFor)
}

// OnDisconnect implements kadpb.MessageSenderWithDisconnect: there is no
// per-peer state to drop.
func (s *sender) OnDisconnect(context.Context, peer.ID) {}

// SendRequest implements kadpb.MessageSender.
func (s *sender) SendRequest(ctx context.Context, p peer.ID, req *kadpb.Message) (*kadpb.Message, error) {
	return s.send(ctx, p, req, true)
}

// SendMessage implements kadpb.MessageSender.
func (s *sender) SendMessage(ctx context.Context, p peer.ID, req *kadpb.Message) error {
	_, err := s.send(ctx, p, req, false)
	return err
}

// send is exchange reported to the observers in ctx; an answered request
// also teaches the peerstore p's latency.
func (s *sender) send(ctx context.Context, p peer.ID, req *kadpb.Message, wantResponse bool) (*kadpb.Message, error) {
	obs := observersFrom(ctx)
	start := time.Now()
	for _, o := range obs {
		o.sent(p, req, start)
	}
	resp, err := s.exchange(ctx, p, req, wantResponse)
	rtt := time.Since(start)
	if err == nil && wantResponse {
		s.host.Peerstore().RecordLatency(p, rtt)
	}
	for _, o := range obs {
		o.done(p, req, resp, rtt, err)
	}
	return resp, err
}

// exchange is roundTrip unless p is silent, and keeps track of silence.
func (s *sender) exchange(ctx context.Context, p peer.ID, req *kadpb.Message, wantResponse bool) (*kadpb.Message, error) {
	if s.isSilent(p, time.Now()) {
		return nil, fmt.Errorf("%s: %w", req.GetType(), errSilent)
	}
	rctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	resp, err := s.roundTrip(rctx, p, req, wantResponse)
	timedOut := err != nil && ctx.Err() == nil && errors.Is(rctx.Err(), context.DeadlineExceeded)
	if err == nil || timedOut {
		s.noteOutcome(p, timedOut, time.Now())
	}
	return resp, err
}

func (s *sender) roundTrip(ctx context.Context, p peer.ID, req *kadpb.Message, wantResponse bool) (_ *kadpb.Message, err error) {
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
	// A peer may answer and close as soon as the request is complete;
	// closing our side may then fail, and the answer is still there.
	_ = st.CloseWrite()
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

// verdict is what the peers said: how many accepted, and the error when
// none did (ErrNoPeers if nobody was asked, else ErrRefused).
func (c *storeCounter) verdict() (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.accepted > 0:
		return c.accepted, nil
	case c.refused == 0:
		return 0, ErrNoPeers
	default:
		return 0, fmt.Errorf("%w (%d peers; the last said: %v)", ErrRefused, c.refused, c.lastErr)
	}
}
