package chat

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/parleynet/parley/app/chat/pb"
	"github.com/parleynet/parley/internal/wire"
	"github.com/parleynet/parley/node"
)

// outgoing is a message on its way to the contact.
type outgoing struct {
	m     Message
	seq   uint64          // its place in the conversation, from 1
	reply chan sendResult // Send's, buffered; nil for a message loaded from the outbox
}

type sendResult struct {
	m   Message
	err error // the message could not even be stored
}

// flushReq is a Flush waiting for the messages queued when it came.
type flushReq struct {
	upto    uint64 // it waits for the messages up to this seq
	settled []Message
	reply   chan flushResult // buffered
}

type flushResult struct {
	settled []Message
	err     error
}

// conv is the sending side of the conversation with one contact. Its
// goroutine (run) owns everything below mu's fields: it stores new
// messages, keeps one stream to the contact's device, writes Message
// frames pipelined (up to Window unacknowledged) and settles each message
// from its ack. It ends when it has nothing to send and its stream has
// been idle for IdleTimeout, or when the service closes.
type conv struct {
	s    *Service
	to   string
	wake chan struct{}

	mu      sync.Mutex // guards in and flushes
	in      []*outgoing
	flushes []*flushReq

	// session is true while pending mirrors the contact's outbox in the
	// history: it is loaded when a session starts, and every message
	// stored since is appended. A failed delivery ends the session
	// (its messages stay queued in the history).
	session  bool
	pending  []*outgoing // stored, not settled, oldest first
	written  int         // pending[:written] are on the current stream, unacknowledged
	inflight int         // their frames' bytes (about)
	seq      uint64      // the last seq given
	waiting  []*flushReq
	str      *sendStream
	// since is when the oldest unacknowledged frame was written or the
	// last ack came, whichever is later: the ack deadline runs from it.
	since    time.Time
	attempts int // streams broken since the last ack
	// deadPath is set when a path was given up since the last ack: the
	// next dial has RedialTimeout, so a message comes back queued soon
	// when there is no other path.
	deadPath bool
}

// maxAttempts is how many streams in a row may break without an ack
// before the messages are left queued.
const maxAttempts = 3

func newConv(s *Service, to string) *conv {
	return &conv{s: s, to: to, wake: make(chan struct{}, 1)}
}

