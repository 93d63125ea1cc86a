// Package policy is what the edge decides past a valid token: the scopes
// each MCP tool and JSON-RPC method needs.
package policy

// The Model Context Protocol over Streamable HTTP (2026-07-28): JSON-RPC 2.0
// messages POSTed to the server, singly or as a batch, and the Mcp-Method
// and Mcp-Name headers that name the message for gateways. A route's rules
// give a tools/call of a matching tool, or any request of a matching
// method, scopes beyond the route's.

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"slices"
	"sync"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/tokengate/tokengate/authserver/oauth"
	"github.com/tokengate/tokengate/introspect"
)

// MaxBody is the most of a body the rules read (2^20 bytes): a request
// whose body is longer cannot be checked and is refused with 413.
const MaxBody = 1 << 20

// Rule gives the messages Pattern matches (a tool's name, or a method;
// path.Match syntax: delete_*, tools/*) the Scopes they need besides the
// route's.
type Rule struct {
	Pattern string
	Scopes  []string
}

// MCP is a route's rules: Tools match tools/call's params.name, Methods
// match any request's method.
type MCP struct {
	Tools, Methods []Rule
}

// Validate checks a rule: a valid pattern with at least one scope.
func (r Rule) Validate() error {
	if _, err := path.Match(r.Pattern, ""); err != nil || r.Pattern == "" {
		return fmt.Errorf("%q is not a name or a glob (such as delete_*)", r.Pattern)
	}
	if len(r.Scopes) == 0 {
		return fmt.Errorf("%s: name the scopes it needs", r.Pattern)
	}
	return nil
}

// Validate checks the rules.
func (m *MCP) Validate() error {
	for _, r := range m.Tools {
		if err := r.Validate(); err != nil {
			return fmt.Errorf("mcp_tool %w", err)
		}
	}
	for _, r := range m.Methods {
		if err := r.Validate(); err != nil {
			return fmt.Errorf("mcp_method %w", err)
		}
	}
	return nil
}

// Empty says the route has no rules: its bodies are never read.
func (m *MCP) Empty() bool { return m == nil || len(m.Tools)+len(m.Methods) == 0 }

// Scopes are the scopes the rules name, each once, for the resource's
// scopes_supported.
func (m *MCP) Scopes() []string {
	if m == nil {
		return nil
	}
	var out []string
	for _, r := range slices.Concat(m.Tools, m.Methods) {
		out = oauth.AppendMissing(out, r.Scopes...)
	}
	return out
}

// Authorize checks a request whose token (claims c) the route took with
// its own scopes: a POST's JSON-RPC messages each need their rules' scopes
// too. A refusal is insufficient_scope naming every scope the request
// needs (the route's and the rules'), so that a client steps up for that
// tool alone; or 400 for a body whose headers disagree with it or that
// names a member twice; or 413 for one too long to check. The body is
// read at most once and handed on byte for byte.
func (m *MCP) Authorize(r *http.Request, c *introspect.Claims, route []string) *introspect.Failure {
	if m.Empty() || r.Method != http.MethodPost {
		return nil
	}
	extra, f := m.needed(r)
	if f != nil || len(extra) == 0 {
		return f
	}
	_, f = introspect.Verdict(c, nil, oauth.AppendMissing(slices.Clone(route), extra...))
	return f
}

// message is what the rules read of a JSON-RPC message.
type message struct {
	method    string
	hasMethod bool
	// hasID tells a request from a notification.
	hasID bool
	// name and uri are params.name and params.uri, when strings.
	name, uri       string
	hasName, hasURI bool
}

