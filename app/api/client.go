package api

import (
	"bufio"
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
	"reflect"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/parleynet/parley/app/apitype"
	"github.com/parleynet/parley/app/chat"
	"github.com/parleynet/parley/app/datadir"
	"github.com/parleynet/parley/rendezvous"
)

// ErrNoDaemon means no daemon is running for the data directory.
var ErrNoDaemon = errors.New("no parley daemon is running for this data directory")

// Client calls a running daemon's API. It implements apitype.Client.
type Client struct {
	info Info
	http *http.Client
}

var _ apitype.Client = (*Client)(nil)

// Dial reads InfoFile from dataDir. dial, when given, makes the
// connections to the daemon (the NAT lab reaches a daemon inside a network
// namespace this way).
func Dial(dataDir string, dial ...func(ctx context.Context, network, addr string) (net.Conn, error)) (*Client, error) {
	data, err := os.ReadFile(filepath.Join(dataDir, InfoFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w (%s); start one with: %s", ErrNoDaemon, dataDir, startCommand(dataDir))
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

// startCommand is the command that starts a daemon for dataDir. Only a
// daemon that has run there before remembers its rendezvous server.
func startCommand(dataDir string) string {
	cmd := "parley --data " + datadir.Quote(dataDir) + " daemon"
	if _, err := os.Stat(filepath.Join(dataDir, datadir.SettingsFile)); err != nil {
		cmd += " --rendezvous ADDR (the rendezvous server's multiaddr, as printed by parley-rendezvous; later starts remember it)"
	}
	return cmd
}

// Status returns the daemon's status.
func (c *Client) Status(ctx context.Context) (apitype.Status, error) {
	var s apitype.Status
	return s, c.do(ctx, http.MethodGet, "/api/status", nil, &s)
}

// Register creates an account with the daemon's device.
func (c *Client) Register(ctx context.Context, username, password string) (apitype.Account, error) {
	var a apitype.Account
	return a, c.do(ctx, http.MethodPost, "/api/register", apitype.AccountRequest{Username: username, Password: password}, &a)
}

// Enrol adds the daemon's device to an account.
func (c *Client) Enrol(ctx context.Context, username, password string) (apitype.Account, error) {
	var a apitype.Account
	return a, c.do(ctx, http.MethodPost, "/api/enrol", apitype.AccountRequest{Username: username, Password: password}, &a)
}

// RequestContact asks username to become a contact.
func (c *Client) RequestContact(ctx context.Context, username string) (apitype.ContactRequestResult, error) {
	var res apitype.ContactRequestResult
	return res, c.do(ctx, http.MethodPost, "/api/contacts/request", apitype.ContactRequest{Username: username}, &res)
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
	return c.do(ctx, http.MethodPost, "/api/contacts/"+op, apitype.ContactRequest{Username: username}, nil)
}

// Contacts returns the contact book with presence.
func (c *Client) Contacts(ctx context.Context) (apitype.ContactBook, error) {
	var b apitype.ContactBook
	return b, c.do(ctx, http.MethodGet, "/api/contacts", nil, &b)
}

// Devices lists the account's devices.
func (c *Client) Devices(ctx context.Context) ([]apitype.Device, error) {
	var devs []apitype.Device
	return devs, c.do(ctx, http.MethodGet, "/api/devices", nil, &devs)
}

// RevokeDevice revokes one of the account's devices by peer ID.
func (c *Client) RevokeDevice(ctx context.Context, device string) error {
	return c.do(ctx, http.MethodPost, "/api/devices/revoke", apitype.RevokeRequest{Peer: device}, nil)
}

// ChangePassword replaces the account's password.
func (c *Client) ChangePassword(ctx context.Context, oldPassword, newPassword string) error {
	return c.do(ctx, http.MethodPost, "/api/password", apitype.PasswordChangeRequest{OldPassword: oldPassword, NewPassword: newPassword}, nil)
}

// DeleteAccount deletes the account.
func (c *Client) DeleteAccount(ctx context.Context, password string) error {
	return c.do(ctx, http.MethodPost, "/api/account/delete", apitype.DeleteAccountRequest{Password: password}, nil)
}

// Send sends a chat message.
func (c *Client) Send(ctx context.Context, to, body string) (apitype.Message, error) {
	var m apitype.Message
	if utf8.ValidString(to) && !utf8.ValidString(body) { // as the engine says it
		return m, fmt.Errorf("send: %w: the message is not valid UTF-8", chat.ErrInvalidMessage)
	}
	return m, c.do(ctx, http.MethodPost, "/api/send", apitype.SendRequest{To: to, Body: body}, &m)
}

// History returns messages exchanged with a contact, oldest first.
func (c *Client) History(ctx context.Context, q apitype.HistoryQuery) ([]apitype.Message, error) {
	var msgs []apitype.Message
	v := url.Values{"contact": {q.Contact}}
	if q.Limit != 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	if q.Before != "" {
		v.Set("before", q.Before)
	}
	return msgs, c.do(ctx, http.MethodGet, "/api/history?"+v.Encode(), nil, &msgs)
}

// Conversations lists the conversations with their unread counts.
func (c *Client) Conversations(ctx context.Context) ([]apitype.Conversation, error) {
	var convs []apitype.Conversation
	return convs, c.do(ctx, http.MethodGet, "/api/conversations", nil, &convs)
}

// MarkRead marks every message from contact read.
func (c *Client) MarkRead(ctx context.Context, contact string) (apitype.ReadResult, error) {
	var res apitype.ReadResult
	return res, c.do(ctx, http.MethodPost, "/api/read", apitype.ReadRequest{Contact: contact}, &res)
}

// Probe streams size bytes to a contact's device and reports what arrived.
func (c *Client) Probe(ctx context.Context, username string, size int64) (apitype.ProbeResult, error) {
	var res apitype.ProbeResult
	return res, c.do(ctx, http.MethodPost, "/api/probe", apitype.ProbeRequest{Username: username, Size: size}, &res)
}

// Publish shares a file or folder in place and announces it.
func (c *Client) Publish(ctx context.Context, path string) (apitype.Published, error) {
	var p apitype.Published
	return p, c.do(ctx, http.MethodPost, "/api/publish", apitype.PublishRequest{Path: path}, &p)
}

// Unpublish stops announcing and serving content.
func (c *Client) Unpublish(ctx context.Context, cid string) error {
	return c.do(ctx, http.MethodPost, "/api/unpublish", apitype.UnpublishRequest{CID: cid}, nil)
}

// Published lists the published content.
func (c *Client) Published(ctx context.Context) ([]apitype.Published, error) {
	var ps []apitype.Published
	return ps, c.do(ctx, http.MethodGet, "/api/published", nil, &ps)
}

// Get starts downloading the content a link names.
func (c *Client) Get(ctx context.Context, req apitype.GetRequest) (apitype.Transfer, error) {
	var t apitype.Transfer
	return t, c.do(ctx, http.MethodPost, "/api/get", req, &t)
}

// Transfers lists the downloads.
func (c *Client) Transfers(ctx context.Context) ([]apitype.Transfer, error) {
	var ts []apitype.Transfer
	return ts, c.do(ctx, http.MethodGet, "/api/transfers", nil, &ts)
}

// PauseTransfer stops a download, keeping its verified chunks.
func (c *Client) PauseTransfer(ctx context.Context, id string) error {
	return c.transferOp(ctx, "pause", id)
}

// ResumeTransfer goes on with a paused or failed download.
func (c *Client) ResumeTransfer(ctx context.Context, id string) error {
	return c.transferOp(ctx, "resume", id)
}

// CancelTransfer stops a download and deletes its partial data.
func (c *Client) CancelTransfer(ctx context.Context, id string) error {
	return c.transferOp(ctx, "cancel", id)
}

func (c *Client) transferOp(ctx context.Context, op, id string) error {
	return c.do(ctx, http.MethodPost, "/api/transfers/"+op, apitype.TransferRequest{ID: id}, nil)
}

// Share offers a file or folder to a contact.
func (c *Client) Share(ctx context.Context, req apitype.ShareRequest) (apitype.Offer, error) {
	var o apitype.Offer
	return o, c.do(ctx, http.MethodPost, "/api/share", req, &o)
}

// Offers lists the offers made and received.
func (c *Client) Offers(ctx context.Context) ([]apitype.Offer, error) {
	var list []apitype.Offer
	return list, c.do(ctx, http.MethodGet, "/api/offers", nil, &list)
}

// AcceptOffer accepts an incoming offer and starts its download.
func (c *Client) AcceptOffer(ctx context.Context, req apitype.AcceptOfferRequest) (apitype.Transfer, error) {
	var t apitype.Transfer
	return t, c.do(ctx, http.MethodPost, "/api/offers/accept", req, &t)
}

// DeclineOffer declines an incoming offer.
func (c *Client) DeclineOffer(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodPost, "/api/offers/decline", apitype.OfferRequest{ID: id}, nil)
}

// CancelOffer withdraws an outgoing offer.
func (c *Client) CancelOffer(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodPost, "/api/offers/cancel", apitype.OfferRequest{ID: id}, nil)
}

// reconnectWait is the pause before an event stream that broke is opened
// again.
const reconnectWait = 500 * time.Millisecond

// Watch streams the daemon's events after since (see apitype.Client). A
// stream that breaks is opened again from the last event received, so
// nothing is lost or repeated; the channel is closed when ctx ends or when
// the daemon cannot be reached again (the daemon stopped).
func (c *Client) Watch(ctx context.Context, since uint64) (<-chan apitype.Event, error) {
	body, err := c.openEvents(ctx, since)
	if err != nil {
		return nil, err
	}
	out := make(chan apitype.Event, 16)
	go func() {
		defer close(out)
		cursor := since
		for {
			err := readEvents(ctx, body, func(ev apitype.Event) bool {
				cursor = ev.Seq
				select {
				case out <- ev:
					return true
				case <-ctx.Done():
					return false
				}
			})
			body.Close()
			if ctx.Err() != nil {
				return
			}
			log.Debugw("event stream broke; reconnecting", "after", cursor, "err", err)
			select {
			case <-time.After(reconnectWait):
			case <-ctx.Done():
				return
			}
			if body, err = c.openEvents(ctx, cursor); err != nil {
				log.Debugw("event stream cannot be reopened", "err", err)
				return
			}
		}
	}()
	return out, nil
}

func (c *Client) openEvents(ctx context.Context, since uint64) (io.ReadCloser, error) {
	req, err := c.request(ctx, http.MethodGet, "/api/events", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Last-Event-ID", strconv.FormatUint(since, 10))
	resp, err := c.send(req)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// readEvents parses a server-sent event stream and hands each event to
// yield until yield returns false or the stream ends.
func readEvents(ctx context.Context, r io.Reader, yield func(apitype.Event) bool) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var data []byte
	for sc.Scan() {
		line := sc.Bytes()
		switch {
		case len(line) == 0: // end of an event
			if len(data) == 0 {
				continue
			}
			var ev apitype.Event
			if err := json.Unmarshal(data, &ev); err != nil {
				return fmt.Errorf("decode event: %w", err)
			}
			data = data[:0]
			if !yield(ev) {
				return ctx.Err()
			}
		case bytes.HasPrefix(line, []byte("data:")):
			if len(data) > 0 { // the lines of one event's data are joined by newlines
				data = append(data, '\n')
			}
			data = append(data, bytes.TrimPrefix(bytes.TrimPrefix(line, []byte("data:")), []byte(" "))...)
		}
		// id: and event: repeat what the JSON says; comments are keepalives.
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return io.ErrUnexpectedEOF
}

func (c *Client) request(ctx context.Context, method, path string, in any) (*http.Request, error) {
	var body io.Reader
	if in != nil {
		if err := checkUTF8(in); err != nil {
			return nil, err
		}
		data, err := json.Marshal(in)
		if err != nil {
			return nil, fmt.Errorf("encode request: %w", err)
		}
		body = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+c.info.Addr+path, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.info.Token)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return req, nil
}

// checkUTF8 refuses a request body (an apitype *Request struct) with a
// string that is not UTF-8. JSON cannot carry one: encoding/json would
// replace the bad bytes with U+FFFD, and the daemon would act on text the
// caller never gave (a password with U+FFFD in it). The engine refuses
// such strings with rendezvous.ErrBadRequest, and so does the client.
func checkUTF8(in any) error {
	v := reflect.Indirect(reflect.ValueOf(in))
	if v.Kind() != reflect.Struct {
		return nil
	}
	for i := range v.NumField() {
		if f := v.Field(i); f.Kind() == reflect.String && !utf8.ValidString(f.String()) {
			return fmt.Errorf("%w: %s is not valid UTF-8", rendezvous.ErrBadRequest, v.Type().Field(i).Name)
		}
	}
	return nil
}

// send sends req and returns a successful response, or the daemon's
// error.
func (c *Client) send(req *http.Request) (*http.Response, error) {
	resp, err := c.http.Do(req)
	if err != nil {
		if req.Context().Err() != nil {
			return nil, req.Context().Err()
		}
		return nil, fmt.Errorf("%w (%v); is the daemon still running?", ErrNoDaemon, err)
	}
	if resp.StatusCode == http.StatusOK {
		return resp, nil
	}
	defer resp.Body.Close()
	var e apitype.ErrorResponse
	if json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&e) != nil || e.Error == "" {
		e.Error = "daemon answered " + resp.Status
	}
	return nil, &Error{Status: resp.StatusCode, Code: e.Code, Message: e.Error, sentinel: sentinelOf(e.Code)}
}

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	req, err := c.request(ctx, method, path, in)
	if err != nil {
		return err
	}
	resp, err := c.send(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("decode daemon response: %w", err)
	}
	return nil
}
