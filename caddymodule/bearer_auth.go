package caddymodule

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/tokengate/tokengate/authserver"
	"github.com/tokengate/tokengate/introspect"
	"github.com/tokengate/tokengate/policy"
	"github.com/tokengate/tokengate/trust"
	"go.uber.org/zap"
)

// bearer_auth: the gateway check of RFC 6750 bearer tokens (and RFC 9449
// DPoP-bound ones), for tokengate's own tokens and trusted issuers', and
// RFC 9728 protected resource metadata.

// BearerAuth lets a request through only with a valid access token of the
// oauth2 app carrying the required scopes, per RFC 6750.
type BearerAuth struct {
	// Scope lists, space-separated, the scopes the token must all carry.
	Scope string `json:"scope,omitempty"`
	// Scopes is the list form of Scope this config had before; still
	// read, with a warning. Deprecated: use Scope.
	Scopes []string `json:"scopes,omitempty"`
	// Audience, when set, lists this API's audiences: one of them must be
	// among the token's aud. A single string (this field's earlier form)
	// is still read.
	Audience Audiences `json:"audience,omitempty"`
	// Realm in the WWW-Authenticate challenge. Default: the site's host.
	Realm string `json:"realm,omitempty"`
	// Resource makes the route an RFC 9728 protected resource with this
	// identifier: an absolute https URL (http for loopback) without query
	// or fragment, scheme and host in lower case. Tokens must carry it in
	// aud (it takes the place of audience); its metadata document is
	// served, without a token, at the well-known URL below its host, and
	// every challenge points there, so that clients find the authorization
	// server by themselves.
	Resource string `json:"resource,omitempty"`
	// ResourceName is the resource's name for people (resource_name).
	ResourceName string `json:"resource_name,omitempty"`
	// DPoP "required" refuses tokens that are not DPoP-bound (RFC 9449);
	// by default the route takes both, bound ones with the DPoP scheme
	// and a proof.
	DPoP string `json:"dpop,omitempty"`
	// Issuers whose tokens the route accepts: "self" (tokengate's own)
	// and issuers of the oauth2 app's trust blocks. Default: self alone.
	// Audience and Resource apply to tokengate's own tokens; another
	// issuer's must carry its trust block's audience.
	Issuers []string `json:"issuers,omitempty"`
	// MCPTools give a tools/call of a matching tool (a name, or a glob
	// such as delete_*) scopes it needs besides the route's. With any
	// MCPTools or MCPMethods, a POST's body (up to 1 MiB; longer is 413)
	// is read as JSON-RPC and passed on unchanged; without, it is never
	// read. A token lacking a tool's scope gets 403 insufficient_scope
	// naming every scope the request needs, so that a client steps up
	// for that tool alone.
	MCPTools []MCPRule `json:"mcp_tools,omitempty"`
	// MCPMethods are the same for any JSON-RPC method (resources/read,
	// tools/*).
	MCPMethods []MCPRule `json:"mcp_methods,omitempty"`
	// RateLimit lets each client (or subject) of the route make at most so
	// many requests a window once its token passed; over it, 429 with
	// Retry-After and the RateLimit fields, before the upstream sees
	// anything. Counted on each instance in memory, or (Shared) in the
	// store: one round trip per request.
	RateLimit *RateLimitConfig `json:"rate_limit,omitempty"`

	app    *App
	logger *zap.Logger
	// required is Scope and Scopes as one list.
	required []string
	// resource is Resource, prepared; nil without one.
	resource *introspect.ProtectedResource
	// audiences a token must be for: Audience, or the Resource.
	audiences []string
	// checks counts results (bearerOutcomes); nil counts nothing.
	checks map[introspect.Outcome]prometheus.Counter
	// route checks the tokens of a route with other issuers; nil for
	// tokengate's own alone.
	route *trust.Route
	// dpop checks how a token is bound to the request (RFC 9449).
	dpop *introspect.DPoPPolicy
	// mcp is MCPTools and MCPMethods; nil without rules.
	mcp *policy.MCP
	// limit is RateLimit; nil without one. limitRoute names the route in
	// the metric.
	limit      *policy.RateLimit
	limitRoute string
	// limitCounts are the metric's counters of each client seen
	// (*[3]prometheus.Counter: allowed, refused, store_error), resolved
	// once rather than per request.
	limitCounts *sync.Map
	// limitWarned is when a store failure of the limit was last logged
	// (Unix ns).
	limitWarned *atomic.Int64
}

