package main

import (
	"context"
	"fmt"
	"github.com/parleynet/parley/internal/command"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/parleynet/parley/app/api"
	"github.com/parleynet/parley/app/apitype"
	"github.com/parleynet/parley/app/chat"
	"github.com/parleynet/parley/app/probe"
)

func (c *cli) sendCmd() *cobra.Command {
	return c.jsonFlag(&cobra.Command{
		Use:   "send USER MESSAGE...",
		Short: "Send a chat message",
		Long: `Send sends a chat message to a contact. The words of MESSAGE are joined
with spaces. A contact who cannot be reached now gets the message when they
are online again: it is queued, and parley watch shows when it is delivered.
To a contact who is offline it is also left, sealed end to end, in their
mailbox on the rendezvous server (state sent), which their devices fetch
at their next login; their delivery receipt turns it delivered. Every
device of the contact gets the message, and your other devices show it.`,
		Example: `  parley send bob "hi bob"
  parley send bob see you at 8
  parley send bob --json -- -1 is fine`,
		Args: argRange(2, -1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.call(cmd.Context(), func(ctx context.Context, cl *api.Client) error {
				m, err := cl.Send(ctx, args[0], strings.Join(args[1:], " "))
				if err != nil {
					return err
				}
				if c.json {
					return c.printJSON(m)
				}
				if m.State == apitype.MessageQueued {
					fmt.Fprintf(c.out, "queued for %s, who cannot be reached now; it is delivered when %s is online, or left in their mailbox on the server while they are offline (id %s)\n", safe(m.To), safe(m.To), m.ID)
					return nil
				}
				fmt.Fprintf(c.out, "delivered to %s (%s), id %s\n", safe(m.To), safe(apitype.PathLabel(m.Path, m.Transport)), m.ID)
				return nil
			})
		},
	})
}

func (c *cli) probeCmd() *cobra.Command {
	size := sizeFlag(apitype.DefaultProbeSize)
	cmd := c.jsonFlag(&cobra.Command{
		Use:   "probe USER",
		Short: "Test the connection to a contact: throughput, path, integrity",
		Long: `Probe streams --size bytes to the device the contact is online on, and
reports the throughput, the path (direct, holepunched or relayed) and
whether every byte arrived intact.`,
		Example: `  parley probe bob
  parley probe bob --size 64MiB
  parley probe bob --json`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if size > probe.MaxSize {
				return command.Usagef("--size %s: a probe sends at most %s", size, sizeFlag(probe.MaxSize))
			}
			cl, err := c.dial()
			if err != nil {
				return err
			}
			// Allow for a slow path: 30 s plus 256 KiB/s.
			ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second+time.Duration(size/(256<<10))*time.Second)
			defer cancel()
			res, err := cl.Probe(ctx, args[0], int64(size))
			if err != nil {
				return err
			}
			if c.json {
				return c.printJSON(res)
			}
			intact := "every byte arrived intact"
			if !res.Intact {
				intact = "THE DATA ARRIVED DAMAGED"
			}
			fmt.Fprintf(c.out, "sent %s to %s in %s: %.1f MB/s, %s; %s\n",
				sizeFlag(res.Bytes), safe(args[0]), res.Duration.Round(time.Millisecond), res.MBPerSecond, safe(apitype.PathLabel(res.Path, res.Transport)), intact)
			return nil
		},
	})
	cmd.Flags().Var(&size, "size", "how much to send, e.g. 64KiB, 16MiB (at most 1GiB)")
	return cmd
}

