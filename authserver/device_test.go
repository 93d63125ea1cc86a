package authserver_test

import (
	"fmt"
	"image/png"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokengate/tokengate/authserver"
	"github.com/tokengate/tokengate/authserver/client"
	"github.com/tokengate/tokengate/authserver/store"
	"github.com/tokengate/tokengate/internal/persontest"
)

var userCodeFormat = regexp.MustCompile(`^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$`)

// startDevice asks for a device code as the public tv client (or, with
// basic, a confidential one).
func (e *env) startDevice(t *testing.T, basic []string, kv ...string) map[string]any {
	t.Helper()
	f := form(kv...)
	if basic == nil {
		f.Set("client_id", "tv")
	}
	resp := e.post("/oauth/device", f, basic)
	if resp.StatusCode != 200 || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("device authorization: %d %v", resp.StatusCode, decode(t, resp))
	}
	return decode(t, resp)
}

// local points an issuer URL at the test server.
func (e *env) local(u any) string {
	return strings.Replace(u.(string), issuer, e.http.URL, 1)
}

func (e *env) poll(deviceCode string, basic []string) *http.Response {
	f := form("grant_type", client.GrantDeviceCode, "device_code", deviceCode)
	if basic == nil {
		f.Set("client_id", "tv")
	}
	return e.post("/oauth/token", f, basic)
}

func TestDeviceAuthorizationResponse(t *testing.T) {
	e := newEnv(t)
	m := e.startDevice(t, nil)
	uc, _ := m["user_code"].(string)
	if !userCodeFormat.MatchString(uc) {
		t.Fatalf("user_code %q", uc)
	}
	if m["verification_uri"] != issuer+"/device" || m["verification_uri_complete"] != issuer+"/device?user_code="+uc ||
		m["expires_in"] != float64(600) || m["interval"] != float64(5) || m["device_code"] == "" {
		t.Fatalf("response %v", m)
	}
	// Codes differ each time.
	if m2 := e.startDevice(t, nil); m2["user_code"] == uc || m2["device_code"] == m["device_code"] {
		t.Fatal("two device authorizations got the same codes")
	}
	wantOAuthError(t, e.post("/oauth/device", form("scope", "admin", "client_id", "tv"), nil), 400, "invalid_scope")
	wantOAuthError(t, e.post("/oauth/device", form(), []string{"svc", "s3cret"}), 400, "unauthorized_client")
	wantOAuthError(t, e.post("/oauth/device", form(), []string{"web", "wrong"}), 401, "invalid_client")
	wantOAuthError(t, e.post("/oauth/device", form("client_id", "web"), nil), 401, "invalid_client")
}

func TestDeviceFlow(t *testing.T) {
	e := newEnvWith(t, openStore(t), "ES256", func(c *authserver.Config) { c.DeviceInterval = time.Second })
	web := []string{"web", "websecret"}
	for _, typed := range []func(string) string{
		func(uc string) string { return strings.ToLower(uc) },                              // lower case with dash
		func(uc string) string { return strings.ToLower(strings.ReplaceAll(uc, "-", "")) }, // lower case without
		func(uc string) string { return " " + uc[:4] + " " + uc[5:] + " " },                // spaces
	} {
		m := e.startDevice(t, web, "scope", "read")
		wantOAuthError(t, e.poll(m["device_code"].(string), web), 400, "authorization_pending")

		p := e.person()
		p.UserCode = typed(m["user_code"].(string))
		last, err := p.Device(e.local(m["verification_uri"]))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(p.Pages, ",") != "device,login,consent" || !strings.Contains(last.Body, "return to your device") {
			t.Fatalf("pages %v, last:\n%s", p.Pages, last.Body)
		}
		checkPageHeaders(t, last.Header)

		time.Sleep(time.Second) // the interval since the pending poll
		resp := e.poll(m["device_code"].(string), web)
		if resp.StatusCode != 200 {
			t.Fatalf("poll after approval: %d %v", resp.StatusCode, decode(t, resp))
		}
		tok := decode(t, resp)
		c, err := e.validator.Validate(tok["access_token"].(string), "")
		if err != nil || c.Subject != "mark" || c.ClientID != "web" || c.Scope != "read" {
			t.Fatalf("token %v claims %+v err %v", tok, c, err)
		}
		if tok["refresh_token"] == nil {
			t.Fatal("no refresh token for a client allowed refresh_token")
		}
		// Exactly once.
		wantOAuthError(t, e.poll(m["device_code"].(string), web), 400, "invalid_grant")
	}
	// Each approval is a grant on the person's account page.
	grants, err := e.srv.Admin().Grants(t.Context(), store.GrantQuery{Subject: "mark"})
	if err != nil || len(grants) != 3 || grants[0].ClientID != "web" || grants[0].LastUsedAt.IsZero() || grants[0].Login != "password" {
		t.Fatalf("mark's grants after three device approvals: %+v (%v)", grants, err)
	}
}

