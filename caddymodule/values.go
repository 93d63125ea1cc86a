package caddymodule

// The two kinds of value several directives share: a secret that may be a
// placeholder ({env.NAME}), and a duration that may be "off". One helper
// each, so that every directive says the same thing about them.

import (
	"fmt"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// secretValue is value with its placeholders replaced. A secret that is
// empty once they are (an unset environment variable) is an error naming
// what (e.g. "client app: secret"), since it would be no secret at all.
func secretValue(repl *caddy.Replacer, what, value string) (string, error) {
	secret := repl.ReplaceKnown(value, "")
	if secret == "" && value != "" {
		return "", fmt.Errorf("%s %q is empty once placeholders are replaced: is the environment variable set?", what, value)
	}
	return secret, nil
}

// off is a duration setting turned off (key_rotation off,
// refresh_retry_grace off).
const off caddy.Duration = -1

// durationArg reads a directive's one argument: a positive duration, or,
// when offAllowed, "off". example shows the form in the error, which
// names the directive (name, with its block: "registration: client_ttl").
func durationArg(d *caddyfile.Dispenser, name, example string, offAllowed bool) (caddy.Duration, error) {
	orOff := ""
	if offAllowed {
		orOff = " or off"
	}
	var v string
	if !d.Args(&v) || d.NextArg() {
		return 0, d.Errf("%s takes a duration (e.g. %s)%s", name, example, orOff)
	}
	if v == "off" && offAllowed {
		return off, nil
	}
	dur, err := caddy.ParseDuration(v)
	if err != nil || dur <= 0 {
		return 0, d.Errf("%s: %q is not a positive duration (e.g. %s)%s", name, v, example, orOff)
	}
	return caddy.Duration(dur), nil
}
