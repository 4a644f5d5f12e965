package splice

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/parleynet/parley/internal/wire"
	"github.com/parleynet/parley/node"
	"github.com/parleynet/parley/relay/splice/pb"
)

const (
	// maxPunchWait bounds how long after a circuit opens the client waits
	// for hole punching to finish before it asks for a splice: a spliced
	// connection ends hole punching (DCUtR stops once any connection is
	// not a circuit), and a direct connection is better still. The client
	// asks at once when the node cannot punch to the peer (NAT imitation,
	// no address to punch from, a peer without DCUtR) and as soon as the
	// attempts are over (see node.PunchPending).
	maxPunchWait = 30 * time.Second
	// retryRefused is how long a supernode that refused a splice, or has
	// no splice service, is not asked again.
	retryRefused = time.Minute
)

// Client asks supernodes to splice its circuits, and answers their
// offers. Close it when done.
type Client struct {
	n       *node.Node
	ctx     context.Context // ends at Close, under mu
	cancel  context.CancelFunc
	notifee *network.NotifyBundle

	mu       sync.Mutex // guards the following
	wg       sync.WaitGroup
	inflight map[route]bool
	refused  map[peer.ID]time.Time // supernode → not asked again until
}

// StartClient starts the splice client on n.
func StartClient(n *node.Node) *Client {
	ctx, cancel := context.WithCancel(context.Background())
	c := &Client{n: n, ctx: ctx, cancel: cancel, inflight: map[route]bool{}, refused: map[peer.ID]time.Time{}}
	c.notifee = &network.NotifyBundle{ConnectedF: c.connected, DisconnectedF: c.disconnected}
	n.SetStreamHandler(OfferProtocol, c.handleOffer)
	n.Network().Notify(c.notifee)
	return c
}

// Close stops the client and waits for its goroutines. Spliced
// connections stay open.
func (c *Client) Close() error {
	c.mu.Lock()
	first := c.ctx.Err() == nil
	c.cancel()
	c.mu.Unlock()
	if first {
		c.n.Network().StopNotify(c.notifee)
		c.n.RemoveStreamHandler(OfferProtocol)
		c.wg.Wait()
	}
	return nil
}

// goLocked runs f as a goroutine of the client, unless it is closed.
// Called with c.mu held.
func (c *Client) goLocked(f func()) {
	if c.ctx.Err() == nil {
		c.wg.Go(f)
	}
}

func (c *Client) connected(_ network.Network, conn network.Conn) {
	if conn.Stat().Direction != network.DirOutbound {
		return
	}
	if via, ok := node.RelayOf(conn.RemoteMultiaddr()); ok {
		c.schedule(conn.RemotePeer(), via, 0)
	}
}

// disconnected asks for a new splice when a spliced connection closes and
// a circuit this side dialled is left. (Both ends of a spliced connection
// come out of the splice transport's listener, so the swarm calls both
// inbound; the circuit's dialer is the side that asks.)
func (c *Client) disconnected(nw network.Network, conn network.Conn) {
	if _, ok := node.SpliceRelayOf(conn.RemoteMultiaddr()); !ok {
		return
	}
	p := conn.RemotePeer()
	for _, other := range nw.ConnsToPeer(p) {
		if other.Stat().Direction != network.DirOutbound {
			continue
		}
		if via, ok := node.RelayOf(other.RemoteMultiaddr()); ok {
			c.schedule(p, via, time.Second)
			return
		}
	}
}

// route is a peer reached through a supernode.
type route struct{ peer, via peer.ID }

// schedule asks via for a splice to p after delay, unless that is under
// way already or via refused lately. Routes are tried independently: an
// attempt through a supernode that just died (its connection not yet
// known dead) must not hold up the one through another.
func (c *Client) schedule(p, via peer.ID, delay time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := route{p, via}
	if c.inflight[r] || time.Now().Before(c.refused[via]) {
		return
	}
	c.inflight[r] = true
	c.goLocked(func() {
		defer func() {
			c.mu.Lock()
			delete(c.inflight, r)
			c.mu.Unlock()
		}()
		if delay > 0 {
			select {
			case <-c.ctx.Done():
				return
			case <-time.After(delay):
			}
		}
		if !c.awaitPunch(p) || c.hasBetter(p, via) {
			return
		}
		if err := c.Splice(c.ctx, p, via); err != nil {
			if c.ctx.Err() == nil {
				log.Infow("no splice; staying on the circuit", "peer", p, "supernode", via, "err", err)
				c.mu.Lock()
				c.refused[via] = time.Now().Add(retryRefused)
				c.mu.Unlock()
			}
			return
		}
		log.Infow("circuit spliced", "peer", p, "supernode", via)
	})
}

