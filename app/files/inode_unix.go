//go:build unix

package files

import (
	"io/fs"
	"syscall"
)

// sysStat returns the inode and the status-change time (ns) of a file:
// any write to it, and any change of its times, moves the change time,
// which nobody can set back.
func sysStat(fi fs.FileInfo) (inode uint64, ctime int64) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Ino), st.Ctim.Nano()
	}
	return 0, 0
}
