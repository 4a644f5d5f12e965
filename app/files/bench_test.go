package files

import (
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	lukeblake3 "lukechampine.com/blake3"

	"github.com/parleynet/parley/internal/tstest"
	"github.com/parleynet/parley/node/nodetest"
)

// benchUploadLimit caps each provider of BenchmarkThreeProvidersVsOne:
// 16 MiB/s, far below what loopback and hashing carry on the development
// machine (BenchmarkFetch, BenchmarkHash), so that the providers' caps,
// not the machine, are the ceiling, as on home links.
const benchUploadLimit = 16 << 20

// BenchmarkThreeProvidersVsOne fetches the same content (32 MiB, or
// PARLEY_BENCH_SIZE such as 256MiB) from one provider,
// then from three, each server capped by ServerConfig.UploadLimit at
// benchUploadLimit, and reports both rates and their ratio (x): three
// providers can at best be 3x faster. dup-MiB is what the end game
// received twice.
func BenchmarkThreeProvidersVsOne(b *testing.B) {
	size := tstest.EnvSize(b, "PARLEY_BENCH_SIZE", 32<<20)
	src := randomFile(b, b.TempDir(), "f.bin", size, 30)
	var providers []*testProvider
	var c cid.Cid
	for range 3 {
		p := newProviderWith(b, nodetest.New(b), nil, admitAll, ServerConfig{UploadLimit: benchUploadLimit})
		c, _ = p.share(b, src)
		providers = append(providers, p)
	}
	h, ids := newFetcherOn(nodetest.New(b), providers...)
	var one, three time.Duration
	var dup int64
	for b.Loop() {
		one += timeFetch(b, h, c, ids[:1]).took
		r := timeFetch(b, h, c, ids)
		three += r.took
		dup += r.dup
	}
	n := float64(b.N)
	oneRate, threeRate := float64(size)/1e6/(one.Seconds()/n), float64(size)/1e6/(three.Seconds()/n)
	b.ReportMetric(oneRate, "MB/s-one")
	b.ReportMetric(threeRate, "MB/s-three")
	b.ReportMetric(threeRate/oneRate, "x")
	b.ReportMetric(float64(dup)/n/(1<<20), "dup-MiB")
}

type fetchTiming struct {
	took time.Duration
	dup  int64
}

// timeFetch fetches c from providers into a fresh folder, which it
// removes untimed.
func timeFetch(b *testing.B, h host.Host, c cid.Cid, providers []peer.ID) fetchTiming {
	b.Helper()
	dl, err := os.MkdirTemp(b.TempDir(), "dl")
	must(b, err)
	start := time.Now()
	res, err := Fetch(b.Context(), h, c, FetchConfig{Providers: providers, DownloadDir: dl})
	took := time.Since(start)
	if err != nil {
		b.Fatalf("fetch from %d providers: %v", len(providers), err)
	}
	b.StopTimer()
	os.RemoveAll(dl)
	b.StartTimer()
	return fetchTiming{took: took, dup: res.Duplicate}
}

// BenchmarkHash is BLAKE3-256 over 1 MiB chunks, as manifests are built
// and chunks verified (hashChunk: github.com/zeebo/blake3), beside
// lukechampine.com/blake3 (already linked through go-multihash). MB/s is
// one core's hashing rate: a transfer on one machine hashes each chunk on
// the serving side (ReadChunk), on the receiving side (ReadChunk) and once
// more in Partial.Finish.
func BenchmarkHash(b *testing.B) {
	chunk := make([]byte, ChunkSize)
	rand.NewChaCha8([32]byte{31}).Read(chunk)
	b.Run("zeebo", func(b *testing.B) {
		b.SetBytes(ChunkSize)
		for b.Loop() {
			hashChunk(chunk)
		}
	})
	b.Run("lukechampine", func(b *testing.B) {
		b.SetBytes(ChunkSize)
		for b.Loop() {
			lukeblake3.Sum256(chunk)
		}
	})
}
