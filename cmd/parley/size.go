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
	mult := int64(1)
	num := strings.TrimSpace(v)
	for _, u := range sizeUnits {
		if strings.HasSuffix(num, u.suffix) {
			num, mult = strings.TrimSpace(strings.TrimSuffix(num, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n <= 0 || n > (1<<62)/mult {
		return fmt.Errorf("size %q: want a positive number of bytes such as 65536, 64KiB or 16MiB", v)
	}
	*s = sizeFlag(n * mult)
	return nil
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
