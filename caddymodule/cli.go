package caddymodule

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"
	"github.com/tokengate/tokengate/authserver/admin"
	"github.com/tokengate/tokengate/authserver/client"
	"github.com/tokengate/tokengate/authserver/store"
)

// The `tokengate oauth2 ...` commands call the admin API of the running
// instance, as `tokengate reload` does.
func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "oauth2",
		Short: "Manage OAuth 2.0 clients, tokens and keys of a running tokengate",
		Long: `Registers and manages clients, revokes tokens and rotates signing keys through
the admin API of a running instance (--address, default localhost:2019).
Output is a table, or JSON with --json.`,
		CobraFunc: func(cmd *cobra.Command) {
			cmd.PersistentFlags().String("address", "localhost:2019", "admin API address of the running instance")
			cmd.PersistentFlags().Bool("json", false, "print JSON instead of a table")
			cmd.AddCommand(clientCommand(), revokeCommand(), grantsCommand(), keysCommand())
		},
	})
}

func clientCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "client", Short: "Register, list, show, delete clients and rotate their secrets"}

	create := &cobra.Command{
		Use:   "create --name N --website W --redirect-uri U --scope \"read write\" [--grant G]... [--public]",
		Short: "Register an application; prints its client_id and (once) its client_secret",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f := cmd.Flags()
			// The admin API's own types: the CLI is one more of its clients.
			reg := new(client.Info)
			reg.Name, _ = f.GetString("name")
			reg.Website, _ = f.GetString("website")
			reg.RedirectURIs, _ = f.GetStringArray("redirect-uri")
			reg.Scope, _ = f.GetString("scope")
			reg.GrantTypes, _ = f.GetStringArray("grant")
			reg.Audience, _ = f.GetStringArray("audience")
			reg.Public, _ = f.GetBool("public")
			reg.ResourceServer, _ = f.GetBool("resource-server")
			reg.SkipConsent, _ = f.GetBool("skip-consent")
			reg.RequireDPoP, _ = f.GetBool("require-dpop")
			reg.PostLogoutRedirectURIs, _ = f.GetStringArray("post-logout-redirect-uri")
			reg.BackchannelLogoutURI, _ = f.GetString("backchannel-logout-uri")
			reg.IDTokenAlg, _ = f.GetString("id-token-alg")
			exchanges, _ := f.GetStringArray("exchange")
			for _, x := range exchanges {
				fields := strings.Fields(x)
				if len(fields) < 2 {
					return fmt.Errorf("--exchange %q: give the resource and the most scope there, as \"https://api.example.com read\"", x)
				}
				reg.Exchange = append(reg.Exchange, client.ExchangeTarget{Resource: fields[0], Scopes: fields[1:]})
			}
			reg.ExchangeFrom, _ = f.GetStringArray("exchange-from")
			if iss, _ := f.GetString("federated-issuer"); iss != "" {
				sub, _ := f.GetString("federated-subject")
				aud, _ := f.GetString("federated-audience")
				reg.Federated = &client.Federation{Issuer: iss, Subject: sub, Audience: aud}
			}
			return call(cmd, http.MethodPost, "/oauth2/clients", reg, printClients)
		},
	}
	create.Flags().String("name", "", "the application's name, shown to people (required)")
	create.Flags().String("website", "", "the application's website, shown to people")
	create.Flags().StringArray("redirect-uri", nil, "a redirect URI (repeatable)")
	create.Flags().String("scope", "", "scopes it may obtain, space-separated")
	create.Flags().StringArray("grant", []string{"authorization_code", "refresh_token"}, "a grant: authorization_code, refresh_token, client_credentials, device_code (repeatable)")
	create.Flags().StringArray("audience", nil, "aud of its access tokens (repeatable)")
	create.Flags().Bool("public", false, "a public client (no secret; PKCE required)")
	create.Flags().Bool("resource-server", false, "may introspect any token")
	create.Flags().Bool("skip-consent", false, "a first-party application: no consent page")
	create.Flags().Bool("require-dpop", false, "its token requests must carry a DPoP proof (RFC 9449)")
	create.Flags().StringArray("post-logout-redirect-uri", nil, "where OpenID Connect logout may send people back (repeatable)")
	create.Flags().String("backchannel-logout-uri", "", "where it is told that a session it got an ID token in ended")
	create.Flags().String("id-token-alg", "", "its ID tokens' algorithm, one the issuer signs with (default RS256)")
	create.Flags().StringArray("exchange", nil, `a resource it may exchange tokens into, and the most scope there: "https://api.example.com read" (repeatable; grant token_exchange)`)
	create.Flags().StringArray("exchange-from", nil, "an issuer whose tokens it may exchange: self, or a trusted issuer (repeatable)")
	create.Flags().String("federated-issuer", "", "a workload issuer whose tokens authenticate it instead of a secret")
	create.Flags().String("federated-subject", "", "the workload token's exact sub (with --federated-issuer)")
	create.Flags().String("federated-audience", "", "the audience the workload token must carry (default: the issuer)")
	_ = create.MarkFlagRequired("name")

	list := &cobra.Command{Use: "list", Short: "List clients (configured ones are read-only)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return call(cmd, http.MethodGet, "/oauth2/clients", nil, printClients)
		}}
	show := &cobra.Command{Use: "show ID", Short: "Show a client", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return call(cmd, http.MethodGet, "/oauth2/clients/"+args[0], nil, printClients)
		}}
	del := &cobra.Command{Use: "delete ID", Short: "Delete a registered client and revoke its tokens", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return call(cmd, http.MethodDelete, "/oauth2/clients/"+args[0], nil, printKV)
		}}
	rotate := &cobra.Command{Use: "rotate-secret ID", Short: "Give a client a new secret (printed once); the old one stops working", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return call(cmd, http.MethodPost, "/oauth2/clients/"+args[0]+"/secret", nil, printClients)
		}}
	cmd.AddCommand(create, list, show, del, rotate)
	return cmd
}

