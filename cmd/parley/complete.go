package main

import (
	"context"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// completeTimeout bounds the call to the daemon that completes an
// argument: a shell waits for it.
const completeTimeout = 2 * time.Second

// completeUser completes a USER first argument with the users the daemon
// knows: contacts, and requests both ways.
func (c *cli) completeUser(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	cl, err := c.dial()
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), completeTimeout)
	defer cancel()
	st, err := cl.Status(ctx)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var users []string
	for _, ct := range st.Contacts {
		users = append(users, ct.Username)
	}
	users = append(append(users, st.Incoming...), st.Outgoing...)
	return withPrefix(users, toComplete), cobra.ShellCompDirectiveNoFileComp
}

// completeDevice completes a DEVICE argument with the account's devices.
func (c *cli) completeDevice(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	cl, err := c.dial()
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), completeTimeout)
	defer cancel()
	devs, err := cl.Devices(ctx)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var ids []string
	for _, d := range devs {
		if d.Revoked.IsZero() {
			ids = append(ids, d.Peer)
		}
	}
	return withPrefix(ids, toComplete), cobra.ShellCompDirectiveNoFileComp
}

func withPrefix(words []string, prefix string) []cobra.Completion {
	var out []cobra.Completion
	for _, w := range words {
		if strings.HasPrefix(w, prefix) && safe(w) == w {
			out = append(out, w)
		}
	}
	return out
}

// completeArgs sets how the arguments of every command in the tree
// complete: USER and DEVICE from the daemon, nothing else (no file names).
func (c *cli) completeArgs(cmd *cobra.Command) {
	if cmd.ValidArgsFunction == nil {
		switch _, args, _ := strings.Cut(cmd.Use, " "); {
		case strings.HasPrefix(args, "USER"):
			cmd.ValidArgsFunction = c.completeUser
		case strings.HasPrefix(args, "DEVICE"):
			cmd.ValidArgsFunction = c.completeDevice
		default:
			cmd.ValidArgsFunction = cobra.NoFileCompletions
		}
	}
	for _, sub := range cmd.Commands() {
		c.completeArgs(sub)
	}
}