// RateLimitConfig is a route's rate_limit line.
type RateLimitConfig struct {
	// Limit is "<n>/<window>": 100/1m, 50/1s.
	Limit string `json:"limit"`
	// Per is client (default) or subject.
	Per string `json:"per,omitempty"`
	// Shared counts in the store, for every instance.
	Shared bool `json:"shared,omitempty"`
	// OnStoreError is what a shared limit does when the store cannot
	// count: allow (default; counted in tokengate_rate_limit_total as
	// store_error) or deny (503).
	OnStoreError string `json:"on_store_error,omitempty"`
}

// MCPRule is one mcp_tool or mcp_method line: a name or glob, and the
// scopes the messages it matches need.
type MCPRule struct {
	Name  string `json:"name"`
	Scope string `json:"scope"`
}

// CaddyModule returns the Caddy module information.
func (BearerAuth) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "http.handlers.bearer_auth", New: func() caddy.Module { return new(BearerAuth) }}
}

// Provision finds the oauth2 app whose tokens this handler accepts.
func (b *BearerAuth) Provision(ctx caddy.Context) (err error) {
	b.logger = ctx.Logger()
	b.checks = bearerOutcomes
	if b.app, err = oauth2App(ctx); err != nil {
		return err
	}
	b.required = append(strings.Fields(b.Scope), b.Scopes...)
	if len(b.Scopes) > 0 {
		b.logger.Warn(`bearer_auth's "scopes" list is deprecated: write "scope": "` + strings.Join(b.Scopes, " ") + `"`)
	}
	if len(b.MCPTools)+len(b.MCPMethods) > 0 {
		b.mcp = &policy.MCP{Tools: mcpRules(b.MCPTools), Methods: mcpRules(b.MCPMethods)}
		if err := b.mcp.Validate(); err != nil {
			return fmt.Errorf("bearer_auth: %w", err)
		}
	}
	if b.Resource != "" {
		if len(b.Audience) > 0 {
			return errors.New("bearer_auth: resource is this API's audience already: remove audience")
		}
		alg := cmp.Or(b.app.SigningAlg, authserver.DefaultSigningAlg)
		b.resource = &introspect.ProtectedResource{Resource: b.Resource, Name: b.ResourceName, Scopes: b.required,
			MoreScopes: b.mcp.Scopes(), Issuer: b.app.Issuer, SigningAlgs: []string{alg}, DPoPRequired: b.DPoP == "required"}
		if err := b.resource.Prepare(); err != nil {
			return fmt.Errorf("bearer_auth: %w", err)
		}
		b.audiences = []string{b.Resource}
		// Clients may now ask the issuer for tokens for it (RFC 8707).
		if err := b.app.server.AddResource(b.Resource, b.ResourceName, b.required); err != nil {
			return fmt.Errorf("bearer_auth: %w", err)
		}
		b.app.addResourceRoute(b)
	}
	if b.resource == nil {
		b.audiences = b.Audience
	}
	if b.RateLimit != nil {
		if err := b.provisionRateLimit(); err != nil {
			return fmt.Errorf("bearer_auth: rate_limit: %w", err)
		}
	}
	if err := b.provisionIssuers(); err != nil {
		return err
	}
	b.dpop = &introspect.DPoPPolicy{Required: b.DPoP == "required", Replay: b.app.dpopReplay, Nonces: b.app.server.DPoPNonces(),
		Proofs: b.app.dpopProofs}
	if len(b.audiences) == 0 && b.acceptsSelf() {
		// Without audience a token for any API of this issuer passes.
		for _, c := range b.app.Clients {
			if len(c.Audience) > 0 {
				b.logger.Warn("bearer_auth has no audience, so it accepts tokens issued for any API, such as client "+c.ID+"'s for "+c.Audience[0]+
					": name this API's audience (bearer_auth { audience <url> })", zap.String("client_id", c.ID), zap.Strings("client_audience", c.Audience))
				break
			}
		}
	}
	return nil
}

