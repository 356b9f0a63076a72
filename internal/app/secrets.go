package app

import (
	"context"
	"net/http"
	"sync"

	"github.com/paved-idp/paved/internal/portal/port"
	"github.com/paved-idp/paved/internal/portal/port/runreport"
	"github.com/paved-idp/paved/internal/run"
	"github.com/paved-idp/paved/internal/secret"
)

// Rotation without a restart (secrets.refreshInterval): the GitLab token and
// the Port client id and secret are read at each use through these two
// adapters. The other secrets are copied into their consumers at start
// (secret.Cache.Static): the GitLab webhook token, the API tokens, the
// run-token key, the Port webhook signature key and the store DSN; a
// rotation of one of them is logged as needing a restart.

// gitlabTokenHeader is the header client-go authenticates with for personal,
// project and group access tokens (gitlab.AccessTokenHeaderName).
const gitlabTokenHeader = "PRIVATE-TOKEN"

// withGitLabToken returns a copy of hc whose requests carry the token's
// current value: client-go sets the token it was built with, and this
// transport, beneath it and its retries, replaces it.
func withGitLabToken(hc *http.Client, token *secret.Value) *http.Client {
	next := hc.Transport
	if next == nil {
		next = http.DefaultTransport
	}
	c := *hc
	c.Transport = &gitlabToken{next: next, token: token}
	return &c
}

type gitlabToken struct {
	next  http.RoundTripper
	token *secret.Value
}

func (t *gitlabToken) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Header.Get(gitlabTokenHeader) != "" {
		r = r.Clone(r.Context()) // a RoundTripper must not change its request
		r.Header.Set(gitlabTokenHeader, t.token.Get())
	}
	return t.next.RoundTrip(r)
}

// portClients is the Port client for the current client id and secret: when
// either has rotated, the next call builds a new client, which fetches its
// access token with them.
type portClients struct {
	id, secret *secret.Value
	build      func(id, secret string) *port.Client

	mu                   sync.Mutex
	c                    *port.Client
	builtID, builtSecret string
}

func (p *portClients) client() *port.Client {
	id, sec := p.id.Get(), p.secret.Get()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.c == nil || id != p.builtID || sec != p.builtSecret {
		p.c, p.builtID, p.builtSecret = p.build(id, sec), id, sec
	}
	return p.c
}

func (p *portClients) UserTeams(ctx context.Context, email string) ([]string, error) {
	return p.client().UserTeams(ctx, email)
}

func (p *portClients) Report(ctx context.Context, portRunID string, rep run.Report) error {
	return runreport.Report(ctx, p.client(), portRunID, rep)
}

func (p *portClients) Finished(ctx context.Context, portRunID string) (bool, error) {
	return runreport.Finished(ctx, p.client(), portRunID)
}