// needed reads the body (putting it back as it was) and returns the scopes
// its messages need beyond the route's.
func (m *MCP) needed(r *http.Request) ([]string, *introspect.Failure) {
	body, f := readBody(r)
	if f != nil {
		return nil, f
	}
	msgs, shape, err := parseMessages(body)
	switch {
	case errors.Is(err, jsontext.ErrDuplicateName):
		return nil, malformed(http.StatusBadRequest, "the JSON-RPC body names a member twice in one object: send each member once")
	case err != nil:
		return nil, malformed(http.StatusBadRequest, "the body is not valid JSON, so this route's MCP rules cannot check it: "+err.Error())
	}
	if f := checkHeaders(r.Header, msgs, shape); f != nil {
		return nil, f
	}
	var extra []string
	for _, msg := range msgs {
		// Responses carry no method, notifications no id: neither calls
		// anything. A tools/call without an id is checked all the same,
		// as a lenient server might run it.
		if !msg.hasMethod || !msg.hasID && msg.method != "tools/call" {
			continue
		}
		for _, rule := range m.Methods {
			if match(rule.Pattern, msg.method) {
				extra = append(extra, rule.Scopes...)
			}
		}
		if msg.method != "tools/call" || len(m.Tools) == 0 {
			continue
		}
		if !msg.hasName {
			return nil, malformed(http.StatusBadRequest, "a tools/call without a string params.name cannot be checked: name the tool")
		}
		for _, rule := range m.Tools {
			if match(rule.Pattern, msg.name) {
				extra = append(extra, rule.Scopes...)
			}
		}
	}
	return extra, nil
}

// readBody reads up to MaxBody of r's body and puts back a body that
// yields the same bytes (and closes the original).
func readBody(r *http.Request) ([]byte, *introspect.Failure) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	if r.ContentLength > MaxBody {
		return nil, tooLarge()
	}
	var body []byte
	var err error
	if n := r.ContentLength; n > 0 {
		// Its length known: read it into a slice of that size, and make
		// sure nothing follows.
		body = make([]byte, n)
		if _, err = io.ReadFull(r.Body, body); err == nil {
			var one [1]byte
			if k, _ := r.Body.Read(one[:]); k > 0 {
				err = errors.New("longer than its Content-Length")
			}
		}
	} else {
		body, err = io.ReadAll(io.LimitReader(r.Body, MaxBody+1))
	}
	if err != nil {
		return nil, malformed(http.StatusBadRequest, "the request body could not be read")
	}
	if len(body) > MaxBody {
		return nil, tooLarge()
	}
	r.Body = replayed{bytes.NewReader(body), r.Body}
	return body, nil
}

func tooLarge() *introspect.Failure {
	return malformed(http.StatusRequestEntityTooLarge, fmt.Sprintf("the body is over %d bytes, too long for this route's MCP rules to check", MaxBody))
}

// replayed is a body already read: its bytes again, closing the original.
type replayed struct {
	*bytes.Reader
	orig io.Closer
}

func (b replayed) Close() error { return b.orig.Close() }

func malformed(status int, desc string) *introspect.Failure {
	return &introspect.Failure{Outcome: introspect.OutcomeMalformed, Status: status, Code: "invalid_request", Description: desc}
}

// shape is what a body is as JSON-RPC.
type shape int

const (
	notRPC shape = iota // neither an object nor an array: no rule can apply
	single              // one message
	batch               // an array of messages
)

// parseMessages reads a body as JSON-RPC, strictly (RFC 8259 with RFC
// 7493's rules: valid UTF-8, each member once): one message or a batch.
// A body that is not an object or an array passes as notRPC; one that
// starts as one and is not strict JSON is an error, as a lenient server
// might read a call out of it (a duplicated member, which parsers resolve
// differently, gets jsontext.ErrDuplicateName).
func parseMessages(body []byte) ([]message, shape, error) {
	p := decoders.Get().(*pooledDecoder)
	defer decoders.Put(p)
	// A bytes.Buffer is parsed in place, not copied.
	p.buf = *bytes.NewBuffer(body)
	dec := p.dec
	dec.Reset(&p.buf)
	var msgs []message
	var sh shape
	switch dec.PeekKind() {
	case '{':
		msg, err := readMessage(dec)
		if err != nil {
			return nil, single, err
		}
		msgs, sh = []message{msg}, single
	case '[':
		sh = batch
		if _, err := dec.ReadToken(); err != nil {
			return nil, batch, err
		}
		for dec.PeekKind() != ']' {
			if dec.PeekKind() != '{' {
				// An element that is no object is no call.
				if err := dec.SkipValue(); err != nil {
					return nil, batch, err
				}
				continue
			}
			msg, err := readMessage(dec)
			if err != nil {
				return nil, batch, err
			}
			msgs = append(msgs, msg)
		}
		if _, err := dec.ReadToken(); err != nil {
			return nil, batch, err
		}
	default:
		if t := bytes.TrimLeft(body, " \t\r\n"); len(t) > 0 && (t[0] == '{' || t[0] == '[') {
			_, err := dec.ReadToken()
			return nil, notRPC, err
		}
		return nil, notRPC, nil
	}
	if _, err := dec.ReadToken(); err != io.EOF {
		return nil, sh, cmp.Or(err, errors.New("more than one JSON value"))
	}
	return msgs, sh, nil
}

