package caddymodule

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tokengate/tokengate/authserver/token"
	"github.com/tokengate/tokengate/console"

	"github.com/tokengate/tokengate/authserver"
	"github.com/tokengate/tokengate/introspect"
)

// The collectors are made once per process and registered in the registry
// of every config that has the oauth2 app (Caddy gives each config load its
// own): a reload neither registers them twice nor resets their counts.
var (
	tokensIssued = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "tokengate", Name: "tokens_issued_total",
		Help: "Token responses, by grant type and client.",
	}, []string{"grant_type", "client_id"})
	tokenErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "tokengate", Name: "token_errors_total",
		Help: "Token endpoint error responses, by OAuth error code.",
	}, []string{"error"})
	bearerChecks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "tokengate", Name: "bearer_checks_total",
		Help: "bearer_auth results: ok, missing, malformed, invalid, expired, revoked, insufficient_scope, unavailable.",
	}, []string{"outcome"})
	devicePolls = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "tokengate", Name: "device_polls_total",
		Help: "Device code polls of the token endpoint, by result.",
	}, []string{"result"})
	storeErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "tokengate", Name: "store_errors_total",
		Help: "Failed store operations, by what the server was doing.",
	}, []string{"operation"})
	storeDataLoss = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "tokengate", Name: "store_data_loss_total",
		Help: "Times this instance found the store had lost its data and wrote back what it holds: key ring, or data (the store's generation changed).",
	}, []string{"what"})
	loginProviderErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "tokengate", Name: "login_provider_errors_total",
		Help: "Sign-ins through a login provider that failed, by provider and kind: unavailable (down, slow, garbage), denied, refused (allow_domain, allow_claim), invalid (state, ID token).",
	}, []string{"provider", "kind"})
	backchannelLogouts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "tokengate", Name: "backchannel_logout_total",
		Help: "Logout tokens for OpenID Connect back-channel logout, by result: delivered, failed (every attempt, or refused by the application), dropped (too many waiting).",
	}, []string{"result"})
	rateLimits = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "tokengate", Name: "rate_limit_total",
		Help: "bearer_auth rate_limit decisions, by route (its resource, audience or rate_limit line), client and result: allowed, refused, store_error (a shared limit's store could not count).",
	}, []string{"route", "client_id", "result"})
	endpointDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "tokengate", Name: "endpoint_duration_seconds",
		Help:    "Time to answer a request to an authorization server endpoint.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
	}, []string{"endpoint"})

	revocationsDesc = prometheus.NewDesc("tokengate_revocations",
		"Entries in this instance's in-memory revocation state, by kind (token, grant, client, subject, session).", []string{"kind"}, nil)
	revocationsBytesDesc = prometheus.NewDesc("tokengate_revocations_bytes",
		"Estimated memory held by this instance's in-memory revocation state.", nil, nil)
	revocationsAgeDesc = prometheus.NewDesc("tokengate_revocations_age_seconds",
		"Seconds since the revocation state was last confirmed current with the store.", nil, nil)
)

// Series with fixed labels exist from the start, at 0.
func init() {
	for _, r := range token.DevicePollResults {
		devicePolls.WithLabelValues(r)
	}
	for _, w := range authserver.StoreDataLosses {
		storeDataLoss.WithLabelValues(w)
	}
	for _, r := range authserver.BackchannelLogoutResults {
		backchannelLogouts.WithLabelValues(r)
	}
}

// bearerOutcomes are bearerChecks' counters resolved once, so that the
// gateway path pays one atomic add rather than a label lookup.
var bearerOutcomes = func() map[introspect.Outcome]prometheus.Counter {
	m := map[introspect.Outcome]prometheus.Counter{}
	for _, o := range []introspect.Outcome{introspect.OutcomeOK, introspect.OutcomeMissing, introspect.OutcomeMalformed,
		introspect.OutcomeInvalid, introspect.OutcomeExpired, introspect.OutcomeRevoked,
		introspect.OutcomeInsufficientScope, introspect.OutcomeUnavailable} {
		m[o] = bearerChecks.WithLabelValues(string(o))
	}
	return m
}()

// registerMetrics adds the collectors to a config's registry, with one
// that reads this app's revocation state.
func (a *App) registerMetrics(reg *prometheus.Registry) error {
	if reg == nil {
		return nil
	}
	for _, c := range []prometheus.Collector{tokensIssued, tokenErrors, bearerChecks, devicePolls, storeErrors, storeDataLoss, loginProviderErrors, backchannelLogouts, rateLimits, endpointDuration} {
		if err := reg.Register(c); err != nil && !errors.As(err, new(prometheus.AlreadyRegisteredError)) {
			return err
		}
	}
	return reg.Register(revocationCollector{a})
}

// revocationCollector reports the size and age of an app's revocation state.
type revocationCollector struct{ a *App }

func (c revocationCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- revocationsDesc
	ch <- revocationsBytesDesc
	ch <- revocationsAgeDesc
}

func (c revocationCollector) Collect(ch chan<- prometheus.Metric) {
	if c.a.server == nil {
		return
	}
	rv := c.a.server.Revocations()
	sizes := rv.Sizes()
	for _, kind := range []string{"token", "grant", "client", "subject", "session"} {
		ch <- prometheus.MustNewConstMetric(revocationsDesc, prometheus.GaugeValue, float64(sizes[kind]), kind)
	}
	ch <- prometheus.MustNewConstMetric(revocationsBytesDesc, prometheus.GaugeValue, float64(rv.Bytes()))
	age := 0.0
	if at := rv.SyncedAt(); !at.IsZero() {
		age = time.Since(at).Seconds()
	}
	ch <- prometheus.MustNewConstMetric(revocationsAgeDesc, prometheus.GaugeValue, age)
}

// serverMetrics is authserver.Metrics on the collectors above, and on the
// console's charts.
type serverMetrics struct{ history *console.History }

func (m serverMetrics) TokenIssued(grant, clientID string) {
	tokensIssued.WithLabelValues(grant, clientID).Inc()
	m.history.TokensIssued.Add()
}
func (m serverMetrics) TokenError(code string) {
	tokenErrors.WithLabelValues(code).Inc()
	m.history.TokenErrors.Add()
}
func (serverMetrics) DevicePoll(result string)  { devicePolls.WithLabelValues(result).Inc() }
func (serverMetrics) StoreError(during string)  { storeErrors.WithLabelValues(during).Inc() }
func (serverMetrics) StoreDataLoss(what string) { storeDataLoss.WithLabelValues(what).Inc() }
func (serverMetrics) BackchannelLogout(result string) {
	backchannelLogouts.WithLabelValues(result).Inc()
}

func (serverMetrics) LoginProviderError(provider, kind string) {
	loginProviderErrors.WithLabelValues(provider, kind).Inc()
}
