package natlab

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/florianl/go-nfqueue/v2"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

const (
	// delayQueue is the NFQUEUE number in the internet namespace; queues
	// are per namespace, so every lab uses the same one.
	delayQueue = 0
	// delayChain is the internet namespace's chain, jumped to from
	// FORWARD, that sends packets crossing a delayed link to delayQueue.
	delayChain = "natlab-delay"
	// delayQueueLen is how many packets the kernel holds for us before it
	// drops new ones, like a router's full buffer: 40 ms at several Gbit/s.
	delayQueueLen = 32768
	// delayReadBuffer is the netlink socket's receive buffer, forced past
	// rmem_max, so that bursts do not overflow it.
	delayReadBuffer = 16 << 20
)

// delayer holds the packets the internet namespace forwards across delayed
// links, and drops a random share of those crossing lossy links. The kernel queues each such packet (NFQUEUE, metadata only, no
// payload copy) and tells us its input and output interfaces; we compute
// its delay, the sum of both links' delays, and accept it when that time
// has passed. Packets of one path (input and output interface) leave in
// the order they came, also while delays change.
type delayer struct {
	nf     *nfqueue.Nfqueue
	cancel context.CancelFunc
	ctx    context.Context
	base   time.Time      // release times are nanoseconds since base
	wg     sync.WaitGroup // the releaser

	// timer is a timerfd armed for the earliest held packet. Reading it
	// parks the releaser in the runtime's poller, which wakes it within
	// microseconds; a Go timer would wake it up to a millisecond late
	// (epoll_wait's timeout has millisecond resolution).
	timer   *os.File
	timerRC syscall.RawConn

	// delays maps an internet-side interface index to its link's delay.
	// Replaced, never modified, by setDelays.
	delays atomic.Pointer[map[uint32]time.Duration]

	// losses maps an internet-side interface index to its link's drop
	// probability. Replaced, never modified, by setLosses.
	losses atomic.Pointer[map[uint32]float64]
	// rng decides the drops; read loop only.
	rng *rand.Rand

	// last is each path's latest release time; read loop only.
	last map[uint64]int64

	warned atomic.Bool // a verdict failed; logged once

	mu     sync.Mutex // guards the following
	held   packetHeap
	seq    uint64
	closed bool // timer is closed
}

// newDelayer opens the internet namespace's delay queue and starts
// serving it; seed seeds its drops (zero: a random seed).
func newDelayer(inet *netns, seed uint64) (_ *delayer, err error) {
	fd, err := unix.Open(inet.path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open internet namespace: %w", err)
	}
	// The socket stays in the namespace it was created in.
	defer unix.Close(fd)
	nf, err := nfqueue.Open(&nfqueue.Config{
		NetNS:        fd,
		NfQueue:      delayQueue,
		MaxQueueLen:  delayQueueLen,
		Copymode:     nfqueue.NfQnlCopyMeta,
		AfFamily:     unix.AF_INET,
		Flags:        nfqueue.NfQaCfgFlagGSO, // hold GSO packets whole: far fewer packets
		WriteTimeout: time.Second,
	})
	if err != nil {
		return nil, fmt.Errorf("open NFQUEUE (kernel needs CONFIG_NETFILTER_NETLINK_QUEUE): %w", err)
	}
	tfd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		nf.Close()
		return nil, fmt.Errorf("delay timer: %w", err)
	}
	d := &delayer{
		nf:    nf,
		base:  time.Now(),
		last:  map[uint64]int64{},
		timer: os.NewFile(uintptr(tfd), "natlab-delay-timer"),
	}
	d.delays.Store(&map[uint32]time.Duration{})
	d.losses.Store(&map[uint32]float64{})
	if seed == 0 {
		seed = rand.Uint64()
	}
	d.rng = rand.New(rand.NewPCG(seed, seed))
	d.ctx, d.cancel = context.WithCancel(context.Background())
	defer func() {
		if err != nil {
			d.close()
		}
	}()
	if d.timerRC, err = d.timer.SyscallConn(); err != nil {
		return nil, fmt.Errorf("delay timer: %w", err)
	}
	// Lost queue messages are dropped packets (the kernel does not keep a
	// packet it could not tell us about): not an error of the socket.
	if err := nf.SetOption(netlink.NoENOBUFS, true); err != nil {
		return nil, fmt.Errorf("NFQUEUE socket option: %w", err)
	}
	raw, err := nf.Con.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("NFQUEUE socket: %w", err)
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, delayReadBuffer)
	}); err != nil || serr != nil {
		return nil, fmt.Errorf("NFQUEUE receive buffer: %w", errors.Join(err, serr))
	}
	if err := nf.RegisterWithErrorFunc(d.ctx, d.hook, d.readError); err != nil {
		return nil, fmt.Errorf("bind NFQUEUE %d: %w", delayQueue, err)
	}
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		d.releaser()
	}()
	return d, nil
}

// setDelays replaces the per-interface delays.
func (d *delayer) setDelays(m map[uint32]time.Duration) { d.delays.Store(&m) }

// setLosses replaces the per-interface drop probabilities.
func (d *delayer) setLosses(m map[uint32]float64) { d.losses.Store(&m) }

// lost draws whether a packet entering on in and leaving on out is
// dropped: each lossy link it crosses may drop it.
func (d *delayer) lost(in, out uint32) bool {
	losses := *d.losses.Load()
	keep := (1 - losses[in]) * (1 - losses[out])
	return keep < 1 && d.rng.Float64() >= keep
}

