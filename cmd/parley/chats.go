package main

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/parleynet/parley/app/api"
	"github.com/parleynet/parley/app/apitype"
)

func (c *cli) chatsCmd() *cobra.Command {
	return c.jsonFlag(&cobra.Command{
		Use:   "chats",
		Short: "List the conversations, with unread counts",
		Long: `Chats lists the conversations, the one with the newest message first: the
contact, how many of their messages no device of yours has shown yet, and
the last message. parley history USER shows a conversation and marks it
read.`,
		Example: `  parley chats
  parley chats --json`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.call(cmd.Context(), func(ctx context.Context, cl *api.Client) error {
				convs, err := cl.Conversations(ctx)
				if err != nil {
					return err
				}
				if c.json {
					if convs == nil {
						convs = []apitype.Conversation{}
					}
					return c.printJSON(convs)
				}
				if len(convs) == 0 {
					fmt.Fprintln(c.out, "no conversations yet; start one with: parley send USER MESSAGE")
					return nil
				}
				tw := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "CONTACT\tUNREAD\tLAST")
				for _, cv := range convs {
					last := ""
					if cv.Last != nil {
						last = cv.Last.Sent.Local().Format(time.DateTime) + "  " + shorten(messageLine(*cv.Last), 60)
					}
					fmt.Fprintf(tw, "%s\t%d\t%s\n", safe(cv.Contact), cv.Unread, last)
				}
				return tw.Flush()
			})
		},
	})
}

// shorten cuts s (already safe: no control characters) to n runes.
func shorten(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return strings.TrimSpace(string(r[:n-1])) + "…"
}
