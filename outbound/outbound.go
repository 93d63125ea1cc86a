// Package outbound is the one HTTP client tokengate uses to reach other
// servers (metadata documents, JWK Sets): every request has a timeout and a
// size cap, and follows no redirect. URLs a client supplies are https only
// and never reach loopback, private or link-local addresses unless the
// operator allows the host; the address is checked when connecting, after
// DNS, so that a name resolving to an internal address gets nowhere. URLs
// the operator wrote in the configuration go through a Trusted client: any
// address, and plain http to loopback.
package outbound

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Options shape a Client.
type Options struct {
	// Timeout bounds a whole request. Default 5s.
	Timeout time.Duration
	// MaxBytes caps a response body. Default 5 KB.
	MaxBytes int64
	// AllowPrivateHosts may resolve to loopback and private addresses
	// (an operator's own hosts).
	AllowPrivateHosts []string
	// Trusted is for URLs the operator wrote in the configuration: they may
	// reach any address, and use plain http when the host is loopback.
	Trusted bool
	// RootCAs, when set, replaces the system's roots (tests).
	RootCAs *x509.CertPool
}

// Client fetches documents within its limits.
type Client struct {
	http     *http.Client
	maxBytes int64
	allow    []string
	trusted  bool
}

// Response is a fetched document.
type Response struct {
	Body   []byte
	Header http.Header
}

// StatusError is an answer other than 200 (and not a redirect).
type StatusError struct {
	URL  string
	Code int
}

func (e *StatusError) Error() string { return fmt.Sprintf("fetching %s: HTTP %d", e.URL, e.Code) }

// ErrForbiddenAddress means the URL's host resolves to an address clients
// may not make tokengate reach.
var ErrForbiddenAddress = errors.New("the host resolves to a loopback, private or link-local address")

// New makes a Client.
func New(o Options) *Client {
	if o.Timeout == 0 {
		o.Timeout = 5 * time.Second
	}
	if o.MaxBytes == 0 {
		o.MaxBytes = 5 << 10
	}
	c := &Client{maxBytes: o.MaxBytes, allow: o.AllowPrivateHosts, trusted: o.Trusted}
	dialer := &net.Dialer{Timeout: o.Timeout}
	transport := &http.Transport{
		Proxy:                 nil, // a proxy would hide the address checked below
		TLSClientConfig:       &tls.Config{RootCAs: o.RootCAs, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:   o.Timeout,
		ResponseHeaderTimeout: o.Timeout,
		MaxIdleConnsPerHost:   2,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, _, _ := net.SplitHostPort(addr)
			d := *dialer
			if !c.trusted && !slices.Contains(c.allow, host) {
				d.Control = func(_, address string, _ syscall.RawConn) error { return checkAddress(address) }
			}
			return d.DialContext(ctx, network, addr)
		},
	}
	c.http = &http.Client{Timeout: o.Timeout, Transport: transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return c
}

// checkAddress refuses a connection to an address clients may not reach.
func checkAddress(address string) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("connecting to %s: %w", address, err)
	}
	a := ap.Addr().Unmap()
	if a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() || a.IsUnspecified() ||
		a.IsMulticast() || a.IsInterfaceLocalMulticast() || isSharedOrReserved(a) {
		return fmt.Errorf("%w (%s)", ErrForbiddenAddress, a)
	}
	return nil
}

// isSharedOrReserved covers ranges netip does not name: carrier-grade NAT
// (100.64.0.0/10) and 0.0.0.0/8.
func isSharedOrReserved(a netip.Addr) bool {
	for _, p := range []netip.Prefix{netip.MustParsePrefix("100.64.0.0/10"), netip.MustParsePrefix("0.0.0.0/8")} {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Get fetches an https URL within the limits: no redirect, the size cap,
// the timeout, allowed addresses only.
func (c *Client) Get(ctx context.Context, rawURL string) (*Response, error) {
	if err := CheckURL(rawURL, c.trusted); err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, err
	}
	return c.do(req, rawURL)
}

// Status asks rawURL with a GET, within the same limits, and says what
// it answered (a redirect is an answer: it is not followed), reading
// none of the body: whether a server is up, at the cost of one request.
func (c *Client) Status(ctx context.Context, rawURL string) (int, error) {
	if err := CheckURL(rawURL, c.trusted); err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return 0, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, fmt.Errorf("fetching %s: %w", rawURL, unwrapURLError(err))
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// GetWithBearer is Get with the access token in the Authorization header
// (a userinfo endpoint).
func (c *Client) GetWithBearer(ctx context.Context, rawURL, token string) (*Response, error) {
	if err := CheckURL(rawURL, c.trusted); err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	return c.do(req, rawURL)
}

// PostForm posts form to rawURL within the same limits, authenticating
// with HTTP Basic when user is given (RFC 6749 §2.3.1's encoding).
func (c *Client) PostForm(ctx context.Context, rawURL string, form url.Values, user, password string) (*Response, error) {
	if err := CheckURL(rawURL, c.trusted); err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, rawURL, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if user != "" {
		req.SetBasicAuth(url.QueryEscape(user), url.QueryEscape(password))
	}
	return c.do(req, rawURL)
}

func (c *Client) do(req *http.Request, rawURL string) (*Response, error) {
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetching %s: %w", rawURL, unwrapURLError(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		return nil, fmt.Errorf("fetching %s: it redirects (%d), and redirects are not followed", rawURL, resp.StatusCode)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, &StatusError{URL: rawURL, Code: resp.StatusCode}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, c.maxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", rawURL, err)
	}
	if int64(len(body)) > c.maxBytes {
		return nil, fmt.Errorf("%s is larger than %d bytes", rawURL, c.maxBytes)
	}
	return &Response{Body: body, Header: resp.Header}, nil
}

// CacheFor is how long the response may be kept: its Cache-Control
// max-age, within [least, most]; least when it gives none (or says
// no-store), as a document fetched again at every use is a fetch an
// attacker can make tokengate repeat.
func (r *Response) CacheFor(least, most time.Duration) time.Duration {
	for _, part := range strings.Split(r.Header.Get("Cache-Control"), ",") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(part), "max-age="); ok {
			if n, err := strconv.Atoi(v); err == nil {
				return min(max(time.Duration(n)*time.Second, least), most)
			}
		}
	}
	return least
}

// CheckURL says whether a Client, Trusted or not, would try rawURL: https
// (or, when trusted, http to loopback), with a host.
func CheckURL(rawURL string, trusted bool) error {
	u, err := url.Parse(rawURL)
	switch {
	case err != nil || u.Host == "" || u.User != nil:
		return fmt.Errorf("%q is not an absolute URL with a host (and no user or password)", rawURL)
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http" && trusted && IsLoopbackHost(u.Hostname()):
		return nil
	case trusted:
		return fmt.Errorf("%q must use https (plain http is for loopback hosts only)", rawURL)
	default:
		return fmt.Errorf("%q is not an https URL", rawURL)
	}
}

// IsLoopbackHost says whether host (as url.URL.Hostname gives it) names
// this machine: localhost, 127.0.0.1 or ::1, the names RFC 8252 §7.3 and
// every other "http only for loopback" rule of tokengate mean.
func IsLoopbackHost(host string) bool {
	return host == "localhost" || host == "127.0.0.1" || host == "::1"
}

// unwrapURLError drops url.Error's repetition of the method and URL; the
// cause (ErrForbiddenAddress among them) stays in the chain.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
