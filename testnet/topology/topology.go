// Package topology describes a NAT-lab network for parley-testnet: its
// supernodes, the default delay of every public link and loss of every
// client's link, and each client with the kind of network it is on. It reads the small text format of
// a topology file and the --nat flag's short form.
//
// A topology file has one statement a line; # starts a comment:
//
//	supernodes 2          # parley-relay supernodes on public hosts (default 2)
//	delay 20ms            # one-way delay of every public link (default 0)
//	client alice cone     # a client behind a NAT of its own
//	loss 1%               # share of packets each client's link drops (default 0)
//	client bob symmetric 50ms 5%   # with its own link delay and loss
//	client carol public   # a client on a public host
//	client dave udp-blocked   # behind a cone NAT that drops all UDP
package topology

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Kinds are the networks a client can be on.
//
//   - cone: Linux MASQUERADE, endpoint-independent mapping
//   - symmetric: MASQUERADE --random-fully, a new port per destination
//   - udp-blocked: a cone NAT that also drops all UDP (TCP only)
//   - upnp: a cone NAT whose router runs miniupnpd (UPnP IGD, NAT-PMP):
//     the client maps a port and is reachable directly
//   - public: no NAT, a public address
var Kinds = []string{"cone", "symmetric", "udp-blocked", "upnp", "public"}

// Limits of a topology: the lab has a /24 of public addresses.
const (
	MaxClients    = 64
	MaxSupernodes = 16
	MaxDelay      = 5 * time.Second
	MaxLoss       = 0.5
)

// Topology is a lab network.
type Topology struct {
	Supernodes int
	Delay      time.Duration
	Loss       float64 // drop probability of every client's public link
	Clients    []Client
}

// Client is one client and its network.
type Client struct {
	Name string
	Kind string // one of Kinds
	// Delay is its public link's one-way delay; negative means the
	// topology's Delay.
	Delay time.Duration
	// Loss is its public link's drop probability; negative means the
	// topology's Loss.
	Loss float64
}

// LinkDelay is the client's link delay in t.
func (c Client) LinkDelay(t Topology) time.Duration {
	if c.Delay < 0 {
		return t.Delay
	}
	return c.Delay
}

// LinkLoss is the client's link loss in t.
func (c Client) LinkLoss(t Topology) float64 {
	if c.Loss < 0 {
		return t.Loss
	}
	return c.Loss
}

