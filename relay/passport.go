package relay

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"

	"github.com/parleynet/parley/internal/wire"
	"github.com/parleynet/parley/relay/pb"
)

// ErrNoCertificate means the device has no membership certificate to
// present yet: it has not logged in to the rendezvous server.
var ErrNoCertificate = errors.New("no membership certificate yet; log in to the rendezvous server first")

// AuthError is a supernode's refusal of a certificate.
type AuthError struct {
	Supernode  peer.ID
	Status     pb.AuthResponse_Status
	Message    string
	RetryAfter time.Duration
}

func (e *AuthError) Error() string {
	return fmt.Sprintf("supernode %s refused the certificate (%s): %s", e.Supernode, e.Status, e.Message)
}

// Passport presents the device's membership certificate to supernodes on
// AuthProtocol and remembers until when each one admitted it. A supernode
// grants reservations and circuits only to admitted peers, so a client
// shows its passport before reserving and before dialling a contact
// through a supernode. It is safe for concurrent use.
type Passport struct {
	host    host.Host
	cert    func() []byte
	notifee *network.NotifyBundle

	mu     sync.Mutex // guards the following
	visits map[peer.ID]visit
}

type visit struct {
	cert  []byte // the certificate the supernode admitted
	until time.Time
}

// NewPassport returns a passport that presents the certificate cert
// returns (nil or empty while there is none). Close it when done.
//
// A supernode keeps admissions in memory, so the passport forgets a
// supernode when the last connection to it closes: if it restarted, the
// next Ensure presents the certificate again.
func NewPassport(h host.Host, cert func() []byte) *Passport {
	p := &Passport{host: h, cert: cert, visits: make(map[peer.ID]visit)}
	p.notifee = &network.NotifyBundle{DisconnectedF: func(nw network.Network, c network.Conn) {
		if nw.Connectedness(c.RemotePeer()) != network.Connected {
			p.Forget(c.RemotePeer())
		}
	}}
	h.Network().Notify(p.notifee)
	return p
}

// Close stops watching connections.
func (p *Passport) Close() error {
	p.host.Network().StopNotify(p.notifee)
	return nil
}

// Ensure presents the current certificate to the supernode unless it
// already admitted that certificate for longer than margin from now.
func (p *Passport) Ensure(ctx context.Context, supernode peer.AddrInfo, margin time.Duration) error {
	c := p.cert()
	if len(c) == 0 {
		return ErrNoCertificate
	}
	p.mu.Lock()
	v, ok := p.visits[supernode.ID]
	p.mu.Unlock()
	if ok && bytes.Equal(v.cert, c) && time.Until(v.until) > margin {
		return nil
	}
	_, err := p.Present(ctx, supernode)
	return err
}

// Present shows the current certificate to the supernode, connecting to
// it if needed, and returns until when it admitted the device.
func (p *Passport) Present(ctx context.Context, supernode peer.AddrInfo) (time.Time, error) {
	c := p.cert()
	if len(c) == 0 {
		return time.Time{}, ErrNoCertificate
	}
	ctx, cancel := context.WithTimeout(ctx, exchangeTimeout)
	defer cancel()
	if len(supernode.Addrs) > 0 {
		p.host.Peerstore().AddAddrs(supernode.ID, supernode.Addrs, peerstore.TempAddrTTL)
	}
	s, err := p.host.NewStream(ctx, supernode.ID, AuthProtocol)
	if err != nil {
		return time.Time{}, fmt.Errorf("present certificate to %s: %w", supernode.ID, err)
	}
	defer s.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = s.SetDeadline(dl)
	}
	if err := wire.Write(s, &pb.AuthRequest{Certificate: c}, maxAuthFrame); err != nil {
		s.Reset()
		return time.Time{}, fmt.Errorf("present certificate to %s: %w", supernode.ID, err)
	}
	_ = s.CloseWrite()
	resp := new(pb.AuthResponse)
	if err := wire.NewReader(s, maxAuthFrame).Read(resp); err != nil {
		s.Reset()
		return time.Time{}, fmt.Errorf("read admission from %s: %w", supernode.ID, err)
	}
	if resp.GetStatus() != pb.AuthResponse_STATUS_OK {
		p.Forget(supernode.ID)
		return time.Time{}, &AuthError{
			Supernode:  supernode.ID,
			Status:     resp.GetStatus(),
			Message:    resp.GetMessage(),
			RetryAfter: time.Duration(resp.GetRetryAfterMs()) * time.Millisecond,
		}
	}
	until := time.UnixMilli(resp.GetAdmittedUntilUnixMs())
	p.mu.Lock()
	p.visits[supernode.ID] = visit{cert: c, until: until}
	p.mu.Unlock()
	return until, nil
}

// Forget drops what the passport knows of a supernode, so the next Ensure
// presents the certificate again (after the supernode restarted, say).
func (p *Passport) Forget(supernode peer.ID) {
	p.mu.Lock()
	delete(p.visits, supernode)
	p.mu.Unlock()
}
