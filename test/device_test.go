package test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/tokengate/tokengate/internal/persontest"
)

// A TV with no browser: golang.org/x/oauth2's DeviceAuth and
// DeviceAccessToken against the real binary, while a person approves on
// /device from a "phone" (a cookie-jar client), typing the code lower-case
// with and without the dash.
const deviceCaddyfile = `{
	admin 127.0.0.1:{{.Admin}}
	persist_config off
	oauth2 {
		issuer {{.Issuer}}
		{{.Store}}
		device_interval 1s
		client tv {
			name "Living Room TV"
			grant device_code refresh_token
			scope read
		}
		user mark $2a$04$1JQbuC1KrKEY4megfQHBouZZ0Cf10p2kT5vc7J9sSw3vQLQZ95iXe
	}
}
` + authAndAPISites

func TestDeviceFlowWithOAuth2Client(t *testing.T) {
	stores(t, func(t *testing.T, storeLine string) {
		up := newUpstream(t)
		g := newGateway(t, Ports{Upstream: up.Addr(), Store: storeLine})
		g.start(deviceCaddyfile)
		// A public client sends its client_id in the body. (With the default
		// auto-detection, x/oauth2 retries every refused poll at once in the
		// other style, which earns a slow_down.)
		cfg := &oauth2.Config{ClientID: "tv", Scopes: []string{"read"}, Endpoint: oauth2.Endpoint{
			DeviceAuthURL: g.AuthURL() + "/oauth/device", TokenURL: g.AuthURL() + "/oauth/token",
			AuthStyle: oauth2.AuthStyleInParams}}

		for name, typed := range map[string]func(string) string{
			"lower case with dash":    strings.ToLower,
			"lower case without dash": func(s string) string { return strings.ToLower(strings.ReplaceAll(s, "-", "")) },
		} {
			t.Run(name, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				da, err := cfg.DeviceAuth(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if da.VerificationURI != g.AuthURL()+"/device" || da.Interval != 1 {
					t.Fatalf("device auth %+v", da)
				}
				// The person approves a moment after the device starts polling.
				approved := make(chan error, 1)
				go func() {
					time.Sleep(1500 * time.Millisecond)
					p := persontest.New("mark", markPassword)
					p.UserCode = typed(da.UserCode)
					last, err := p.Device(da.VerificationURI)
					if err == nil && !strings.Contains(last.Body, "return to your device") {
						err = errorf("last page:\n%s", last.Body)
					}
					approved <- err
				}()
				tok, err := cfg.DeviceAccessToken(ctx, da)
				if err != nil {
					t.Fatal(err)
				}
				if err := <-approved; err != nil {
					t.Fatal(err)
				}
				if tok.RefreshToken == "" {
					t.Fatal("no refresh token")
				}
				resp, body := get(t, cfg.Client(ctx, tok), "GET", g.APIURL()+"/shows")
				if resp.StatusCode != 200 || !strings.Contains(body, `"user":"mark"`) {
					t.Fatalf("API: %d %s", resp.StatusCode, body)
				}
			})
		}

		// The QR code of the complete URI.
		resp, _ := get(t, http.DefaultClient, "GET", g.AuthURL()+"/device/qr?user_code=WDJB-MJHT")
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/png" {
			t.Fatalf("QR: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	})
}
