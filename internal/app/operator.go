package app

import (
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"go.uber.org/zap"

	"github.com/paved-idp/paved/internal/config"
	"github.com/paved-idp/paved/internal/operator"
	"github.com/paved-idp/paved/internal/telemetry"
)

// operatorPage builds the operator page, or nil when no operator has a
// token. Its session key derives from the run token key, so that every
// replica accepts every replica's sessions without another secret. Closing
// done ends its log streams.
func operatorPage(cfg config.Config, resolve func(string) (string, error), runKey string, runs operator.Runs, ctl operator.Control,
	done <-chan struct{}, metrics *telemetry.Metrics, log *zap.Logger) (http.Handler, error) {
	if len(cfg.Operator.Tokens) == 0 {
		return nil, nil
	}
	tokens := make(map[string]string, len(cfg.Operator.Tokens))
	for name, ref := range cfg.Operator.Tokens {
		tok, err := resolve(ref)
		if err != nil {
			return nil, fmt.Errorf("operator.tokens.%s: %w", name, err)
		}
		tokens[name] = tok
	}
	m := hmac.New(sha256.New, []byte(runKey))
	m.Write([]byte("paved operator session"))
	var publicHost string
	if u, err := url.Parse(cfg.Server.PublicURL); err == nil {
		publicHost = u.Host
	}
	h, err := operator.New(operator.Config{Operators: tokens, SessionKey: m.Sum(nil), SessionTTL: cfg.Operator.SessionTTL,
		SecureCookie: strings.HasPrefix(cfg.Server.PublicURL, "https://"), Done: done, PublicHost: publicHost,
		OnAuthFailure: func(reason string) { metrics.AuthFailure("operator", reason) }}, runs, ctl, log)
	return h, err // operator.New's errors say they are the operator page's
}
