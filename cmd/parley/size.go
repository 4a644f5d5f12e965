package main

import (
	"fmt"
	"strconv"
	"strings"
)

// sizeFlag is a byte count written as 123, 64KiB, 16MiB or 1GiB (also
// KB, MB, GB as powers of 1000).
type sizeFlag int64

var sizeUnits = []struct {
	suffix string
	mult   int64
}{
	{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10},
	{"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3}, {"B", 1},
}

func (s *sizeFlag) Set(v string) error {
	n, err := parseSize(v)
	if err != nil || n == 0 {
		return fmt.Errorf("size %q: want a positive number of bytes such as 65536, 64KiB or 16MiB", v)
	}
	*s = sizeFlag(n)
	return nil
}

// parseSize reads a byte count written as sizeFlag reads it; zero is a
// size too.
func parseSize(v string) (int64, error) {
	mult := int64(1)
	num := strings.TrimSpace(v)
	for _, u := range sizeUnits {
		if strings.HasSuffix(num, u.suffix) {
			num, mult = strings.TrimSpace(strings.TrimSuffix(num, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("size %q: want a number of bytes such as 65536, 64KiB or 16MiB", v)
	}
	return n * mult, nil
}

func (s sizeFlag) String() string {
	for _, u := range sizeUnits[:3] {
		if int64(s) >= u.mult && int64(s)%u.mult == 0 {
			return fmt.Sprintf("%d%s", int64(s)/u.mult, u.suffix)
		}
	}
	return fmt.Sprintf("%dB", int64(s))
}

// Type names the value in usage messages (pflag.Value).
func (s *sizeFlag) Type() string { return "size" }

// minUploadLimit is the smallest upload limit the daemon takes. A
// requester drops a provider that takes over 15 seconds (its stall
// timeout) to send one 1 MiB chunk, so a lower cap would not slow uploads
// down but stop them.
const minUploadLimit = 128 << 10

// parseUploadLimit reads an upload limit: bytes a second written as a
// size (20MiB, with "/s" or without), at least minUploadLimit, or 0 for
// no limit.
func parseUploadLimit(v string) (int64, error) {
	n, err := parseSize(strings.TrimSuffix(strings.TrimSpace(v), "/s"))
	if err != nil {
		return 0, fmt.Errorf("upload limit %q: want bytes a second such as 512KiB or 20MiB, or 0 for no limit", v)
	}
	if n > 0 && n < minUploadLimit {
		return 0, fmt.Errorf("upload limit %q: at least %s, or 0 for no limit (those fetching give up on a device that takes over 15 s to send a 1MiB chunk)", v, sizeFlag(minUploadLimit))
	}
	return n, nil
}

// uploadLimitFlag checks an upload limit as it is given and keeps its
// text, which the saved settings hold.
type uploadLimitFlag struct{ text *string }

func (f uploadLimitFlag) Set(v string) error {
	if _, err := parseUploadLimit(v); err != nil {
		return err
	}
	*f.text = strings.TrimSpace(v)
	return nil
}

func (f uploadLimitFlag) String() string {
	if f.text == nil || *f.text == "" {
		return "0"
	}
	return *f.text
}

// Type names the value in usage messages (pflag.Value).
func (uploadLimitFlag) Type() string { return "size" }
