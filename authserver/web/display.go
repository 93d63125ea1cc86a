package web

// What pages show of what others wrote (Unicode Technical Standard #39's
// concerns, UTS #39 §5, and RFC 5890's A-labels): a name an application or
// a provider chose, without the invisible characters that reorder or hide
// text, and capped; a host in its ASCII (punycode) form, so that a
// look-alike such as gооgle.com (Cyrillic о) reads as xn--ggle-55da.com.

import (
	"net"
	"net/url"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/tokengate/tokengate/authserver/client"
	"golang.org/x/net/idna"
)

// DisplayText is a name as pages show it: format characters (bidi
// controls such as U+202E, zero-width ones such as U+200B) and control
// characters removed, runs of white space made one space, at most
// MaxNameLength characters.
func DisplayText(s string) string {
	var b strings.Builder
	space, n := false, 0
	for _, r := range s {
		switch {
		case r == utf8.RuneError, unicode.Is(unicode.Cf, r), unicode.IsControl(r) && !unicode.IsSpace(r):
			continue
		case unicode.IsSpace(r):
			space = b.Len() > 0
			continue
		}
		if n >= client.MaxNameLength {
			b.WriteString("…")
			break
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		b.WriteRune(r)
		n++
	}
	return b.String()
}

// DisplayHost is a host (with its port, if any) in ASCII: an
// internationalized name as its A-labels.
func DisplayHost(host string) string {
	name, port, err := net.SplitHostPort(host)
	if err != nil {
		name, port = host, ""
	}
	if !isASCII(name) {
		ascii, err := idna.Lookup.ToASCII(name)
		if err != nil {
			if ascii, err = idna.Punycode.ToASCII(name); err != nil {
				ascii = strings.Trim(strconv.QuoteToASCII(name), `"`)
			}
		}
		name = ascii
	}
	if port != "" {
		return net.JoinHostPort(name, port)
	}
	return name
}

// DisplayURL is a URL as pages show it: its host as DisplayHost gives it,
// the rest escaped as URLs are written.
func DisplayURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return DisplayText(raw)
	}
	u.Host = DisplayHost(u.Host)
	return DisplayText(u.String())
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
