package gitlab

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestTriggerRefusalsNameTheCause: GitLab's answers to a create-pipeline
// call it refuses (bodies as GitLab sends them) become a RefusedError that
// names the setting to change; any other 4xx stays GitLab's own error.
func TestTriggerRefusalsNameTheCause(t *testing.T) {
	cases := []struct {
		name, body string
		code       int
		want       string // in the cause; "" means not a refusal
	}{
		{"role below developer", `{"message":"403 Forbidden"}`, 403, "at least the Developer role"},
		{"bad token", `{"message":"401 Unauthorized"}`, 401, "invalid, expired or revoked"},
		{"pipeline variables", `{"message":{"base":["Insufficient permissions to set pipeline variables"]}}`, 400, "Minimum role to use pipeline variables"},
		{"protected ref", `{"message":{"base":["You do not have sufficient permission to run a pipeline on 'main'. Please select a different branch or contact your administrator for assistance."]}}`, 400, "main is protected"},
		{"protected ref, older GitLab", `{"message":{"base":["Insufficient permissions for protected ref 'main'"]}}`, 400, "Allowed to merge"},
		{"workflow rules", `{"message":{"base":["Pipeline filtered out by workflow rules."]}}`, 400, "workflow:rules"},
		{"unknown ref", `{"message":{"base":["Reference not found"]}}`, 400, "no branch or tag main"},
		{"other 400", `{"message":{"base":["Something else"]}}`, 400, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tc.code)
				_, _ = w.Write([]byte(tc.body))
			}))
			defer srv.Close()
			c, err := New(srv.URL, token, Options{Retries: -1})
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Trigger(context.Background(), "platform/provisioning", "main", []Variable{{Key: RunIDVariable, Value: "r_1"}})
			if err == nil || !IsPermanent(err) {
				t.Fatalf("err %v, permanent %v; want a permanent error", err, IsPermanent(err))
			}
			var refused *RefusedError
			if tc.want == "" {
				if errors.As(err, &refused) {
					t.Fatalf("%v: a 400 GitLab did not document as a refusal became one", err)
				}
				return
			}
			if !errors.As(err, &refused) || !strings.Contains(refused.Cause, tc.want) {
				t.Fatalf("err %v; want a RefusedError whose cause says %q", err, tc.want)
			}
			if !strings.Contains(err.Error(), "platform/provisioning") || !strings.Contains(err.Error(), "GitLab answered") {
				t.Errorf("error %q should name the project and quote GitLab's answer", err)
			}
		})
	}
}
