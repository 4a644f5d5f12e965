package server_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/parleynet/parley/internal/ratelimit"
	"github.com/parleynet/parley/rendezvous"
	"github.com/parleynet/parley/rendezvous/pb"
	"github.com/parleynet/parley/rendezvous/server"
)

// withLimits turns every limit off except those set sets.
func withLimits(set func(l *server.Limits)) func(*server.Config) {
	return func(c *server.Config) {
		c.Limits = server.NoLimits()
		set(&c.Limits)
	}
}

// checkRateLimited checks that err is a rate-limit refusal that says when
// to retry, within max, and returns that wait.
func checkRateLimited(t *testing.T, what string, err error, max time.Duration) time.Duration {
	t.Helper()
	if !errors.Is(err, rendezvous.ErrRateLimited) {
		t.Fatalf("%s: got %v, want ErrRateLimited", what, err)
	}
	se := statusErr(t, err)
	if se.Status != pb.Status_STATUS_RATE_LIMITED {
		t.Errorf("%s: got status %v, want %v", what, se.Status, pb.Status_STATUS_RATE_LIMITED)
	}
	if se.RetryAfter <= 0 || se.RetryAfter > max {
		t.Errorf("%s: got RetryAfter %v, want in (0, %v]", what, se.RetryAfter, max)
	}
	// The message says when, rounded up: never "retry in 0s".
	want := fmt.Sprintf("retry in %s", (se.RetryAfter + time.Second - 1).Truncate(time.Second))
	if !strings.Contains(se.Message, want) {
		t.Errorf("%s: got message %q, want it to say %q", what, se.Message, want)
	}
	return se.RetryAfter
}

// sleepCtx waits for d, or fails the test when ctx ends first.
func sleepCtx(ctx context.Context, t *testing.T, d time.Duration) {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-ctx.Done():
		t.Fatalf("waiting %v: %v", d, ctx.Err())
	}
}

func TestPasswordRateLimitPerAccount(t *testing.T) {
	// A token every 3 s: on a loaded machine an argon2 check can take
	// longer than half a second, and tokens refilled as fast as the
	// guesses came, so the limit was never reached.
	const burst, every = 3, 3 * time.Second
	ts := startServer(t, withLimits(func(l *server.Limits) { l.PasswordPerAccount = ratelimit.Rate{Burst: burst, Every: every} }))
	ctx := testContext(t)
	guesser, _ := newClient(t, ts)
	owner, _ := newClient(t, ts)

	start := time.Now()
	register(ctx, t, ts, "alice", "password1") // checks a password: one token
	guesses := 0
	var err error
	for ; guesses < 10*burst; guesses++ {
		if _, err = guesser.Enrol(ctx, "alice", "wrong password"); !errors.Is(err, rendezvous.ErrBadCredentials) {
			break
		}
	}
	// Tokens refill during the loop, so a slow machine may get more than
	// burst-1 guesses, never fewer.
	refill := int(time.Since(start) / every)
	if lo, hi := burst-1, burst-1+refill; guesses < lo || guesses > hi {
		t.Errorf("wrong guesses before the limit: got %d, want %d (+%d refilled)", guesses, lo, refill)
	}
	wait := checkRateLimited(t, "Enrol after too many guesses", err, every)

	// After the wait, attempts are processed again.
	sleepCtx(ctx, t, wait)
	if _, err := guesser.Enrol(ctx, "alice", "wrong password"); !errors.Is(err, rendezvous.ErrBadCredentials) {
		t.Fatalf("Enrol with a wrong password after RetryAfter: got %v, want ErrBadCredentials", err)
	}
	_, err = owner.Enrol(ctx, "alice", "password1")
	if errors.Is(err, rendezvous.ErrRateLimited) { // the guess took the refilled token
		sleepCtx(ctx, t, checkRateLimited(t, "Enrol right after a guess", err, every))
		_, err = owner.Enrol(ctx, "alice", "password1")
	}
	if err != nil {
		t.Errorf("Enrol with the right password after RetryAfter: got %v, want nil", err)
	}
}

func TestPasswordRateLimitLocksAccount(t *testing.T) {
	const burst, every = 2, time.Minute
	ts := startServer(t, withLimits(func(l *server.Limits) { l.PasswordPerAccount = ratelimit.Rate{Burst: burst, Every: every} }))
	ctx := testContext(t)
	alice := register(ctx, t, ts, "alice", "password1") // one token
	guesser, _ := newClient(t, ts)
	owner, _ := newClient(t, ts)

	if _, err := guesser.Enrol(ctx, "alice", "wrong password"); !errors.Is(err, rendezvous.ErrBadCredentials) {
		t.Fatalf("first guess: got %v, want ErrBadCredentials", err)
	}
	// Every password operation on the account is refused now, with the
	// right password too: the limit comes before the check, so a guesser
	// cannot test guesses while limited.
	tests := []struct {
		name string
		do   func() error
	}{
		{"Enrol with a wrong password", func() error { _, err := guesser.Enrol(ctx, "alice", "wrong password"); return err }},
		{"Enrol with the right password", func() error { _, err := owner.Enrol(ctx, "ALICE", "password1"); return err }},
		{"ChangePassword", func() error { return alice.ChangePassword(ctx, "password1", "password2") }},
		{"DeleteAccount", func() error { return alice.DeleteAccount(ctx, "password1") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkRateLimited(t, tt.name, tt.do(), every)
		})
	}
	// Other accounts are not affected, and the account still works.
	other, _ := newClient(t, ts)
	if _, err := other.Register(ctx, "bob", "password1"); err != nil {
		t.Errorf("Register(bob) while alice is limited: got %v, want nil", err)
	}
	login(ctx, t, alice, nil)
}

