package server

import (
	"fmt"
	"net"
	"time"

	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/parleynet/parley/internal/ratelimit"
	"github.com/parleynet/parley/rendezvous"
	"github.com/parleynet/parley/rendezvous/pb"
)

// Limits are the server's abuse limits: token buckets per account (or
// device) and per source address. They are kept in memory, per replica.
// Each Rate left zero takes its DefaultLimits value; ratelimit.NoLimit
// means none.
type Limits struct {
	// Login limits session logins per device and per source. Clients
	// reconnect with backoff, so a burst covers a restart storm.
	LoginPerDevice, LoginPerSource ratelimit.Rate
	// Password limits everything that checks or sets a password
	// (register, enrol, change password, delete account), per account
	// name and per source: online password guessing.
	PasswordPerAccount, PasswordPerSource ratelimit.Rate
	// Contact limits contact requests per account and per source.
	ContactPerAccount, ContactPerSource ratelimit.Rate
	// Announce limits supernode announcements per peer and per source
	// (a supernode announces every third of SupernodeTTL).
	AnnouncePerPeer, AnnouncePerSource ratelimit.Rate
	// Deposit limits mailbox deposits per account and per source.
	DepositPerAccount, DepositPerSource ratelimit.Rate
}

// rates lists the limits by name, for defaults and validation.
func (l *Limits) rates() map[string]*ratelimit.Rate {
	return map[string]*ratelimit.Rate{
		"LoginPerDevice": &l.LoginPerDevice, "LoginPerSource": &l.LoginPerSource,
		"PasswordPerAccount": &l.PasswordPerAccount, "PasswordPerSource": &l.PasswordPerSource,
		"ContactPerAccount": &l.ContactPerAccount, "ContactPerSource": &l.ContactPerSource,
		"AnnouncePerPeer": &l.AnnouncePerPeer, "AnnouncePerSource": &l.AnnouncePerSource,
		"DepositPerAccount": &l.DepositPerAccount, "DepositPerSource": &l.DepositPerSource,
	}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	def := d.rates()
	for name, r := range l.rates() {
		if *r == (ratelimit.Rate{}) {
			*r = *def[name]
		}
	}
	return l
}

func (l Limits) validate() error {
	for name, r := range l.rates() {
		if err := r.Validate(); err != nil {
			return fmt.Errorf("limit %s: %w", name, err)
		}
	}
	return nil
}

// DefaultLimits suit a public server.
func DefaultLimits() Limits {
	return Limits{
		LoginPerDevice:     ratelimit.Rate{Burst: 10, Every: 6 * time.Second},
		LoginPerSource:     ratelimit.Rate{Burst: 200, Every: 50 * time.Millisecond},
		PasswordPerAccount: ratelimit.Rate{Burst: 5, Every: 12 * time.Second},
		PasswordPerSource:  ratelimit.Rate{Burst: 20, Every: 6 * time.Second},
		ContactPerAccount:  ratelimit.Rate{Burst: 20, Every: 30 * time.Second},
		ContactPerSource:   ratelimit.Rate{Burst: 100, Every: 3 * time.Second},
		AnnouncePerPeer:    ratelimit.Rate{Burst: 6, Every: 2 * time.Second},
		AnnouncePerSource:  ratelimit.Rate{Burst: 100, Every: 50 * time.Millisecond},
		DepositPerAccount:  ratelimit.Rate{Burst: 200, Every: 100 * time.Millisecond},
		DepositPerSource:   ratelimit.Rate{Burst: 1000, Every: 10 * time.Millisecond},
	}
}

// NoLimits turns every limit off (load tests): each is ratelimit.NoLimit.
func NoLimits() Limits {
	var l Limits
	for _, r := range l.rates() {
		*r = ratelimit.NoLimit
	}
	return l
}

type limiters struct {
	loginDevice, loginSource        *ratelimit.Limiter
	passwordAccount, passwordSource *ratelimit.Limiter
	contactAccount, contactSource   *ratelimit.Limiter
	announcePeer, announceSource    *ratelimit.Limiter
	depositAccount, depositSource   *ratelimit.Limiter
}

func newLimiters(l Limits) *limiters {
	return &limiters{
		loginDevice:     ratelimit.New(l.LoginPerDevice),
		loginSource:     ratelimit.New(l.LoginPerSource),
		passwordAccount: ratelimit.New(l.PasswordPerAccount),
		passwordSource:  ratelimit.New(l.PasswordPerSource),
		contactAccount:  ratelimit.New(l.ContactPerAccount),
		contactSource:   ratelimit.New(l.ContactPerSource),
		announcePeer:    ratelimit.New(l.AnnouncePerPeer),
		announceSource:  ratelimit.New(l.AnnouncePerSource),
		depositAccount:  ratelimit.New(l.DepositPerAccount),
		depositSource:   ratelimit.New(l.DepositPerSource),
	}
}

// allow takes a token from the source's bucket and then from the key's.
// A source that is over its limit does not drain the key's bucket, so an
// attacker cannot spend a victim's account allowance from a blocked
// address. The error says when to retry.
func allow(what string, byKey *ratelimit.Limiter, key string, bySource *ratelimit.Limiter, source string) error {
	now := time.Now()
	ok, wait := bySource.Allow(source, now)
	if ok {
		ok, wait = byKey.Allow(key, now)
	}
	if ok {
		return nil
	}
	return &rendezvous.StatusError{
		Status:     pb.Status_STATUS_RATE_LIMITED,
		Message:    fmt.Sprintf("too many %s attempts; retry in %s", what, ceilSecond(wait)),
		RetryAfter: wait,
	}
}

// sourceOf is the IP address a connection comes from, the key of
// per-source limits. Relayed connections count against the relay's
// address.
func sourceOf(a ma.Multiaddr) string {
	ip, err := manet.ToIP(a)
	if err != nil {
		return a.String()
	}
	if ip4 := ip.To4(); ip4 == nil {
		// One IPv6 host usually holds a whole /64.
		return ip.Mask(net.CIDRMask(64, 128)).String()
	}
	return ip.String()
}

// ceilSecond rounds d up to whole seconds, for messages: a wait under
// half a second must not read "retry in 0s".
func ceilSecond(d time.Duration) time.Duration {
	return (d + time.Second - 1).Truncate(time.Second)
}
