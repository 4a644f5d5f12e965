package main

import (
	"context"
	"fmt"
	"path/filepath"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/parleynet/parley/app/api"
	"github.com/parleynet/parley/app/apitype"
)

func (c *cli) publishCmd() *cobra.Command {
	cmd := c.jsonFlag(&cobra.Command{
		Use:   "publish PATH",
		Short: "Publish a file or folder into the network and print its link",
		Long: `Publish shares the file or folder at PATH in place (nothing is copied; a
file changed afterwards is no longer served) and announces it in the DHT,
so that anyone holding its parley:// link can download it with parley get.
It prints the name, size and CID, then the link on a line of its own.
Publishing the same unchanged content again gives the same link. --json
prints the API's Published.`,
		Example: `  parley publish ~/talks/slides.pdf
  parley publish ./photos --json | jq -r .link`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path, err := filepath.Abs(args[0]) // the daemon does not run in our folder
			if err != nil {
				return fmt.Errorf("publish %s: %w", args[0], err)
			}
			return c.call(cmd.Context(), func(ctx context.Context, cl *api.Client) error {
				p, err := cl.Publish(ctx, path)
				if err != nil {
					return err
				}
				if c.json {
					return c.printJSON(p)
				}
				fmt.Fprintf(c.out, "published %s (%s, CID %s)\n%s\n", safe(p.Name), byteCount(p.Size), safe(p.CID), safe(p.Link))
				return nil
			})
		},
	})
	// PATH is a local file: let the shell complete it.
	cmd.ValidArgsFunction = func(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
		return nil, cobra.ShellCompDirectiveDefault
	}
	return cmd
}

func (c *cli) publishedCmd() *cobra.Command {
	return c.jsonFlag(&cobra.Command{
		Use:   "published",
		Short: "List the content this device publishes, with its links",
		Long: `Published lists the content this device publishes, oldest first: name,
size, CID, where it is on this device, and the link to hand out. Finished
downloads that are seeded are in it too. --json prints the API's list of
Published.`,
		Example: `  parley published
  parley published --json | jq -r '.[].link'`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.call(cmd.Context(), func(ctx context.Context, cl *api.Client) error {
				ps, err := cl.Published(ctx)
				if err != nil {
					return err
				}
				if c.json {
					if ps == nil {
						ps = []apitype.Published{}
					}
					return c.printJSON(ps)
				}
				if len(ps) == 0 {
					fmt.Fprintln(c.out, "nothing published yet: parley publish PATH")
					return nil
				}
				w := tabwriter.NewWriter(c.out, 2, 4, 2, ' ', 0)
				fmt.Fprintln(w, "NAME\tSIZE\tCID\tPATH")
				for _, p := range ps {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", safe(p.Name), byteCount(p.Size), safe(p.CID), safe(p.Path))
				}
				if err := w.Flush(); err != nil {
					return err
				}
				fmt.Fprintln(c.out, "links:")
				for _, p := range ps {
					fmt.Fprintf(c.out, "  %s\n", safe(p.Link))
				}
				return nil
			})
		},
	})
}

func (c *cli) unpublishCmd() *cobra.Command {
	return c.jsonFlag(&cobra.Command{
		Use:   "unpublish CID",
		Short: "Stop publishing content: no longer announce or serve it",
		Long: `Unpublish stops announcing and serving the content CID (see parley
published). Its links stop working once the provider records already in
the DHT expire. Unpublishing what is not published is not an error. --json
prints {}.`,
		Example: `  parley unpublish bafkr4ihkr4ld3m4gqkjf4reryxsy2s5tkbxprqkow6fin2iiyvreuzzab4
  parley unpublish bafkr4ihkr4ld3m4gqkjf4reryxsy2s5tkbxprqkow6fin2iiyvreuzzab4 --json`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.call(cmd.Context(), func(ctx context.Context, cl *api.Client) error {
				if err := cl.Unpublish(ctx, args[0]); err != nil {
					return err
				}
				if c.json {
					return c.printJSON(struct{}{})
				}
				fmt.Fprintf(c.out, "%s is no longer published\n", safe(args[0]))
				return nil
			})
		},
	})
}

// publishedCIDs completes CID arguments.
func publishedCIDs(ctx context.Context, cl *api.Client) ([]string, error) {
	ps, err := cl.Published(ctx)
	if err != nil {
		return nil, err
	}
	var cids []string
	for _, p := range ps {
		cids = append(cids, p.CID)
	}
	return cids, nil
}

// byteCount is n bytes for people: 512 B, 1.5 KiB, 40.0 MiB.
func byteCount(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