// requestURL is the URL the client called, as RFC 9449's htu names it:
// scheme and host as Caddy sees them, or as a trusted proxy says
// (trusted_proxies), and the path.
func requestURL(r *http.Request) string {
	scheme, host := "http", r.Host
	if r.TLS != nil {
		scheme = "https"
	}
	if trusted, _ := caddyhttp.GetVar(r.Context(), caddyhttp.TrustedProxyVarKey).(bool); trusted {
		if p := r.Header.Get("X-Forwarded-Proto"); p == "http" || p == "https" {
			scheme = p
		}
		if h := r.Header.Get("X-Forwarded-Host"); h != "" {
			host = h
		}
	}
	return scheme + "://" + host + r.URL.EscapedPath()
}

// provisionRateLimit sets up RateLimit: its figure, the clients' own
// (rate_limit in a client block), and where it counts.
func (b *BearerAuth) provisionRateLimit() error {
	rc := b.RateLimit
	limit, err := policy.ParseLimit(rc.Limit)
	if err != nil {
		return err
	}
	if rc.Per != "" && rc.Per != "client" && rc.Per != "subject" {
		return fmt.Errorf("per %q: count per client or per subject", rc.Per)
	}
	if rc.OnStoreError != "" && (rc.OnStoreError != "allow" && rc.OnStoreError != "deny" || !rc.Shared) {
		return fmt.Errorf("on_store_error %q: allow or deny, with a shared limit", rc.OnStoreError)
	}
	overrides := map[string]policy.Limit{}
	for _, c := range b.app.Clients {
		if c.RateLimit != "" {
			if overrides[c.ID], err = policy.ParseLimit(c.RateLimit); err != nil {
				return fmt.Errorf("client %s: %w", c.ID, err)
			}
		}
	}
	b.limit = &policy.RateLimit{Limit: limit, PerSubject: rc.Per == "subject", Line: rc.line(), DenyOnStoreError: rc.OnStoreError == "deny",
		Override: func(id string) (policy.Limit, bool) { l, ok := overrides[id]; return l, ok }}
	if rc.Shared {
		b.limit.Shared = &policy.Shared{Store: b.app.store}
	} else {
		b.limit.Local = policy.NewLocal()
	}
	b.limitRoute = cmp.Or(b.Resource, strings.Join(b.Audience, " "), b.limit.Line)
	b.limitCounts, b.limitWarned = new(sync.Map), new(atomic.Int64)
	return nil
}

// line is the rate_limit line as the Caddyfile writes it.
func (rc *RateLimitConfig) line() string {
	l := rc.Limit + " per " + cmp.Or(rc.Per, "client")
	if rc.Shared {
		l += " shared"
	}
	return l
}

// allowedByLimit counts a request whose token passed against the route's
// rate_limit; false when it answered (429, or 503 for a store that
// cannot count under on_store_error deny).
func (b *BearerAuth) allowedByLimit(w http.ResponseWriter, r *http.Request, c *introspect.Claims) bool {
	outcome, err := b.limit.Check(w, r, c.ClientID, c.Subject)
	counts := b.limitCountsOf(c.ClientID)
	switch outcome {
	case policy.Refused:
		counts[1].Inc()
		b.app.recent.history.RateLimited(c.ClientID)
		return false
	case policy.StoreDown:
		counts[2].Inc()
		// Once in a while, not per request: an outage would flood the log.
		if last := b.limitWarned.Load(); time.Since(time.Unix(0, last)) > 10*time.Second && b.limitWarned.CompareAndSwap(last, time.Now().UnixNano()) {
			b.logger.Warn("a shared rate limit could not be counted (logged at most every 10 s; tokengate_rate_limit_total counts each)",
				zap.String("client_id", c.ClientID), zap.Bool("let_through", !b.limit.DenyOnStoreError), zap.Error(err))
		}
		return !b.limit.DenyOnStoreError
	}
	counts[0].Inc()
	b.app.recent.history.RateAllowed(c.ClientID)
	return true
}

