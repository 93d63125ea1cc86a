package authserver_test

import (
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/tokengate/tokengate/authserver"
)

// countingMetrics records what the server counts.
type countingMetrics struct {
	mu     sync.Mutex
	counts map[string]int
}

func (m *countingMetrics) add(format string, args ...any) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.counts == nil {
		m.counts = map[string]int{}
	}
	m.counts[fmt.Sprintf(format, args...)]++
}

func (m *countingMetrics) TokenIssued(grant, client string) { m.add("issued %s %s", grant, client) }
func (m *countingMetrics) TokenError(code string)           { m.add("error %s", code) }
func (m *countingMetrics) DevicePoll(result string)         { m.add("poll %s", result) }
func (m *countingMetrics) StoreError(during string)         { m.add("store %s", during) }
func (m *countingMetrics) StoreDataLoss(what string)        { m.add("lost %s", what) }
func (m *countingMetrics) BackchannelLogout(result string)  { m.add("backchannel %s", result) }
func (m *countingMetrics) LoginProviderError(provider, kind string) {
	m.add("login %s %s", provider, kind)
}

func TestMetricsCounts(t *testing.T) {
	m := new(countingMetrics)
	e := newEnvWith(t, openStore(t), "ES256", func(c *authserver.Config) { c.Metrics, c.DeviceInterval = m, time.Second })
	web := []string{"web", "websecret"}

	if resp := e.post("/oauth/token", form("grant_type", "client_credentials"), []string{"svc", "s3cret"}); resp.StatusCode != 200 {
		t.Fatalf("client credentials: %d", resp.StatusCode)
	}
	wantOAuthError(t, e.post("/oauth/token", form("grant_type", "client_credentials"), []string{"svc", "wrong"}), 401, "invalid_client")

	d := e.startDevice(t, web)
	dc := d["device_code"].(string)
	wantOAuthError(t, e.poll(dc, web), 400, "authorization_pending")
	wantOAuthError(t, e.poll("nope.nope", web), 400, "invalid_grant")
	p := e.person()
	p.UserCode = d["user_code"].(string)
	if _, err := p.Device(e.local(d["verification_uri"])); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	if resp := e.poll(dc, web); resp.StatusCode != 200 {
		t.Fatalf("poll after approval: %d %v", resp.StatusCode, decode(t, resp))
	}
	wantOAuthError(t, e.poll(dc, web), 400, "invalid_grant")
	fast := e.startDevice(t, web)["device_code"].(string)
	wantOAuthError(t, e.poll(fast, web), 400, "authorization_pending")
	wantOAuthError(t, e.poll(fast, web), 400, "slow_down")

	want := map[string]int{
		"issued client_credentials svc":                           1,
		"issued urn:ietf:params:oauth:grant-type:device_code web": 1,
		"error invalid_client":                                    1,
		"error authorization_pending":                             2,
		"error slow_down":                                         1,
		"error invalid_grant":                                     2,
		"poll authorization_pending":                              2,
		"poll slow_down":                                          1,
		"poll invalid":                                            1,
		"poll issued":                                             1,
		"poll redeemed_before":                                    1,
	}
	if !reflect.DeepEqual(m.counts, want) {
		t.Fatalf("counted %v\nwant     %v", m.counts, want)
	}
}