func revokeCommand() *cobra.Command {
	revoke := &cobra.Command{
		Use:   "revoke --token T | --jti J | --client ID | --subject S | --grant G",
		Short: "Revoke a token, a grant, or every token of a client or a user, on every instance",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			body := map[string]string{}
			for flag, field := range map[string]string{"token": "token", "jti": "jti", "client": "client_id", "subject": "subject", "grant": "grant_id"} {
				if v, _ := cmd.Flags().GetString(flag); v != "" {
					body[field] = v
				}
			}
			if len(body) != 1 {
				return errors.New("give exactly one of --token, --jti, --client, --subject or --grant")
			}
			return call(cmd, http.MethodPost, "/oauth2/revoke", body, printKV)
		},
	}
	revoke.Flags().String("token", "", "an access or refresh token")
	revoke.Flags().String("jti", "", "an access token's jti")
	revoke.Flags().String("client", "", "a client_id: every token of that application")
	revoke.Flags().String("subject", "", "a user: every token issued to them")
	revoke.Flags().String("grant", "", "a grant (tokengate oauth2 grants): its tokens, and the user's consent to that client")
	return revoke
}

func grantsCommand() *cobra.Command {
	grants := &cobra.Command{
		Use:   "grants --subject S | --client ID [--limit N]",
		Short: "List the grants a user gave, or a client holds, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := url.Values{}
			subject, _ := cmd.Flags().GetString("subject")
			client, _ := cmd.Flags().GetString("client")
			if (subject == "") == (client == "") {
				return errors.New("give exactly one of --subject or --client")
			}
			if subject != "" {
				q.Set("subject", subject)
			} else {
				q.Set("client_id", client)
			}
			if n, _ := cmd.Flags().GetInt("limit"); n > 0 {
				q.Set("limit", strconv.Itoa(n))
			}
			return call(cmd, http.MethodGet, "/oauth2/grants?"+q.Encode(), nil, printGrants)
		},
	}
	grants.Flags().String("subject", "", "a user (a provider's people are <provider>:<user>)")
	grants.Flags().String("client", "", "a client_id")
	grants.Flags().Int("limit", 0, "at most this many (default and most: 500)")
	return grants
}

// printGrants prints a list of grants as a table.
func printGrants(w io.Writer, raw []byte) error {
	var list []*admin.GrantInfo
	if err := json.Unmarshal(raw, &list); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "GRANT_ID\tSUBJECT\tCLIENT_ID\tSCOPE\tCREATED (UTC)\tLAST_USED\tLOGIN\tACTING_FOR_SUBJECT")
	// To the minute, as last use is kept.
	minute := func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04") }
	for _, g := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", g.ID, g.Subject, g.ClientID, g.Scope, minute(g.CreatedAt), minute(g.LastUsedAt), g.Login, grantActors(g))
	}
	return tw.Flush()
}

