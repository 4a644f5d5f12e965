// Package client is the client side of /parley/rendezvous/1.0.0: account
// registration, device enrolment, login sessions with pushed presence,
// contacts and the supernode directory.
//
// Errors from the server are *rendezvous.StatusError values that unwrap to
// the rendezvous sentinels, so callers test them with errors.Is, for example
// errors.Is(err, rendezvous.ErrBadCredentials).
package client

import (
	"context"
	"errors"
	"fmt"
	"time"

	logging "github.com/ipfs/go-log/v2"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	ma "github.com/multiformats/go-multiaddr"

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

// AddContact asks for username as a contact. It reports whether the two
// are now contacts (the other side had already added this user).
func (c *Client) AddContact(ctx context.Context, username string) (bool, error) {
	resp, err := c.roundTrip(ctx, &pb.Request{Body: &pb.Request_AddContact{AddContact: &pb.AddContactRequest{Username: username}}})
	if err != nil {
		return false, fmt.Errorf("add contact %s: %w", username, err)
	}
	return resp.GetAddContact().GetAccepted(), nil
}

// Supernodes returns up to max supernodes, best first (0 means the
// server's default).
func (c *Client) Supernodes(ctx context.Context, max int) ([]peer.AddrInfo, error) {
	resp, err := c.roundTrip(ctx, &pb.Request{Body: &pb.Request_ListSupernodes{ListSupernodes: &pb.ListSupernodesRequest{Max: uint32(max)}}})
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

// AnnounceSupernode registers this host as a supernode, or renews the
// registration. It returns how long the registration lasts.
func (c *Client) AnnounceSupernode(ctx context.Context, addrs []ma.Multiaddr, load *pb.SupernodeLoad) (time.Duration, error) {
	req := &pb.AnnounceSupernodeRequest{Addrs: encodeAddrs(addrs), Load: load}
	resp, err := c.roundTrip(ctx, &pb.Request{Body: &pb.Request_AnnounceSupernode{AnnounceSupernode: req}})
	if err != nil {
		return 0, fmt.Errorf("announce supernode: %w", err)
	}
	return time.Duration(resp.GetAnnounce().GetTtlMs()) * time.Millisecond, nil
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
	if err := wire.Write(st, req, rendezvous.MaxRequestSize); err != nil {
		st.Reset()
		return nil, fmt.Errorf("send request: %w", err)
	}
	_ = st.CloseWrite()
	resp := new(pb.Response)
	if err := wire.NewReader(st, rendezvous.MaxResponseSize).Read(resp); err != nil {
		st.Reset()
		return nil, fmt.Errorf("read response: %w", err)
	}
	if err := statusError(resp); err != nil {
		return nil, err
	}
	return resp, nil
}

func statusError(resp *pb.Response) error {
	if resp.GetStatus() == pb.Status_STATUS_OK {
		return nil
	}
	msg := resp.GetMessage()
	if msg == "" {
		msg = resp.GetStatus().String()
	}
	return &rendezvous.StatusError{
		Status:     resp.GetStatus(),
		Message:    msg,
		RetryAfter: time.Duration(resp.GetRetryAfterMs()) * time.Millisecond,
	}
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