func (c *cli) historyCmd() *cobra.Command {
	var limit int
	var before string
	var keepUnread bool
	cmd := c.jsonFlag(&cobra.Command{
		Use:   "history USER",
		Short: "Show the messages exchanged with a contact, and mark them read",
		Long: `History shows the latest messages exchanged with USER, oldest first: when,
who to whom, how the message travelled (or that it is queued, sent or
failed, or that USER read it), and the text. Every device of yours shows
the same messages in the same order. Showing them marks USER's messages
read, on all your devices, and tells USER (one read receipt), unless
--keep-unread. It exits 3 when USER is neither a contact nor someone this
device has messages with.`,
		Example: `  parley history bob
  parley history bob --limit 10
  parley history bob --limit 10 --before 0006342f1a2b3c4d9e8f7a6b5c4d3e2f
  parley history bob --json --keep-unread`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if limit < 1 || limit > apitype.MaxHistoryLimit {
				return command.Usagef("--limit %d: want 1 to %d", limit, apitype.MaxHistoryLimit)
			}
			return c.call(cmd.Context(), func(ctx context.Context, cl *api.Client) error {
				// One more than shown says whether older ones are there.
				msgs, err := cl.History(ctx, apitype.HistoryQuery{Contact: args[0], Limit: min(limit+1, apitype.MaxHistoryLimit), Before: before})
				if err != nil {
					return err
				}
				older := len(msgs) > limit || len(msgs) == apitype.MaxHistoryLimit
				msgs = msgs[max(0, len(msgs)-limit):]
				if !keepUnread && before == "" {
					if _, err := cl.MarkRead(ctx, args[0]); err != nil {
						return err
					}
				}
				if len(msgs) == 0 {
					if err := knownUser(ctx, cl, args[0]); err != nil {
						return err
					}
				}
				if c.json {
					if msgs == nil {
						msgs = []apitype.Message{}
					}
					return c.printJSON(msgs)
				}
				switch {
				case len(msgs) == 0 && before != "":
					fmt.Fprintf(c.out, "no messages with %s before %s\n", safe(args[0]), safe(before))
				case len(msgs) == 0:
					fmt.Fprintf(c.out, "no messages with %s yet\n", safe(args[0]))
				}
				for _, m := range msgs {
					fmt.Fprintf(c.out, "%s  %s\n", m.Sent.Local().Format(time.DateTime), messageLine(m))
				}
				if older {
					fmt.Fprintf(c.out, "older messages: %s history %s --limit %d --before %s\n", c.parley(), safe(args[0]), limit, msgs[0].ID)
				}
				return nil
			})
		},
	})
	cmd.Flags().IntVar(&limit, "limit", apitype.DefaultHistoryLimit, fmt.Sprintf("how many of the latest messages to show (1 to %d)", apitype.MaxHistoryLimit))
	cmd.Flags().StringVar(&before, "before", "", "show the messages before this message id (paging back; marks nothing read)")
	cmd.Flags().BoolVar(&keepUnread, "keep-unread", false, "do not mark the messages read")
	return cmd
}

// knownUser checks that user, who has no messages, is a contact or in a
// contact request, so that a typo exits 3 (not found) rather than showing
// an empty history.
func knownUser(ctx context.Context, cl *api.Client, user string) error {
	st, err := cl.Status(ctx)
	if err != nil {
		return nil // the history answered; say nothing more
	}
	user = strings.ToLower(user)
	for _, ct := range st.Contacts {
		if ct.Username == user {
			return nil
		}
	}
	if slices.Contains(st.Incoming, user) || slices.Contains(st.Outgoing, user) {
		return nil
	}
	return fmt.Errorf("no messages with %s, who is not a contact: %w", user, chat.ErrNotAContact)
}

func (c *cli) statusCmd() *cobra.Command {
	return c.jsonFlag(&cobra.Command{
		Use:   "status",
		Short: "Show login, supernodes, contacts, requests and connection paths",
		Long: `Status shows this device: its login (and, when it is not logged in, why
and what to do), the network (rendezvous server), reachability and the
NAT type libp2p determined (per transport: endpoint-independent NATs let
hole punching make direct connections, endpoint-dependent ones leave
them to relays), the supernodes holding a relay slot for it,
whether it serves others as a supernode, the DHT, and each contact's
presence and connection path. --json prints the API's Status, whose
event_seq is where parley watch --since starts from.`,
		Example: `  parley status
  parley status --json`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.call(cmd.Context(), func(ctx context.Context, cl *api.Client) error {
				s, err := cl.Status(ctx)
				if err != nil {
					return err
				}
				if c.json {
					return c.printJSON(s)
				}
				c.printStatus(s)
				return nil
			})
		},
	})
}

