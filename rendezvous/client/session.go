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
	Peer     peer.ID         // the device that logged in last; empty when offline
	Addrs    []ma.Multiaddr  // its direct and circuit addresses
	Devices  []peer.AddrInfo // every online device, oldest login first
	LastSeen time.Time       // when offline; zero if never seen
}

// HasDevice reports whether p is one of the user's online devices.
func (pr Presence) HasDevice(p peer.ID) bool {
	for _, d := range pr.Devices {
		if d.ID == p {
			return true
		}
	}
	return pr.Peer == p && p != ""
}

// ContactChange is what happened to a contact.
type ContactChange int

const (
	ContactRequested ContactChange = iota + 1 // the user asks to become a contact
	ContactAccepted                           // the user is a contact now
	ContactRemoved                            // the user is no longer a contact (or request)
)

func (c ContactChange) String() string {
	switch c {
	case ContactRequested:
		return "requested"
	case ContactAccepted:
		return "accepted"
	case ContactRemoved:
		return "removed"
	}
	return "unknown"
}

// Update is one push from the server: a contact's presence, a change to
// the contact book, or mail waiting for this device.
type Update struct {
	Presence *Presence // set for presence changes
	Contact  *ContactEvent
	// Mail is set when mail was deposited for this device (which
	// published a mailbox key): fetch it with Client.FetchMail.
	Mail bool
	// KeysChanged names a user (this account or a contact) whose device
	// keys changed: keys kept for it are out of date.
	KeysChanged string
}

// ContactEvent is a change to the contact book.
type ContactEvent struct {
	Change   ContactChange
	Username string
}

// GoAwayError ends a session whose server is shutting down. Log in again
// after RetryAfter (to this or another replica). It matches
// rendezvous.ErrUnavailable.
type GoAwayError struct{ RetryAfter time.Duration }

func (e *GoAwayError) Error() string {
	return fmt.Sprintf("rendezvous server is going away; log in again in %s", e.RetryAfter)
}

func (e *GoAwayError) Unwrap() error { return rendezvous.ErrUnavailable }

// Session is a logged-in device. The server pushes contacts' presence and
// contact-book changes on it, and renews the device's membership
// certificate, until it is closed or the connection drops.
type Session struct {
	// Username is the account this device is logged in as.
	Username string
	// Contacts is every accepted contact's presence at login.
	Contacts []Presence
	// Incoming lists the users who asked to become contacts, including
	// requests made while this user was offline.
	Incoming []string
	// Server is the server's certificate key and lifetime.
	Server ServerInfo
	// PendingMail is how many mailbox messages waited for this device at
	// login: fetch them with Client.FetchMail (see mailbox.go).
	PendingMail int

	stream    network.Stream
	keepalive time.Duration
	updates   chan Update
	closing   chan struct{} // closed by Close
	done      chan struct{}

	writeMu sync.Mutex // serialises writes to stream

	certMu sync.Mutex
	cert   []byte

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
	if err := rendezvous.ResponseError(resp); err != nil {
		st.Reset()
		return nil, fmt.Errorf("login: %w", err)
	}
	login := resp.GetLogin()
	if login == nil {
		st.Reset()
		return nil, errors.New("login: server answered without a login result")
	}
	info, err := serverInfoFromPB(login.GetServer())
	if err != nil {
		st.Reset()
		return nil, fmt.Errorf("login: %w", err)
	}
	keepalive := time.Duration(login.GetKeepaliveMs()) * time.Millisecond
	if keepalive <= 0 {
		keepalive = 10 * time.Second
	}
	_ = st.SetDeadline(time.Time{})
	s := &Session{
		Username:    login.GetUsername(),
		Incoming:    login.GetIncoming(),
		Server:      info,
		PendingMail: int(login.GetPendingMail()),
		stream:      st,
		keepalive:   keepalive,
		cert:        login.GetCertificate(),
		updates:     make(chan Update, 64),
		closing:     make(chan struct{}),
		done:        make(chan struct{}),
	}
	for _, p := range login.GetContacts() {
		s.Contacts = append(s.Contacts, presenceFromPB(p))
	}
	go s.readPushes(r)
	go s.ping()
	return s, nil
}

