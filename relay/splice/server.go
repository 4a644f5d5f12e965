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
	"github.com/parleynet/parley/relay/splice/pb"
)

// Refusal reasons, passed to Tracer.Refused.
const (
	ReasonNotAdmitted  = "splice_not_admitted"  // A or B holds no admission
	ReasonNotConnected = "splice_not_connected" // B is not connected to the supernode
	ReasonDeclined     = "splice_declined"      // B declined or did not answer
	ReasonLimit        = "splice_limit"         // a per-peer, per-IP or total cap
	ReasonBadToken     = "splice_bad_token"     // unknown, replayed, expired or foreign token, or no hello
)

// Tracer receives a splice server's measurements. Its methods are called
// from many goroutines at once and must not block.
type Tracer interface {
	SpliceOpened()
	SpliceClosed(lifetime time.Duration)
	BytesSpliced(n int)
	Refused(reason string)
}

type nopTracer struct{}

func (nopTracer) SpliceOpened()              {}
func (nopTracer) SpliceClosed(time.Duration) {}
func (nopTracer) BytesSpliced(int)           {}
func (nopTracer) Refused(string)             {}

// Config configures a Server. Admitted is required; every other zero
// field takes the default given.
type Config struct {
	// Listen is the TCP address of the splice listener, "host:port";
	// port 0 picks one. Required.
	Listen string
	// Admitted reports whether a peer holds a live admission (presented a
	// valid membership certificate). Required.
	Admitted func(peer.ID) bool
	// TokenTTL is how long a pair of tokens stays valid. Default 10 s.
	TokenTTL time.Duration
	// HelloTimeout bounds the read of a hello on a new TCP connection.
	// Default 5 s.
	HelloTimeout time.Duration
	// PerPeer caps the splices, pending and open, that involve one peer.
	// Default 16.
	PerPeer int
	// Tracer receives measurements; nil means none.
	Tracer Tracer
	// Announce are the host's public addresses when they are on no
	// interface of its, behind a one-to-one NAT (parley-relay
	// --announce): a peer on the internet is told the first of the
	// family it reaches, with the listener's port, which the NAT must
	// pass as it is. None: every peer is told the address it reached.
	Announce []ma.Multiaddr
}

const (
	// maxPerIP caps the TCP connections from one IP address (waiting for
	// a hello or a partner, or spliced).
	maxPerIP = 64
	// maxTotal caps the splices, pending and open.
	maxTotal = 1024
)

func (c Config) withDefaults() Config {
	if c.TokenTTL <= 0 {
		c.TokenTTL = 10 * time.Second
	}
	if c.HelloTimeout <= 0 {
		c.HelloTimeout = 5 * time.Second
	}
	if c.PerPeer <= 0 {
		c.PerPeer = 16
	}
	if c.Tracer == nil {
		c.Tracer = nopTracer{}
	}
	return c
}

// Server is a supernode's splice service: the request and offer
// protocols on the host, and the TCP listener where tokens are redeemed
// and sockets spliced.
type Server struct {
	host   host.Host
	cfg    Config
	ln     *net.TCPListener
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	closeOnce sync.Once

	mu      sync.Mutex // guards the following
	pending map[Token]half
	perPeer map[peer.ID]int
	perIP   map[string]int
	total   int
	conns   map[*net.TCPConn]struct{} // every TCP connection held, to close on Close
}

// pair is one requested splice between A (side 0) and B (side 1).
type pair struct {
	peers  [2]peer.ID
	tokens [2]Token
	timer  *time.Timer

	// guarded by Server.mu
	conns [2]*net.TCPConn // each side's, once it presented its token
	done  bool
}

// opened reports whether both sides arrived (the splice runs). Called
// with Server.mu held.
func (p *pair) opened() bool { return p.conns[0] != nil && p.conns[1] != nil }

type half struct {
	p    *pair
	side int
}

