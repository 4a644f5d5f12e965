// Package client is the client side of /parley/rendezvous/1.0.0: accounts,
// devices, login sessions with pushed presence and certificates, contacts,
// the supernode directory and the offline mailbox (mailbox.go).
//
// Errors from the server are *rendezvous.StatusError values that unwrap to
// the rendezvous sentinels, so callers test them with errors.Is, for example
// errors.Is(err, rendezvous.ErrBadCredentials).
package client

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	logging "github.com/ipfs/go-log/v2"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	ma "github.com/multiformats/go-multiaddr"
	"google.golang.org/protobuf/proto"

	"github.com/parleynet/parley/internal/wire"
	"github.com/parleynet/parley/rendezvous"
	"github.com/parleynet/parley/rendezvous/pb"
)

var log = logging.Logger("parley/rendezvous/client")

// Client talks to one rendezvous server from a libp2p host. It is safe for
// concurrent use.
type Client struct {
	host   host.Host
	server peer.ID
}

// New returns a client of the server at info. It keeps the server's
// addresses in the host's peerstore.
func New(h host.Host, server peer.AddrInfo) *Client {
	h.Peerstore().AddAddrs(server.ID, server.Addrs, peerstore.PermanentAddrTTL)
	return &Client{host: h, server: server.ID}
}

// Server is the rendezvous server's peer ID.
func (c *Client) Server() peer.ID { return c.server }

// Register creates an account and enrols this device. It returns the
// canonical username.
func (c *Client) Register(ctx context.Context, username, password string) (string, error) {
	resp, err := c.roundTrip(ctx, &pb.Request{Body: &pb.Request_Register{Register: &pb.RegisterRequest{Username: username, Password: password}}})
	if err != nil {
		return "", fmt.Errorf("register %s: %w", username, err)
	}
	return resp.GetAccount().GetUsername(), nil
}

// Enrol adds this device to an existing account. It returns the canonical
// username.
func (c *Client) Enrol(ctx context.Context, username, password string) (string, error) {
	resp, err := c.roundTrip(ctx, &pb.Request{Body: &pb.Request_Enrol{Enrol: &pb.EnrolRequest{Username: username, Password: password}}})
	if err != nil {
		return "", fmt.Errorf("enrol device as %s: %w", username, err)
	}
	return resp.GetAccount().GetUsername(), nil
}

// ChangePassword replaces the account's password. It needs the current
// one and is made from an enrolled device.
func (c *Client) ChangePassword(ctx context.Context, oldPassword, newPassword string) error {
	_, err := c.roundTrip(ctx, &pb.Request{Body: &pb.Request_ChangePassword{ChangePassword: &pb.ChangePasswordRequest{OldPassword: oldPassword, NewPassword: newPassword}}})
	if err != nil {
		return fmt.Errorf("change password: %w", err)
	}
	return nil
}

// DeleteAccount deletes this device's account with its devices and
// contacts. It needs the password.
func (c *Client) DeleteAccount(ctx context.Context, password string) error {
	_, err := c.roundTrip(ctx, &pb.Request{Body: &pb.Request_DeleteAccount{DeleteAccount: &pb.DeleteAccountRequest{Password: password}}})
	if err != nil {
		return fmt.Errorf("delete account: %w", err)
	}
	return nil
}

// Device is one of the account's devices.
type Device struct {
	Peer     peer.ID
	Enrolled time.Time
	Revoked  time.Time // zero while active
	Online   bool
}

// Devices lists the account's devices, oldest first.
func (c *Client) Devices(ctx context.Context) ([]Device, error) {
	resp, err := c.roundTrip(ctx, &pb.Request{Body: &pb.Request_ListDevices{ListDevices: &pb.ListDevicesRequest{}}})
	if err != nil {
		return nil, fmt.Errorf("list devices: %w", err)
	}
	var out []Device
	for _, d := range resp.GetDevices().GetDevices() {
		id, err := peer.IDFromBytes(d.GetPeerId())
		if err != nil {
			return nil, fmt.Errorf("list devices: bad peer ID from server: %w", err)
		}
		dev := Device{Peer: id, Enrolled: time.UnixMilli(d.GetEnrolledUnixMs()), Online: d.GetOnline()}
		if ms := d.GetRevokedUnixMs(); ms != 0 {
			dev.Revoked = time.UnixMilli(ms)
		}
		out = append(out, dev)
	}
	return out, nil
}

// RevokeDevice revokes one of the account's devices: its session is
// closed and it can never log in again.
func (c *Client) RevokeDevice(ctx context.Context, device peer.ID) error {
	_, err := c.roundTrip(ctx, &pb.Request{Body: &pb.Request_RevokeDevice{RevokeDevice: &pb.RevokeDeviceRequest{PeerId: []byte(device)}}})
	if err != nil {
		return fmt.Errorf("revoke device %s: %w", device, err)
	}
	return nil
}

