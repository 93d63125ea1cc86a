package caddymodule

// The oauth2 global option's parser, beside the App (app.go) it fills:
// the block and each of its sub-blocks.

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"

	"github.com/tokengate/tokengate/authserver"
	"github.com/tokengate/tokengate/authserver/client"
	"github.com/tokengate/tokengate/authserver/keys"
	"github.com/tokengate/tokengate/authserver/web"
	"github.com/tokengate/tokengate/introspect"
	"github.com/tokengate/tokengate/login"
	"github.com/tokengate/tokengate/outbound"
	"github.com/tokengate/tokengate/policy"
)

// parseGlobalOption sets up the oauth2 app from the global option.
func parseGlobalOption(d *caddyfile.Dispenser, existing any) (any, error) {
	if existing != nil {
		return nil, d.Err("oauth2 is configured twice: use one oauth2 block")
	}
	a := new(App)
	if err := a.UnmarshalCaddyfile(d); err != nil {
		return nil, err
	}
	return httpcaddyfile.App{Name: "oauth2", Value: caddyconfig.JSON(a, nil)}, nil
}

// UnmarshalCaddyfile fills the app from the oauth2 global option (the
// sub-blocks are parseClient's, parseUser's, parseRegistration's,
// parseLoginProvider's and parseTrust's; the store's, the store
// modules'):
//
//	{
//		oauth2 {
//			issuer <url>
//			store file [<path>]
//			store redis [<address>...] {
//				address <url>...
//				master_name <name>
//				prefix <prefix>
//				wait_replicas <n>
//			}
//			signing_alg ES256|EdDSA|RS256
//			key_rotation <duration>|off
//			refresh_retry_grace <duration>|off
//			access_token_ttl <duration>
//			refresh_token_ttl <duration>
//			code_ttl <duration>
//			device_code_ttl <duration>
//			device_interval <duration>
//			grant_max_age <duration>
//			revocation_max_staleness <duration>
//			templates <folder>
//			dpop_nonce
//			scope_description <scope> <text>
//			resource <url> [<scope>...]
//			registration {
//				open
//				initial_access_token <token>
//				scope <scope>...
//				client_ttl <duration>
//				unused_client_ttl <duration>
//				max_clients <n>
//				client_id_metadata_documents {
//					allow_private_hosts <host>...
//				}
//			}
//			client <client_id> {
//				name <name>
//				website <url>
//				secret_hash <bcrypt hash>
//				secret <secret>
//				jwks_file <path>
//				jwks_uri <url>
//				redirect_uri <uri>...
//				grant authorization_code|refresh_token|client_credentials|device_code...
//				scope <scope>...
//				audience <aud>...
//				skip_consent
//				resource_server
//				require_dpop
//				post_logout_redirect_uri <uri>...
//				backchannel_logout_uri <url>
//				id_token_alg RS256|ES256|EdDSA
//				exchange <resource> <scope>...
//				exchange_from self|<issuer>...
//				federated <issuer> {
//					subject <sub>
//					audience <aud>
//				}
//				rate_limit <n>/<window>
//				token_rate_limit <n>/<window>
//			}
//			user <username> <bcrypt hash> {
//				name <name>
//				email <address>
//			}
//			login_provider <name> {
//				name <display name>
//				issuer <url>
//				authorization_url <url>
//				token_url <url>
//				userinfo_url <url>
//				client_id <id>
//				client_secret <secret>
//				scope <scope>...
//				username <claim>
//				username_claim <claim>
//				id_claim <claim>
//				allow_domain <domain>...
//				allow_claim <claim> <value>...
//				id_jag
//			}
//			trust <issuer> {
//				audience <aud>...
//				jwks_uri <url>
//				introspection [<url>] {
//					client_id <id>
//					client_secret <secret>
//					cache_ttl <duration>
//				}
//				scope_claim <claim>
//				token_type <typ>...
//			}
//		}
//	}
func (a *App) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // "oauth2"
	block := positionOf(d)
	if d.NextArg() {
		return d.Errf("oauth2 takes a block, not arguments")
	}
	for d.NextBlock(0) {
		dir := d.Val()
		switch dir {
		case "issuer":
			if !d.Args(&a.Issuer) {
				return d.Errf("issuer needs a URL, e.g. issuer https://auth.example.com")
			}
			if _, err := authserver.ValidateIssuer(a.Issuer); err != nil {
				return d.Errf("issuer: %v", err)
			}
		case "store":
			if !d.NextArg() {
				return d.Errf("store needs a kind: file or redis")
			}
			name := d.Val()
			unm, err := caddyfile.UnmarshalModule(d, "oauth2.stores."+name)
			if err != nil {
				if _, merr := caddy.GetModule("oauth2.stores." + name); merr != nil {
					return d.Errf("store %q is not known: use file or redis", name)
				}
				return err
			}
			a.StoreRaw = caddyconfig.JSONModuleObject(unm, "module", name, nil)
		case "signing_alg":
			if !d.Args(&a.SigningAlg) {
				return d.ArgErr()
			}
			if err := keys.CheckAlg(a.SigningAlg); err != nil {
				return d.Err(err.Error())
			}
		case "key_rotation", "refresh_retry_grace":
			dur, err := durationArg(d, dir, map[string]string{"key_rotation": "720h", "refresh_retry_grace": "60s"}[dir], true)
			if err != nil {
				return err
			}
			*map[string]*caddy.Duration{"key_rotation": &a.KeyRotation, "refresh_retry_grace": &a.RefreshRetryGrace}[dir] = dur
		case "access_token_ttl", "refresh_token_ttl", "code_ttl", "device_code_ttl", "device_interval", "revocation_max_staleness", "grant_max_age":
			dur, err := durationArg(d, dir, "1h", false)
			if err != nil {
				return err
			}
			*map[string]*caddy.Duration{"access_token_ttl": &a.AccessTokenTTL, "refresh_token_ttl": &a.RefreshTokenTTL,
				"code_ttl": &a.CodeTTL, "device_code_ttl": &a.DeviceCodeTTL, "device_interval": &a.DeviceInterval,
				"revocation_max_staleness": &a.RevocationMaxStaleness, "grant_max_age": &a.GrantMaxAge}[dir] = dur
		case "resource":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return d.Errf("resource needs a URL and optionally its scopes: resource https://mcp.example.com/mcp mcp")
			}
			if err := introspect.ValidateResource(args[0]); err != nil {
				return d.Errf("%v", err)
			}
			a.Resources = append(a.Resources, ResourceConfig{Resource: args[0], Scope: strings.Join(args[1:], " ")})
		case "registration":
			r, err := parseRegistration(d)
			if err != nil {
				return err
			}
			a.Registration = r
		case "scope_description":
			var name, text string
			if !d.Args(&name, &text) || d.NextArg() {
				return d.Errf("scope_description takes a scope and its description: scope_description read \"See your droplets\"")
			}
			if a.ScopeDescriptions == nil {
				a.ScopeDescriptions = map[string]string{}
			}
			a.ScopeDescriptions[name] = text
		case "dpop_nonce":
			if d.NextArg() {
				return d.Errf("dpop_nonce takes no value: it turns server nonces on for DPoP proofs")
			}
			a.DPoPNonce = true
		case "templates":
			if !d.Args(&a.Templates) || d.NextArg() {
				return d.Errf("templates takes one folder")
			}
		case "client":
			c, err := parseClient(d)
			if err != nil {
				return err
			}
			a.Clients = append(a.Clients, c)
		case "user":
			u, err := parseUser(d)
			if err != nil {
				return err
			}
			a.Users = append(a.Users, u)
		case "login_provider":
			lp, err := parseLoginProvider(d)
			if err != nil {
				return err
			}
			a.LoginProviders = append(a.LoginProviders, lp)
		case "trust":
			t, err := parseTrust(d)
			if err != nil {
				return err
			}
			for _, other := range a.Trust {
				if other.Issuer == t.Issuer {
					return d.Errf("trust %s is configured twice", t.Issuer)
				}
			}
			a.Trust = append(a.Trust, t)
		default:
			return d.Errf("unknown oauth2 option %q (expected issuer, store, signing_alg, key_rotation, *_ttl, device_interval, grant_max_age, refresh_retry_grace, revocation_max_staleness, templates, scope_description, resource, registration, client, user, login_provider, trust or dpop_nonce)", dir)
		}
	}
	if a.Issuer == "" {
		return block.errorf("oauth2: issuer is required, e.g. issuer https://auth.example.com")
	}
	if err := a.validate(); err != nil {
		return d.Errf("oauth2: %v", err)
	}
	return nil
}

