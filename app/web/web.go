// Package web is the browser UI of the Parley daemon: static HTML, CSS and
// JavaScript modules embedded in the binary (no build step, nothing
// fetched from elsewhere), served by package app/api on the API's loopback
// listener. The UI is a client of the local API like the CLI: it renders
// what /api/status, the other endpoints and the /api/events stream say,
// and keeps no rules of its own.
//
// Handler serves the files with their content types, ETags, gzip when the
// client accepts it (compressed once, at start), and the headers every UI
// response carries: a strict Content-Security-Policy (scripts, styles and
// connections from the same origin only; no inline code, no eval),
// nosniff, no referrer and no framing.
//
// The UI uses no framework: a page of ES modules that build the DOM with
// createElement and text nodes, so that text from the network (message
// bodies, usernames, file names) is never parsed as HTML. e2e/ holds the
// browser test's Node script.
package web

import (
	"embed"
	"io/fs"
)

//go:embed static
var static embed.FS

// Files are the UI's files, rooted at the site's root (index.html, js/,
// css/).
func Files() fs.FS {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded tree always has static/
	}
	return sub
}
