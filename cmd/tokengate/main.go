// Command tokengate is Caddy with its standard modules and tokengate's OAuth
// 2.0 authorization server and bearer-token gateway.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/tokengate/tokengate/caddymodule"
)

func main() { caddycmd.Main() }