func parseClient(d *caddyfile.Dispenser) (*ClientConfig, error) {
	c := new(ClientConfig)
	if !d.Args(&c.ID) {
		return nil, d.Errf("client needs an ID: client <client_id> { ... }")
	}
	// Where each directive (and each of its values) was, so that a problem
	// found once the block is read is reported at the line that caused it.
	at := map[string]position{"": positionOf(d)}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		sub := d.Val()
		here := positionOf(d)
		args := d.RemainingArgs()
		at[sub] = here
		for _, v := range args {
			at[sub+"\x00"+v] = here
		}
		one := func(dst *string) error {
			if len(args) != 1 {
				return d.Errf("client %s: %s takes exactly one value", c.ID, sub)
			}
			*dst = args[0]
			return nil
		}
		many := func(dst *[]string) error {
			if len(args) == 0 {
				return d.Errf("client %s: %s needs at least one value", c.ID, sub)
			}
			*dst = append(*dst, args...)
			return nil
		}
		var err error
		switch sub {
		case "name":
			err = one(&c.Name)
		case "website":
			err = one(&c.Website)
		case "secret_hash":
			err = one(&c.SecretHash)
		case "secret":
			err = one(&c.Secret)
		case "jwks_file":
			err = one(&c.JWKSFile)
		case "jwks_uri":
			if err = one(&c.JWKSURI); err == nil {
				if err := outbound.CheckURL(c.JWKSURI, true); err != nil {
					return nil, d.Errf("client %s: jwks_uri: %v", c.ID, err)
				}
			}
		case "redirect_uri":
			err = many(&c.RedirectURIs)
		case "grant":
			err = many(&c.GrantTypes)
			for _, g := range args {
				if _, err := client.GrantType(g); err != nil {
					return nil, d.Errf("client %s: %v", c.ID, err)
				}
			}
		case "scope":
			var list []string
			if err = many(&list); err == nil {
				c.Scope = strings.TrimSpace(c.Scope + " " + strings.Join(list, " "))
			}
		case "audience":
			err = many(&c.Audience)
		case "post_logout_redirect_uri":
			err = many(&c.PostLogoutRedirectURIs)
		case "backchannel_logout_uri":
			if err = one(&c.BackchannelLogoutURI); err == nil {
				if err := outbound.CheckURL(c.BackchannelLogoutURI, true); err != nil {
					return nil, d.Errf("client %s: backchannel_logout_uri: %v", c.ID, err)
				}
			}
		case "id_token_alg":
			if err = one(&c.IDTokenAlg); err == nil && !slices.Contains(keys.Algs, c.IDTokenAlg) {
				return nil, d.Errf("client %s: id_token_alg %q is not supported: use one of %s", c.ID, c.IDTokenAlg, strings.Join(keys.Algs, ", "))
			}
		case "rate_limit", "token_rate_limit":
			dst := map[string]*string{"rate_limit": &c.RateLimit, "token_rate_limit": &c.TokenRateLimit}[sub]
			if err = one(dst); err == nil {
				if _, perr := policy.ParseLimit(*dst); perr != nil {
					return nil, d.Errf("client %s: %s: %v", c.ID, sub, perr)
				}
			}
		case "exchange":
			if len(args) < 2 {
				return nil, d.Errf("client %s: exchange takes a resource and the most scope there: exchange <resource> <scope>...", c.ID)
			}
			c.Exchange = append(c.Exchange, ExchangeConfig{Resource: args[0], Scope: strings.Join(args[1:], " ")})
		case "exchange_from":
			err = many(&c.ExchangeFrom)
		case "federated":
			f := new(FederatedConfig)
			if err = one(&f.Issuer); err != nil {
				return nil, err
			}
			for sub := d.Nesting(); d.NextBlock(sub); {
				opt := d.Val()
				var v string
				if !d.Args(&v) || d.NextArg() {
					return nil, d.Errf("client %s: federated: %s takes exactly one value", c.ID, opt)
				}
				switch opt {
				case "subject":
					f.Subject = v
				case "audience":
					f.Audience = v
				default:
					return nil, unknownOption(d, "client "+c.ID+": federated", opt, "subject", "audience")
				}
			}
			c.Federated = f
		case "skip_consent", "resource_server", "require_dpop":
			if len(args) != 0 {
				return nil, d.Errf("client %s: %s takes no value", c.ID, sub)
			}
			*map[string]*bool{"skip_consent": &c.SkipConsent, "resource_server": &c.ResourceServer, "require_dpop": &c.RequireDPoP}[sub] = true
		default:
			return nil, unknownOption(d, "client "+c.ID, sub, "name", "website", "secret_hash", "secret", "jwks_file", "jwks_uri", "redirect_uri", "grant",
				"scope", "audience", "skip_consent", "resource_server", "require_dpop", "post_logout_redirect_uri", "backchannel_logout_uri", "id_token_alg", "exchange", "exchange_from", "federated", "rate_limit", "token_rate_limit")
		}
		if err != nil {
			return nil, err
		}
	}
	if len(c.GrantTypes) == 0 {
		return nil, d.Errf("client %s: no grant: add e.g. `grant client_credentials`", c.ID)
	}
	converted, err := (&App{Clients: []*ClientConfig{c}}).clients(nil)
	if err == nil {
		err = client.Validate(converted[0])
	}
	if err != nil {
		p := at[""]
		var ce *client.Error
		if errors.As(err, &ce) {
			if q, ok := at[ce.Field+"\x00"+ce.Value]; ok {
				p = q
			} else if q, ok := at[ce.Field]; ok {
				p = q
			}
		}
		return nil, p.errorf("%v", err)
	}
	return c, nil
}