// Start listens on cfg.Listen and serves Protocol on h until Close.
func Start(h host.Host, cfg Config) (*Server, error) {
	if cfg.Admitted == nil {
		return nil, errors.New("splice server: an admission check is required")
	}
	cfg = cfg.withDefaults()
	addr, err := net.ResolveTCPAddr("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("splice listen address %q: %w", cfg.Listen, err)
	}
	ln, err := net.ListenTCP("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("splice listener: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		host: h, cfg: cfg, ln: ln, ctx: ctx, cancel: cancel,
		pending: make(map[Token]half),
		perPeer: make(map[peer.ID]int),
		perIP:   make(map[string]int),
		conns:   make(map[*net.TCPConn]struct{}),
	}
	h.SetStreamHandler(Protocol, s.handleRequest)
	s.wg.Go(s.acceptLoop)
	log.Infow("splice service started", "addr", ln.Addr())
	return s, nil
}

// Addr is the splice listener's address.
func (s *Server) Addr() *net.TCPAddr { return s.ln.Addr().(*net.TCPAddr) }

// Close stops the service and closes every splice.
func (s *Server) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.host.RemoveStreamHandler(Protocol)
		s.cancel()
		err = s.ln.Close()
		s.mu.Lock()
		for c := range s.conns {
			c.Close()
		}
		for _, h := range s.pending {
			h.p.timer.Stop()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return err
}

func (s *Server) refused(reason string) { s.cfg.Tracer.Refused(reason) }

// handleRequest serves one Request from peer A.
func (s *Server) handleRequest(st network.Stream) {
	defer st.Close()
	_ = st.SetDeadline(time.Now().Add(2 * exchangeTimeout))
	a := st.Conn().RemotePeer()
	resp := s.request(st, a)
	if resp.Status != pb.Response_STATUS_OK {
		log.Debugw("splice refused", "peer", a, "status", resp.Status, "reason", resp.Message)
	}
	if err := wire.Write(st, resp, maxFrame); err != nil {
		log.Debugw("write splice response", "peer", a, "err", err)
		st.Reset()
	}
}

func (s *Server) request(st network.Stream, a peer.ID) *pb.Response {
	b, err := readRequest(st)
	if err == nil && b == a {
		err = errors.New("a peer cannot splice to itself")
	}
	if err != nil {
		return &pb.Response{Status: pb.Response_STATUS_BAD_REQUEST, Message: "bad splice request: " + err.Error()}
	}
	if !s.cfg.Admitted(a) || !s.cfg.Admitted(b) {
		s.refused(ReasonNotAdmitted)
		return &pb.Response{Status: pb.Response_STATUS_NOT_ADMITTED, Message: "both peers must present a membership certificate to this supernode first"}
	}
	if s.host.Network().Connectedness(b) != network.Connected {
		s.refused(ReasonNotConnected)
		return &pb.Response{Status: pb.Response_STATUS_NOT_CONNECTED, Message: "the peer is not connected to this supernode"}
	}
	// Each side gets the address it reaches this supernode at (B checks
	// that its offer names it).
	addr, err := s.addrFor(st.Conn())
	var addrB ma.Multiaddr
	if err == nil {
		addrB, err = s.addrForPeer(b)
	}
	if err != nil {
		log.Infow("no splice address", "peer", a, "other", b, "err", err)
		return &pb.Response{Status: pb.Response_STATUS_UNAVAILABLE, Message: "no splice address for this connection"}
	}
	p, err := s.newPair(a, b)
	if err != nil {
		s.refused(ReasonLimit)
		return &pb.Response{Status: pb.Response_STATUS_LIMITED, Message: err.Error(), RetryAfterMs: uint64(s.cfg.TokenTTL.Milliseconds())}
	}
	ttl := uint32(s.cfg.TokenTTL.Milliseconds())
	if err := s.offer(p, addrB, ttl); err != nil {
		s.drop(p)
		s.refused(ReasonDeclined)
		return &pb.Response{Status: pb.Response_STATUS_DECLINED, Message: "the peer declined the splice"}
	}
	return &pb.Response{Status: pb.Response_STATUS_OK, Token: p.tokens[0][:], Addr: addr.Bytes(), TtlMs: ttl}
}