// limitCountsOf is clientID's counters of the rate limit metric.
func (b *BearerAuth) limitCountsOf(clientID string) *[3]prometheus.Counter {
	if v, ok := b.limitCounts.Load(clientID); ok {
		return v.(*[3]prometheus.Counter)
	}
	counts := &[3]prometheus.Counter{rateLimits.WithLabelValues(b.limitRoute, clientID, "allowed"),
		rateLimits.WithLabelValues(b.limitRoute, clientID, "refused"), rateLimits.WithLabelValues(b.limitRoute, clientID, "store_error")}
	v, _ := b.limitCounts.LoadOrStore(clientID, counts)
	return v.(*[3]prometheus.Counter)
}

// acceptsSelf says whether the route takes tokengate's own tokens.
func (b *BearerAuth) acceptsSelf() bool {
	return len(b.Issuers) == 0 || slices.Contains(b.Issuers, "self")
}

// provisionIssuers sets up the checker of a route that accepts other
// issuers' tokens; a route of tokengate's own tokens alone keeps the
// validator's direct path.
func (b *BearerAuth) provisionIssuers() error {
	if !slices.ContainsFunc(b.Issuers, func(s string) bool { return s != "self" }) {
		return nil
	}
	var self *introspect.Validator
	if b.acceptsSelf() {
		self = b.app.server.Validator()
	}
	var issuers []*trust.Issuer
	for _, name := range b.Issuers {
		if name == "self" {
			continue
		}
		i := b.app.trusted[name]
		if i == nil {
			return fmt.Errorf("bearer_auth: issuer %s is not trusted: add trust %s { audience <aud> } to the oauth2 block", name, name)
		}
		issuers = append(issuers, i)
	}
	route, err := trust.NewRoute(self, b.audiences, issuers)
	if err != nil {
		return fmt.Errorf("bearer_auth: %w", err)
	}
	b.route = route
	return nil
}

// ServeHTTP implements caddyhttp.MiddlewareHandler. It needs no store round
// trip: keys and revocations are held in memory by the app.
func (b *BearerAuth) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if b.resource != nil && r.URL.Path == b.resource.MetadataPath() {
		serveResourceMetadata(w, r, b.resource)
		return nil
	}
	var claims *introspect.Claims
	var f *introspect.Failure
	if b.route != nil {
		claims, f = b.route.Authorize(r, b.required)
	} else {
		claims, f = b.app.server.Validator().Authorize(r, b.required, b.audiences...)
	}
	if claims != nil {
		// The binding comes before the scopes: a stolen bound token earns
		// no insufficient_scope hint.
		if bf := b.dpop.CheckBinding(r, requestURL, claims); bf != nil {
			f = bf
		}
	}
	if f == nil && b.mcp != nil {
		f = b.mcp.Authorize(r, claims, b.required)
	}
	if f == nil && b.limit != nil && !b.allowedByLimit(w, r, claims) {
		return nil
	}
	if b.checks != nil {
		outcome := introspect.OutcomeOK
		if f != nil {
			outcome = f.Outcome
		}
		b.checks[outcome].Inc()
	}
	if f == nil {
		b.app.recent.history.BearerOK.Add()
	} else {
		b.app.recent.history.BearerRefused.Add()
	}
	if f != nil {
		realm := b.Realm
		if realm == "" {
			realm = r.Host
		}
		if ce := b.logger.Check(zap.DebugLevel, "bearer token refused"); ce != nil {
			ce.Write(zap.String("outcome", string(f.Outcome)), zap.String("description", f.Description), zap.NamedError("cause", f.Err))
		}
		if b.resource != nil {
			b.resource.WriteChallenge(w, realm, f)
		} else {
			introspect.WriteChallenge(w, realm, f)
		}
		return nil
	}
	repl := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	repl.Set("http.auth.user.id", (*claimSubject)(claims))
	repl.Set("http.auth.user.client_id", (*claimClientID)(claims))
	repl.Set("http.auth.user.scope", (*claimScope)(claims))
	repl.Set("http.auth.user.jti", (*claimID)(claims))
	repl.Map((*claimPlaceholders)(claims).replace)
	return next.ServeHTTP(w, r)
}

