// Command tokengate is Caddy with its standard modules and tokengate's OAuth
// 2.0 authorization server and bearer-token gateway.
package main

import (
	"runtime/debug"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/tokengate/tokengate/caddymodule"
)

// The binary is tokengate, not caddy: its name in help and usage, its own
// description, and its own version in front of Caddy's.
func init() {
	caddy.CustomBinaryName = "tokengate"
	caddy.CustomLongDescription = `tokengate is an OAuth 2.0 authorization server and bearer-token gateway
built on Caddy: one binary that issues tokens (authorization code with
PKCE, device code, client credentials, refresh) and checks them on every
proxied request before your API sees it.

It is Caddy with its standard modules plus tokengate's, so every Caddy
command works as it does in caddy:

	$ tokengate run --config Caddyfile       # run in the foreground
	$ tokengate reload --config Caddyfile    # apply a changed Caddyfile
	$ tokengate adapt --config Caddyfile     # check a Caddyfile, show its JSON
	$ tokengate hash-password                # a bcrypt hash for secret_hash or user

and 'tokengate oauth2 ...' manages clients, tokens and signing keys of a
running instance through its admin API.

tokengate's README documents its Caddyfile options and endpoints; the
Caddy documentation (below) covers everything else.`
	caddy.CustomVersion = "tokengate " + version() + " on Caddy"
}

// version is tokengate's own: the module version the binary was built at,
// else the VCS revision it was built from.
func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := bi.Main.Version
	if v != "" && v != "(devel)" {
		return v
	}
	rev, modified := "", ""
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = "+modified"
			}
		}
	}
	if rev == "" {
		return "(devel)"
	}
	return rev[:min(12, len(rev))] + modified
}

func main() { caddycmd.Main() }
