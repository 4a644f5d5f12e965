package web_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// chromium is Debian's browser, which the tests drive through
// playwright-core (no browser download: "npx playwright install" is not
// used).
const chromium = "/usr/bin/chromium"

// browserTools skips t, or fails it with PARLEY_REQUIRE_BROWSER=1, when
// chromium, node or the scripts' node_modules are missing.
func browserTools(t *testing.T) {
	t.Helper()
	var missing []string
	if _, err := os.Stat(chromium); err != nil {
		missing = append(missing, chromium+" (apt-get install chromium)")
	}
	if _, err := exec.LookPath("node"); err != nil {
		missing = append(missing, "node (apt-get install nodejs npm)")
	}
	for _, mod := range []string{"playwright-core", "axe-core"} {
		if _, err := os.Stat(filepath.Join("e2e", "node_modules", mod, "package.json")); err != nil {
			missing = append(missing, "e2e/node_modules/"+mod+" (npm ci in app/web/e2e)")
		}
	}
	if len(missing) == 0 {
		return
	}
	msg := "the browser test needs: " + strings.Join(missing, ", ")
	if os.Getenv("PARLEY_REQUIRE_BROWSER") == "1" {
		t.Fatal(msg + " (PARLEY_REQUIRE_BROWSER=1)")
	}
	t.Skip(msg + "; set PARLEY_REQUIRE_BROWSER=1 to fail instead")
}

// runScript runs the Node script e2e/<script> with env added to the
// environment (and PARLEY_CHROMIUM), logs its progress lines, does what
// each "ACTION <what>" line asks with act (answering "done" on the
// script's standard input), and decodes its "RESULT <json>" line into
// result. It fails t if the script fails or prints no result.
func runScript(ctx context.Context, t *testing.T, script string, env []string, act func(string) error, result any) {
	t.Helper()
	cmd := exec.CommandContext(ctx, "node", script)
	cmd.Dir = "e2e"
	cmd.Env = append(append(os.Environ(), "PARLEY_CHROMIUM="+chromium), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", script, err)
	}
	got := false
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		if r, ok := strings.CutPrefix(line, "RESULT "); ok {
			if err := json.Unmarshal([]byte(r), result); err != nil {
				t.Errorf("%s's result %q: %v", script, r, err)
			}
			got = true
			continue
		}
		if what, ok := strings.CutPrefix(line, "ACTION "); ok {
			if err := act(what); err != nil {
				t.Errorf("%s asked to %s: %v", script, what, err)
			}
			fmt.Fprintln(in, "done")
			continue
		}
		t.Log(line)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("%s failed: %v\n%s", script, err, stderr.String())
	}
	if !got {
		t.Fatalf("%s printed no result\n%s", script, stderr.String())
	}
}