// claimPlaceholders answers {http.auth.user.claims.<name>}: every claim
// with a flat value (strings, numbers, booleans; arrays of them
// space-joined), for tokens of every issuer. A claim the token lacks, or
// an object, is empty, as a header must not carry the placeholder itself.
type claimPlaceholders introspect.Claims

func (c *claimPlaceholders) replace(key string) (any, bool) {
	name, ok := strings.CutPrefix(key, "http.auth.user.claims.")
	if !ok {
		return nil, false
	}
	v, _ := (*introspect.Claims)(c).Claim(name)
	return v, true
}

// The placeholder values are the (shared, immutable) claims seen through
// fmt.Stringer, which Caddy's replacer reads like strings: a pointer fits
// in an interface as it is, where each string would cost an allocation on
// every API request.
type (
	claimSubject  introspect.Claims
	claimClientID introspect.Claims
	claimScope    introspect.Claims
	claimID       introspect.Claims
)

func (c *claimSubject) String() string { return c.Subject }

func (c *claimClientID) String() string { return c.ClientID }

func (c *claimScope) String() string { return c.Scope }

func (c *claimID) String() string { return c.ID }

// Audiences is a list of audiences in JSON; a single string is read as a
// list of one (bearer_auth's audience was a string before).
type Audiences []string

// UnmarshalJSON implements json.Unmarshaler.
func (a *Audiences) UnmarshalJSON(b []byte) error {
	var one string
	if json.Unmarshal(b, &one) == nil {
		*a = Audiences{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return fmt.Errorf("audience must be a list of strings: %w", err)
	}
	*a = many
	return nil
}

// serveResourceMetadata answers GET (and HEAD) of a resource's RFC 9728
// document; it needs no token, as discovery comes before any.
func serveResourceMetadata(w http.ResponseWriter, r *http.Request, p *introspect.ProtectedResource) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "use GET", http.StatusMethodNotAllowed)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "public, max-age=300")
	h.Set("Access-Control-Allow-Origin", "*") // browser-based clients discover too
	if r.Method == http.MethodGet {
		_, _ = w.Write(p.Document())
	}
}

// mcpRules are the Caddyfile's or JSON's rules as policy's.
func mcpRules(rules []MCPRule) []policy.Rule {
	out := make([]policy.Rule, 0, len(rules))
	for _, r := range rules {
		out = append(out, policy.Rule{Pattern: r.Name, Scopes: strings.Fields(r.Scope)})
	}
	return out
}

// parseBearerAuth sets up bearer_auth from its directive.
func parseBearerAuth(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	b := new(BearerAuth)
	return b, b.UnmarshalCaddyfile(h.Dispenser)
}

