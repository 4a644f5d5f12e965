// Package files is Parley's content addressing and file transfer: manifests
// and their CIDs, safe placement of received paths, the in-place index of
// shared files, the partial-download store, and /parley/files/1.0.0.
package files

import logging "github.com/ipfs/go-log/v2"

var log = logging.Logger("parley/files")