// awaitPunch waits until hole punching to p is over (or maxPunchWait),
// and reports false when the client is closing.
func (c *Client) awaitPunch(p peer.ID) bool {
	deadline := time.Now().Add(maxPunchWait)
	for c.n.PunchPending(p) && time.Now().Before(deadline) {
		select {
		case <-c.ctx.Done():
			return false
		case <-time.After(punchPoll):
		}
	}
	return c.ctx.Err() == nil
}

// punchPoll is how often awaitPunch looks.
const punchPoll = 250 * time.Millisecond

// hasBetter reports whether a splice through via is not worth asking
// for: the host holds a connection to p that is no circuit (direct,
// hole-punched, or already spliced), or no circuit to p through via any
// more.
func (c *Client) hasBetter(p, via peer.ID) bool {
	circuit := false
	for _, conn := range c.n.Network().ConnsToPeer(p) {
		r, ok := node.RelayOf(conn.RemoteMultiaddr())
		if !ok {
			return true
		}
		circuit = circuit || r == via
	}
	return !circuit
}

// Splice asks supernode via for a splice to peer remote and, when it
// grants one, makes the spliced connection and adds it to the host. It
// needs a connection to via, and both peers admitted there.
func (c *Client) Splice(ctx context.Context, remote, via peer.ID) error {
	ctx, cancel := context.WithTimeout(ctx, exchangeTimeout+upgradeTimeout)
	defer cancel()
	resp, err := request(ctx, c.n, remote, via)
	if err != nil {
		return err
	}
	tok, addr, err := parseResponse(resp)
	if err != nil {
		return err
	}
	return c.join(ctx, addr, tok, resp.GetTtlMs(), network.DirOutbound, remote, via)
}

// join presents token at the splice listener addr and, once paired, runs
// the end-to-end upgrade with remote over the raw connection (dir: this
// side's role in it), adding the result to the host.
func (c *Client) join(ctx context.Context, addr ma.Multiaddr, token Token, ttlMs uint32, dir network.Direction, remote, via peer.ID) error {
	raw, err := dial(ctx, addr, token, ttlOf(ttlMs))
	if err != nil {
		return err
	}
	return c.n.UpgradeSpliced(ctx, raw, dir, remote, via)
}

// ttlOf is a token's lifetime from the wire, within sane bounds.
func ttlOf(ms uint32) time.Duration {
	return min(max(time.Duration(ms)*time.Millisecond, time.Second), time.Minute)
}

// RequestError is a supernode's refusal of a splice.
type RequestError struct {
	Status  pb.Response_Status
	Message string
}

func (e *RequestError) Error() string {
	return fmt.Sprintf("splice refused (%s): %s", e.Status, e.Message)
}

// request sends a Request for remote to via and returns its OK response.
func request(ctx context.Context, h host.Host, remote, via peer.ID) (*pb.Response, error) {
	st, err := h.NewStream(network.WithNoDial(ctx, "splice request"), via, Protocol)
	if err != nil {
		return nil, fmt.Errorf("open splice request stream: %w", err)
	}
	defer st.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = st.SetDeadline(dl)
	}
	resp := new(pb.Response)
	if err := wire.Exchange(st, &pb.Request{Peer: []byte(remote)}, resp, maxFrame); err != nil {
		return nil, fmt.Errorf("splice request: %w", err)
	}
	if resp.GetStatus() != pb.Response_STATUS_OK {
		return nil, &RequestError{Status: resp.GetStatus(), Message: resp.GetMessage()}
	}
	return resp, nil
}

