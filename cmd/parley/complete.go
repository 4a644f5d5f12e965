package main

import (
	"context"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/parleynet/parley/app/api"
)

// completeTimeout bounds the call to the daemon that completes an
// argument: a shell waits for it.
const completeTimeout = 2 * time.Second

// completeFirst completes a command's first argument with the words
// list reads from the daemon (nothing when it cannot be asked).
func (c *cli) completeFirst(list func(context.Context, *api.Client) ([]string, error)) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		cl, err := c.dial()
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		ctx, cancel := context.WithTimeout(cmd.Context(), completeTimeout)
		defer cancel()
		words, err := list(ctx, cl)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return withPrefix(words, toComplete), cobra.ShellCompDirectiveNoFileComp
	}
}

// users are the users the daemon knows: contacts, and requests both ways.
func users(ctx context.Context, cl *api.Client) ([]string, error) {
	st, err := cl.Status(ctx)
	if err != nil {
		return nil, err
	}
	var users []string
	for _, ct := range st.Contacts {
		users = append(users, ct.Username)
	}
	return append(append(users, st.Incoming...), st.Outgoing...), nil
}

// devices are the account's devices that are not revoked.
func devices(ctx context.Context, cl *api.Client) ([]string, error) {
	devs, err := cl.Devices(ctx)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, d := range devs {
		if d.Revoked.IsZero() {
			ids = append(ids, d.Peer)
		}
	}
	return ids, nil
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
// complete: USER, DEVICE, CID, OFFER and ID from the daemon, nothing else (no file names).
func (c *cli) completeArgs(cmd *cobra.Command) {
	if cmd.ValidArgsFunction == nil {
		switch _, args, _ := strings.Cut(cmd.Use, " "); {
		case strings.HasPrefix(args, "USER"):
			cmd.ValidArgsFunction = c.completeFirst(users)
		case strings.HasPrefix(args, "DEVICE"):
			cmd.ValidArgsFunction = c.completeFirst(devices)
		case strings.HasPrefix(args, "CID"):
			cmd.ValidArgsFunction = c.completeFirst(publishedCIDs)
		case strings.HasPrefix(args, "OFFER"):
			cmd.ValidArgsFunction = c.completeFirst(offerIDs)
		case strings.HasPrefix(args, "ID"):
			cmd.ValidArgsFunction = c.completeFirst(transferIDs)
		default:
			cmd.ValidArgsFunction = cobra.NoFileCompletions
		}
	}
	for _, sub := range cmd.Commands() {
		c.completeArgs(sub)
	}
}
