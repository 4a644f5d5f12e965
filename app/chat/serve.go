package chat

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/parleynet/parley/app/chat/pb"
	"github.com/parleynet/parley/internal/wire"
)

// handle serves one incoming chat stream (either protocol version: a
// 1.0.0 sender writes one Message and closes its side, which is a stream
// of one). It returns when the sender closes, the stream breaks or stays
// idle for RecvIdleTimeout, or the service closes.
func (s *Service) handle(st network.Stream) {
	if !s.track(st) {
		st.Reset()
		return
	}
	defer s.untrack(st)
	in := &inbound{
		s:      s,
		st:     st,
		remote: st.Conn().RemotePeer(),
		br:     bufio.NewReaderSize(st, readBuffer),
		bw:     bufio.NewWriter(st),
	}
	path := s.node.ConnPath(st.Conn())
	in.path, in.transport = path.String(), path.Transport
	if err := in.serve(); err != nil {
		log.Debugw("chat stream ended", "peer", in.remote, "err", err)
		st.Reset()
		return
	}
	st.Close()
}

// deadlines is the part of a stream serve sets deadlines on.
type deadlines interface {
	SetReadDeadline(time.Time) error
	SetWriteDeadline(time.Time) error
}

// inbound is the receiving side of one chat stream.
type inbound struct {
	s         *Service
	st        deadlines
	remote    peer.ID
	path      string // the label of the stream's connection
	transport string // what the stream's connection runs on: "tcp", "quic"
	br        *bufio.Reader
	bw        *bufio.Writer
	// refusing is set after a message was answered TRY_LATER: the rest
	// of the stream is answered the same way, unstored, so that nothing
	// sent after it is stored before it (order).
	refusing string
}

// serve reads batches of Message frames and answers each with an Ack, in
// order. It returns nil at a clean end of the stream.
func (in *inbound) serve() error {
	r := wire.NewReader(in.br, MaxFrameSize)
	for {
		batch, err := in.readBatch(r)
		if len(batch) > 0 {
			if werr := in.answer(batch); werr != nil {
				return werr
			}
		}
		switch {
		case errors.Is(err, io.EOF):
			return nil
		case err != nil:
			return err
		}
	}
}

// readBatch waits for one Message frame, then takes those that arrived
// with it (already buffered), up to maxBatch: they are stored in one
// transaction.
func (in *inbound) readBatch(r *wire.Reader) ([]*pb.Message, error) {
	_ = in.st.SetReadDeadline(time.Now().Add(RecvIdleTimeout))
	var batch []*pb.Message
	for len(batch) < maxBatch {
		msg := new(pb.Message)
		if err := r.Read(msg); err != nil {
			return batch, fmt.Errorf("read chat message: %w", err)
		}
		batch = append(batch, msg)
		if in.br.Buffered() == 0 {
			break
		}
	}
	return batch, nil
}

// answer stores a batch and writes its acks.
func (in *inbound) answer(batch []*pb.Message) error {
	acks := in.accept(batch)
	_ = in.st.SetWriteDeadline(time.Now().Add(AckTimeout))
	for _, a := range acks {
		if err := wire.Write(in.bw, a, MaxFrameSize); err != nil {
			return fmt.Errorf("write chat ack: %w", err)
		}
	}
	if err := in.bw.Flush(); err != nil {
		return fmt.Errorf("write chat acks: %w", err)
	}
	return nil
}

// accept validates a batch, stores the valid messages in one transaction
// and returns one Ack per message, in order. Errors in acks are sent to the
// sender, so they say nothing the sender should not know.
func (in *inbound) accept(batch []*pb.Message) []*pb.Ack {
	acks := make([]*pb.Ack, len(batch))
	var store []Message
	var storeAt []int // index in batch of each message in store
	for i, msg := range batch {
		acks[i] = &pb.Ack{Id: ackID(msg.GetId()), Status: pb.Status_STATUS_DELIVERED}
		if in.refusing != "" {
			acks[i].Status, acks[i].Error = pb.Status_STATUS_TRY_LATER, in.refusing
			continue
		}
		m, status, err := in.s.check(in.remote, in.path, msg)
		if err != nil {
			log.Infow("chat message not accepted", "peer", in.remote, "reason", err)
			acks[i].Status, acks[i].Error = status, err.Error()
			if status == pb.Status_STATUS_TRY_LATER {
				in.refusing = err.Error()
			}
			continue
		}
		m.Transport = in.transport
		store, storeAt = append(store, m), append(storeAt, i)
	}
	if len(store) == 0 {
		return acks
	}
	ctx, cancel := context.WithTimeout(in.s.ctx, ExchangeTimeout)
	defer cancel()
	fresh, err := in.s.history.AddReceived(ctx, store, in.remote.String())
	if err != nil {
		log.Errorw("store incoming messages", "err", err)
		in.refusing = "recipient could not store the message; try again"
		// Nothing of the batch was stored: every message in it, and all
		// after, must come again.
		for _, i := range storeAt {
			acks[i].Status, acks[i].Error = pb.Status_STATUS_TRY_LATER, in.refusing
		}
		return acks
	}
	for k, m := range store {
		if fresh[k] {
			log.Debugw("message received", "from", m.From, "id", m.ID, "path", m.Path)
			in.s.deliverLocally(m)
		}
	}
	return acks
}

// ackID is the id an ack repeats: a message's, cut to maxIDLen bytes (such
// a message is refused), so an ack always fits in a frame.
func ackID(id string) string {
	if len(id) > maxIDLen {
		return id[:maxIDLen]
	}
	return id
}

// check validates an incoming message and returns it as it will be
// stored, or the status and reason to answer with.
func (s *Service) check(remote peer.ID, path string, msg *pb.Message) (Message, pb.Status, error) {
	me := s.self()
	if me == "" {
		return Message{}, pb.Status_STATUS_TRY_LATER, errors.New("recipient is not logged in")
	}
	if err := CheckIncoming(msg.GetId(), msg.GetBody()); err != nil {
		return Message{}, pb.Status_STATUS_REJECTED, err
	}
	sender, ok := s.contacts.UsernameOf(remote)
	if !ok {
		return Message{}, pb.Status_STATUS_TRY_LATER, errors.New("you are not a contact of the recipient")
	}
	if sender != msg.GetSender() {
		return Message{}, pb.Status_STATUS_REJECTED, fmt.Errorf("sender %q does not match the sending device", msg.GetSender())
	}
	return Message{
		ID: msg.GetId(), From: sender, To: me, Sent: time.UnixMilli(msg.GetSentUnixMs()),
		Body: msg.GetBody(), Incoming: true, State: Received, Path: path,
	}, pb.Status_STATUS_DELIVERED, nil
}

// deliverLocally calls the OnMessage function with a new message.
func (s *Service) deliverLocally(m Message) {
	s.mu.Lock()
	f := s.onMessage
	s.mu.Unlock()
	if f != nil {
		f(m)
	}
}

// track registers an incoming stream so that Close can end it; it reports
// false once the service is closing.
func (s *Service) track(st network.Stream) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.inbound[st] = struct{}{}
	s.wg.Add(1)
	return true
}

func (s *Service) untrack(st network.Stream) {
	s.mu.Lock()
	delete(s.inbound, st)
	s.mu.Unlock()
	s.wg.Done()
}
