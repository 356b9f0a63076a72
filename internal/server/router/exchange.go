package router

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
)

// Exchange is one request on its way through the middleware and its
// route's handlers.
type Exchange struct {
	W http.ResponseWriter
	// R is the request, in its span's context once traced.
	R *http.Request
	// ID is the request id: the caller's X-Request-ID when it is safe to
	// log, else a random one.
	ID string
	// route is the matched route as Handle was given it
	// ("/api/v1/runs/:id"), "" when none matched; metrics, spans and logs
	// are labelled with it.
	route  string
	params []param
	// stop ends the route's chain: a handler answered with Fail.
	stop bool
}

type param struct{ name, value string }

// Handler is a step of a route: a guard, or the handler proper. A guard
// that refuses answers with Fail, which ends the chain.
type Handler func(*Exchange)

func (c *Exchange) run(chain []Handler) {
	for _, h := range chain {
		if c.stop {
			return
		}
		h(c)
	}
}

// Wrap runs a plain http.Handler as a route's handler.
func Wrap(h http.Handler) Handler {
	return func(c *Exchange) { h.ServeHTTP(c.W, c.R) }
}

// Param is the path segment the route names :name.
func (c *Exchange) Param(name string) string {
	for _, p := range c.params {
		if p.name == name {
			return p.value
		}
	}
	return ""
}

// JSON answers v as JSON, as gin's c.JSON did: encoding/json, no trailing
// newline, "application/json; charset=utf-8".
func (c *Exchange) JSON(code int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		// Every answer is a plain struct or map: this is a bug.
		http.Error(c.W, "internal error: cannot encode the answer; request id "+c.ID, http.StatusInternalServerError)
		return
	}
	if c.W.Header().Get("Content-Type") == "" {
		c.W.Header().Set("Content-Type", "application/json; charset=utf-8")
	}
	c.W.WriteHeader(code)
	_, _ = c.W.Write(body)
}

// errorBody is every error answer: a sentence, and the reasons when there are several.
type errorBody struct {
	Error   string   `json:"error"`
	Reasons []string `json:"reasons,omitempty"`
}

// Fail answers with an error and stops the route's chain.
func (c *Exchange) Fail(code int, msg string, reasons ...string) {
	c.JSON(code, errorBody{Error: msg, Reasons: reasons})
	c.stop = true
}

// ReadBody reads the whole body, answering 413 or 400 itself on failure.
func (c *Exchange) ReadBody() ([]byte, bool) {
	body, err := io.ReadAll(c.R.Body)
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		// The limit is limitBody's, the router's MaxBodyBytes.
		c.Fail(http.StatusRequestEntityTooLarge, "body is larger than "+strconv.FormatInt(tooBig.Limit, 10)+" bytes")
		return nil, false
	case err != nil:
		c.Fail(http.StatusBadRequest, "read body: "+err.Error())
		return nil, false
	}
	return body, true
}

// statusWriter records the status a handler answered with, for the access
// log, the metrics and the span.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Status is the answer's status: 200 when the handler wrote nothing.
func (w *statusWriter) Status() int {
	if w.status == 0 {
		return http.StatusOK
	}
	return w.status
}

// Flush lets streams (the operator page's, the API's log stream) push
// each event out.
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		if w.status == 0 {
			w.status = http.StatusOK
		}
		f.Flush()
	}
}

// Unwrap gives http.ResponseController the connection's own writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