// Certificate is the device's current membership certificate (see
// package rendezvous/cert); the server renews it while the session
// lives.
func (s *Session) Certificate() []byte {
	s.certMu.Lock()
	defer s.certMu.Unlock()
	return s.cert
}

// Updates delivers the server's pushes, in order. It is closed when the
// session ends. The caller must keep reading: while the channel is full
// the session stops reading from the server, and a server whose pushes
// back up closes the session.
func (s *Session) Updates() <-chan Update { return s.updates }

// Done is closed when the session has ended; Err then says why.
func (s *Session) Done() <-chan struct{} { return s.done }

// Err is nil while the session lives, and afterwards why it ended: a
// *GoAwayError when the server is leaving, a *rendezvous.StatusError when
// it closed the session (errors.Is(err, rendezvous.ErrDeviceRevoked)),
// or a connection error.
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
	req := &pb.Request{Body: &pb.Request_UpdateAddrs{UpdateAddrs: &pb.UpdateAddrsRequest{Addrs: encodeAddrs(addrs)}}}
	if err := s.send(req); err != nil {
		return fmt.Errorf("update addresses: %w", err)
	}
	return nil
}

func (s *Session) send(req *pb.Request) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	select {
	case <-s.done:
		return errSessionClosed
	default:
	}
	_ = s.stream.SetWriteDeadline(time.Now().Add(rendezvous.RequestTimeout))
	if err := wire.Write(s.stream, req, rendezvous.MaxRequestSize); err != nil {
		s.stream.Reset()
		return err
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

// ping sends a keepalive every interval the server asked for. The reader
// gives up on a server that stays silent for three intervals.
func (s *Session) ping() {
	t := time.NewTicker(s.keepalive)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
			if err := s.send(&pb.Request{Body: &pb.Request_Ping{Ping: &pb.PingRequest{}}}); err != nil {
				log.Debugw("keepalive", "err", err)
				return
			}
		}
	}
}

func (s *Session) readPushes(r *wire.Reader) {
	var err error
	defer func() {
		s.err = err
		close(s.updates)
		close(s.done)
	}()
	for {
		_ = s.stream.SetReadDeadline(time.Now().Add(3 * s.keepalive))
		resp := new(pb.Response)
		if err = r.Read(resp); err != nil {
			if errors.Is(err, io.EOF) {
				err = errSessionClosed
			}
			err = fmt.Errorf("rendezvous session: %w", err)
			s.stream.Reset()
			return
		}
		if err = rendezvous.ResponseError(resp); err != nil {
			s.stream.Reset()
			return
		}
		var u Update
		switch body := resp.Body.(type) {
		case *pb.Response_Pong:
			continue
		case *pb.Response_Certificate:
			s.certMu.Lock()
			s.cert = body.Certificate
			s.certMu.Unlock()
			continue
		case *pb.Response_GoAway:
			err = &GoAwayError{RetryAfter: time.Duration(body.GoAway.GetRetryAfterMs()) * time.Millisecond}
			s.stream.Reset()
			return
		case *pb.Response_Presence:
			p := presenceFromPB(body.Presence)
			u.Presence = &p
		case *pb.Response_ContactEvent:
			u.Contact = &ContactEvent{Change: ContactChange(body.ContactEvent.GetKind()), Username: body.ContactEvent.GetUsername()}
		case *pb.Response_MailWaiting:
			u.Mail = true
		case *pb.Response_DeviceKeysChanged:
			u.KeysChanged = body.DeviceKeysChanged.GetUsername()
		default:
			err = errors.New("rendezvous session: unexpected message from server")
			s.stream.Reset()
			return
		}
		select {
		case s.updates <- u:
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
	for _, d := range p.GetDevices() {
		if id, err := peer.IDFromBytes(d.GetPeerId()); err == nil {
			out.Devices = append(out.Devices, peer.AddrInfo{ID: id, Addrs: decodeAddrs(d.GetAddrs())})
		}
	}
	if ms := p.GetLastSeenUnixMs(); ms != 0 {
		out.LastSeen = time.UnixMilli(ms)
	}
	return out
}