// With the complete URI the person never types the code; the page still asks.
func TestDeviceFlowCompleteURIAndPublicClient(t *testing.T) {
	e := newEnv(t)
	m := e.startDevice(t, nil)
	p := e.person()
	res, err := p.Get(e.local(m["verification_uri_complete"]))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(res.Page.Body, `value="`+m["user_code"].(string)+`"`) {
		t.Fatalf("the device page is not pre-filled:\n%s", res.Page.Body)
	}
	last, err := p.Device(e.local(m["verification_uri_complete"]))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(p.Pages, ",") != "device,login,consent" || !strings.Contains(last.Body, "TV") {
		t.Fatalf("pages %v:\n%s", p.Pages, last.Body)
	}
	tok := decode(t, e.poll(m["device_code"].(string), nil))
	if tok["access_token"] == nil || tok["refresh_token"] != nil {
		t.Fatalf("public device client without refresh_token grant: %v", tok)
	}
	// The device flow asks every time, even after an approval.
	m = e.startDevice(t, nil)
	res, err = p.Get(e.local(m["verification_uri_complete"]))
	if err != nil || !res.Page.Has("decision") || !strings.Contains(res.Page.Body, m["user_code"].(string)) {
		t.Fatalf("a signed-in person gets the consent page, showing the code to compare: %v", err)
	}
	p.Pages = nil
	if _, err := p.Device(e.local(m["verification_uri_complete"])); err != nil || strings.Join(p.Pages, ",") != "consent" {
		t.Fatalf("second device approval: %v %v", p.Pages, err)
	}
}

func TestDevicePollingErrors(t *testing.T) {
	e := newEnvWith(t, openStore(t), "ES256", func(c *authserver.Config) {
		c.DeviceInterval, c.DeviceCodeTTL = time.Second, 2*time.Second
	})
	web := []string{"web", "websecret"}

	t.Run("slow_down grows the interval", func(t *testing.T) {
		m := e.startDevice(t, web)
		dc := m["device_code"].(string)
		wantOAuthError(t, e.poll(dc, web), 400, "authorization_pending")
		d := wantOAuthError(t, e.poll(dc, web), 400, "slow_down")
		if !strings.Contains(d["error_description"].(string), "6 seconds") {
			t.Fatalf("slow_down did not grow the interval by 5s: %v", d)
		}
		time.Sleep(1100 * time.Millisecond)
		// 1.1s later is still too fast for the new 6s interval.
		wantOAuthError(t, e.poll(dc, web), 400, "slow_down")
	})
	t.Run("access_denied", func(t *testing.T) {
		m := e.startDevice(t, web)
		p := e.person()
		p.UserCode, p.Decision = m["user_code"].(string), "deny"
		last, err := p.Device(e.local(m["verification_uri"]))
		if err != nil || !strings.Contains(last.Body, "will not get access") {
			t.Fatalf("deny: %v", err)
		}
		wantOAuthError(t, e.poll(m["device_code"].(string), web), 400, "access_denied")
	})
	t.Run("expired_token", func(t *testing.T) {
		m := e.startDevice(t, web)
		time.Sleep(2100 * time.Millisecond)
		wantOAuthError(t, e.poll(m["device_code"].(string), web), 400, "expired_token")
		// The person can no longer approve it either.
		p := e.person()
		p.UserCode = m["user_code"].(string)
		if _, err := p.Device(e.local(m["verification_uri"])); err == nil || !strings.Contains(err.Error(), "not valid") {
			t.Fatalf("an expired code was accepted on the page: %v", err)
		}
	})
	t.Run("wrong device code or client", func(t *testing.T) {
		m := e.startDevice(t, web)
		dc := m["device_code"].(string)
		wantOAuthError(t, e.poll(dc+"x", web), 400, "invalid_grant")
		wantOAuthError(t, e.poll("garbage", web), 400, "invalid_grant")
		wantOAuthError(t, e.poll(dc, nil), 400, "invalid_grant") // the tv client
		wantOAuthError(t, e.post("/oauth/token", form("grant_type", client.GrantDeviceCode), web), 400, "invalid_request")
	})
}

