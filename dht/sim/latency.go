package sim

import (
	"context"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
)

// Mocknet's own link latency is skipped whenever a stream closes its
// write side: the pending bytes are flushed at once. A DHT request is
// written and closed at once, and so is its answer, so mocknet delivers
// both without delay. Parley's simulation delays DHT streams itself:
// every write and close of either side arrives one latency later, in
// order.

// slowStream delays the writes and the closing of a stream's write side.
type slowStream struct {
	network.Stream
	latency func() time.Duration

	once  sync.Once
	queue chan slowOp
	reset chan struct{} // closed by Reset: drop what is queued

	mu  sync.Mutex // guards err
	err error
}

type slowOp struct {
	data       []byte
	closeWrite bool
	at         time.Time
}

func newSlowStream(s network.Stream, latency func() time.Duration) network.Stream {
	if latency() == 0 {
		return s
	}
	return &slowStream{Stream: s, latency: latency, queue: make(chan slowOp, 64), reset: make(chan struct{})}
}

func (s *slowStream) start() {
	s.once.Do(func() { go s.deliver() })
}

func (s *slowStream) deliver() {
	timer := time.NewTimer(0)
	<-timer.C
	defer timer.Stop()
	for op := range s.queue {
		timer.Reset(time.Until(op.at))
		select {
		case <-timer.C:
		case <-s.reset:
			return
		}
		var err error
		if op.closeWrite {
			err = s.Stream.CloseWrite()
		} else {
			_, err = s.Stream.Write(op.data)
		}
		if err != nil {
			s.mu.Lock()
			s.err = err
			s.mu.Unlock()
			return
		}
		if op.closeWrite {
			return
		}
	}
}

func (s *slowStream) enqueue(op slowOp) error {
	s.mu.Lock()
	err := s.err
	s.mu.Unlock()
	if err != nil {
		return err
	}
	s.start()
	op.at = time.Now().Add(s.latency())
	select {
	case s.queue <- op:
		return nil
	case <-s.reset:
		return network.ErrReset
	}
}

func (s *slowStream) Write(p []byte) (int, error) {
	if err := s.enqueue(slowOp{data: append([]byte(nil), p...)}); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (s *slowStream) CloseWrite() error {
	return s.enqueue(slowOp{closeWrite: true})
}

func (s *slowStream) Close() error {
	_ = s.Stream.CloseRead()
	return s.CloseWrite()
}

func (s *slowStream) Reset() error {
	s.mu.Lock()
	select {
	case <-s.reset:
	default:
		close(s.reset)
	}
	s.mu.Unlock()
	return s.Stream.Reset()
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
