// Command parley-testnet runs a local Parley network on one machine;
// `parley-testnet up` is the quickest way to see Parley work.
package main

import "github.com/parleynet/parley/internal/command"

func main() { command.Main("parley-testnet", run) }