// readRequest reads one Request and returns the peer it names.
func readRequest(r io.Reader) (peer.ID, error) {
	req := new(pb.Request)
	if err := wire.NewReader(r, maxFrame).Read(req); err != nil {
		return "", err
	}
	b, err := peer.IDFromBytes(req.GetPeer())
	if err != nil {
		return "", fmt.Errorf("no valid peer to splice to: %w", err)
	}
	return b, nil
}

// addrFor is the splice listener's address as the peer of c sees it: the
// listener's own, or, when it listens on every interface, the address c
// reached. A QUIC connection's local address is its socket's, unspecified
// too when the host listens on every interface (the default); then the
// routing table says which of this host's addresses the peer is reached
// from. Behind a one-to-one NAT (a cloud machine) that address is private
// and the peer dialled the public one announced: see publicFor.
func (s *Server) addrFor(c network.Conn) (ma.Multiaddr, error) {
	la := s.Addr()
	remote, err := manet.ToIP(c.RemoteMultiaddr())
	if err != nil {
		return nil, err
	}
	ip := la.IP
	if ip.IsUnspecified() {
		if ip, err = manet.ToIP(c.LocalMultiaddr()); err != nil {
			return nil, err
		}
		if ip.IsUnspecified() {
			if ip, err = sourceIP(remote); err != nil {
				return nil, err
			}
		}
	}
	if pub := publicFor(ip, remote, s.cfg.Announce); pub != nil {
		ip = pub
	}
	return manet.FromNetAddr(&net.TCPAddr{IP: ip, Port: la.Port})
}

// publicFor is the address a peer at remote reaches the supernode at when
// a one-to-one NAT stands between them, as in front of a cloud machine:
// its interface has a private address (local), the internet sees the
// public one it announces. When remote is public and local is not, that
// is the first public address of local's family in announced, and the
// NAT is taken to pass the splice listener's port as it is; nil
// otherwise. (Addresses peers observed, or a router's port mappings, say
// nothing of the splice port, which the router may not forward.)
func publicFor(local, remote net.IP, announced []ma.Multiaddr) net.IP {
	if !isPublic(remote) || isPublic(local) {
		return nil
	}
	for _, a := range announced {
		if ip, err := manet.ToIP(a); err == nil && isPublic(ip) && (ip.To4() == nil) == (local.To4() == nil) {
			return ip
		}
	}
	return nil
}

// isPublic reports whether ip is routable on the internet.
func isPublic(ip net.IP) bool {
	a, err := manet.FromIP(ip)
	return err == nil && manet.IsPublicAddr(a)
}

// addrForPeer is addrFor for a connection of the host's to p that is not
// relayed.
func (s *Server) addrForPeer(p peer.ID) (ma.Multiaddr, error) {
	for _, c := range s.host.Network().ConnsToPeer(p) {
		if !c.Stat().Limited {
			return s.addrFor(c)
		}
	}
	return nil, fmt.Errorf("no direct connection to %s", p)
}

// sourceIP is the address this host sends from to reach remote: a UDP
// socket "connected" to it asks the routing table; no packet is sent.
func sourceIP(remote net.IP) (net.IP, error) {
	u, err := net.DialUDP("udp", nil, &net.UDPAddr{IP: remote, Port: 9})
	if err != nil {
		return nil, fmt.Errorf("route to %s: %w", remote, err)
	}
	defer u.Close()
	return u.LocalAddr().(*net.UDPAddr).IP, nil
}

// newPair registers a pair of tokens for a and b, within the caps.
func (s *Server) newPair(a, b peer.ID) (*pair, error) {
	p := &pair{peers: [2]peer.ID{a, b}}
	for i := range p.tokens {
		t, err := newToken()
		if err != nil {
			return nil, err
		}
		p.tokens[i] = t
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.ctx.Err() != nil:
		return nil, errors.New("the splice service is closing")
	case s.total >= maxTotal:
		return nil, errors.New("this supernode splices as much as it can; retry later")
	case s.perPeer[a] >= s.cfg.PerPeer || s.perPeer[b] >= s.cfg.PerPeer:
		return nil, fmt.Errorf("at most %d splices per peer", s.cfg.PerPeer)
	}
	s.total++
	s.perPeer[a]++
	s.perPeer[b]++
	for i, t := range p.tokens {
		s.pending[t] = half{p: p, side: i}
	}
	p.timer = time.AfterFunc(s.cfg.TokenTTL, func() { s.expire(p) })
	return p, nil
}

