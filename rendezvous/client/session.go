package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/parleynet/parley/internal/wire"
	"github.com/parleynet/parley/rendezvous"
	"github.com/parleynet/parley/rendezvous/pb"
)

// Presence is a contact's presence as the server reports it.
type Presence struct {
	Username string
	Online   bool
	Peer     peer.ID        // the device online now; empty when offline
	Addrs    []ma.Multiaddr // its direct and circuit addresses
	LastSeen time.Time      // when offline; zero if never seen
}

// Session is a logged-in device. The server pushes contacts' presence on it
// until it is closed or the connection drops.
type Session struct {
	// Username is the account this device is logged in as.
	Username string
	// Contacts is every accepted contact's presence at login.
	Contacts []Presence

	stream  network.Stream
	updates chan Presence
	closing chan struct{} // closed by Close
	done    chan struct{}

	writeMu sync.Mutex // serialises writes to stream

	closeOnce sync.Once
	err       error // why the session ended; set before done is closed
}

// Login opens a session for this device, advertising addrs to contacts.
// ctx bounds the login exchange only; the session lives until Close.
func (c *Client) Login(ctx context.Context, addrs []ma.Multiaddr) (*Session, error) {
	ctx, cancel := context.WithTimeout(ctx, rendezvous.RequestTimeout)
	defer cancel()
	st, err := c.host.NewStream(ctx, c.server, rendezvous.ProtocolID)
	if err != nil {
		return nil, fmt.Errorf("login: open stream to rendezvous server: %w", err)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = st.SetDeadline(dl)
	}
	req := &pb.Request{Body: &pb.Request_Login{Login: &pb.LoginRequest{Addrs: encodeAddrs(addrs)}}}
	if err := wire.Write(st, req, rendezvous.MaxRequestSize); err != nil {
		st.Reset()
		return nil, fmt.Errorf("login: send request: %w", err)
	}
	r := wire.NewReader(st, rendezvous.MaxResponseSize)
	resp := new(pb.Response)
	if err := r.Read(resp); err != nil {
		st.Reset()
		return nil, fmt.Errorf("login: read response: %w", err)
	}
	if err := statusError(resp); err != nil {
		st.Reset()
		return nil, fmt.Errorf("login: %w", err)
	}
	login := resp.GetLogin()
	if login == nil {
		st.Reset()
		return nil, errors.New("login: server answered without a login result")
	}
	_ = st.SetDeadline(time.Time{})
	s := &Session{
		Username: login.GetUsername(),
		stream:   st,
		updates:  make(chan Presence, 64),
		closing:  make(chan struct{}),
		done:     make(chan struct{}),
	}
	for _, p := range login.GetContacts() {
		s.Contacts = append(s.Contacts, presenceFromPB(p))
	}
	go s.readPushes(r)
	return s, nil
}

// Updates delivers presence changes pushed by the server, in order. It is
// closed when the session ends. The caller must keep reading: while the
// channel is full the session stops reading from the server, and a server
// whose pushes back up closes the session.
func (s *Session) Updates() <-chan Presence { return s.updates }

// Done is closed when the session has ended; Err then says why.
func (s *Session) Done() <-chan struct{} { return s.done }

// Err is nil while the session lives, and afterwards why it ended.
func (s *Session) Err() error {
	select {
	case <-s.done:
		return s.err
	default:
		return nil
	}
}

// UpdateAddrs tells the server (and so every online contact) this device's
// current addresses.
func (s *Session) UpdateAddrs(addrs []ma.Multiaddr) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	select {
	case <-s.done:
		return errSessionClosed
	default:
	}
	_ = s.stream.SetWriteDeadline(time.Now().Add(rendezvous.RequestTimeout))
	req := &pb.Request{Body: &pb.Request_UpdateAddrs{UpdateAddrs: &pb.UpdateAddrsRequest{Addrs: encodeAddrs(addrs)}}}
	if err := wire.Write(s.stream, req, rendezvous.MaxRequestSize); err != nil {
		s.stream.Reset()
		return fmt.Errorf("update addresses: %w", err)
	}
	return nil
}

// Close ends the session; contacts see this device go offline.
func (s *Session) Close() error {
	s.closeOnce.Do(func() {
		close(s.closing)
		_ = s.stream.Close()
	})
	<-s.done
	return nil
}

func (s *Session) readPushes(r *wire.Reader) {
	var err error
	defer func() {
		s.err = err
		close(s.updates)
		close(s.done)
	}()
	for {
		resp := new(pb.Response)
		if err = r.Read(resp); err != nil {
			if errors.Is(err, io.EOF) {
				err = errSessionClosed
			}
			err = fmt.Errorf("rendezvous session: %w", err)
			s.stream.Reset()
			return
		}
		p := resp.GetPresence()
		if p == nil {
			err = errors.New("rendezvous session: unexpected message from server")
			s.stream.Reset()
			return
		}
		select {
		case s.updates <- presenceFromPB(p):
		case <-s.closing:
			err = errSessionClosed
			s.stream.Reset()
			return
		}
	}
}

func presenceFromPB(p *pb.Presence) Presence {
	out := Presence{Username: p.GetUsername(), Online: p.GetOnline(), Addrs: decodeAddrs(p.GetAddrs())}
	if id, err := peer.IDFromBytes(p.GetPeerId()); err == nil {
		out.Peer = id
	}
	if ms := p.GetLastSeenUnixMs(); ms != 0 {
		out.LastSeen = time.UnixMilli(ms)
	}
	return out
}
