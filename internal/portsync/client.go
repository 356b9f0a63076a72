package portsync

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/paved-idp/paved/internal/portal/port"
)

// Caller sends one request to Port's API; *port.Client is one.
type Caller interface {
	Call(ctx context.Context, op, method, path string, body, out any) error
}

// Client is API over Port's REST API: GET, POST and PUT on
// /v1/blueprints[/{identifier}] and /v1/actions[/{action_identifier}],
// answered {"ok": true, "blueprint"|"action": {...}}.
type Client struct {
	Port Caller
}

// routes are each kind's collection path.
var routes = map[Kind]string{Blueprint: "/v1/blueprints", Action: "/v1/actions"}

// Get reads one document.
func (c Client) Get(ctx context.Context, kind Kind, id string) (map[string]any, error) {
	var out map[string]any
	err := c.Port.Call(ctx, fmt.Sprintf("get %s %s", kind, id), http.MethodGet, routes[kind]+"/"+url.PathEscape(id), nil, &out)
	var ae *port.APIError
	if errors.As(err, &ae) && ae.StatusCode == http.StatusNotFound {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	doc, ok := out[string(kind)].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("port: get %s %s: the answer has no %q", kind, id, kind)
	}
	return doc, nil
}

// Create creates one document (POST).
func (c Client) Create(ctx context.Context, kind Kind, doc map[string]any) error {
	return c.Port.Call(ctx, fmt.Sprintf("create %s %v", kind, doc["identifier"]), http.MethodPost, routes[kind], doc, nil)
}

// Replace replaces one document (PUT).
func (c Client) Replace(ctx context.Context, kind Kind, id string, doc map[string]any) error {
	return c.Port.Call(ctx, fmt.Sprintf("replace %s %s", kind, id), http.MethodPut, routes[kind]+"/"+url.PathEscape(id), doc, nil)
}