// offer tells B about the splice and waits for its answer.
func (s *Server) offer(p *pair, addr ma.Multiaddr, ttl uint32) error {
	ctx, cancel := context.WithTimeout(s.ctx, exchangeTimeout)
	defer cancel()
	st, err := s.host.NewStream(network.WithNoDial(ctx, "splice offer"), p.peers[1], OfferProtocol)
	if err != nil {
		return fmt.Errorf("open offer stream: %w", err)
	}
	defer st.Close()
	dl, _ := ctx.Deadline()
	_ = st.SetDeadline(dl)
	o := &pb.Offer{Peer: []byte(p.peers[0]), Token: p.tokens[1][:], Addr: addr.Bytes(), TtlMs: ttl}
	ack := new(pb.OfferAck)
	if err := wire.Exchange(st, o, ack, maxFrame); err != nil {
		return fmt.Errorf("splice offer: %w", err)
	}
	if !ack.GetAccepted() {
		return fmt.Errorf("declined: %s", ack.GetMessage())
	}
	return nil
}

// expire ends a pair that did not open in time.
func (s *Server) expire(p *pair) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !p.opened() {
		s.dropLocked(p)
	}
}

// drop forgets a pair that never opened (or closed): its tokens, its
// caps, and any connection waiting in it.
func (s *Server) drop(p *pair) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropLocked(p)
}

func (s *Server) dropLocked(p *pair) {
	if p.done {
		return
	}
	p.done = true
	p.timer.Stop()
	opened := p.opened()
	for i, t := range p.tokens {
		delete(s.pending, t)
		if c := p.conns[i]; c != nil && !opened {
			c.Close() // waiting for its partner, which did not come
			s.releaseLocked(c, otherIP(c))
		}
	}
	s.total--
	for _, id := range p.peers {
		if s.perPeer[id]--; s.perPeer[id] <= 0 {
			delete(s.perPeer, id)
		}
	}
}

func (s *Server) acceptLoop() {
	for {
		c, err := s.ln.AcceptTCP()
		if err != nil {
			if s.ctx.Err() == nil {
				log.Warnw("splice listener stopped", "err", err)
			}
			return
		}
		s.wg.Go(func() { s.serveConn(c) })
	}
}

// serveConn reads a hello from c and pairs it; the connection that
// completes a pair runs the splice.
func (s *Server) serveConn(c *net.TCPConn) {
	ip := c.RemoteAddr().(*net.TCPAddr).IP.String()
	if !s.hold(c, ip) {
		s.refused(ReasonLimit)
		c.Close()
		return
	}
	p, side, err := s.redeem(c, ip)
	if err != nil {
		s.refused(ReasonBadToken)
		log.Debugw("splice connection refused", "from", c.RemoteAddr(), "err", err)
		s.release(c, ip)
		c.Close()
		return
	}
	if p == nil {
		return // the partner's handler owns c now
	}
	other := p.conns[1-side]
	defer s.release(other, otherIP(other))
	defer s.release(c, ip)
	s.run(p)
}

func otherIP(c *net.TCPConn) string { return c.RemoteAddr().(*net.TCPAddr).IP.String() }

// hold counts c against its IP's cap.
func (s *Server) hold(c *net.TCPConn, ip string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctx.Err() != nil || s.perIP[ip] >= maxPerIP {
		return false
	}
	s.perIP[ip]++
	s.conns[c] = struct{}{}
	return true
}

func (s *Server) release(c *net.TCPConn, ip string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.releaseLocked(c, ip)
}

func (s *Server) releaseLocked(c *net.TCPConn, ip string) {
	if _, ok := s.conns[c]; !ok {
		return
	}
	delete(s.conns, c)
	if s.perIP[ip]--; s.perIP[ip] <= 0 {
		delete(s.perIP, ip)
	}
}

