package files

import (
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/parleynet/parley/node/nodetest"
)

// newLimitedProvider starts a provider whose server sends at most limit
// bytes a second, sharing a random file of size bytes.
func newLimitedProvider(t testing.TB, cfg ServerConfig, size int64, seed uint64) (*testProvider, string) {
	t.Helper()
	p := newProviderWith(t, nodetest.New(t), nil, admitAll, cfg)
	src := randomFile(t, t.TempDir(), "f.bin", size, seed)
	return p, src
}

// minLimitedDuration is the least time sending n bytes can take under
// limit: the limiter starts with a full burst, the rest is paced.
func minLimitedDuration(n, limit int64) time.Duration {
	burst := newUploadLimiter(limit).Burst()
	return time.Duration(float64(n-int64(burst)) / float64(limit) * float64(time.Second))
}

// TestUploadLimitHolds: a server capped at 2 MiB/s takes at least as long
// as the cap says, whether one requester fetches or two share the cap.
// (Unlimited, the same fetches take a fraction of that on loopback.) Only
// lower bounds are asserted: a loaded machine may be slower than the cap.
func TestUploadLimitHolds(t *testing.T) {
	const limit, size = 2 << 20, 4 << 20
	for _, fetchers := range []int{1, 2} {
		t.Run(map[int]string{1: "one", 2: "two share it"}[fetchers], func(t *testing.T) {
			t.Parallel()
			p, src := newLimitedProvider(t, ServerConfig{UploadLimit: limit}, size, 20)
			c, _ := p.share(t, src)
			start := time.Now()
			var wg sync.WaitGroup
			for range fetchers {
				h, ids := newFetcher(t, p)
				dl := t.TempDir()
				wg.Go(func() {
					if _, err := Fetch(t.Context(), h, c, FetchConfig{Providers: ids, DownloadDir: dl}); err != nil {
						t.Errorf("fetch: %v", err)
						return
					}
					sameFile(t, src, filepath.Join(dl, "f.bin"))
				})
			}
			wg.Wait()
			took, least := time.Since(start), minLimitedDuration(int64(fetchers)*size, limit)
			t.Logf("%d fetches of %d MiB at %d MiB/s took %v (at least %v)", fetchers, size>>20, limit>>20, took, least)
			if took < least {
				t.Errorf("took %v, want at least %v under the limit", took, least)
			}
		})
	}
}

// TestServerCloseEndsLimitedWait: a stream waiting for the upload limit
// (a piece of 16 KiB at 1 KiB/s: a 16 s wait) ends as soon as the server
// closes, and the requester sees its provider go.
func TestServerCloseEndsLimitedWait(t *testing.T) {
	p, src := newLimitedProvider(t, ServerConfig{UploadLimit: 1 << 10}, 1<<20, 21)
	c, _ := p.share(t, src)
	h, ids := newFetcher(t, p)
	fetched := make(chan error, 1)
	go func() {
		_, err := Fetch(t.Context(), h, c, FetchConfig{Providers: ids, DownloadDir: t.TempDir(), StallTimeout: time.Minute})
		fetched <- err
	}()
	waitFor(t, 10*time.Second, "a stream waiting for the limiter", func() bool {
		return p.srv.limit.Tokens() < -float64(minUploadBurst/2)
	})
	start := time.Now()
	must(t, p.srv.Close())
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Close took %v with a stream waiting for the limiter", d)
	}
	select {
	case err := <-fetched:
		if !errors.Is(err, ErrNoProviders) {
			t.Errorf("fetch: got %v, want ErrNoProviders once the server closed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the fetch did not end after the server closed")
	}
}

// TestUploadLimitWriteTimeout: a chunk that cannot pass the limit within
// WriteTimeout is given up on, so the requester is not held for longer.
func TestUploadLimitWriteTimeout(t *testing.T) {
	p, src := newLimitedProvider(t, ServerConfig{UploadLimit: 1 << 10, WriteTimeout: 500 * time.Millisecond}, 1<<20, 22)
	c, _ := p.share(t, src)
	h, ids := newFetcher(t, p)
	start := time.Now()
	_, err := Fetch(t.Context(), h, c, FetchConfig{Providers: ids, DownloadDir: t.TempDir(), StallTimeout: time.Minute})
	if !errors.Is(err, ErrNoProviders) {
		t.Fatalf("got %v, want ErrNoProviders when the server gives up", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %v to give up on a chunk with a 500ms write timeout", d)
	}
}

func TestNewUploadLimiter(t *testing.T) {
	if newUploadLimiter(0) != nil || newUploadLimiter(-1) != nil {
		t.Error("a limit of zero or less should be no limiter")
	}
	for limit, burst := range map[int64]int{1: minUploadBurst, 1 << 20: 128 << 10, 1 << 30: maxUploadBurst} {
		if got := newUploadLimiter(limit).Burst(); got != burst {
			t.Errorf("limit %d: burst %d, want %d", limit, got, burst)
		}
	}
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(timeout); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("no %s after %v", what, timeout)
		}
	}
}