func (c *cli) printStatus(s apitype.Status) {
	user := safe(s.Username)
	if user == "" {
		user = "(none)"
	}
	if s.Setup != nil {
		fmt.Fprintf(c.out, "device        %s\nnetwork       (none chosen yet: open the web UI with parley ui, or start the daemon with --rendezvous)\n", s.Peer)
		return
	}
	fmt.Fprintf(c.out, "device        %s\nnetwork       %s\nuser          %s\nlogin         %s\nreachability  %s\nnat           %s\n",
		s.Peer, safe(s.Rendezvous), user, loginState(s.LoggedIn, s.Login), s.Reachability, natState(s.Reachability, s.NAT))
	if len(s.PublicAddrs) > 0 {
		fmt.Fprintf(c.out, "public addrs  %s\n", strings.Join(s.PublicAddrs, ", "))
	}
	fmt.Fprintf(c.out, "port mapping  %s\n", portMappings(s.PortMappings))
	if s.QUICBuffers != "" {
		fmt.Fprintf(c.out, "quic          %s\n", safe(s.QUICBuffers))
	}
	fmt.Fprintf(c.out, "supernodes    %s\n", orNone(withRTTs(s.Supernodes, s.SupernodeRTTs)))
	fmt.Fprintf(c.out, "serving       %s\n", servingState(s.Supernode))
	fmt.Fprintf(c.out, "dht           %s\n", dhtState(s.DHT))
	fmt.Fprintf(c.out, "contacts:\n")
	w := tabwriter.NewWriter(c.out, 2, 4, 2, ' ', 0)
	printContacts(w, s.Contacts)
	if len(s.Contacts) == 0 {
		fmt.Fprintln(w, "  (none yet: parley request-contact USER)")
	}
	w.Flush()
	printRequests(c.out, s.Incoming, s.Outgoing)
}

// natState describes the NAT types libp2p determined, and what they mean
// for direct connections.
func natState(reach string, n apitype.NATStatus) string {
	if reach == "public" {
		return "none in the way (publicly reachable)"
	}
	name := func(t apitype.NATType) string {
		switch t {
		case apitype.NATEndpointIndependent:
			return "endpoint-independent (cone: hole punching can connect directly)"
		case apitype.NATEndpointDependent:
			return "endpoint-dependent (symmetric: direct connections rarely form, relays carry them)"
		}
		return "unknown (not determined yet)"
	}
	if n.TCP == n.UDP {
		return name(n.TCP) + " for TCP and UDP"
	}
	return "TCP " + name(n.TCP) + ", UDP " + name(n.UDP)
}

// servingState describes this device's own supernode role.
func servingState(v apitype.SupernodeState) string {
	switch {
	case v.Serving && v.Active:
		return fmt.Sprintf("as an active supernode: %d clients hold a slot, %d relayed connections", v.Reservations, v.Circuits)
	case v.Serving:
		return fmt.Sprintf("as a standby supernode (the directory has enough active ones): %d clients hold a slot", v.Reservations)
	case v.Mode == "never":
		return "not as a supernode (--supernode=never)"
	default:
		return "not as a supernode: " + safe(v.Reason)
	}
}

// loginState describes the session for people.
func loginState(loggedIn bool, p *apitype.LoginProblem) string {
	switch {
	case loggedIn:
		return "logged in"
	case p == nil:
		return "logging in"
	case p.Reason == apitype.LoginNotEnrolled:
		return "not enrolled yet: " + safe(p.Hint)
	case p.Stopped:
		return fmt.Sprintf("stopped: %s.\n              %s", safe(p.Error), safe(p.Hint))
	default:
		return fmt.Sprintf("not logged in: %s; trying again at %s", safe(p.Error), p.RetryAt.Local().Format("15:04:05"))
	}
}

// portMappings describes the ports the router forwards to this device.
func portMappings(ms []apitype.PortMapping) string {
	if len(ms) == 0 {
		return "(none)"
	}
	parts := make([]string, 0, len(ms))
	for _, m := range ms {
		parts = append(parts, fmt.Sprintf("%s to %s", safe(m.External), safe(m.Listen)))
	}
	return strings.Join(parts, ", ")
}

// withRTTs adds each supernode's measured round trip to its ID.
func withRTTs(ids []string, rtts map[string]float64) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = safe(id)
		if rtt, ok := rtts[id]; ok {
			out[i] += fmt.Sprintf(" (%.1f ms)", rtt)
		}
	}
	return out
}

func orNone(ids []string) string {
	if len(ids) == 0 {
		return "(none)"
	}
	return strings.Join(ids, ", ")
}

// dhtState is the DHT line of the status.
func dhtState(d apitype.DHTStatus) string {
	s := fmt.Sprintf("%s mode, %d peers in the routing table", d.Mode, d.Peers)
	if d.RecordSeq == 0 {
		return s + ", address record not published yet"
	}
	return fmt.Sprintf("%s, address record #%d published (expires %s)", s, d.RecordSeq, d.RecordExpires.Local().Format(time.TimeOnly))
}