// RequestContact asks username to become a contact. It reports whether
// the two are contacts now (username had asked too). The answer is the
// same whether or not username exists.
func (c *Client) RequestContact(ctx context.Context, username string) (bool, error) {
	resp, err := c.roundTrip(ctx, &pb.Request{Body: &pb.Request_RequestContact{RequestContact: &pb.ContactRequest{Username: username}}})
	if err != nil {
		return false, fmt.Errorf("request contact %s: %w", username, err)
	}
	return resp.GetContact().GetAccepted(), nil
}

// AcceptContact accepts username's pending request.
func (c *Client) AcceptContact(ctx context.Context, username string) error {
	return c.contactOp(ctx, "accept contact", username, func(r *pb.ContactRequest) *pb.Request {
		return &pb.Request{Body: &pb.Request_AcceptContact{AcceptContact: r}}
	})
}

// DeclineContact drops username's pending request; username is not told.
func (c *Client) DeclineContact(ctx context.Context, username string) error {
	return c.contactOp(ctx, "decline contact", username, func(r *pb.ContactRequest) *pb.Request {
		return &pb.Request{Body: &pb.Request_DeclineContact{DeclineContact: r}}
	})
}

// RemoveContact ends a contact, or withdraws a request made to username.
func (c *Client) RemoveContact(ctx context.Context, username string) error {
	return c.contactOp(ctx, "remove contact", username, func(r *pb.ContactRequest) *pb.Request {
		return &pb.Request{Body: &pb.Request_RemoveContact{RemoveContact: r}}
	})
}

// Block removes username as a contact and refuses their requests.
func (c *Client) Block(ctx context.Context, username string) error {
	return c.contactOp(ctx, "block", username, func(r *pb.ContactRequest) *pb.Request {
		return &pb.Request{Body: &pb.Request_Block{Block: r}}
	})
}

// Unblock lifts a block.
func (c *Client) Unblock(ctx context.Context, username string) error {
	return c.contactOp(ctx, "unblock", username, func(r *pb.ContactRequest) *pb.Request {
		return &pb.Request{Body: &pb.Request_Unblock{Unblock: r}}
	})
}

func (c *Client) contactOp(ctx context.Context, what, username string, wrap func(*pb.ContactRequest) *pb.Request) error {
	if _, err := c.roundTrip(ctx, wrap(&pb.ContactRequest{Username: username})); err != nil {
		return fmt.Errorf("%s %s: %w", what, username, err)
	}
	return nil
}

// ContactBook is the account's contact book.
type ContactBook struct {
	Accepted []Presence // contacts, with their presence
	Incoming []string   // users asking to become contacts
	Outgoing []string   // users this account asked
	Blocked  []string
}

// Contacts returns the account's contact book.
func (c *Client) Contacts(ctx context.Context) (ContactBook, error) {
	resp, err := c.roundTrip(ctx, &pb.Request{Body: &pb.Request_ListContacts{ListContacts: &pb.ListContactsRequest{}}})
	if err != nil {
		return ContactBook{}, fmt.Errorf("list contacts: %w", err)
	}
	l := resp.GetContacts()
	book := ContactBook{Incoming: l.GetIncoming(), Outgoing: l.GetOutgoing(), Blocked: l.GetBlocked()}
	for _, p := range l.GetAccepted() {
		book.Accepted = append(book.Accepted, presenceFromPB(p))
	}
	return book, nil
}

// ServerInfo is what the server tells clients about itself.
type ServerInfo struct {
	// CertKey verifies the server's membership certificates.
	CertKey      crypto.PubKey
	CertLifetime time.Duration
}

// ServerInfo asks the server for its certificate key.
func (c *Client) ServerInfo(ctx context.Context) (ServerInfo, error) {
	resp, err := c.roundTrip(ctx, &pb.Request{Body: &pb.Request_ServerInfo{ServerInfo: &pb.ServerInfoRequest{}}})
	if err != nil {
		return ServerInfo{}, fmt.Errorf("server info: %w", err)
	}
	return serverInfoFromPB(resp.GetServerInfo())
}

func serverInfoFromPB(i *pb.ServerInfo) (ServerInfo, error) {
	key, err := crypto.UnmarshalPublicKey(i.GetCertPublicKey())
	if err != nil {
		return ServerInfo{}, fmt.Errorf("server info: bad certificate key: %w", err)
	}
	return ServerInfo{CertKey: key, CertLifetime: time.Duration(i.GetCertLifetimeMs()) * time.Millisecond}, nil
}

