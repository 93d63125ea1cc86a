package caddymodule

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

func TestUnmarshalGlobalOption(t *testing.T) {
	d := caddyfile.NewTestDispenser(`oauth2 {
		issuer https://auth.example.com
		store redis {
			address redis://a:6379/0 redis://b:6379/0
			master_name mymaster
			prefix tg:
			wait_replicas 1
		}
		signing_alg EdDSA
		templates /etc/tokengate/pages
		access_token_ttl 15m
		device_interval 3s
		revocation_max_staleness 30s
		key_rotation 168h
		grant_max_age 720h
		refresh_retry_grace 30s
		client app {
			name "The Droplet Book"
			website https://dropletbook.com
			secret {env.APP_SECRET}
			redirect_uri https://dropletbook.com/cb https://dropletbook.com/cb2
			grant authorization_code refresh_token
			scope read write
			audience https://api.example.com
			skip_consent
			resource_server
		}
		user mark $2a$04$1JQbuC1KrKEY4megfQHBouZZ0Cf10p2kT5vc7J9sSw3vQLQZ95iXe {
			name "Mark E. Mark"
			email mark@thefunkybunch.com
		}
	}`)
	a := new(App)
	if err := a.UnmarshalCaddyfile(d); err != nil {
		t.Fatal(err)
	}
	want := &App{
		Issuer:                 "https://auth.example.com",
		StoreRaw:               json.RawMessage(`{"addresses":["redis://a:6379/0","redis://b:6379/0"],"master_name":"mymaster","module":"redis","prefix":"tg:","wait_replicas":1}`),
		SigningAlg:             "EdDSA",
		Templates:              "/etc/tokengate/pages",
		AccessTokenTTL:         caddy.Duration(15 * time.Minute),
		DeviceInterval:         caddy.Duration(3 * time.Second),
		RevocationMaxStaleness: caddy.Duration(30 * time.Second),
		KeyRotation:            caddy.Duration(168 * time.Hour),
		GrantMaxAge:            caddy.Duration(720 * time.Hour),
		RefreshRetryGrace:      caddy.Duration(30 * time.Second),
		Clients: []*ClientConfig{{ID: "app", Name: "The Droplet Book", Website: "https://dropletbook.com", Secret: "{env.APP_SECRET}",
			RedirectURIs: []string{"https://dropletbook.com/cb", "https://dropletbook.com/cb2"},
			GrantTypes:   []string{"authorization_code", "refresh_token"}, Scope: "read write",
			Audience: []string{"https://api.example.com"}, SkipConsent: true, ResourceServer: true}},
		Users: []*UserConfig{{Username: "mark", PasswordHash: "$2a$04$1JQbuC1KrKEY4megfQHBouZZ0Cf10p2kT5vc7J9sSw3vQLQZ95iXe",
			Name: "Mark E. Mark", Email: "mark@thefunkybunch.com"}},
	}
	if !reflect.DeepEqual(a, want) {
		got, _ := json.Marshal(a)
		exp, _ := json.Marshal(want)
		t.Fatalf("got  %s\nwant %s", got, exp)
	}
}

func TestKeyRotationOption(t *testing.T) {
	// 0 is authserver's default (30 days), negative is off.
	for src, want := range map[string]caddy.Duration{"": 0, "key_rotation off": -1, "key_rotation 48h": caddy.Duration(48 * time.Hour)} {
		a := new(App)
		if err := a.UnmarshalCaddyfile(caddyfile.NewTestDispenser("oauth2 {\n issuer https://auth.example.com\n " + src + "\n}")); err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		if a.KeyRotation != want {
			t.Errorf("%q: rotation %v, want %v", src, a.KeyRotation, want)
		}
	}
	for _, src := range []string{"key_rotation", "key_rotation soon", "key_rotation -1h", "key_rotation 1h 2h"} {
		err := new(App).UnmarshalCaddyfile(caddyfile.NewTestDispenser("oauth2 {\n issuer https://auth.example.com\n " + src + "\n}"))
		if err == nil || !strings.Contains(err.Error(), "key_rotation") {
			t.Errorf("%q: %v, want an error naming key_rotation", src, err)
		}
	}
}

func TestRefreshRetryGraceOption(t *testing.T) {
	for src, want := range map[string]caddy.Duration{"refresh_retry_grace off": -1, "refresh_retry_grace 2m": caddy.Duration(2 * time.Minute)} {
		a := new(App)
		if err := a.UnmarshalCaddyfile(caddyfile.NewTestDispenser("oauth2 {\n issuer https://auth.example.com\n " + src + "\n}")); err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		if a.RefreshRetryGrace != want {
			t.Errorf("%q: %v, want %v", src, a.RefreshRetryGrace, want)
		}
	}
	for _, src := range []string{"refresh_retry_grace", "refresh_retry_grace never", "grant_max_age -1h"} {
		err := new(App).UnmarshalCaddyfile(caddyfile.NewTestDispenser("oauth2 {\n issuer https://auth.example.com\n " + src + "\n}"))
		if err == nil || !strings.Contains(err.Error(), strings.Fields(src)[0]) {
			t.Errorf("%q: %v, want an error naming %s", src, err, strings.Fields(src)[0])
		}
	}
}

