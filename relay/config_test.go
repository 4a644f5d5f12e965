package relay

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/parleynet/parley/internal/ratelimit"
)

// Each config struct takes its defaults field by field: what a caller
// set stays, NoLimit included, and only the zero fields change.

func TestLimitsDefaultsFieldByField(t *testing.T) {
	got := Limits{CircuitsPerPeer: 8, CircuitData: 1 << 20, ReservationsPerIP: NoLimit, AuthPerIP: ratelimit.NoLimit}.withDefaults()
	want := DefaultLimits()
	want.CircuitsPerPeer = 8
	want.CircuitData = 1 << 20
	want.ReservationsPerIP = NoLimit
	want.AuthPerIP = ratelimit.NoLimit
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("withDefaults: (-want +got)\n%s", diff)
	}
	if err := got.validate(); err != nil {
		t.Errorf("validate: %v", err)
	}
	if got := (Limits{}).withDefaults(); got != DefaultLimits() {
		t.Errorf("zero Limits: got %+v, want DefaultLimits %+v", got, DefaultLimits())
	}
}

func TestLimitsResources(t *testing.T) {
	tests := []struct {
		name                   string
		limits                 Limits
		wantPerIP, wantPerPeer int
		wantLimit              bool
		wantDuration           time.Duration
		wantData               int64
	}{
		{name: "defaults", limits: Limits{}, wantPerIP: 64, wantPerPeer: 64},
		{name: "no limit per IP and peer", limits: Limits{ReservationsPerIP: NoLimit, CircuitsPerPeer: NoLimit},
			wantPerIP: noLimitCount, wantPerPeer: noLimitCount},
		{name: "data only", limits: Limits{CircuitData: 1 << 20}, wantPerIP: 64, wantPerPeer: 64,
			wantLimit: true, wantDuration: 100 * 365 * 24 * time.Hour, wantData: 1 << 20},
		{name: "duration only", limits: Limits{CircuitDuration: time.Minute, CircuitData: NoLimit}, wantPerIP: 64, wantPerPeer: 64,
			wantLimit: true, wantDuration: time.Minute, wantData: 1 << 62},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.limits.withDefaults().resources()
			if r.MaxReservationsPerIP != tt.wantPerIP || r.MaxCircuits != tt.wantPerPeer {
				t.Errorf("got %d per IP, %d per peer, want %d, %d", r.MaxReservationsPerIP, r.MaxCircuits, tt.wantPerIP, tt.wantPerPeer)
			}
			if (r.Limit != nil) != tt.wantLimit {
				t.Fatalf("got circuit limit %+v, want one: %v", r.Limit, tt.wantLimit)
			}
			if r.Limit != nil && (r.Limit.Duration != tt.wantDuration || r.Limit.Data != tt.wantData) {
				t.Errorf("got circuit limit %s, %d, want %s, %d", r.Limit.Duration, r.Limit.Data, tt.wantDuration, tt.wantData)
			}
		})
	}
}

func TestReserverConfigDefaultsFieldByField(t *testing.T) {
	got := ReserverConfig{Want: 3, PingTimeout: time.Second}.withDefaults()
	want := ReserverConfig{Want: 3, Interval: 30 * time.Second, PingInterval: 5 * time.Second, PingTimeout: time.Second}
	if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(ReserverConfig{}, "Needed", "OnChange")); diff != "" {
		t.Errorf("withDefaults: (-want +got)\n%s", diff)
	}
	if got.Needed == nil || !got.Needed() {
		t.Errorf("Needed: got nil or false, want always true")
	}
}

func TestVolunteerConfigDefaultsFieldByField(t *testing.T) {
	got := VolunteerConfig{MaxLoad: NoLimit, Drain: time.Second, Limits: Limits{BufferSize: 4096}}.withDefaults()
	want := VolunteerConfig{
		MinUptime:     10 * time.Minute,
		MaxCPU:        0.5,
		MaxLoad:       NoLimit,
		CheckInterval: 15 * time.Second,
		Drain:         time.Second,
		Limits:        Limits{BufferSize: 4096}, // the supernode fills in the rest when it starts
	}
	if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(VolunteerConfig{}, "Ready", "Verifier", "Directory", "Announcer")); diff != "" {
		t.Errorf("withDefaults: (-want +got)\n%s", diff)
	}
	if got.Ready == nil || !got.Ready() {
		t.Errorf("Ready: got nil or false, want always true")
	}
}