// pooledDecoder is a decoder kept between requests with its state (the
// names it tracks to refuse duplicates), and the buffer it reads.
type pooledDecoder struct {
	dec *jsontext.Decoder
	buf bytes.Buffer
}

var decoders = sync.Pool{New: func() any {
	p := new(pooledDecoder)
	p.dec = jsontext.NewDecoder(&p.buf)
	return p
}}

// readMessage reads one JSON-RPC message object: its method, whether it
// has an id, and params.name and params.uri; it skips (and so checks) the
// rest.
func readMessage(dec *jsontext.Decoder) (message, error) {
	var msg message
	if _, err := dec.ReadToken(); err != nil { // {
		return msg, err
	}
	for dec.PeekKind() != '}' {
		key, err := dec.ReadToken()
		if err != nil {
			return msg, err
		}
		switch key.String() {
		case "method":
			msg.method, msg.hasMethod, err = readString(dec)
		case "id":
			msg.hasID = true
			err = dec.SkipValue()
		case "params":
			err = readParams(dec, &msg)
		default:
			err = dec.SkipValue()
		}
		if err != nil {
			return msg, err
		}
	}
	_, err := dec.ReadToken() // }
	return msg, err
}

// readParams reads params.name and params.uri when params is an object.
func readParams(dec *jsontext.Decoder, msg *message) error {
	if dec.PeekKind() != '{' {
		return dec.SkipValue()
	}
	if _, err := dec.ReadToken(); err != nil {
		return err
	}
	for dec.PeekKind() != '}' {
		key, err := dec.ReadToken()
		if err != nil {
			return err
		}
		switch key.String() {
		case "name":
			msg.name, msg.hasName, err = readString(dec)
		case "uri":
			msg.uri, msg.hasURI, err = readString(dec)
		default:
			err = dec.SkipValue()
		}
		if err != nil {
			return err
		}
	}
	_, err := dec.ReadToken()
	return err
}

// readString reads a value: its text when it is a string.
func readString(dec *jsontext.Decoder) (string, bool, error) {
	if dec.PeekKind() != '"' {
		return "", false, dec.SkipValue()
	}
	tok, err := dec.ReadToken()
	if err != nil {
		return "", false, err
	}
	return tok.String(), true, nil
}

// nameOf is the name Mcp-Name carries for a message: params.name of
// tools/call and prompts/get, params.uri of resources/read; false for a
// method without one, or a message without it as a string.
func nameOf(msg message) (string, bool) {
	switch msg.method {
	case "tools/call", "prompts/get":
		return msg.name, msg.hasName
	case "resources/read":
		return msg.uri, msg.hasURI
	}
	return "", false
}

// checkHeaders checks the Mcp-Method and Mcp-Name headers, when sent,
// against the body: one message, of that method and with that name.
func checkHeaders(h http.Header, msgs []message, shape shape) *introspect.Failure {
	methods, names := h.Values("Mcp-Method"), h.Values("Mcp-Name")
	if len(methods) == 0 && len(names) == 0 {
		return nil
	}
	if len(methods) > 1 || len(names) > 1 {
		return malformed(http.StatusBadRequest, "send Mcp-Method and Mcp-Name once each")
	}
	if shape != single || len(msgs) != 1 || !msgs[0].hasMethod {
		return malformed(http.StatusBadRequest, "Mcp-Method and Mcp-Name name one JSON-RPC message, and the body is not one")
	}
	msg := msgs[0]
	if len(methods) == 1 && methods[0] != msg.method {
		return malformed(http.StatusBadRequest, fmt.Sprintf("the Mcp-Method header (%q) disagrees with the body's method (%q)", methods[0], msg.method))
	}
	if len(names) == 1 {
		name, ok := nameOf(msg)
		if !ok || names[0] != name {
			return malformed(http.StatusBadRequest, fmt.Sprintf("the Mcp-Name header (%q) disagrees with the body's %s", names[0], msg.method))
		}
	}
	return nil
}

// match reports whether name matches a rule's pattern (checked at
// configuration, so path.Match cannot fail here).
func match(pattern, name string) bool {
	ok, _ := path.Match(pattern, name)
	return ok
}
