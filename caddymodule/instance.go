package caddymodule

// Two tokengates started on the same ports both start: Caddy's listeners
// share a port (SO_REUSEPORT, for reloads without a gap), and the kernel
// then splits connections between the two processes, with their separate
// stores and keys. So each process names itself in its health answers,
// (a header), and after each start asks its own addresses who answers: another name,
// or an answer without one, is another process.

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/tokengate/tokengate/authserver"
)

// instance names this process.
var instance = rand.Text()

// aloneProbes is how many connections ask each address: with two
// processes on a port, 16 connections all reach the same one once in
// 2^15.
const aloneProbes = 16

// checkAlone logs an error for each address of servers (the issuer's,
// issuerServers) that another process answers too.
func (a *App) checkAlone(ctx context.Context, servers []*caddyhttp.Server) {
	issuer, err := url.Parse(a.server.Metadata().Issuer)
	if err != nil {
		return
	}
	for _, addr := range healthURLs(servers, issuer) {
		if other := a.otherAnswers(ctx, addr, issuer); other != "" {
			a.logger.Error("another process also serves "+addr.Host+", so requests are split between it and this tokengate at random: "+other+
				"; stop the other one, or give this config other ports",
				zap.String("address", addr.Host), zap.String("issuer", issuer.String()))
		}
	}
}

// healthURLs are the issuer's health endpoint at each local TCP address
// servers listen on.
func healthURLs(servers []*caddyhttp.Server, issuer *url.URL) []*url.URL {
	var out []*url.URL
	for _, srv := range servers {
		scheme := "http"
		if len(srv.TLSConnPolicies) > 0 {
			scheme = "https"
		}
		for _, l := range srv.Listen {
			na, err := caddy.ParseNetworkAddress(l)
			if err != nil || (na.Network != "" && !strings.HasPrefix(na.Network, "tcp")) || na.PortRangeSize() != 1 {
				continue // unix sockets, file descriptors, port ranges
			}
			host := na.Host
			if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
				host = "127.0.0.1"
			}
			out = append(out, &url.URL{Scheme: scheme, Host: net.JoinHostPort(host, strconv.FormatUint(uint64(na.StartPort), 10)),
				Path: issuer.Path + authserver.PathHealth})
		}
	}
	return out
}

// otherAnswers asks addr for its health aloneProbes times, each on a new
// connection, and says who else answered ("" for nobody).
func (a *App) otherAnswers(ctx context.Context, addr, issuer *url.URL) string {
	// The process asking its own listening address, not outbound's
	// business (a URL someone wrote): each request on a new connection,
	// for the issuer's host, accepting the process's own certificate
	// whatever its state, with outbound's limits otherwise (a timeout, a
	// capped read below, no redirect followed).
	c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true,
		TLSClientConfig: &tls.Config{ServerName: issuer.Hostname(), InsecureSkipVerify: true}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	answered := 0
	for try := 0; answered < aloneProbes && try < 4*aloneProbes; try++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, addr.String(), nil)
		if err != nil {
			return ""
		}
		req.Host = issuer.Host
		resp, err := c.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return ""
			}
			time.Sleep(50 * time.Millisecond) // not listening yet
			continue
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		answered++
		switch id := resp.Header.Get(authserver.InstanceHeader); {
		case id == "":
			return "it does not answer as tokengate does (" + resp.Status + ")"
		case id != instance:
			return "another tokengate (instance " + id + ")"
		}
	}
	return ""
}