// position is where a Caddyfile token was.
type position struct {
	file string
	line int
}

func positionOf(d *caddyfile.Dispenser) position { return position{d.File(), d.Line()} }

// errorf is an error at p, in the form the Dispenser's have.
func (p position) errorf(format string, args ...any) error {
	return fmt.Errorf("%s, at %s:%d", fmt.Sprintf(format, args...), p.file, p.line)
}

func parseUser(d *caddyfile.Dispenser) (*UserConfig, error) {
	u := new(UserConfig)
	if !d.Args(&u.Username, &u.PasswordHash) {
		return nil, d.Errf("user needs a username and a bcrypt hash: user <username> <hash from `tokengate hash-password`>")
	}
	if d.NextArg() {
		return nil, d.Errf("user %s: too many arguments (quote the hash if it contains spaces)", u.Username)
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		sub := d.Val()
		var v string
		if !d.Args(&v) || d.NextArg() {
			return nil, d.Errf("user %s: %s takes exactly one value", u.Username, sub)
		}
		switch sub {
		case "name":
			u.Name = v
		case "email":
			u.Email = v
		default:
			return nil, unknownOption(d, "user "+u.Username, sub, "name", "email")
		}
	}
	return u, nil
}

// parseLoginProvider reads a login_provider block.
func parseLoginProvider(d *caddyfile.Dispenser) (LoginProviderConfig, error) {
	var lp LoginProviderConfig
	if !d.Args(&lp.Name) || d.NextArg() {
		return lp, d.Errf("login_provider needs a name: login_provider corp { issuer …; client_id …; client_secret … }")
	}
	if !login.ValidName.MatchString(lp.Name) {
		return lp, d.Errf("login_provider %s: the name must be lower-case letters, digits, - and _ (it is in the redirect URI and its people's subjects)", lp.Name)
	}
	block := positionOf(d)
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		sub := d.Val()
		single := map[string]*string{"name": &lp.DisplayName, "issuer": &lp.Issuer, "authorization_url": &lp.AuthorizationURL,
			"token_url": &lp.TokenURL, "userinfo_url": &lp.UserinfoURL, "client_id": &lp.ClientID, "client_secret": &lp.ClientSecret,
			"username": &lp.UsernameClaim, "username_claim": &lp.UsernameClaim, "id_claim": &lp.IDClaim}
		if dst, ok := single[sub]; ok {
			if !d.Args(dst) || d.NextArg() {
				return lp, d.Errf("login_provider %s: %s takes one value", lp.Name, sub)
			}
			if strings.HasSuffix(sub, "_url") || sub == "issuer" {
				if err := outbound.CheckURL(*dst, true); err != nil {
					return lp, d.Errf("login_provider %s: %s: %v", lp.Name, sub, err)
				}
			}
			continue
		}
		args := d.RemainingArgs()
		switch sub {
		case "scope":
			if len(args) == 0 {
				return lp, d.Errf("login_provider %s: scope needs at least one scope", lp.Name)
			}
			lp.Scope = strings.TrimSpace(lp.Scope + " " + strings.Join(args, " "))
		case "allow_domain":
			if len(args) == 0 {
				return lp, d.Errf("login_provider %s: allow_domain needs at least one domain", lp.Name)
			}
			lp.AllowDomains = append(lp.AllowDomains, args...)
		case "allow_claim":
			if len(args) < 2 {
				return lp, d.Errf("login_provider %s: allow_claim takes a claim and the values it may hold: allow_claim groups engineering", lp.Name)
			}
			lp.AllowClaims = append(lp.AllowClaims, AllowClaim{Claim: args[0], Values: args[1:]})
		case "id_jag":
			if len(args) != 0 {
				return lp, d.Errf("login_provider %s: id_jag takes no value", lp.Name)
			}
			lp.IDJAG = true
		default:
			return lp, d.Errf("login_provider %s: unknown option %q (expected name, issuer, client_id, client_secret, scope, username, allow_domain, allow_claim, id_jag, or for plain OAuth 2.0 authorization_url, token_url, userinfo_url, id_claim, username_claim)", lp.Name, sub)
		}
	}
	// login's own rules, with the line of the block; the issuer, and
	// with it the redirect URI, may be set later in the file.
	cfg := lp.loginConfig(lp.ClientSecret, "<issuer>"+web.PathLoginProviders+lp.Name+"/callback")
	if err := cfg.Validate(); err != nil {
		return lp, block.errorf("%v", err)
	}
	return lp, nil
}