// Two devices polling the same approved code: one token.
func TestDeviceConcurrentPolls(t *testing.T) {
	e := newEnvWith(t, openStore(t), "ES256", func(c *authserver.Config) { c.DeviceInterval = time.Second })
	web := []string{"web", "websecret"}
	m := e.startDevice(t, web)
	p := e.person()
	p.UserCode = m["user_code"].(string)
	if _, err := p.Device(e.local(m["verification_uri"])); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	codes := map[int]int{}
	for range 10 {
		wg.Go(func() {
			resp := e.poll(m["device_code"].(string), web)
			mu.Lock()
			codes[resp.StatusCode]++
			mu.Unlock()
		})
	}
	wg.Wait()
	if codes[200] != 1 {
		t.Fatalf("statuses %v: want exactly one token", codes)
	}
}

func TestDeviceCodeGuessingIsLimited(t *testing.T) {
	e := newEnvWith(t, openStore(t), "ES256", func(c *authserver.Config) { c.DeviceFailuresPerIP = 3 })
	m := e.startDevice(t, nil)
	good := m["user_code"].(string)
	try := func(ip, code string) *persontest.Page {
		t.Helper()
		p := e.person()
		res, err := p.Get(e.http.URL + "/device")
		if err != nil {
			t.Fatal(err)
		}
		f, _ := res.Page.Form()
		f.Fields.Set("user_code", code)
		return &persontest.Page{Status: postFrom(t, p, f.Action, f.Fields, ip)}
	}
	for i := range 3 {
		if pg := try("192.0.2.1", fmt.Sprintf("BBBB-BBB%c", "CDF"[i])); pg.Status != 400 {
			t.Fatalf("wrong code %d: %d", i, pg.Status)
		}
	}
	if pg := try("192.0.2.1", good); pg.Status != 429 {
		t.Fatalf("the right code after the IP's limit: %d, want 429", pg.Status)
	}
	if pg := try("192.0.2.2", good); pg.Status != 302 {
		t.Fatalf("the right code from another IP: %d, want a redirect to sign in", pg.Status)
	}
	// No switch over the whole code space: 1,020 failures from 340
	// addresses (past the global limit of 1,000 there used to be) stop
	// none of the others.
	p := e.person()
	res, err := p.Get(e.http.URL + "/device")
	if err != nil {
		t.Fatal(err)
	}
	f, _ := res.Page.Form()
	f.Fields.Set("user_code", "BBBB-BBBG")
	for i := range 340 {
		for range 3 {
			postFrom(t, p, f.Action, f.Fields, fmt.Sprintf("198.51.%d.%d", i/250, i%250+1))
		}
	}
	if pg := try("192.0.2.5", good); pg.Status != 302 {
		t.Fatalf("the right code after many addresses failed: %d, want a redirect to sign in", pg.Status)
	}
	// An IPv6 /64 is one address.
	for i := range 3 {
		try(fmt.Sprintf("2001:db8:7:7::%x", i+1), "BBBB-BBBH")
	}
	if pg := try("2001:db8:7:7::99", good); pg.Status != 429 {
		t.Fatalf("the right code from a /64 over its limit: %d, want 429", pg.Status)
	}
}

func TestDeviceQR(t *testing.T) {
	e := newEnv(t)
	resp, err := http.Get(e.http.URL + "/device/qr?user_code=wdjb-mjht")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/png" {
		t.Fatalf("qr: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	img, err := png.Decode(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() < 200 || b.Dx() != b.Dy() {
		t.Fatalf("QR image %v", b)
	}
	resp2, _ := http.Get(e.http.URL + "/device/qr?user_code=AEIO-UAEI")
	resp2.Body.Close()
	if resp2.StatusCode != 400 {
		t.Fatalf("a code with vowels: %d", resp2.StatusCode)
	}
}
