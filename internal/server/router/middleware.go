package router

import (
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/paved-idp/paved/internal/telemetry"
)

func noRoute(c *Exchange) {
	c.Fail(http.StatusNotFound, "no such endpoint: "+c.R.Method+" "+c.R.URL.Path)
}

// requestIDOK reports whether a caller's request id matches
// ^[A-Za-z0-9._-]{1,64}$. It is written out because a regexp's {1,64}
// compiles to a 60 KB program, built at every start.
func requestIDOK(id string) bool {
	if len(id) == 0 || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		switch c := id[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// trace runs the request in a server span, a child of the caller's trace
// context when it sent one (a pipeline's `paved report` sends its run's);
// the function it returns ends the span with the answer's status.
func (rtr *Router) trace(c *Exchange, sw *statusWriter) (end func()) {
	route := c.route
	if rtr.unwatched(route) {
		return func() {}
	}
	if route == "" {
		route = "unmatched"
	}
	ctx := telemetry.Extract(c.R.Context(), telemetry.HeaderCarrier(c.R.Header))
	ctx, span := telemetry.OrNoop(rtr.opt.Tracer).Start(ctx, c.R.Method+" "+route, trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("http.request.method", c.R.Method), attribute.String("http.route", route),
			attribute.String("paved.request_id", c.ID)))
	c.R = c.R.WithContext(ctx)
	return func() {
		status := sw.Status()
		span.SetAttributes(attribute.Int("http.response.status_code", status))
		if status >= 500 {
			span.SetStatus(codes.Error, http.StatusText(status))
		}
		span.End()
	}
}

// accessLog returns the function that counts the answered request and logs it.
func (rtr *Router) accessLog(c *Exchange, sw *statusWriter) (done func()) {
	start := time.Now()
	return func() {
		route := c.route
		if route == "" {
			route = "unmatched"
		}
		status := sw.Status()
		rtr.metrics.observe(c.R.Method, route, status, time.Since(start))
		if rtr.unwatched(route) {
			return
		}
		// Paths and ids only: bodies and headers can hold secrets and user input.
		rtr.opt.Log.Info(telemetry.AccessLine, zap.String("request_id", c.ID), zap.String("method", c.R.Method),
			zap.String("route", route), zap.Int("status", status), zap.Duration("latency", time.Since(start)),
			zap.String("client", clientIP(c.R)))
	}
}

// recover answers 500 for a handler's panic, and logs it. A panic for a
// connection gone (a broken pipe, a reset, http.ErrAbortHandler) only ends
// the request: there is nobody to answer.
func (rtr *Router) recover(c *Exchange) {
	v := recover()
	if v == nil {
		return
	}
	if err, ok := v.(error); ok && (errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, http.ErrAbortHandler)) {
		return
	}
	rtr.opt.Log.Error("panic in handler", zap.String("request_id", c.ID), zap.Any("panic", v), zap.Stack("stack"))
	c.Fail(http.StatusInternalServerError, "internal error; request id "+c.ID)
}

// limitBody refuses a body declared larger than the limit, and caps the
// rest at it; false means it answered.
func (rtr *Router) limitBody(c *Exchange) bool {
	if c.R.ContentLength > rtr.opt.MaxBodyBytes {
		c.Fail(http.StatusRequestEntityTooLarge, "body is larger than "+strconv.FormatInt(rtr.opt.MaxBodyBytes, 10)+" bytes")
		return false
	}
	c.R.Body = http.MaxBytesReader(c.W, c.R.Body, rtr.opt.MaxBodyBytes)
	return true
}

// clientIP is the caller's address as gin's ClientIP gave it with its
// defaults (every proxy trusted): the first address of X-Forwarded-For when
// each of its entries is one, else X-Real-IP's likewise, else the peer's.
// It is only logged.
func clientIP(r *http.Request) string {
	for _, h := range []string{"X-Forwarded-For", "X-Real-IP"} {
		v := strings.Join(r.Header.Values(h), ",")
		if v == "" {
			continue
		}
		items := strings.Split(v, ",")
		for i := len(items) - 1; i >= 0; i-- {
			ip := strings.TrimSpace(items[i])
			if net.ParseIP(ip) == nil {
				break
			}
			if i == 0 {
				return ip
			}
		}
	}
	host, _, err := net.SplitHostPort(strings.TrimSpace(r.RemoteAddr))
	if err != nil || net.ParseIP(host) == nil {
		return ""
	}
	return host
}