// parseTrust reads a trust block: another issuer whose tokens routes may
// accept.
func parseTrust(d *caddyfile.Dispenser) (TrustConfig, error) {
	var t TrustConfig
	if !d.Args(&t.Issuer) || d.NextArg() {
		return t, d.Errf("trust needs the issuer's identifier: trust https://sso.example.com { audience <aud> }")
	}
	block := positionOf(d)
	if err := outbound.CheckURL(t.Issuer, true); err != nil {
		return t, d.Errf("trust: %v", err)
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch sub := d.Val(); sub {
		case "audience", "token_type":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return t, d.Errf("trust %s: %s needs at least one value", t.Issuer, sub)
			}
			if sub == "audience" {
				t.Audience = append(t.Audience, args...)
			} else {
				t.TokenTypes = append(t.TokenTypes, args...)
			}
		case "jwks_uri", "scope_claim":
			dst := map[string]*string{"jwks_uri": &t.JWKSURI, "scope_claim": &t.ScopeClaim}[sub]
			if !d.Args(dst) || d.NextArg() {
				return t, d.Errf("trust %s: %s takes one value", t.Issuer, sub)
			}
			if sub == "jwks_uri" {
				if err := outbound.CheckURL(t.JWKSURI, true); err != nil {
					return t, d.Errf("trust %s: jwks_uri: %v", t.Issuer, err)
				}
			}
		case "introspection":
			in := new(TrustIntrospection)
			if d.NextArg() {
				in.URL = d.Val()
				if err := outbound.CheckURL(in.URL, true); err != nil {
					return t, d.Errf("trust %s: introspection: %v", t.Issuer, err)
				}
			}
			if d.NextArg() {
				return t, d.Errf("trust %s: introspection takes at most a URL, then a block", t.Issuer)
			}
			for nesting := d.Nesting(); d.NextBlock(nesting); {
				switch isub := d.Val(); isub {
				case "client_id", "client_secret":
					dst := map[string]*string{"client_id": &in.ClientID, "client_secret": &in.ClientSecret}[isub]
					if !d.Args(dst) || d.NextArg() {
						return t, d.Errf("trust %s: introspection: %s takes one value", t.Issuer, isub)
					}
				case "cache_ttl":
					dur, err := durationArg(d, "trust "+t.Issuer+": introspection: cache_ttl", "1m", false)
					if err != nil {
						return t, err
					}
					in.CacheTTL = dur
				default:
					return t, d.Errf("trust %s: introspection: unknown option %q (expected client_id, client_secret or cache_ttl)", t.Issuer, isub)
				}
			}
			if in.ClientID == "" || in.ClientSecret == "" {
				return t, d.Errf("trust %s: introspection needs client_id and client_secret: tokengate authenticates to the issuer with them", t.Issuer)
			}
			t.Introspection = in
		default:
			return t, unknownOption(d, "trust "+t.Issuer, sub, "audience", "jwks_uri", "introspection", "scope_claim", "token_type")
		}
	}
	if len(t.Audience) == 0 {
		return t, block.errorf("trust %s: audience is required: the aud its tokens must carry for this gateway (without one, its tokens for any other API would pass)", t.Issuer)
	}
	return t, nil
}