// redeem reads c's hello and takes its token. It returns the pair when c
// completes it (the caller runs the splice), nil when c waits for its
// partner (the partner's caller takes it over), or an error when the
// token is not good: unknown, used, expired, or presented from an IP
// address its peer is not connected from.
func (s *Server) redeem(c *net.TCPConn, ip string) (*pair, int, error) {
	_ = c.SetReadDeadline(time.Now().Add(s.cfg.HelloTimeout))
	buf := make([]byte, helloSize)
	if _, err := io.ReadFull(c, buf); err != nil {
		return nil, 0, fmt.Errorf("read hello: %w", err)
	}
	tok, err := parseHello(buf)
	if err != nil {
		return nil, 0, err
	}
	_ = c.SetReadDeadline(time.Time{})
	s.mu.Lock()
	h, ok := s.pending[tok]
	delete(s.pending, tok) // single use, whatever follows
	s.mu.Unlock()
	if !ok { // an expired pair's tokens are gone with it (dropLocked)
		return nil, 0, fmt.Errorf("unknown, used or expired token %s", tok)
	}
	if !s.connectedFrom(h.p.peers[h.side], ip) {
		return nil, 0, fmt.Errorf("token %s of %s presented from %s, where that peer is not connected from", tok, h.p.peers[h.side], ip)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if h.p.done {
		return nil, 0, fmt.Errorf("token %s expired", tok)
	}
	h.p.conns[h.side] = c
	if !h.p.opened() {
		return nil, 0, nil
	}
	h.p.timer.Stop()
	return h.p, h.side, nil
}

// connectedFrom reports whether p has a connection to the supernode from
// the IP address ip: a token works only from where its peer is.
func (s *Server) connectedFrom(p peer.ID, ip string) bool {
	for _, c := range s.host.Network().ConnsToPeer(p) {
		if rip, err := manet.ToIP(c.RemoteMultiaddr()); err == nil && rip.String() == ip {
			return true
		}
	}
	return false
}

// run tells both sides they are paired and copies between them until
// both directions end.
func (s *Server) run(p *pair) {
	start := time.Now()
	s.cfg.Tracer.SpliceOpened()
	defer func() {
		s.cfg.Tracer.SpliceClosed(time.Since(start))
		p.conns[0].Close()
		p.conns[1].Close()
		s.drop(p)
	}()
	for _, c := range p.conns {
		_ = c.SetWriteDeadline(time.Now().Add(s.cfg.HelloTimeout))
		if _, err := c.Write([]byte{okByte}); err != nil {
			log.Debugw("splice: tell a side it is paired", "peer", p.peers, "err", err)
			return
		}
		_ = c.SetWriteDeadline(time.Time{})
	}
	log.Debugw("splice open", "a", p.peers[0], "b", p.peers[1])
	errs := make(chan error, 2)
	go func() { errs <- s.copy(p.conns[1], p.conns[0]) }()
	go func() { errs <- s.copy(p.conns[0], p.conns[1]) }()
	for range 2 {
		if err := <-errs; err != nil {
			// One side broke: unblock the other direction.
			p.conns[0].Close()
			p.conns[1].Close()
		}
	}
	log.Debugw("splice closed", "a", p.peers[0], "b", p.peers[1], "after", time.Since(start))
}

// spliceChunk is how much one io.CopyN moves before the byte counters
// are updated. io.CopyN between two *net.TCPConn keeps the kernel's
// splice(2) path (net handles an *io.LimitedReader of a TCPConn).
const spliceChunk = 4 << 20

// copy moves bytes from src to dst until src ends, then half-closes dst.
func (s *Server) copy(dst, src *net.TCPConn) error {
	for {
		n, err := io.CopyN(dst, src, spliceChunk)
		if n > 0 {
			s.cfg.Tracer.BytesSpliced(int(n))
		}
		if errors.Is(err, io.EOF) {
			return dst.CloseWrite()
		}
		if err != nil {
			return err
		}
	}
}
