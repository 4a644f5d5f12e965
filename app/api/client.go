package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"

	"github.com/parleynet/parley/app"
	"github.com/parleynet/parley/app/chat"
	"github.com/parleynet/parley/app/probe"
)

// ErrNoDaemon means no daemon is running for the data directory.
var ErrNoDaemon = errors.New("no parley daemon is running for this data directory")

// Client calls a running daemon's API.
type Client struct {
	info Info
	http *http.Client
}

// Dial reads InfoFile from dataDir. dial, when given, makes the
// connections to the daemon (the NAT lab reaches a daemon inside a network
// namespace this way).
func Dial(dataDir string, dial ...func(ctx context.Context, network, addr string) (net.Conn, error)) (*Client, error) {
	data, err := os.ReadFile(filepath.Join(dataDir, InfoFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w (%s); start one with: parley daemon --data %s", ErrNoDaemon, dataDir, dataDir)
	}
	if err != nil {
		return nil, fmt.Errorf("read daemon info: %w", err)
	}
	var info Info
	if err := json.Unmarshal(data, &info); err != nil || info.Addr == "" || info.Token == "" {
		return nil, fmt.Errorf("%s in %s is damaged; restart the daemon", InfoFile, dataDir)
	}
	c := &Client{info: info, http: &http.Client{}}
	if len(dial) > 0 {
		c.http.Transport = &http.Transport{DialContext: dial[0]}
	}
	return c, nil
}

// Status returns the daemon's status.
func (c *Client) Status(ctx context.Context) (app.Status, error) {
	var s app.Status
	return s, c.do(ctx, http.MethodGet, "/api/status", nil, &s)
}

// Register creates an account with the daemon's device.
func (c *Client) Register(ctx context.Context, username, password string) error {
	return c.do(ctx, http.MethodPost, "/api/register", map[string]string{"username": username, "password": password}, nil)
}

// Enrol adds the daemon's device to an account.
func (c *Client) Enrol(ctx context.Context, username, password string) error {
	return c.do(ctx, http.MethodPost, "/api/enrol", map[string]string{"username": username, "password": password}, nil)
}

// RequestContact asks username to become a contact; it reports whether
// the two are contacts now (username had asked too).
func (c *Client) RequestContact(ctx context.Context, username string) (bool, error) {
	var out struct{ Accepted bool }
	err := c.do(ctx, http.MethodPost, "/api/contacts/request", map[string]string{"username": username}, &out)
	return out.Accepted, err
}

// AcceptContact accepts username's request.
func (c *Client) AcceptContact(ctx context.Context, username string) error {
	return c.contactOp(ctx, "accept", username)
}

// DeclineContact drops username's request.
func (c *Client) DeclineContact(ctx context.Context, username string) error {
	return c.contactOp(ctx, "decline", username)
}

// RemoveContact ends a contact or withdraws a request.
func (c *Client) RemoveContact(ctx context.Context, username string) error {
	return c.contactOp(ctx, "remove", username)
}

// Block blocks username.
func (c *Client) Block(ctx context.Context, username string) error {
	return c.contactOp(ctx, "block", username)
}

// Unblock lifts a block.
func (c *Client) Unblock(ctx context.Context, username string) error {
	return c.contactOp(ctx, "unblock", username)
}

func (c *Client) contactOp(ctx context.Context, op, username string) error {
	return c.do(ctx, http.MethodPost, "/api/contacts/"+op, map[string]string{"username": username}, nil)
}

// Contacts returns the contact book with presence.
func (c *Client) Contacts(ctx context.Context) (app.ContactBook, error) {
	var b app.ContactBook
	return b, c.do(ctx, http.MethodGet, "/api/contacts", nil, &b)
}

// Devices lists the account's devices.
func (c *Client) Devices(ctx context.Context) ([]app.DeviceStatus, error) {
	var devs []app.DeviceStatus
	return devs, c.do(ctx, http.MethodGet, "/api/devices", nil, &devs)
}

// RevokeDevice revokes one of the account's devices by peer ID.
func (c *Client) RevokeDevice(ctx context.Context, device string) error {
	return c.do(ctx, http.MethodPost, "/api/devices/revoke", map[string]string{"peer": device}, nil)
}

// ChangePassword replaces the account's password.
func (c *Client) ChangePassword(ctx context.Context, oldPassword, newPassword string) error {
	return c.do(ctx, http.MethodPost, "/api/password", map[string]string{"old_password": oldPassword, "new_password": newPassword}, nil)
}

// DeleteAccount deletes the account.
func (c *Client) DeleteAccount(ctx context.Context, password string) error {
	return c.do(ctx, http.MethodPost, "/api/account/delete", map[string]string{"password": password}, nil)
}

// Send sends a chat message and returns it as delivered.
func (c *Client) Send(ctx context.Context, to, body string) (chat.Message, error) {
	var m chat.Message
	return m, c.do(ctx, http.MethodPost, "/api/send", map[string]string{"to": to, "body": body}, &m)
}

// History returns the last limit messages with a contact.
func (c *Client) History(ctx context.Context, contact string, limit int) ([]chat.Message, error) {
	var msgs []chat.Message
	q := url.Values{"contact": {contact}, "limit": {strconv.Itoa(limit)}}
	return msgs, c.do(ctx, http.MethodGet, "/api/history?"+q.Encode(), nil, &msgs)
}

// Probe streams size bytes to a contact's device and reports what arrived.
func (c *Client) Probe(ctx context.Context, username string, size int64) (probe.Result, error) {
	var res probe.Result
	err := c.do(ctx, http.MethodPost, "/api/probe", map[string]any{"username": username, "size": size}, &res)
	return res, err
}

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		data, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+c.info.Addr+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.info.Token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%w (%v); is the daemon still running?", ErrNoDaemon, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error string }
		if json.NewDecoder(resp.Body).Decode(&e) != nil || e.Error == "" {
			e.Error = resp.Status
		}
		return &Error{Code: resp.StatusCode, Message: e.Error}
	}
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("decode daemon response: %w", err)
	}
	return nil
}

// Error is an error answer from the daemon.
type Error struct {
	Code    int
	Message string
}

func (e *Error) Error() string { return e.Message }
