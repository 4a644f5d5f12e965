package server

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/parleynet/parley/internal/ratelimit"
)

// TestConfigDefaultsFieldByField: a partly filled Config keeps what was
// set, even inside nested structs, and takes DefaultConfig for the rest.
func TestConfigDefaultsFieldByField(t *testing.T) {
	login := ratelimit.Rate{Burst: 1, Every: time.Hour}
	got := Config{
		CertLifetime: 2 * time.Hour,
		Argon2:       Argon2Params{Time: 7},
		Election:     ElectionConfig{MinActive: 5},
		Limits:       Limits{LoginPerDevice: login, ContactPerSource: ratelimit.NoLimit},
		Replica:      "r1",
	}.withDefaults()

	want := DefaultConfig()
	want.CertLifetime = 2 * time.Hour
	want.Argon2.Time = 7
	want.Election = DefaultElection()
	want.Election.MinActive = 5
	want.Limits.LoginPerDevice = login
	want.Limits.ContactPerSource = ratelimit.NoLimit
	want.Replica = "r1"
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(Config{})); diff != "" {
		t.Errorf("withDefaults: (-want +got)\n%s", diff)
	}
}

func TestConfigZeroIsDefault(t *testing.T) {
	got := Config{}.withDefaults()
	if got.Replica == "" {
		t.Errorf("Replica: got empty, want a random name")
	}
	want := DefaultConfig()
	want.Election = DefaultElection()
	want.Replica = got.Replica
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("zero Config: (-want +got)\n%s", diff)
	}
}
