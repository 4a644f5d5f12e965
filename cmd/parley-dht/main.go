// Command parley-dht looks things up in Parley's DHT: it joins as a
// short-lived client with a throwaway identity, bootstrapping from given
// peers or from a rendezvous server's supernode directory, and can show
// each lookup as it happens (--trace). Exit status: 0 found, 1 error,
// 2 usage error, 3 not found; see parley-dht --help.
package main

import "github.com/parleynet/parley/internal/command"

func main() { command.Main("parley-dht", run) }