func TestUnmarshalBearerAuth(t *testing.T) {
	for src, want := range map[string]BearerAuth{
		`bearer_auth`:            {},
		`bearer_auth read write`: {Scope: "read write"},
		"bearer_auth read {\n scope write\n audience https://api https://api2\n realm api\n}": {
			Scope: "read write", Audience: Audiences{"https://api", "https://api2"}, Realm: "api"},
		"bearer_auth mcp {\n mcp_tool delete_* mcp:admin audit\n mcp_method resources/read mcp:read\n rate_limit 100/1m per subject shared\n on_store_error deny\n}": {
			Scope: "mcp", MCPTools: []MCPRule{{Name: "delete_*", Scope: "mcp:admin audit"}}, MCPMethods: []MCPRule{{Name: "resources/read", Scope: "mcp:read"}},
			RateLimit: &RateLimitConfig{Limit: "100/1m", Per: "subject", Shared: true, OnStoreError: "deny"}},
		"bearer_auth {\n rate_limit 5/1s\n}": {RateLimit: &RateLimitConfig{Limit: "5/1s"}},
	} {
		var b BearerAuth
		if err := b.UnmarshalCaddyfile(caddyfile.NewTestDispenser(src)); err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		if !reflect.DeepEqual(b, want) {
			t.Errorf("%s: got %+v, want %+v", src, b, want)
		}
	}
	var b BearerAuth
	if err := b.UnmarshalCaddyfile(caddyfile.NewTestDispenser("bearer_auth {\n audience\n}")); err == nil {
		t.Error("audience without a value accepted")
	}
}

// Each parser's doc comment shows its syntax, and the syntax shown names
// every directive the parsers accept: each string a switch in a function
// that reads a Caddyfile (its Dispenser or Helper) takes as a case.
func TestSyntaxCommentNamesEveryDirective(t *testing.T) {
	fset := token.NewFileSet()
	pkgs, err := parser.ParseDir(fset, ".", func(fi fs.FileInfo) bool { return !strings.HasSuffix(fi.Name(), "_test.go") }, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	var parsers []*ast.FuncDecl
	for _, f := range pkgs["caddymodule"].Files {
		for _, d := range f.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok || !readsCaddyfile(fn) {
				continue
			}
			parsers = append(parsers, fn)
			if fn.Doc == nil {
				continue
			}
			// The syntax is the comment's indented block.
			for _, line := range strings.Split(fn.Doc.Text(), "\n") {
				if fields := strings.Fields(line); strings.HasPrefix(line, "\t") && len(fields) > 0 {
					documented[fields[0]] = true
				}
			}
		}
	}
	for _, directive := range []string{"oauth2", "oauth2_server", "oauth2_console", "bearer_auth", "session_auth", "store"} {
		if !documented[directive] {
			t.Errorf("no parser's doc comment shows the syntax of %s", directive)
		}
	}
	accepted := 0
	for _, fn := range parsers {
		ast.Inspect(fn, func(n ast.Node) bool {
			cc, ok := n.(*ast.CaseClause)
			if !ok {
				return true
			}
			for _, e := range cc.List {
				lit, ok := e.(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					continue
				}
				accepted++
				if name, _ := strconv.Unquote(lit.Value); !documented[name] {
					t.Errorf("%s: %s accepts %q, which no parser's syntax comment shows", fset.Position(lit.Pos()), fn.Name.Name, name)
				}
			}
			return true
		})
	}
	if accepted < 30 {
		t.Fatalf("found only %d accepted directives in %d parsers", accepted, len(parsers))
	}
}

// readsCaddyfile says whether fn takes a Caddyfile's Dispenser or Helper.
func readsCaddyfile(fn *ast.FuncDecl) bool {
	for _, p := range fn.Type.Params.List {
		typ := p.Type
		if s, ok := typ.(*ast.StarExpr); ok {
			typ = s.X
		}
		if sel, ok := typ.(*ast.SelectorExpr); ok && (sel.Sel.Name == "Dispenser" || sel.Sel.Name == "Helper") {
			return true
		}
	}
	return false
}

// One spelling per concept: "scope" a space-separated string, "audience" a
// list, in the app's clients and in bearer_auth alike; the earlier JSON
// forms ("scopes" lists, bearer_auth's audience as a string) still read.
func TestJSONSpellings(t *testing.T) {
	var b BearerAuth
	if err := json.Unmarshal([]byte(`{"scope":"read write","audience":["https://a","https://b"]}`), &b); err != nil {
		t.Fatal(err)
	}
	if b.Scope != "read write" || !reflect.DeepEqual(b.Audience, Audiences{"https://a", "https://b"}) {
		t.Fatalf("current form: %+v", b)
	}
	var old BearerAuth
	if err := json.Unmarshal([]byte(`{"scopes":["read"],"audience":"https://a"}`), &old); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(old.Scopes, []string{"read"}) || !reflect.DeepEqual(old.Audience, Audiences{"https://a"}) {
		t.Fatalf("earlier form: %+v", old)
	}
	if err := json.Unmarshal([]byte(`{"audience":3}`), &old); err == nil || !strings.Contains(err.Error(), "audience must be") {
		t.Fatalf("a number as audience: %v", err)
	}
	var a App
	if err := json.Unmarshal([]byte(`{"issuer":"https://auth.example.com","clients":[
		{"client_id":"new","secret":"x","grant_types":["client_credentials"],"scope":"read write"},
		{"client_id":"old","secret":"x","grant_types":["client_credentials"],"scopes":["read","write"]}]}`), &a); err != nil {
		t.Fatal(err)
	}
	clients, err := a.clients(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range clients {
		if !reflect.DeepEqual(c.Scopes, []string{"read", "write"}) {
			t.Errorf("client %s: scopes %v", c.ID, c.Scopes)
		}
	}
}