// dial opens a TCP connection to a splice listener (a TCP address, as
// parseResponse and parseOffer checked), presents token, and waits until
// the supernode paired it (at most ttl). The connection is raw: the
// caller runs the upgrade over it.
func dial(ctx context.Context, addr ma.Multiaddr, token Token, ttl time.Duration) (net.Conn, error) {
	na, err := manet.ToNetAddr(addr)
	if err != nil {
		return nil, fmt.Errorf("splice address %s: %w", addr, err)
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", na.String())
	if err != nil {
		return nil, fmt.Errorf("dial splice listener: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	_ = conn.SetDeadline(time.Now().Add(ttl))
	if _, err := conn.Write(encodeHello(token)); err != nil {
		conn.Close()
		return nil, fmt.Errorf("send splice token: %w", err)
	}
	var ok [1]byte
	if _, err := io.ReadFull(conn, ok[:]); err != nil {
		conn.Close()
		return nil, fmt.Errorf("wait for the splice: %w (token refused, expired, or the other peer never came)", err)
	}
	if ok[0] != okByte {
		conn.Close()
		return nil, fmt.Errorf("splice listener answered %#x, want %#x", ok[0], okByte)
	}
	_ = conn.SetDeadline(time.Time{})
	if !stop() {
		return nil, fmt.Errorf("wait for the splice: %w", ctx.Err())
	}
	return conn, nil
}

// handleOffer serves one Offer from a supernode.
func (c *Client) handleOffer(st network.Stream) {
	via := st.Conn().RemotePeer()
	_ = st.SetDeadline(time.Now().Add(exchangeTimeout))
	o := new(pb.Offer)
	if err := wire.NewReader(st, maxFrame).Read(o); err != nil {
		log.Debugw("bad splice offer", "supernode", via, "err", err)
		st.Reset()
		return
	}
	a, tok, addr, err := c.checkOffer(st.Conn(), o)
	ack := &pb.OfferAck{Accepted: err == nil}
	if err != nil {
		ack.Message = err.Error()
		log.Debugw("splice offer declined", "supernode", via, "err", err)
	}
	if err := wire.Write(st, ack, maxFrame); err != nil {
		st.Reset()
		return
	}
	st.Close()
	if !ack.Accepted {
		return
	}
	c.mu.Lock()
	c.goLocked(func() {
		ctx, cancel := context.WithTimeout(c.ctx, exchangeTimeout+upgradeTimeout)
		defer cancel()
		if err := c.join(ctx, addr, tok, o.GetTtlMs(), network.DirInbound, a, via); err != nil {
			log.Infow("offered splice failed; staying on the circuit", "peer", a, "supernode", via, "err", err)
			return
		}
		log.Infow("circuit spliced", "peer", a, "supernode", via)
	})
	c.mu.Unlock()
}

// checkOffer accepts an offer only for a peer this host holds a circuit
// to through the supernode that sent it, at the IP address the host
// reaches that supernode at: an offer cannot make the host dial anywhere
// else.
func (c *Client) checkOffer(conn network.Conn, o *pb.Offer) (peer.ID, Token, ma.Multiaddr, error) {
	via := conn.RemotePeer()
	a, tok, addr, err := parseOffer(o)
	if err != nil {
		return "", Token{}, nil, err
	}
	ip, _ := manet.ToIP(addr)
	sip, err := manet.ToIP(conn.RemoteMultiaddr())
	if err != nil || !sip.Equal(ip) {
		return "", Token{}, nil, fmt.Errorf("offer address %s is not where the supernode is", addr)
	}
	// A asks as soon as its side of the circuit is up; this side's may
	// take a moment longer.
	deadline := time.Now().Add(offerCircuitWait)
	for {
		for _, pc := range c.n.Network().ConnsToPeer(a) {
			if r, ok := node.RelayOf(pc.RemoteMultiaddr()); ok && r == via {
				return a, tok, addr, nil
			}
		}
		if time.Now().After(deadline) {
			return "", Token{}, nil, errors.New("no circuit to that peer through this supernode")
		}
		select {
		case <-c.ctx.Done():
			return "", Token{}, nil, c.ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// offerCircuitWait is how long an offer waits for the circuit it is about.
const offerCircuitWait = 3 * time.Second

// parseOffer checks an offer's fields: a peer ID, a token, and an IP and
// TCP address.
func parseOffer(o *pb.Offer) (peer.ID, Token, ma.Multiaddr, error) {
	a, err := peer.IDFromBytes(o.GetPeer())
	if err != nil {
		return "", Token{}, nil, fmt.Errorf("offer names no valid peer: %w", err)
	}
	tok, err := tokenFrom(o.GetToken())
	if err != nil {
		return "", Token{}, nil, fmt.Errorf("offer: %w", err)
	}
	addr, err := parseTCPAddr(o.GetAddr())
	if err != nil {
		return "", Token{}, nil, fmt.Errorf("offer address: %w", err)
	}
	return a, tok, addr, nil
}

// parseResponse checks an OK response's fields.
func parseResponse(r *pb.Response) (Token, ma.Multiaddr, error) {
	tok, err := tokenFrom(r.GetToken())
	if err != nil {
		return Token{}, nil, fmt.Errorf("splice response: %w", err)
	}
	addr, err := parseTCPAddr(r.GetAddr())
	if err != nil {
		return Token{}, nil, fmt.Errorf("splice response: address: %w", err)
	}
	return tok, addr, nil
}

// parseTCPAddr decodes a binary multiaddr that must be /ip4|ip6/…/tcp/….
func parseTCPAddr(b []byte) (ma.Multiaddr, error) {
	addr, err := ma.NewMultiaddrBytes(b)
	if err != nil {
		return nil, err
	}
	if len(addr) != 2 || addr[1].Code() != ma.P_TCP {
		return nil, fmt.Errorf("%s is not an IP and TCP address", addr)
	}
	if _, err := manet.ToIP(addr); err != nil {
		return nil, fmt.Errorf("%s is not an IP and TCP address", addr)
	}
	return addr, nil
}