// Supernodes returns up to max active supernodes, best first for this
// client (0 means the server's default). rtts are round trips this client
// measured to supernodes (at most rendezvous.MaxRTTHints are sent, the
// shortest); the server ranks by load first and by them next.
func (c *Client) Supernodes(ctx context.Context, max int, rtts map[peer.ID]time.Duration) ([]peer.AddrInfo, error) {
	req := &pb.ListSupernodesRequest{Max: uint32(max)}
	for id, rtt := range rtts {
		req.Rtts = append(req.Rtts, &pb.SupernodeRTT{PeerId: []byte(id), RttUs: uint32(min(rtt.Microseconds(), math.MaxUint32))})
	}
	if len(req.Rtts) > rendezvous.MaxRTTHints {
		slices.SortFunc(req.Rtts, func(a, b *pb.SupernodeRTT) int { return cmp.Compare(a.RttUs, b.RttUs) })
		req.Rtts = req.Rtts[:rendezvous.MaxRTTHints]
	}
	resp, err := c.roundTrip(ctx, &pb.Request{Body: &pb.Request_ListSupernodes{ListSupernodes: req}})
	if err != nil {
		return nil, fmt.Errorf("list supernodes: %w", err)
	}
	var out []peer.AddrInfo
	for _, pi := range resp.GetSupernodes().GetSupernodes() {
		id, err := peer.IDFromBytes(pi.GetPeerId())
		if err != nil {
			return nil, fmt.Errorf("list supernodes: bad peer ID from server: %w", err)
		}
		out = append(out, peer.AddrInfo{ID: id, Addrs: decodeAddrs(pi.GetAddrs())})
	}
	return out, nil
}

// Announcement is the directory's answer to a supernode's heartbeat.
type Announcement struct {
	// TTL is how long the entry lasts: announce again well before.
	TTL time.Duration
	// Active says whether the directory hands this supernode out to
	// clients (elected) or keeps it as a standby.
	Active bool
}

// AnnounceSupernode registers this host as a supernode candidate, or
// renews the registration with its current load.
func (c *Client) AnnounceSupernode(ctx context.Context, addrs []ma.Multiaddr, load *pb.SupernodeLoad) (Announcement, error) {
	req := &pb.AnnounceSupernodeRequest{Addrs: encodeAddrs(addrs), Load: load}
	resp, err := c.roundTrip(ctx, &pb.Request{Body: &pb.Request_AnnounceSupernode{AnnounceSupernode: req}})
	if err != nil {
		return Announcement{}, fmt.Errorf("announce supernode: %w", err)
	}
	a := resp.GetAnnounce()
	return Announcement{TTL: time.Duration(a.GetTtlMs()) * time.Millisecond, Active: a.GetActive()}, nil
}

// LeaveSupernode tells the directory this supernode is shutting down, so
// that it is no longer handed out.
func (c *Client) LeaveSupernode(ctx context.Context) error {
	req := &pb.AnnounceSupernodeRequest{Leaving: true}
	if _, err := c.roundTrip(ctx, &pb.Request{Body: &pb.Request_AnnounceSupernode{AnnounceSupernode: req}}); err != nil {
		return fmt.Errorf("leave supernode directory: %w", err)
	}
	return nil
}

// roundTrip sends one request on a new stream and reads its response. A
// response with a status other than OK becomes a *rendezvous.StatusError.
func (c *Client) roundTrip(ctx context.Context, req *pb.Request) (*pb.Response, error) {
	ctx, cancel := context.WithTimeout(ctx, rendezvous.RequestTimeout)
	defer cancel()
	st, err := c.host.NewStream(ctx, c.server, rendezvous.ProtocolID)
	if err != nil {
		return nil, fmt.Errorf("open stream to rendezvous server: %w", err)
	}
	defer st.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = st.SetDeadline(dl)
	}
	if err := wire.Write(st, req, rendezvous.RequestLimit(req)); err != nil {
		st.Reset()
		if errors.Is(err, proto.Error) { // nothing was sent: a string is not UTF-8
			return nil, fmt.Errorf("%w: the request cannot be encoded: %v", rendezvous.ErrBadRequest, err)
		}
		return nil, fmt.Errorf("send request: %w", err)
	}
	_ = st.CloseWrite()
	resp := new(pb.Response)
	if err := wire.NewReader(st, rendezvous.MaxResponseSize).Read(resp); err != nil {
		st.Reset()
		return nil, fmt.Errorf("read response: %w", err)
	}
	if err := rendezvous.ResponseError(resp); err != nil {
		return nil, err
	}
	return resp, nil
}

func encodeAddrs(addrs []ma.Multiaddr) [][]byte {
	out := make([][]byte, 0, len(addrs))
	for _, a := range addrs {
		out = append(out, a.Bytes())
	}
	return out
}

// decodeAddrs drops addresses that do not parse; the server validated
// them, so a bad one means a newer peer with an unknown protocol.
func decodeAddrs(raw [][]byte) []ma.Multiaddr {
	out := make([]ma.Multiaddr, 0, len(raw))
	for _, b := range raw {
		a, err := ma.NewMultiaddrBytes(b)
		if err != nil {
			log.Debugw("skipping unparsable address", "err", err)
			continue
		}
		out = append(out, a)
	}
	return out
}

var errSessionClosed = errors.New("session closed")
