package app

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/paved-idp/paved/internal/portal/port"
	"github.com/paved-idp/paved/internal/portal/port/webhook"
	"github.com/paved-idp/paved/internal/sim/smsim"
)

// paved serve with an awssm: reference and no AWS credentials refuses to
// start, naming the reference and the cause.
func TestBuildRefusesAWSSecretWithoutCredentials(t *testing.T) {
	sim := smsim.New(smsim.Options{})
	srv := httptest.NewServer(sim)
	defer srv.Close()
	smsim.Isolate(t, "us-east-1", false, srv.URL)
	cfg, env := testConfig(t)
	cfg.GitLab.Token = "awssm:paved/gitlab"
	a, err := build(t, cfg, env, zap.NewNop())
	if err == nil {
		a.store.Close()
		t.Fatal("paved started without AWS credentials")
	}
	if !strings.Contains(err.Error(), "secret awssm:paved/gitlab: no AWS credentials found") {
		t.Fatalf("err = %v", err)
	}
}

// upstream fakes GitLab and Port, recording the credentials they are sent.
type upstream struct {
	mu           sync.Mutex
	gitlabTokens []string
	portSecrets  []string // "<clientId>/<clientSecret>" of each token request
}

func (u *upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.mu.Lock()
	defer u.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	switch {
	case r.URL.Path == "/api/v4/projects/1/pipelines/5":
		u.gitlabTokens = append(u.gitlabTokens, r.Header.Get("PRIVATE-TOKEN"))
		fmt.Fprint(w, `{"id":5,"project_id":1,"status":"running","ref":"main","web_url":"http://gitlab/p/-/pipelines/5"}`)
	case r.URL.Path == "/v1/auth/access_token":
		var in struct{ ClientID, ClientSecret string }
		_ = json.NewDecoder(r.Body).Decode(&in)
		u.portSecrets = append(u.portSecrets, in.ClientID+"/"+in.ClientSecret)
		fmt.Fprintf(w, `{"ok":true,"accessToken":"tok-%d","expiresIn":10800,"tokenType":"Bearer"}`, len(u.portSecrets))
	case strings.HasPrefix(r.URL.Path, "/v1/actions/runs/"):
		fmt.Fprint(w, `{"ok":true,"run":{"status":"IN_PROGRESS"}}`)
	default:
		http.NotFound(w, r)
	}
}

// A rotated GitLab token and Port client id and secret — for the API and as
// the webhook key — are used without a restart once the secrets are
// refreshed.
func TestSecretsRotateWithoutRestart(t *testing.T) {
	sim := smsim.New(smsim.Options{})
	smSrv := httptest.NewServer(sim)
	defer smSrv.Close()
	smsim.Isolate(t, "us-east-1", true, smSrv.URL)
	sim.Put("paved/gitlab", "glpat-one")
	sim.Put("paved/port", `{"clientId":"id-one","clientSecret":"secret-one"}`)
	up := &upstream{}
	upSrv := httptest.NewServer(up)
	defer upSrv.Close()

	cfg, env := testConfig(t)
	cfg.GitLab.BaseURL, cfg.GitLab.Token = upSrv.URL, "awssm:paved/gitlab"
	cfg.Port.Enabled, cfg.Port.BaseURL = true, upSrv.URL
	cfg.Port.ClientID, cfg.Port.ClientSecret = "awssm:paved/port#clientId", "awssm:paved/port#clientSecret"
	core, logs := observer.New(zap.DebugLevel)
	a, err := build(t, cfg, env, zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	defer a.store.Close()
	ctx := context.Background()
	use := func() {
		t.Helper()
		if _, err := a.tracker.Pipelines.Pipeline(ctx, "1", 5); err != nil {
			t.Fatal(err)
		}
		if _, err := a.report.Portals[port.PortalName].Finished(ctx, "r_abc"); err != nil {
			t.Fatal(err)
		}
	}
	use()
	sim.Put("paved/gitlab", "glpat-two")
	sim.Put("paved/port", `{"clientId":"id-two","clientSecret":"secret-two"}`)
	use() // not refreshed yet: the old values, the cached Port token
	if err := a.secrets.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	use()
	up.mu.Lock()
	gl, pt := strings.Join(up.gitlabTokens, " "), strings.Join(up.portSecrets, " ")
	up.mu.Unlock()
	if gl != "glpat-one glpat-one glpat-two" {
		t.Fatalf("GitLab was sent %s", gl)
	}
	if pt != "id-one/secret-one id-two/secret-two" {
		t.Fatalf("Port was sent %s", pt)
	}
	if logs.FilterMessageSnippet("restart paved").Len() != 0 {
		t.Fatalf("a rotation is logged as needing a restart: %v", logs.All())
	}
	// The webhook key is the client secret read at each delivery: a body
	// signed with the new secret passes the signature check (and is then
	// refused as no run, 400), one signed with the old is 401.
	for secret, want := range map[string]int{"secret-two": http.StatusBadRequest, "secret-one": http.StatusUnauthorized} {
		ts := strconv.FormatInt(time.Now().Unix(), 10)
		req := httptest.NewRequest(http.MethodPost, "/webhooks/port", strings.NewReader("{}"))
		req.Header.Set(webhook.HeaderTimestamp, ts)
		req.Header.Set(webhook.HeaderSignature, webhook.Sign([]byte(secret), ts, []byte("{}")))
		rec := httptest.NewRecorder()
		a.Handler().ServeHTTP(rec, req)
		if rec.Code != want {
			t.Errorf("webhook signed with %s after the rotation: %d, want %d", secret, rec.Code, want)
		}
	}
	for _, e := range logs.All() {
		line := e.Message + fmt.Sprint(e.ContextMap())
		for _, v := range []string{"glpat-", "secret-one", "secret-two", "id-one", "id-two"} {
			if strings.Contains(line, v) {
				t.Fatalf("log leaks a secret: %s", line)
			}
		}
	}
}
