package oauth

// Failures a client cannot fix: the store's and the server's own.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"go.uber.org/zap"
)

// Failures turns failures a client cannot fix into answers, logging each
// once, where it becomes an answer; the client is never shown the cause
// (it rides on Error.Err).
type Failures struct {
	Log *zap.Logger
	// Count counts a store failure by what was being done (a fixed
	// description, for metrics); nil counts nothing.
	Count func(during string)
}

// Store is a store failure while doing what: 503 temporarily_unavailable,
// so that the client retries.
func (f Failures) Store(what string, err error) *Error {
	if f.Count != nil {
		f.Count(what)
	}
	f.Log.Error("store unavailable", zap.String("during", what), zap.Error(err))
	e := ErrTemporarilyUnavailable("the authorization server's store is unavailable; retry shortly")
	e.Err = err
	return e
}

// Internal is the server failing while doing what: 500 server_error, or
// 503 when the work ran out of time.
func (f Failures) Internal(what string, err error) *Error {
	f.Log.Error("internal error", zap.String("during", what), zap.Error(err))
	if errors.Is(err, context.DeadlineExceeded) {
		e := ErrTemporarilyUnavailable("the authorization server is overloaded; retry shortly")
		e.Err = err
		return e
	}
	return &Error{Code: "server_error", Description: fmt.Sprintf("the authorization server failed while %s; its log has the details", what),
		Status: http.StatusInternalServerError, Err: err}
}

// StoreTimeout bounds the store work done for one request, so that a
// stalled store yields a 503 instead of a hanging client.
const StoreTimeout = 5 * time.Second

// RequestContext is r's context bounded by StoreTimeout.
func RequestContext(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), StoreTimeout)
}