// hook runs in the queue's read loop for every queued packet, so it must
// not block: it only computes the release time and files the packet.
func (d *delayer) hook(a nfqueue.Attribute) int {
	if a.PacketID == nil {
		return 0
	}
	var in, out uint32
	if a.InDev != nil {
		in = *a.InDev
	}
	if a.OutDev != nil {
		out = *a.OutDev
	}
	if d.lost(in, out) {
		d.drop(*a.PacketID)
		return 0
	}
	delays := *d.delays.Load()
	now := int64(time.Since(d.base))
	at := now + int64(delays[in]+delays[out])
	path := uint64(in)<<32 | uint64(out)
	if last := d.last[path]; at < last {
		at = last // the delay shrank: do not overtake earlier packets
	}
	if at <= now {
		d.accept(*a.PacketID)
		return 0
	}
	d.last[path] = at
	d.mu.Lock()
	d.seq++
	d.held.push(heldPacket{at: at, seq: d.seq, id: *a.PacketID})
	if d.held[0].seq == d.seq {
		d.armLocked(at - now)
	}
	d.mu.Unlock()
	return 0
}

// armLocked sets the timer to expire in ns nanoseconds (at once if ns is
// not positive), or disarms it if ns is -1.
func (d *delayer) armLocked(ns int64) {
	if d.closed {
		return
	}
	var spec unix.ItimerSpec
	switch {
	case ns == -1: // zero disarms
	case ns <= 0:
		spec.Value.Nsec = 1
	default:
		spec.Value = unix.NsecToTimespec(ns)
	}
	var err error
	if cerr := d.timerRC.Control(func(fd uintptr) {
		err = unix.TimerfdSettime(int(fd), 0, &spec, nil)
	}); cerr != nil || err != nil {
		log.Errorw("arm delay timer", "err", errors.Join(cerr, err))
	}
}

// readError decides whether the read loop goes on after err.
func (d *delayer) readError(err error) int {
	if d.ctx.Err() != nil {
		return 1
	}
	var op *netlink.OpError
	if errors.Is(err, unix.ENOBUFS) || errors.As(err, &op) && op.Timeout() {
		return 0
	}
	log.Errorw("delay queue stopped: delayed links drop every packet from now on", "err", err)
	return 1
}

// releaser accepts held packets when their time comes, earliest first.
// It returns when the timer is closed.
func (d *delayer) releaser() {
	var expirations [8]byte
	var due []uint32
	for {
		if _, err := d.timer.Read(expirations[:]); err != nil {
			if d.ctx.Err() == nil {
				log.Errorw("delay timer failed: delayed packets are stuck", "err", err)
			}
			return
		}
		now := int64(time.Since(d.base))
		d.mu.Lock()
		due = due[:0]
		for len(d.held) > 0 && d.held[0].at <= now {
			due = append(due, d.held.pop().id)
		}
		if len(d.held) > 0 {
			d.armLocked(d.held[0].at - now)
		} else {
			d.armLocked(-1)
		}
		d.mu.Unlock()
		for _, id := range due {
			d.accept(id)
		}
	}
}

// accept lets a queued packet go on.
func (d *delayer) accept(id uint32) {
	if err := d.nf.SetVerdict(id, nfqueue.NfAccept); err != nil && d.ctx.Err() == nil && !d.warned.Swap(true) {
		log.Warnw("accept delayed packet (further failures are not logged)", "err", err)
	}
}

// drop discards a queued packet.
func (d *delayer) drop(id uint32) {
	if err := d.nf.SetVerdict(id, nfqueue.NfDrop); err != nil && d.ctx.Err() == nil && !d.warned.Swap(true) {
		log.Warnw("drop lost packet (further failures are not logged)", "err", err)
	}
}

// close stops serving the queue; the kernel drops the packets still held.
func (d *delayer) close() error {
	d.cancel()
	err := d.nf.Close()
	d.mu.Lock()
	d.closed = true
	d.mu.Unlock()
	d.timer.Close()
	d.wg.Wait()
	if err != nil {
		return fmt.Errorf("close NFQUEUE: %w", err)
	}
	return nil
}

// delayRules is the iptables-restore input that makes the delay chain
// queue every packet entering or leaving one of the named internet-side
// interfaces.
func delayRules(ifnames []string) string {
	sort.Strings(ifnames)
	var b strings.Builder
	b.WriteString("*filter\n:" + delayChain + " - [0:0]\n")
	for _, name := range ifnames {
		for _, dir := range []string{"-i", "-o"} {
			fmt.Fprintf(&b, "-A %s %s %s -j NFQUEUE --queue-num %d\n", delayChain, dir, name, delayQueue)
		}
	}
	b.WriteString("COMMIT\n")
	return b.String()
}

// heldPacket is a packet waiting for its release time.
type heldPacket struct {
	at  int64  // release time, nanoseconds since delayer.base
	seq uint64 // arrival order, to break ties
	id  uint32 // the kernel's packet ID
}

// packetHeap is a min-heap of held packets by release time, then arrival.
// (container/heap would box every packet in an interface.)
type packetHeap []heldPacket

func (h packetHeap) less(i, j int) bool {
	return h[i].at < h[j].at || h[i].at == h[j].at && h[i].seq < h[j].seq
}

func (h *packetHeap) push(p heldPacket) {
	*h = append(*h, p)
	s := *h
	for i := len(s) - 1; i > 0; {
		parent := (i - 1) / 2
		if !s.less(i, parent) {
			break
		}
		s[i], s[parent] = s[parent], s[i]
		i = parent
	}
}

func (h *packetHeap) pop() heldPacket {
	s := *h
	top := s[0]
	n := len(s) - 1
	s[0] = s[n]
	s = s[:n]
	for i := 0; ; {
		l, r, m := 2*i+1, 2*i+2, i
		if l < n && s.less(l, m) {
			m = l
		}
		if r < n && s.less(r, m) {
			m = r
		}
		if m == i {
			break
		}
		s[i], s[m] = s[m], s[i]
		i = m
	}
	*h = s
	return top
}
