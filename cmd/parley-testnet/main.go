// Command parley-testnet runs a local Parley network on one machine;
// `parley-testnet up` is the quickest way to see Parley work.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "parley-testnet:", err)
		os.Exit(1)
	}
}