// parseRegistration reads the registration block.
func parseRegistration(d *caddyfile.Dispenser) (*RegistrationConfig, error) {
	r := new(RegistrationConfig)
	if d.NextArg() {
		return nil, d.Errf("registration takes a block: registration { open | initial_access_token <token>; scope <scope>... }")
	}
	block := positionOf(d)
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch sub := d.Val(); sub {
		case "open":
			if d.NextArg() {
				return nil, d.Errf("registration: open takes no value")
			}
			r.Open = true
		case "initial_access_token":
			if !d.Args(&r.InitialAccessToken) || d.NextArg() {
				return nil, d.Errf("registration: initial_access_token takes one token, e.g. {env.REG_TOKEN}")
			}
		case "client_id_metadata_documents":
			if d.NextArg() {
				return nil, d.Errf("registration: client_id_metadata_documents takes an optional block, not values")
			}
			r.ClientIDMetadataDocuments = true
			for nesting := d.Nesting(); d.NextBlock(nesting); {
				if d.Val() != "allow_private_hosts" {
					return nil, d.Errf("registration: client_id_metadata_documents: unknown option %q (expected allow_private_hosts)", d.Val())
				}
				hosts := d.RemainingArgs()
				if len(hosts) == 0 {
					return nil, d.Errf("registration: allow_private_hosts needs at least one host")
				}
				r.AllowPrivateHosts = append(r.AllowPrivateHosts, hosts...)
			}
		case "client_ttl", "unused_client_ttl":
			dur, err := durationArg(d, "registration: "+sub, "720h", false)
			if err != nil {
				return nil, err
			}
			*map[string]*caddy.Duration{"client_ttl": &r.ClientTTL, "unused_client_ttl": &r.UnusedClientTTL}[sub] = dur
		case "max_clients":
			var v string
			if !d.Args(&v) || d.NextArg() {
				return nil, d.Errf("registration: max_clients takes one number, e.g. 10000")
			}
			n, err := strconv.Atoi(v)
			if err != nil || n <= 0 {
				return nil, d.Errf("registration: max_clients %q is not a positive number", v)
			}
			r.MaxClients = n
		case "scope":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return nil, d.Errf("registration: scope needs at least one scope")
			}
			r.Scope = strings.TrimSpace(r.Scope + " " + strings.Join(args, " "))
		default:
			return nil, unknownOption(d, "registration", sub, "open", "initial_access_token", "scope", "client_ttl", "unused_client_ttl", "max_clients",
				"client_id_metadata_documents")
		}
	}
	check := authserver.RegistrationConfig{Open: r.Open, InitialAccessToken: r.InitialAccessToken, Scopes: strings.Fields(r.Scope)}
	if err := check.Validate(); err != nil {
		return nil, block.errorf("%v", err)
	}
	return r, nil
}
