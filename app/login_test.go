package app

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parleynet/parley/app/apitype"
	"github.com/parleynet/parley/rendezvous"
	"github.com/parleynet/parley/rendezvous/client"
	"github.com/parleynet/parley/rendezvous/pb"
)

// TestLoginPolicy: what the session loop does after each kind of failure.
func TestLoginPolicy(t *testing.T) {
	const retry = 5 * time.Second
	status := func(s pb.Status, msg string, after time.Duration) error {
		return fmt.Errorf("login: %w", &rendezvous.StatusError{Status: s, Message: msg, RetryAfter: after})
	}
	tests := []struct {
		name        string
		err         error
		wantReason  apitype.LoginReason
		wantStopped bool
		wantWait    time.Duration // ignored when stopped
		wantHint    string
	}{
		{"revoked at login", status(pb.Status_STATUS_PERMISSION_DENIED, rendezvous.ErrDeviceRevoked.Error(), 0), apitype.LoginRevoked, true, 0, "parley enrol"},
		{"revoked in session", &rendezvous.StatusError{Status: pb.Status_STATUS_PERMISSION_DENIED, Message: rendezvous.ErrDeviceRevoked.Error()}, apitype.LoginRevoked, true, 0, IdentityFile},
		{"account deleted", &rendezvous.StatusError{Status: pb.Status_STATUS_UNAUTHENTICATED, Message: rendezvous.ErrAccountDeleted.Error()}, apitype.LoginAccountDeleted, true, 0, "parley register"},
		{"not enrolled", status(pb.Status_STATUS_UNAUTHENTICATED, rendezvous.ErrDeviceNotEnrolled.Error(), 0), apitype.LoginNotEnrolled, true, 0, "parley enrol"},
		{"go away", fmt.Errorf("session: %w", &client.GoAwayError{RetryAfter: 1500 * time.Millisecond}), apitype.LoginServerLeaving, false, 1500 * time.Millisecond, "by itself"},
		{"go away at once", &client.GoAwayError{}, apitype.LoginServerLeaving, false, 0, "by itself"},
		{"rate limited long", status(pb.Status_STATUS_RATE_LIMITED, "too many attempts", time.Minute), apitype.LoginRateLimited, false, time.Minute, "asked to wait"},
		{"rate limited short", status(pb.Status_STATUS_RATE_LIMITED, "too many attempts", time.Second), apitype.LoginRateLimited, false, retry, "asked to wait"},
		{"server closing", status(pb.Status_STATUS_UNAVAILABLE, "server unavailable", 0), apitype.LoginFailed, false, retry, "--rendezvous"},
		{"unreachable", errors.New("login: open stream to rendezvous server: no addresses"), apitype.LoginFailed, false, retry, "--rendezvous"},
	}
	k := newSessionKeeper(nil, "", retry, filepath.Join("/data", IdentityFile))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := time.Now()
			p := k.loginProblem(tt.err)
			if p.Reason != tt.wantReason || p.Stopped != tt.wantStopped {
				t.Fatalf("got reason %s, stopped %v; want %s, %v", p.Reason, p.Stopped, tt.wantReason, tt.wantStopped)
			}
			if !strings.Contains(p.Hint, tt.wantHint) {
				t.Errorf("hint %q does not say %q", p.Hint, tt.wantHint)
			}
			if p.Error == "" || !errors.Is(p.Err(), tt.err) {
				t.Errorf("error: got %q, %v", p.Error, p.Err())
			}
			if tt.wantStopped {
				if !p.RetryAt.IsZero() {
					t.Errorf("stopped, yet retries at %v", p.RetryAt)
				}
				return
			}
			if wait := p.RetryAt.Sub(before); wait < tt.wantWait || wait > tt.wantWait+time.Second {
				t.Errorf("waits %v, want %v", wait, tt.wantWait)
			}
		})
	}
}