// grantActors says who acts for the grant's subject beyond the person
// at their client: the client itself on an identity assertion, and those
// who exchanged its tokens; "-" for none.
func grantActors(g *admin.GrantInfo) string {
	var out []string
	if g.Via == store.ViaIDJAG {
		out = append(out, g.ClientID+" (id_jag)")
	}
	for _, a := range g.Actors {
		out = append(out, a+" (exchange)")
	}
	if len(out) == 0 {
		return "-"
	}
	return strings.Join(out, ", ")
}

func keysCommand() *cobra.Command {
	keys := &cobra.Command{Use: "keys", Short: "Manage signing keys"}
	rotate := &cobra.Command{Use: "rotate [--delay 1h]", Short: "Add a new signing key (published now, signing after --delay)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			delay, _ := cmd.Flags().GetString("delay")
			return call(cmd, http.MethodPost, "/oauth2/keys/rotate", map[string]string{"delay": delay}, printKV)
		}}
	rotate.Flags().String("delay", "0s", "how long the new key is published before it signs")
	keys.AddCommand(rotate)
	return keys
}

// call sends a request to the admin API and prints the answer: JSON with
// --json, else with print.
func call(cmd *cobra.Command, method, uri string, body any, print func(io.Writer, []byte) error) error {
	addr, _ := cmd.Flags().GetString("address")
	asJSON, _ := cmd.Flags().GetBool("json")
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	resp, err := caddycmd.AdminAPIRequest(addr, method, uri, nil, rd)
	if err != nil {
		return apiError(addr, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if asJSON {
		_, err = os.Stdout.Write(out)
		return err
	}
	return print(os.Stdout, out)
}

var apiErrorRe = regexp.MustCompile(`(?s)HTTP (\d+): (\{.*\})\s*$`)

// apiError shows an error as the API said it, or says that nothing
// answers at the admin address (the usual first mistake).
func apiError(addr string, err error) error {
	// Caddy's AdminAPIRequest flattens the cause into text.
	if msg := err.Error(); errors.Is(err, syscall.ECONNREFUSED) || strings.Contains(msg, "connection refused") ||
		strings.HasPrefix(addr, "unix/") && strings.Contains(msg, "no such file") {
		return fmt.Errorf("no tokengate answers at the admin address %s: start one (tokengate run --config Caddyfile), or point this command at the one that runs with --address host:port (its Caddyfile's `admin` option)", addr)
	}
	m := apiErrorRe.FindStringSubmatch(err.Error())
	if m == nil {
		return err
	}
	var body struct {
		Error string `json:"error"`
	}
	if json.Unmarshal([]byte(m[2]), &body) != nil || body.Error == "" {
		return err
	}
	return fmt.Errorf("%s (HTTP %s)", body.Error, m[1])
}

// printClients prints one client or a list as a table.
func printClients(w io.Writer, raw []byte) error {
	var list []*client.Info
	if err := json.Unmarshal(raw, &list); err != nil {
		one := new(client.Info)
		if err := json.Unmarshal(raw, one); err != nil {
			return err
		}
		list = []*client.Info{one}
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CLIENT_ID\tNAME\tTYPE\tGRANTS\tSCOPE\tREDIRECT_URIS\tSOURCE")
	for _, c := range list {
		kind := "confidential"
		if c.Public {
			kind = "public"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.ID, c.Name, kind, join(c.GrantTypes), c.Scope, join(c.RedirectURIs), c.Source)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(list) == 1 && list[0].Secret != "" {
		fmt.Fprintf(w, "\nclient_secret: %s\n(shown once: store it now)\n", list[0].Secret)
	}
	return nil
}

// join is a list as a cell: its items space-separated, "-" for none.
func join[T any](items []T) string {
	var s []string
	for _, it := range items {
		s = append(s, fmt.Sprint(it))
	}
	if len(s) == 0 {
		return "-"
	}
	return strings.Join(s, " ")
}

// printKV prints a flat JSON object as "key: value" lines.
func printKV(w io.Writer, raw []byte) error {
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 1, ' ', 0)
	for _, k := range slices.Sorted(maps.Keys(m)) {
		v := m[k]
		if list, ok := v.([]any); ok {
			v = join(list)
		}
		fmt.Fprintf(tw, "%s:\t%v\n", k, v)
	}
	return tw.Flush()
}
