package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/parleynet/parley/app/apitype"
)

func (c *cli) watchCmd() *cobra.Command {
	var since uint64
	cmd := c.jsonFlag(&cobra.Command{
		Use:   "watch",
		Short: "Print events as they happen: messages, presence, contacts, downloads",
		Long: `Watch prints the daemon's events as they happen, one line each, until
Ctrl-C: messages that arrive, queued messages delivered, contacts coming
online and going offline, contact requests, connection paths, login and
supernode changes, and downloads: a line when one changes state, and one
every few seconds while it runs. Text from the network is shown escaped (\n, \x1b,
\u202e), so no message can fake a line or a sender.

It starts with what happens after it starts; --since N resumes after the
event numbered N (an event's seq in --json, or event_seq of parley status
--json), and a "gap" event says when events after N are no longer kept.
With --json it prints each event as one JSON object per line (the API's
Event), every progress report included.

It exits 0 on Ctrl-C, and 1 when the daemon goes away (with the seq to
resume from).`,
		Example: `  parley watch
  parley watch --json
  parley watch --json --since 41 | jq -r 'select(.kind == "message") | .message.body'`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			cl, err := c.dial()
			if err != nil {
				return err
			}
			if !cmd.Flags().Changed("since") {
				st, err := cl.Status(ctx)
				if err != nil {
					return err
				}
				since = st.EventSeq
			}
			evs, err := cl.Watch(ctx, since)
			if err != nil {
				if ctx.Err() != nil {
					return nil // Ctrl-C while the stream opened
				}
				return err
			}
			enc := json.NewEncoder(c.out)
			last := since
			var progress transferThrottle
			for ev := range evs {
				last = ev.Seq
				if !c.json && !progress.show(ev) {
					continue
				}
				if c.json {
					err = enc.Encode(ev)
				} else {
					_, err = fmt.Fprintln(c.out, eventLine(ev))
				}
				if err != nil {
					return err // the reader went away (a closed pipe)
				}
			}
			if ctx.Err() != nil {
				return nil // Ctrl-C
			}
			return fmt.Errorf("the daemon went away; resume with: parley watch --since %d", last)
		},
	})
	cmd.Flags().Uint64Var(&since, "since", 0, "print the events after this seq (default: from now on)")
	return cmd
}

// eventLine describes an event for people on one line:
// "14:25:31  message  bob → you (direct): hello". Text from the network is
// made safe.
func eventLine(ev apitype.Event) string {
	return fmt.Sprintf("%s  %s  %s", ev.Time.Local().Format("15:04:05"), safe(string(ev.Kind)), eventWhat(ev))
}

func eventWhat(ev apitype.Event) string {
	switch ev.Kind {
	case apitype.EventGap:
		return "events were missed; parley status shows where things stand"
	case apitype.EventLogin:
		return "logged in as " + safe(ev.Username)
	case apitype.EventLogout:
		return "logged out: " + loginProblem(ev.Login)
	case apitype.EventLoginStopped:
		return "stopped logging in: " + loginProblem(ev.Login)
	case apitype.EventPresence, apitype.EventPath:
		if ev.Contact == nil {
			break
		}
		ct := ev.Contact
		state := "offline"
		if ct.Online {
			state = "online"
			if n := len(ct.Devices); n > 1 {
				state = fmt.Sprintf("online on %d devices", n)
			}
		}
		if ev.Kind == apitype.EventPath || ct.Online {
			return fmt.Sprintf("%s %s (%s)", safe(ct.Username), state, safe(apitype.PathLabel(ct.Path, ct.Transport)))
		}
		return safe(ct.Username) + " " + state
	case apitype.EventContact:
		u := safe(ev.Username)
		switch ev.Change {
		case "requested":
			return fmt.Sprintf("%s asks to be your contact: parley accept %s", u, u)
		case "accepted":
			return u + " is now a contact"
		case "removed":
			return u + " is no longer a contact or request"
		}
		return u + " " + safe(ev.Change)
	case apitype.EventMessage, apitype.EventMessageState:
		if ev.Message == nil {
			break
		}
		if ev.Kind == apitype.EventMessageState {
			m := *ev.Message
			return fmt.Sprintf("%s (id %s)", messageLine(m), safe(m.ID))
		}
		return messageLine(*ev.Message)
	case apitype.EventUnread:
		if ev.Unread == nil {
			break
		}
		return fmt.Sprintf("%d unread from %s", ev.Unread.Count, safe(ev.Unread.Contact))
	case apitype.EventSupernodes:
		if len(ev.Supernodes) == 0 {
			return "no relay slot at any supernode"
		}
		return "relay slots at " + safeJoin(ev.Supernodes)
	case apitype.EventTransfer:
		if ev.Transfer == nil {
			break
		}
		return transferLine(*ev.Transfer)
	case apitype.EventOffer:
		if ev.Offer == nil {
			break
		}
		return offerLine(*ev.Offer)
	}
	return "(see parley watch --json)"
}

// loginProblem describes why a device is not logged in, and what next.
func loginProblem(p *apitype.LoginProblem) string {
	if p == nil {
		return "no reason given"
	}
	var b strings.Builder
	b.WriteString(safe(p.Error))
	if p.Hint != "" {
		b.WriteString("; " + safe(p.Hint))
	}
	if !p.RetryAt.IsZero() {
		b.WriteString("; trying again at " + p.RetryAt.Local().Format("15:04:05"))
	}
	return b.String()
}

// transferProgressEvery is how often watch prints a running transfer's
// progress (state changes are printed at once).
const transferProgressEvery = 5 * time.Second

// transferThrottle picks the transfer events watch prints: every state
// change, and progress at most every transferProgressEvery (by the
// events' times) per transfer.
type transferThrottle struct {
	last map[string]apitype.Event // the last event printed, by transfer ID
}

// show reports whether ev is to be printed; events of other kinds are.
func (p *transferThrottle) show(ev apitype.Event) bool {
	if ev.Kind != apitype.EventTransfer || ev.Transfer == nil {
		return true
	}
	t := ev.Transfer
	prev, seen := p.last[t.ID]
	if seen && prev.Transfer.State == t.State && ev.Time.Sub(prev.Time) < transferProgressEvery {
		return false
	}
	if finished(t.State) {
		delete(p.last, t.ID)
		return true
	}
	if p.last == nil {
		p.last = make(map[string]apitype.Event)
	}
	p.last[t.ID] = ev
	return true
}
