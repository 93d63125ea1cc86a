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
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"slices"
	"strings"

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

// Validate checks the rules: each a valid pattern with at least one scope.
func (m *MCP) Validate() error {
	for _, rules := range []struct {
		what  string
		rules []Rule
	}{{"mcp_tool", m.Tools}, {"mcp_method", m.Methods}} {
		for _, r := range rules.rules {
			if _, err := path.Match(r.Pattern, ""); err != nil || r.Pattern == "" {
				return fmt.Errorf("%s %q is not a name or a glob (such as delete_*)", rules.what, r.Pattern)
			}
			if len(r.Scopes) == 0 {
				return fmt.Errorf("%s %s: name the scopes it needs", rules.what, r.Pattern)
			}
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
		for _, sc := range r.Scopes {
			if !slices.Contains(out, sc) {
				out = append(out, sc)
			}
		}
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
	need := slices.Clone(route)
	for _, sc := range extra {
		if !slices.Contains(need, sc) {
			need = append(need, sc)
		}
	}
	if c.HasScopes(need) {
		return nil
	}
	return &introspect.Failure{Outcome: introspect.OutcomeInsufficientScope, Status: http.StatusForbidden, Code: "insufficient_scope",
		Description: "the token lacks a scope this request needs: " + strings.Join(need, " "), Scope: strings.Join(need, " ")}
}

// message is what the rules read of a JSON-RPC message.
type message struct {
	Method *string         `json:"method"`
	ID     json.RawMessage `json:"id"`
	Params json.RawMessage `json:"params"`
}

// needed reads the body (putting it back as it was) and returns the scopes
// its messages need beyond the route's.
func (m *MCP) needed(r *http.Request) ([]string, *introspect.Failure) {
	body, f := readBody(r)
	if f != nil {
		return nil, f
	}
	msgs, shape := parseMessages(body)
	if shape == duplicated {
		return nil, malformed(http.StatusBadRequest, "the JSON-RPC body names a member twice in one object: send each member once")
	}
	if f := checkHeaders(r.Header, msgs, shape); f != nil {
		return nil, f
	}
	var extra []string
	for _, msg := range msgs {
		// Responses carry no method, notifications no id: neither calls
		// anything. A tools/call without an id is checked all the same,
		// as a lenient server might run it.
		if msg.Method == nil || len(msg.ID) == 0 && *msg.Method != "tools/call" {
			continue
		}
		for _, rule := range m.Methods {
			if match(rule.Pattern, *msg.Method) {
				extra = append(extra, rule.Scopes...)
			}
		}
		if *msg.Method != "tools/call" || len(m.Tools) == 0 {
			continue
		}
		name, ok := nameOf(msg)
		if !ok {
			return nil, malformed(http.StatusBadRequest, "a tools/call without a string params.name cannot be checked: name the tool")
		}
		for _, rule := range m.Tools {
			if match(rule.Pattern, name) {
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
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBody+1))
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
	notRPC     shape = iota // not JSON, or neither an object nor an array: no rule can apply
	single                  // one message
	batch                   // an array of messages
	duplicated              // JSON naming a member twice in an object
)

// parseMessages reads a body as JSON-RPC: one message or a batch. JSON
// with a duplicated member is refused, as parsers differ on it (the first
// or the last wins): the gateway and the server could read different
// tools.
func parseMessages(body []byte) ([]message, shape) {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '{' && trimmed[0] != '[' || !json.Valid(trimmed) {
		return nil, notRPC
	}
	if err := noDuplicateMembers(trimmed); err != nil {
		return nil, duplicated
	}
	if trimmed[0] == '{' {
		var one message
		if json.Unmarshal(trimmed, &one) != nil {
			return nil, single
		}
		return []message{one}, single
	}
	var raw []json.RawMessage
	_ = json.Unmarshal(trimmed, &raw)
	var msgs []message
	for _, e := range raw {
		var msg message
		if json.Unmarshal(e, &msg) == nil { // an element that is no object is no call
			msgs = append(msgs, msg)
		}
	}
	return msgs, batch
}

var errDuplicate = errors.New("duplicate member")

// noDuplicateMembers walks valid JSON and fails on an object that names a
// member twice (after unescaping), at any depth.
func noDuplicateMembers(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	var walk func() error
	walk = func() error {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		switch tok {
		case json.Delim('{'):
			seen := map[string]bool{}
			for dec.More() {
				key, err := dec.Token()
				if err != nil {
					return err
				}
				k, _ := key.(string)
				if seen[k] {
					return errDuplicate
				}
				seen[k] = true
				if err := walk(); err != nil {
					return err
				}
			}
			_, err = dec.Token() // }
			return err
		case json.Delim('['):
			for dec.More() {
				if err := walk(); err != nil {
					return err
				}
			}
			_, err = dec.Token() // ]
			return err
		}
		return nil
	}
	return walk()
}

// nameOf is the name Mcp-Name carries for a message: params.name of
// tools/call and prompts/get, params.uri of resources/read; false for a
// method without one, or a message without it as a string.
func nameOf(msg message) (string, bool) {
	member := ""
	switch *msg.Method {
	case "tools/call", "prompts/get":
		member = "name"
	case "resources/read":
		member = "uri"
	default:
		return "", false
	}
	var params map[string]json.RawMessage
	if json.Unmarshal(msg.Params, &params) != nil {
		return "", false
	}
	var name string
	if json.Unmarshal(params[member], &name) != nil {
		return "", false
	}
	return name, true
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
	if shape != single || len(msgs) != 1 || msgs[0].Method == nil {
		return malformed(http.StatusBadRequest, "Mcp-Method and Mcp-Name name one JSON-RPC message, and the body is not one")
	}
	msg := msgs[0]
	if len(methods) == 1 && methods[0] != *msg.Method {
		return malformed(http.StatusBadRequest, fmt.Sprintf("the Mcp-Method header (%q) disagrees with the body's method (%q)", methods[0], *msg.Method))
	}
	if len(names) == 1 {
		name, ok := nameOf(msg)
		if !ok || names[0] != name {
			return malformed(http.StatusBadRequest, fmt.Sprintf("the Mcp-Name header (%q) disagrees with the body's %s", names[0], *msg.Method))
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