// post hands c a new message or a flush (either may be nil). The service
// calls it with its lock held, so c cannot retire meanwhile.
func (c *conv) post(o *outgoing, f *flushReq) {
	c.mu.Lock()
	if o != nil {
		c.in = append(c.in, o)
	}
	if f != nil {
		c.flushes = append(c.flushes, f)
	}
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// take returns what was posted since the last call.
func (c *conv) take() ([]*outgoing, []*flushReq) {
	c.mu.Lock()
	defer c.mu.Unlock()
	in, fl := c.in, c.flushes
	c.in, c.flushes = nil, nil
	return in, fl
}

// run is c's goroutine.
func (c *conv) run(ctx context.Context) {
	idle := time.NewTimer(IdleTimeout)
	defer idle.Stop()
	ackTimer := time.NewTimer(AckTimeout)
	defer ackTimer.Stop()
	for {
		c.intake(ctx)
		c.push(ctx)
		if len(c.pending) == 0 && c.str == nil && c.s.retire(c) {
			return
		}
		idle.Reset(IdleTimeout)
		var acks <-chan []*pb.Ack
		var broken <-chan error
		if c.str != nil {
			acks, broken = c.str.acks, c.str.errc
		}
		var deadline <-chan time.Time
		if c.written > 0 {
			ackTimer.Reset(time.Until(c.since.Add(AckTimeout)))
			deadline = ackTimer.C
		}
		select {
		case <-ctx.Done():
			c.endSession(ErrClosed)
			c.refuse(ErrClosed)
			return
		case <-c.wake:
		case batch := <-acks:
			c.settle(ctx, batch)
		case err := <-broken:
			c.broken(err, false)
		case <-deadline:
			c.ackOverdue(ctx)
		case <-idle.C:
			if len(c.pending) == 0 && c.str != nil {
				c.str.graceful = true // the recipient sees a clean end
				c.closeStream()
			}
		}
	}
}

// refuse answers with err whatever was posted and not taken yet.
func (c *conv) refuse(err error) {
	in, flushes := c.take()
	answerErr(in, flushes, err)
}

// answerErr answers sends and flushes with err.
func answerErr(in []*outgoing, flushes []*flushReq, err error) {
	for _, o := range in {
		o.reply <- sendResult{err: err}
	}
	for _, f := range flushes {
		f.reply <- flushResult{err: err}
	}
}

// intake stores the messages posted since the last look, starting a
// session (loading the outbox) first if none runs, and registers flushes.
func (c *conv) intake(ctx context.Context) {
	in, flushes := c.take()
	if len(in) == 0 && len(flushes) == 0 {
		return
	}
	if !c.session {
		if err := c.load(ctx); err != nil {
			answerErr(in, flushes, err)
			return
		}
	}
	if len(in) > 0 {
		c.store(ctx, in)
	}
	for _, f := range flushes {
		f.upto = c.seq
		c.waiting = append(c.waiting, f)
	}
	c.answerFlushes(nil)
}

// load starts a session with the contact's outbox.
func (c *conv) load(ctx context.Context) error {
	queued, err := c.s.history.Outbox(ctx, c.to)
	if err != nil {
		return err
	}
	for _, m := range queued {
		c.seq++
		c.pending = append(c.pending, &outgoing{m: m, seq: c.seq})
	}
	c.session = true
	return nil
}

// store saves new messages as queued, in one transaction, and appends
// them to pending.
func (c *conv) store(ctx context.Context, in []*outgoing) {
	ms := make([]Message, len(in))
	for i, o := range in {
		ms[i] = o.m
	}
	if _, err := c.s.history.AddAll(ctx, ms); err != nil {
		for _, o := range in {
			o.reply <- sendResult{err: err}
		}
		return
	}
	for _, o := range in {
		c.seq++
		o.seq = c.seq
		c.pending = append(c.pending, o)
	}
}

// canWrite reports whether the next pending message may go on the
// stream: it waits while Window messages or MaxInflightBytes are
// unacknowledged (one message always may go).
func (c *conv) canWrite() bool {
	if c.written >= len(c.pending) || c.written >= Window {
		return false
	}
	return c.written == 0 || c.inflight+frameSize(c.pending[c.written].m) <= MaxInflightBytes
}

// frameSize is the size of m's frame body.
func frameSize(m Message) int { return len(m.ID) + len(m.From) + len(m.Body) + 16 }

// push writes the pending messages not yet on the stream, up to Window
// unacknowledged, opening a stream first if there is none.
func (c *conv) push(ctx context.Context) {
	if c.str != nil && c.canWrite() {
		// The contact may have moved to another device (or gone offline)
		// since the stream opened.
		if p, _ := c.s.contacts.Lookup(c.to); p != c.str.st.Conn().RemotePeer() {
			c.broken(errors.New("the contact's device changed"), false)
		} else if c.written == 0 && c.betterConn() {
			// A direct connection came up (a hole punch) under a stream
			// on a relayed one: with nothing in flight, the next message
			// opens its stream on the direct connection.
			c.str.graceful = true
			c.closeStream()
		}
	}
	for c.canWrite() {
		if c.str == nil {
			if err := c.open(ctx); err != nil {
				if errors.Is(err, errPathDead) && c.attempts < maxAttempts {
					c.attempts, c.deadPath = c.attempts+1, true
					continue
				}
				c.endSession(err)
				return
			}
		}
		if err := c.write(); err != nil {
			c.broken(err, false)
		}
	}
}

// write puts frames for pending[written:] (up to Window in flight) on the
// stream, as one flush.
func (c *conv) write() error {
	if c.written == 0 {
		c.since = time.Now()
	}
	_ = c.str.st.SetWriteDeadline(time.Now().Add(AckTimeout))
	for c.canWrite() {
		m := c.pending[c.written].m
		// Counted first: a failed write is an attempt that sent it.
		c.written++
		c.inflight += frameSize(m)
		msg := &pb.Message{Id: m.ID, Sender: m.From, SentUnixMs: m.Sent.UnixMilli(), Body: m.Body}
		if err := wire.Write(c.str.bw, msg, MaxFrameSize); err != nil {
			return err
		}
	}
	if err := c.str.bw.Flush(); err != nil {
		return fmt.Errorf("write chat messages: %w", err)
	}
	return nil
}

// settle records the outcome of a batch of acks, which answer pending's
// first messages in order.
func (c *conv) settle(ctx context.Context, acks []*pb.Ack) {
	n, stop := matchAcks(c.pending[:c.written], acks, c.str.path, c.str.transport, c.str.st.Conn().RemotePeer())
	if n > 0 {
		if err := c.record(ctx, c.pending[:n]); err != nil {
			c.endSession(err)
			return
		}
	}
	if stop != nil {
		c.closeStream()
		c.endSession(stop)
	}
}

// matchAcks applies acks to the messages on the stream (sent), which they
// answer in order: each delivered one takes the stream's path, transport
// and device, each rejected one is Failed. It returns how many were settled, and an error
// if the stream must stop there: TRY_LATER, or an ack that answers
// nothing sent or another message.
func matchAcks(sent []*outgoing, acks []*pb.Ack, path, transport string, device peer.ID) (int, error) {
	for i, a := range acks {
		if i == len(sent) {
			return i, errors.New("acknowledgement for a message not sent")
		}
		o := sent[i]
		if a.GetId() != o.m.ID {
			return i, fmt.Errorf("acknowledgement for another message (%q, want %q)", a.GetId(), o.m.ID)
		}
		switch a.GetStatus() {
		case pb.Status_STATUS_DELIVERED:
			o.m.State, o.m.Path, o.m.Transport, o.m.DeliveredTo = Delivered, path, transport, device.String()
		case pb.Status_STATUS_TRY_LATER:
			return i, fmt.Errorf("%w: %s", errTryLater, a.GetError())
		default:
			o.m.State, o.m.Error = Failed, fmt.Errorf("%w: %s", ErrRejected, a.GetError()).Error()
		}
	}
	return len(acks), nil
}

// record stores the outcomes of the first len(done) pending messages and
// answers whoever waits for them.
func (c *conv) record(ctx context.Context, done []*outgoing) error {
	done = slices.Clone(done)
	ms := make([]Message, len(done))
	for i, o := range done {
		ms[i] = o.m
	}
	if err := c.s.history.settleAll(ctx, ms); err != nil {
		return err
	}
	for _, o := range done {
		if o.m.State == Delivered {
			log.Debugw("message delivered", "to", c.to, "id", o.m.ID, "path", o.m.Path)
		} else {
			log.Infow("message rejected", "to", c.to, "id", o.m.ID, "reason", o.m.Error)
		}
		if o.reply != nil {
			o.reply <- sendResult{m: o.m}
		}
	}
	c.pending = c.pending[len(done):]
	c.written -= len(done)
	for _, o := range done {
		c.inflight -= frameSize(o.m)
	}
	c.since = time.Now()
	c.attempts, c.deadPath = 0, false
	c.answerFlushes(done)
	return nil
}

// answerFlushes adds newly settled messages to the flushes waiting for
// them and answers those with nothing left to wait for.
func (c *conv) answerFlushes(settled []*outgoing) {
	next := c.seq + 1 // the seq of the oldest unsettled message
	if len(c.pending) > 0 {
		next = c.pending[0].seq
	}
	kept := c.waiting[:0]
	for _, f := range c.waiting {
		for _, o := range settled {
			if o.seq <= f.upto {
				f.settled = append(f.settled, o.m)
			}
		}
		if next > f.upto {
			f.reply <- flushResult{settled: f.settled}
			continue
		}
		kept = append(kept, f)
	}
	c.waiting = kept
}

// ackOverdue handles the ack deadline: acks the reader got meanwhile (the
// goroutine was busy storing) are progress; otherwise the connection is
// dead.
func (c *conv) ackOverdue(ctx context.Context) {
	select {
	case batch := <-c.str.acks:
		c.settle(ctx, batch)
		return
	default:
	}
	if last := c.str.lastAck.Load(); last != 0 && time.Since(time.Unix(0, last)) < AckTimeout {
		c.since = time.Unix(0, last) // one is being handed over
		return
	}
	c.broken(fmt.Errorf("no acknowledgement for %v", AckTimeout), true)
}

// broken handles a stream that failed: its unacknowledged messages go
// again on the next one. dead means its connection stopped answering: it
// is closed, and a direct one is avoided for a while (see giveUpPath).
func (c *conv) broken(err error, dead bool) {
	if c.str == nil {
		return
	}
	unacked := c.written
	if dead {
		c.s.giveUpPath(c.str.st.Conn(), err)
		c.deadPath = true
	}
	c.closeStream()
	if unacked == 0 {
		return // an idle stream the recipient closed
	}
	c.attempts++
	log.Infow("chat stream broken; sending again", "to", c.to, "unacknowledged", unacked, "err", err)
	if c.attempts >= maxAttempts {
		c.endSession(err)
	}
}

// endSession leaves every pending message queued, answers whoever waits
// with err, and closes the stream.
func (c *conv) endSession(err error) {
	c.closeStream()
	for _, o := range c.pending {
		if o.reply != nil {
			log.Infow("message queued", "to", c.to, "id", o.m.ID, "reason", err)
			q := o.m
			q.State, q.Path, q.Error = Queued, "", ""
			o.reply <- sendResult{m: q}
		}
	}
	for _, f := range c.waiting {
		f.reply <- flushResult{settled: f.settled, err: err}
	}
	c.pending, c.waiting, c.written, c.inflight, c.session, c.attempts, c.deadPath = nil, nil, 0, 0, false, 0, false
}

// betterConn reports whether the stream runs over a relayed connection
// while a direct one to the same device is open.
func (c *conv) betterConn() bool {
	// Parley's supernodes relay without limits by default, so a relayed
	// connection is told by its address, not by Stat().Limited.
	conn := c.str.st.Conn()
	if !node.IsCircuit(conn.RemoteMultiaddr()) {
		return false
	}
	for _, other := range c.s.node.Network().ConnsToPeer(conn.RemotePeer()) {
		if !node.IsCircuit(other.RemoteMultiaddr()) && !other.IsClosed() {
			return true
		}
	}
	return false
}

// closeStream resets the stream, if any, and stops its reader.
func (c *conv) closeStream() {
	if c.str == nil {
		return
	}
	c.str.stop()
	c.str = nil
	c.written, c.inflight = 0, 0
}

// errPathDead means opening a stream hung on a connection that was
// there: it is given up and the next attempt dials again.
var errPathDead = errors.New("chat stream could not be opened on the open connection")

// open opens a stream to the contact's device, and starts its ack reader.
func (c *conv) open(ctx context.Context) error {
	p, isContact := c.s.contacts.Lookup(c.to)
	switch {
	case !isContact:
		return ErrNotAContact
	case p == "":
		return ErrOffline
	}
	ctx = network.WithAllowLimitedConn(ctx, "chat")
	timeout := ExchangeTimeout
	if c.deadPath {
		timeout = RedialTimeout
	}
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if c.s.reach != nil {
		if err := c.s.reach(rctx, p); err != nil {
			return fmt.Errorf("reach %s: %w", p, err)
		}
	}
	// On a connection that stands, opening takes a round trip at most; one
	// that does not answer is dead.
	connected := c.s.node.Network().Connectedness(p)
	octx := rctx
	if connected == network.Connected || connected == network.Limited {
		var cancel context.CancelFunc
		octx, cancel = context.WithTimeout(rctx, AckTimeout)
		defer cancel()
	}
	st, err := c.s.node.NewStream(octx, p, ProtocolID)
	if err != nil {
		if octx.Err() != nil && rctx.Err() == nil {
			c.s.giveUpPeerPaths(p)
			return fmt.Errorf("%w: %v", errPathDead, err)
		}
		return fmt.Errorf("open chat stream: %w", err)
	}
	c.str = c.s.startStream(ctx, st)
	return nil
}

// sendStream is the current outbound stream of a conversation.
type sendStream struct {
	st        network.Stream
	path      string // the label of the stream's connection
	transport string // what the stream's connection runs on: "tcp", "quic"
	bw        *bufio.Writer
	acks      chan []*pb.Ack // batches of acks, in order
	errc      chan error     // the reader's end
	quit      chan struct{}  // closed to stop the reader
	graceful  bool           // close, rather than reset, when stopped
	// lastAck is when the reader last read an ack (unix ns).
	lastAck atomic.Int64
}

// startStream starts the ack reader of st.
func (s *Service) startStream(ctx context.Context, st network.Stream) *sendStream {
	ss := &sendStream{
		st:   st,
		bw:   bufio.NewWriter(st),
		acks: make(chan []*pb.Ack),
		errc: make(chan error, 1),
		quit: make(chan struct{}),
	}
	path := s.node.ConnPath(st.Conn())
	ss.path, ss.transport = path.String(), path.Transport
	s.wg.Go(func() { ss.readAcks(ctx) })
	return ss
}

// stop resets the stream, or closes it if graceful, (the reader's Read
// returns) and tells the reader to stop.
func (ss *sendStream) stop() {
	close(ss.quit)
	if ss.graceful {
		_ = ss.st.Close()
		return
	}
	_ = ss.st.Reset()
}

// readAcks reads Ack frames and hands them to the conversation in
// batches: one, and those that arrived with it.
func (ss *sendStream) readAcks(ctx context.Context) {
	br := bufio.NewReader(ss.st)
	r := wire.NewReader(br, MaxFrameSize)
	for {
		batch, err := readAckBatch(br, r)
		if len(batch) > 0 {
			ss.lastAck.Store(time.Now().UnixNano())
			select {
			case ss.acks <- batch:
			case <-ss.quit:
				return
			case <-ctx.Done():
				return
			}
		}
		if err != nil {
			ss.errc <- err
			return
		}
	}
}

// readAckBatch waits for one Ack frame and takes those buffered behind it.
func readAckBatch(br *bufio.Reader, r *wire.Reader) ([]*pb.Ack, error) {
	var batch []*pb.Ack
	for len(batch) < maxBatch {
		a := new(pb.Ack)
		if err := r.Read(a); err != nil {
			return batch, fmt.Errorf("read chat ack: %w", err)
		}
		batch = append(batch, a)
		if br.Buffered() == 0 {
			break
		}
	}
	return batch, nil
}

// giveUpPath closes a connection that stopped answering. If it was direct
// (or hole-punched) and the peer has a circuit address, it is dialled
// through relays only for DirectRetryAfter, so the next stream goes
// through a supernode at once.
// Closing it also tells the path watcher (app), which shows the new path.
func (s *Service) giveUpPath(conn network.Conn, why error) {
	p := conn.RemotePeer()
	path := s.node.ConnPath(conn)
	// Without a circuit address to go by, a new direct dial is all there
	// is: the peer is not cut off.
	if path.Kind != node.Relayed && slices.ContainsFunc(s.node.Peerstore().Addrs(p), node.IsCircuit) {
		s.node.AvoidDirect(p, time.Now().Add(DirectRetryAfter))
	}
	log.Infow("chat path stopped answering; closing it", "peer", p, "path", path.String(), "err", why)
	_ = conn.Close()
}

// giveUpPeerPaths gives up the connections to p a stream could not be
// opened on: the direct ones, or the relayed ones if there is no other.
func (s *Service) giveUpPeerPaths(p peer.ID) {
	conns := s.node.Network().ConnsToPeer(p)
	direct := false
	for _, conn := range conns {
		if s.node.ConnPath(conn).Kind != node.Relayed {
			direct = true
			s.giveUpPath(conn, errPathDead)
		}
	}
	if direct {
		return
	}
	for _, conn := range conns {
		s.giveUpPath(conn, errPathDead)
	}
}