func TestPasswordRateLimitPerSource(t *testing.T) {
	const burst, every = 3, time.Minute
	ts := startServer(t, withLimits(func(l *server.Limits) { l.PasswordPerSource = ratelimit.Rate{Burst: burst, Every: every} }))
	ctx := testContext(t)

	// Every device and account is new; they share the loopback address.
	for i := range burst {
		c, _ := newClient(t, ts)
		if _, err := c.Enrol(ctx, fmt.Sprintf("user%d", i), "password1"); !errors.Is(err, rendezvous.ErrBadCredentials) {
			t.Fatalf("Enrol attempt %d from the source: got %v, want ErrBadCredentials", i+1, err)
		}
	}
	c, _ := newClient(t, ts)
	_, err := c.Enrol(ctx, "user9", "password1")
	checkRateLimited(t, "Enrol to a fresh account from a limited source", err, every)
	_, err = c.Register(ctx, "user10", "password1")
	checkRateLimited(t, "Register from a limited source", err, every)
}

func TestLoginRateLimitPerDevice(t *testing.T) {
	const burst, every = 2, time.Minute
	ts := startServer(t, withLimits(func(l *server.Limits) { l.LoginPerDevice = ratelimit.Rate{Burst: burst, Every: every} }))
	ctx := testContext(t)
	d1 := register(ctx, t, ts, "alice", "password1")
	d2, _ := newClient(t, ts)
	if _, err := d2.Enrol(ctx, "alice", "password1"); err != nil {
		t.Fatalf("Enrol: %v", err)
	}

	for i := range burst {
		s, err := d1.Login(ctx, nil)
		if err != nil {
			t.Fatalf("Login %d: %v", i+1, err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	}
	_, err := d1.Login(ctx, nil)
	checkRateLimited(t, fmt.Sprintf("Login %d", burst+1), err, every)
	// The limit is per device: the account's other device logs in.
	login(ctx, t, d2, nil)
}

func TestContactRateLimitPerAccount(t *testing.T) {
	const burst, every = 2, time.Minute
	ts := startServer(t, withLimits(func(l *server.Limits) { l.ContactPerAccount = ratelimit.Rate{Burst: burst, Every: every} }))
	ctx := testContext(t)
	alice := register(ctx, t, ts, "alice", "password1")
	bob := register(ctx, t, ts, "bob", "password1")
	register(ctx, t, ts, "carol", "password1")

	// Requests to unknown users count too: enumeration is not free.
	for _, username := range []string{"bob", "nobody"} {
		if _, err := alice.RequestContact(ctx, username); err != nil {
			t.Fatalf("RequestContact(%s): %v", username, err)
		}
	}
	_, err := alice.RequestContact(ctx, "carol")
	checkRateLimited(t, "RequestContact after the burst", err, every)
	// Other accounts, from the same source, are not limited.
	if acc, err := bob.RequestContact(ctx, "alice"); err != nil || !acc {
		t.Errorf("bob RequestContact(alice): got %v, %v, want true, nil", acc, err)
	}
}

func TestNoLimits(t *testing.T) {
	def := server.DefaultLimits()
	tests := []struct {
		name        string
		limits      server.Limits
		wantLimited bool
	}{
		{"no limits", server.NoLimits(), false},
		// The same load is refused with the defaults: the test can fail.
		{"defaults", def, true},
		// A partial Limits takes the defaults for the rest.
		{"zero", server.Limits{}, true},
		{"one rate set", server.Limits{AnnouncePerPeer: ratelimit.NoLimit}, true},
	}
	// More than every default burst.
	n := max(def.PasswordPerAccount.Burst, def.LoginPerDevice.Burst, def.ContactPerAccount.Burst) + 1
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := startServer(t, func(c *server.Config) { c.Limits = tt.limits })
			ctx := testContext(t)
			alice := register(ctx, t, ts, "alice", "password1")
			guesser, _ := newClient(t, ts)

			attempts := []struct {
				what string
				do   func(i int) error
			}{
				{"wrong-password Enrol", func(int) error {
					if _, err := guesser.Enrol(ctx, "alice", "wrong password"); !errors.Is(err, rendezvous.ErrBadCredentials) {
						return err
					}
					return nil
				}},
				{"Login", func(int) error {
					s, err := alice.Login(ctx, nil)
					if err != nil {
						return err
					}
					return s.Close()
				}},
				{"RequestContact", func(i int) error {
					_, err := alice.RequestContact(ctx, fmt.Sprintf("user%d", i))
					return err
				}},
			}
			for _, a := range attempts {
				var limited bool
				for i := range n {
					err := a.do(i)
					if errors.Is(err, rendezvous.ErrRateLimited) {
						limited = true
						break
					}
					if err != nil {
						t.Fatalf("%s %d: %v", a.what, i+1, err)
					}
				}
				if limited != tt.wantLimited {
					t.Errorf("%d × %s: got limited=%v, want %v", n, a.what, limited, tt.wantLimited)
				}
			}
		})
	}
}