// namePattern is what a client's name looks like: it names a namespace,
// a NAT (name-nat) and a data directory.
var namePattern = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,19}$`)

// reserved are the names of the lab's own hosts.
var reserved = regexp.MustCompile(`^(rendezvous|supernode[0-9]+|inet)$`)

// Parse reads a topology file. Errors name the line.
func Parse(r io.Reader) (Topology, error) {
	t := Topology{Supernodes: 2}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 4096)
	seen := map[string]bool{}
	line := 0
	for sc.Scan() {
		line++
		text, _, _ := strings.Cut(sc.Text(), "#")
		f := strings.Fields(text)
		if len(f) == 0 {
			continue
		}
		if err := t.statement(f, seen); err != nil {
			return Topology{}, fmt.Errorf("topology line %d: %w", line, err)
		}
	}
	if err := sc.Err(); err != nil {
		return Topology{}, fmt.Errorf("read topology (line %d): %w", line+1, err)
	}
	return t, t.Validate()
}

func (t *Topology) statement(f []string, seen map[string]bool) error {
	switch f[0] {
	case "supernodes":
		if len(f) != 2 {
			return errors.New(`want "supernodes N"`)
		}
		n, err := strconv.Atoi(f[1])
		if err != nil || n < 1 || n > MaxSupernodes {
			return fmt.Errorf("supernodes %q: want a number from 1 to %d", f[1], MaxSupernodes)
		}
		t.Supernodes = n
	case "delay":
		if len(f) != 2 {
			return errors.New(`want "delay DURATION", e.g. "delay 20ms"`)
		}
		d, err := parseDelay(f[1])
		if err != nil {
			return err
		}
		t.Delay = d
	case "loss":
		if len(f) != 2 {
			return errors.New(`want "loss PERCENT", e.g. "loss 1%"`)
		}
		p, err := ParseLoss(f[1])
		if err != nil {
			return err
		}
		t.Loss = p
	case "client":
		if len(f) < 3 || len(f) > 5 {
			return errors.New(`want "client NAME KIND [DELAY] [LOSS%]", e.g. "client alice cone 20ms 1%"`)
		}
		c := Client{Name: f[1], Kind: f[2], Delay: -1, Loss: -1}
		if err := c.linkFields(f[3:]); err != nil {
			return err
		}
		if err := c.validate(); err != nil {
			return err
		}
		if seen[c.Name] {
			return fmt.Errorf("client %q appears twice", c.Name)
		}
		seen[c.Name] = true
		t.Clients = append(t.Clients, c)
	default:
		return fmt.Errorf("unknown statement %q: want supernodes, delay, loss or client", f[0])
	}
	return nil
}

func parseDelay(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 || d > MaxDelay {
		return 0, fmt.Errorf("delay %q: want a duration from 0 to %v, e.g. 20ms", s, MaxDelay)
	}
	return d, nil
}

// linkFields reads a client line's optional delay and loss, in that
// order: a loss ends in %.
func (c *Client) linkFields(f []string) error {
	for i, s := range f {
		if strings.HasSuffix(s, "%") {
			if c.Loss >= 0 {
				return fmt.Errorf("client %s: two losses", c.Name)
			}
			p, err := ParseLoss(s)
			if err != nil {
				return err
			}
			c.Loss = p
			continue
		}
		if i > 0 || c.Delay >= 0 {
			return fmt.Errorf("client %s: %q: want the delay before the loss, e.g. 20ms 1%%", c.Name, s)
		}
		d, err := parseDelay(s)
		if err != nil {
			return err
		}
		c.Delay = d
	}
	return nil
}

// ParseLoss reads a loss in percent, "1%" or "0.5%", as a probability.
func ParseLoss(s string) (float64, error) {
	num, ok := strings.CutSuffix(s, "%")
	v, err := strconv.ParseFloat(num, 64)
	if !ok || err != nil || !(v >= 0 && v <= 100*MaxLoss) {
		return 0, fmt.Errorf("loss %q: want a percentage from 0%% to %g%%, e.g. 1%%", s, 100*MaxLoss)
	}
	return v / 100, nil
}

func (c Client) validate() error {
	if !namePattern.MatchString(c.Name) || reserved.MatchString(c.Name) {
		return fmt.Errorf("client name %q: want 1 to 20 lower-case letters, digits, - or _, starting with a letter, and not rendezvous, inet or supernodeN", c.Name)
	}
	if !slices.Contains(Kinds, c.Kind) {
		return fmt.Errorf("client %s: kind %q: want one of %s", c.Name, c.Kind, strings.Join(Kinds, ", "))
	}
	return nil
}

// Validate checks a topology made in code or from flags.
func (t Topology) Validate() error {
	if t.Supernodes < 1 || t.Supernodes > MaxSupernodes {
		return fmt.Errorf("topology: %d supernodes, want 1 to %d", t.Supernodes, MaxSupernodes)
	}
	if t.Delay < 0 || t.Delay > MaxDelay {
		return fmt.Errorf("topology: delay %v, want 0 to %v", t.Delay, MaxDelay)
	}
	if !(t.Loss >= 0 && t.Loss <= MaxLoss) {
		return fmt.Errorf("topology: loss %v, want 0 to %v", t.Loss, MaxLoss)
	}
	if len(t.Clients) < 2 || len(t.Clients) > MaxClients {
		return fmt.Errorf("topology: %d clients, want 2 to %d", len(t.Clients), MaxClients)
	}
	seen := map[string]bool{}
	for _, c := range t.Clients {
		if err := c.validate(); err != nil {
			return fmt.Errorf("topology: %w", err)
		}
		if seen[c.Name] {
			return fmt.Errorf("topology: client %q appears twice", c.Name)
		}
		seen[c.Name] = true
	}
	return nil
}

// FromCounts builds the clients of the --nat flag's short form,
// "cone=2,symmetric=1": that many clients of each kind, in that order,
// named by names(i) for the ith client overall.
func FromCounts(spec string, names func(i int) string) ([]Client, error) {
	var out []Client
	for part := range strings.SplitSeq(spec, ",") {
		kind, num, ok := strings.Cut(strings.TrimSpace(part), "=")
		n, err := strconv.Atoi(num)
		if !ok || err != nil || n < 0 || n > MaxClients {
			return nil, fmt.Errorf("--nat %q: want KIND=COUNT[,KIND=COUNT…], e.g. cone=2,symmetric=1", spec)
		}
		if !slices.Contains(Kinds, kind) {
			return nil, fmt.Errorf("--nat %q: kind %q: want one of %s", spec, kind, strings.Join(Kinds, ", "))
		}
		for range n {
			if len(out) == MaxClients {
				return nil, fmt.Errorf("--nat %q: more than %d clients", spec, MaxClients)
			}
			out = append(out, Client{Name: names(len(out)), Kind: kind, Delay: -1, Loss: -1})
		}
	}
	return out, nil
}
