// Package webhook is the intake side of paved's Port (getport.io) adapter:
// it verifies and decodes the WEBHOOK invocations Port sends for
// self-service actions. Reporting a run's progress back through Port's REST
// API is the parent package port.
//
// The formats follow Port's public documentation; see shared/DESIGN.md
// "Port → paved" and the notes on each type here.
package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/paved-idp/paved/internal/clip"
)

// Header names Port puts on every webhook invocation. Go canonicalises
// header keys, so the lower-case spelling in Port's docs matches too.
const (
	HeaderSignature = "X-Port-Signature"
	HeaderTimestamp = "X-Port-Timestamp"
)

// DefaultTolerance is how far a webhook's timestamp may be from our clock.
const DefaultTolerance = 5 * time.Minute

// Errors of Verify. All three mean the request is not proven to come from
// Port now, so the caller answers HTTP 401.
var (
	ErrMissingSignature = errors.New("port: missing signature")
	ErrBadSignature     = errors.New("port: bad signature")
	ErrStaleTimestamp   = errors.New("port: timestamp outside tolerance")
)

// maxSignatures caps how many candidate signatures one header may carry, so
// a hostile header cannot make us do unbounded work.
const maxSignatures = 8

// Verifier checks that a webhook invocation was signed by Port with the
// organisation's client secret, and is recent.
type Verifier struct {
	// Secret is the Port organisation's client secret (the HMAC key).
	Secret []byte
	// SecretFunc, when set, is asked for the key at each Verify instead of
	// Secret, so that a rotated client secret applies without a restart.
	SecretFunc func() []byte
	// Tolerance bounds |now - X-Port-Timestamp|; zero means DefaultTolerance.
	Tolerance time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Verify checks the X-Port-Signature header against an HMAC-SHA256 over the
// bytes "<X-Port-Timestamp>.<body>", and the timestamp against the clock.
//
// body must be the raw request body exactly as received: Port signs the bytes
// it sent, and any re-serialisation (key order, spacing, escaping) changes
// them. The signature is checked before the timestamp so that a forged
// request always reads as a bad signature, and a stale-timestamp error points
// at a real delivery (clock skew or replay).
func (v Verifier) Verify(h http.Header, body []byte) error {
	ts := strings.TrimSpace(h.Get(HeaderTimestamp))
	sig := strings.TrimSpace(h.Get(HeaderSignature))
	switch {
	case sig == "" && ts == "":
		return fmt.Errorf("%w: no %s or %s header", ErrMissingSignature, HeaderSignature, HeaderTimestamp)
	case sig == "":
		return fmt.Errorf("%w: no %s header", ErrMissingSignature, HeaderSignature)
	case ts == "":
		return fmt.Errorf("%w: no %s header", ErrMissingSignature, HeaderTimestamp)
	}
	key := v.Secret
	if v.SecretFunc != nil {
		key = v.SecretFunc()
	}
	if len(key) == 0 {
		// An empty key would make every signature forgeable; refuse.
		return fmt.Errorf("%w: verifier has no secret configured", ErrBadSignature)
	}

	want := mac(key, ts, body)
	if !anyMatch(sig, want) {
		return fmt.Errorf("%w: %s does not match the body", ErrBadSignature, HeaderSignature)
	}

	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: %s %q is not Unix seconds", ErrStaleTimestamp, HeaderTimestamp, clip.String(ts, 32))
	}
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	tol := v.Tolerance
	if tol <= 0 {
		tol = DefaultTolerance
	}
	// Compare in seconds to stay clear of time.Duration overflow on absurd
	// timestamps.
	skew := now().Unix() - sec
	if skew > int64(tol/time.Second) || -skew > int64(tol/time.Second) {
		return fmt.Errorf("%w: %s is %ds from now, tolerance %s", ErrStaleTimestamp, HeaderTimestamp, skew, tol)
	}
	return nil
}

// anyMatch reports whether the header carries a v1 signature equal to want.
//
// Port's docs show exactly one "v1,<base64>". We also accept several entries
// separated by spaces ("v1,a v1,b", the Standard Webhooks convention for key
// rotation) and several signatures after one version ("v1,a,b"): base64
// contains neither spaces nor commas, so neither form is ambiguous, and every
// candidate must still be a valid HMAC.
func anyMatch(header string, want []byte) bool {
	seen := 0
	for _, entry := range strings.Fields(header) {
		version, rest, ok := strings.Cut(entry, ",")
		if !ok || version != "v1" {
			continue
		}
		for _, cand := range strings.Split(rest, ",") {
			if seen++; seen > maxSignatures {
				return false
			}
			got, err := base64.StdEncoding.DecodeString(cand)
			if err != nil {
				continue
			}
			if hmac.Equal(got, want) {
				return true
			}
		}
	}
	return false
}

func mac(secret []byte, timestamp string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(timestamp))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Sign returns the X-Port-Signature value Port would send for body at
// timestamp (Unix seconds, as sent in X-Port-Timestamp): "v1,<base64>".
// Tests and simulators of the sending side use it.
func Sign(secret []byte, timestamp string, body []byte) string {
	return "v1," + base64.StdEncoding.EncodeToString(mac(secret, timestamp, body))
}
