package tstest

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
)

// EnvSize reads a size such as 1GiB from the environment variable name
// (PARLEY_BENCH_SIZE, say), or returns def when it is unset.
func EnvSize(tb testing.TB, name string, def int64) int64 {
	tb.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := ParseSize(v)
	if err != nil {
		tb.Fatalf("%s: %v", name, err)
	}
	return n
}

// ParseSize reads 123, 123B, 64KiB, 16MiB or 4GiB.
func ParseSize(v string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}}
	num, mult := strings.TrimSpace(v), int64(1)
	for _, u := range units {
		if s, ok := strings.CutSuffix(num, u.suffix); ok {
			num, mult = s, u.mult
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("size %q: want a positive size such as 65536, 64KiB or 1GiB", v)
	}
	return n * mult, nil
}