// UnmarshalCaddyfile reads the bearer_auth directive (its arguments are
// required scopes, as scope's):
//
//	bearer_auth [<matcher>] [<scope>...] {
//		scope <scope>...
//		issuer self|<issuer>...
//		dpop required
//		audience <aud>...
//		realm <realm>
//		resource <url>
//		resource_name <name>
//		mcp_tool <name or glob> <scope>...
//		mcp_method <method or glob> <scope>...
//		rate_limit <n>/<window> [per client|subject] [shared]
//		on_store_error allow|deny
//	}
func (b *BearerAuth) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // "bearer_auth"
	b.addScopes(d.RemainingArgs())
	var onStoreError string
	for d.NextBlock(0) {
		switch d.Val() {
		case "scope":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return d.Errf("bearer_auth: scope needs at least one scope name")
			}
			b.addScopes(args)
		case "audience":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return d.Errf("bearer_auth: audience needs at least one value")
			}
			b.Audience = append(b.Audience, args...)
		case "issuer":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return d.Errf("bearer_auth: issuer needs self and/or the identifiers of trusted issuers")
			}
			b.Issuers = append(b.Issuers, args...)
		case "dpop":
			if !d.Args(&b.DPoP) || d.NextArg() || b.DPoP != "required" {
				return d.Errf("bearer_auth: dpop takes one value: required (DPoP-bound tokens only)")
			}
		case "realm", "resource", "resource_name":
			dir := d.Val()
			dst := map[string]*string{"realm": &b.Realm, "resource": &b.Resource, "resource_name": &b.ResourceName}[dir]
			if !d.Args(dst) || d.NextArg() {
				return d.Errf("bearer_auth: %s takes exactly one value", dir)
			}
			if dir == "resource" {
				if err := introspect.ValidateResource(b.Resource); err != nil {
					return d.Errf("bearer_auth: %v", err)
				}
			}
		case "rate_limit":
			args := d.RemainingArgs()
			if len(args) == 0 || b.RateLimit != nil {
				return d.Errf("bearer_auth: rate_limit takes <n>/<window> [per client|subject] [shared], once")
			}
			rc := &RateLimitConfig{Limit: args[0]}
			if _, err := policy.ParseLimit(rc.Limit); err != nil {
				return d.Errf("bearer_auth: %v", err)
			}
			for i := 1; i < len(args); i++ {
				switch {
				case args[i] == "per" && i+1 < len(args) && (args[i+1] == "client" || args[i+1] == "subject"):
					rc.Per = args[i+1]
					i++
				case args[i] == "shared":
					rc.Shared = true
				default:
					return d.Errf("bearer_auth: rate_limit: %q: after <n>/<window> come per client, per subject and shared", args[i])
				}
			}
			b.RateLimit = rc
		case "on_store_error":
			var v string
			if !d.Args(&v) || d.NextArg() || v != "allow" && v != "deny" {
				return d.Errf("bearer_auth: on_store_error takes allow or deny")
			}
			onStoreError = v
		case "mcp_tool", "mcp_method":
			dir := d.Val()
			args := d.RemainingArgs()
			if len(args) < 2 {
				return d.Errf("bearer_auth: %s takes a name (or a glob such as delete_*) and the scopes it needs", dir)
			}
			rule := MCPRule{Name: args[0], Scope: strings.Join(args[1:], " ")}
			if err := mcpRules([]MCPRule{rule})[0].Validate(); err != nil {
				return d.Errf("bearer_auth: %s %v", dir, err)
			}
			if dir == "mcp_tool" {
				b.MCPTools = append(b.MCPTools, rule)
			} else {
				b.MCPMethods = append(b.MCPMethods, rule)
			}
		default:
			return unknownOption(d, "bearer_auth", d.Val(), "scope", "issuer", "audience", "realm", "resource", "resource_name", "dpop",
				"mcp_tool", "mcp_method", "rate_limit", "on_store_error")
		}
	}
	if onStoreError != "" {
		if b.RateLimit == nil || !b.RateLimit.Shared {
			return d.Errf("bearer_auth: on_store_error goes with a shared rate_limit (rate_limit <n>/<window> shared)")
		}
		b.RateLimit.OnStoreError = onStoreError
	}
	return nil
}

// addScopes adds required scopes from the Caddyfile to Scope.
func (b *BearerAuth) addScopes(scopes []string) {
	b.Scope = strings.TrimSpace(b.Scope + " " + strings.Join(scopes, " "))
}

var (
	_ caddyhttp.MiddlewareHandler = (*BearerAuth)(nil)
	_ caddy.Provisioner           = (*BearerAuth)(nil)
	_ caddyfile.Unmarshaler       = (*BearerAuth)(nil)
)
