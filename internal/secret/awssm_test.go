package secret

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/paved-idp/paved/internal/sim/smsim"
)

// These tests run aws-sdk-go-v2's real client, configured by
// config.LoadDefaultConfig from the environment as in production, against
// the simulator (AWS_ENDPOINT_URL_SECRETS_MANAGER). They set the process
// environment, so none of them runs in parallel.

// fakeClock lets a test run the refresher's ticks one at a time.
type fakeClock struct {
	waits chan chan time.Time
	asked chan time.Duration
}

func newFakeClock() *fakeClock {
	return &fakeClock{waits: make(chan chan time.Time), asked: make(chan time.Duration, 16)}
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	c.asked <- d
	c.waits <- ch
	return ch
}

type fixture struct {
	sim   *smsim.Sim
	cache *Cache
	logs  *observer.ObservedLogs
	clock *fakeClock
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	sim := smsim.New(smsim.Options{Region: "eu-west-1"})
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	smsim.Isolate(t, "eu-west-1", true, srv.URL)
	core, logs := observer.New(zap.DebugLevel)
	clock := newFakeClock()
	cache := NewCache(Options{RefreshInterval: 2 * time.Minute, Log: zap.New(core), After: clock.After})
	return &fixture{sim: sim, cache: cache, logs: logs, clock: clock}
}

// logsLeak fails when any log entry carries one of the values.
func (f *fixture) logsLeak(t *testing.T, values ...string) {
	t.Helper()
	for _, e := range f.logs.All() {
		line := e.Message + fmt.Sprint(e.ContextMap())
		for _, v := range values {
			if strings.Contains(line, v) {
				t.Fatalf("log leaks a secret value: %s", line)
			}
		}
	}
}

func TestAWSValueRead(t *testing.T) {
	f := newFixture(t)
	f.sim.Put("prod/gitlab", "glpat-one")
	v, err := f.cache.Value(context.Background(), "awssm:prod/gitlab")
	if err != nil {
		t.Fatal(err)
	}
	if v.Get() != "glpat-one" {
		t.Fatalf("got %q", v.Get())
	}
	// A second ask is served from the cache.
	if again, err := f.cache.Value(context.Background(), "awssm:prod/gitlab"); err != nil || again != v || f.sim.Calls() != 1 {
		t.Fatalf("second read: %v %v, %d calls", again, err, f.sim.Calls())
	}
}

func TestAWSJSONKeyRead(t *testing.T) {
	f := newFixture(t)
	f.sim.Put("prod/port", `{"clientId":"port-id-1","clientSecret":"port-sec-1"}`)
	id, err := f.cache.Value(context.Background(), "awssm:prod/port#clientId")
	if err != nil {
		t.Fatal(err)
	}
	sec, err := f.cache.Static(context.Background(), "awssm:prod/port#clientSecret")
	if err != nil {
		t.Fatal(err)
	}
	if id.Get() != "port-id-1" || sec != "port-sec-1" {
		t.Fatalf("got %q, %q", id.Get(), sec)
	}
}

// A secret named by its ARN is read in the ARN's region, whatever the
// chain's region; a name is read in the chain's region.
func TestAWSRegionFromARN(t *testing.T) {
	f := newFixture(t)
	arn := f.sim.Put("prod/db", "dsn-value-1")
	t.Setenv("AWS_REGION", "us-east-1")
	c := NewCache(Options{})
	v, err := c.Value(context.Background(), "awssm:"+arn)
	if err != nil || v.Get() != "dsn-value-1" {
		t.Fatalf("by ARN: %v %v", v, err)
	}
	_, err = c.Value(context.Background(), "awssm:prod/db")
	if err == nil || !strings.Contains(err.Error(), "secret awssm:prod/db: read from AWS Secrets Manager (us-east-1)") || !strings.Contains(err.Error(), "scoped to a valid region") {
		t.Fatalf("by name in another region: %v", err)
	}
	noLeak(t, err, "dsn-value-1")
}

// The secret rotates in Secrets Manager; after the refresh interval the
// consumer's getter returns the new value, without a restart. Two keys of
// one secret are read with one call per refresh and change together.
func TestAWSRotation(t *testing.T) {
	f := newFixture(t)
	f.sim.Put("prod/port", `{"clientId":"id-1","clientSecret":"sec-1"}`)
	f.sim.Put("prod/gitlab", "glpat-1")
	ctx := context.Background()
	id, err := f.cache.Value(ctx, "awssm:prod/port#clientId")
	if err != nil {
		t.Fatal(err)
	}
	sec, err := f.cache.Value(ctx, "awssm:prod/port#clientSecret")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.cache.Static(ctx, "awssm:prod/gitlab"); err != nil {
		t.Fatal(err)
	}
	consumer := sec.Get // what a consumer is given: a func() string

	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); f.cache.Run(runCtx) }()
	tick := <-f.clock.waits
	if d := <-f.clock.asked; d != 2*time.Minute {
		t.Fatalf("refresh interval %s, want 2m", d)
	}

	f.sim.Put("prod/port", `{"clientId":"id-2","clientSecret":"sec-2"}`)
	f.sim.Put("prod/gitlab", "glpat-2")
	if consumer() != "sec-1" {
		t.Fatal("changed before the refresh")
	}
	calls := f.sim.Calls()
	tick <- time.Now()
	tick = <-f.clock.waits // the refresh is done: Run waits for the next tick
	if consumer() != "sec-2" || id.Get() != "id-2" {
		t.Fatalf("after the refresh: %q, %q", consumer(), id.Get())
	}
	if n := f.sim.Calls() - calls; n != 2 {
		t.Fatalf("%d GetSecretValue calls for 2 secrets", n)
	}
	if got := f.logs.FilterMessageSnippet("restart paved").FilterField(zap.String("ref", "awssm:prod/gitlab")).Len(); got != 1 {
		t.Fatalf("a rotated static secret is not logged as needing a restart (%d)", got)
	}

	// A refresh that fails keeps the last good value and logs the failure.
	f.sim.Delete("prod/port")
	tick <- time.Now()
	<-f.clock.waits
	if consumer() != "sec-2" || id.Get() != "id-2" {
		t.Fatalf("a failed refresh changed the value: %q", consumer())
	}
	failed := f.logs.FilterMessageSnippet("refresh secret failed").All()
	if len(failed) != 2 || !strings.Contains(fmt.Sprint(failed[0].ContextMap()), "marked for deletion") {
		t.Fatalf("failures logged: %v", failed)
	}
	stop()
	<-done
	f.logsLeak(t, "sec-1", "sec-2", "id-1", "id-2", "glpat-1", "glpat-2")
}

func TestAWSRefreshReturnsErrors(t *testing.T) {
	f := newFixture(t)
	f.sim.Put("prod/port", `{"clientSecret":"sec-1"}`)
	v, err := f.cache.Value(context.Background(), "awssm:prod/port#clientSecret")
	if err != nil {
		t.Fatal(err)
	}
	f.sim.Put("prod/port", `{"renamed":"sec-2"}`)
	err = f.cache.Refresh(context.Background())
	if err == nil || !strings.Contains(err.Error(), "secret awssm:prod/port#clientSecret: json key clientSecret: no such key") {
		t.Fatalf("refresh: %v", err)
	}
	noLeak(t, err, "sec-1", "sec-2")
	if v.Get() != "sec-1" {
		t.Fatal("lost the last good value")
	}
}

func TestAWSErrorsNameTheReference(t *testing.T) {
	f := newFixture(t)
	f.sim.Put("prod/plain", "plain-value-XYZ")
	f.sim.Put("prod/json", `{"a":"json-value-XYZ"}`)
	f.sim.PutBinary("prod/bin", []byte("bin-value-XYZ"))
	tests := []struct{ ref, want string }{
		{"awssm:prod/missing", "secret awssm:prod/missing: read from AWS Secrets Manager (eu-west-1): operation error Secrets Manager: GetSecretValue"},
		{"awssm:prod/missing", "ResourceNotFoundException: Secrets Manager can't find the specified secret."},
		{"awssm:prod/json#b", "secret awssm:prod/json#b: json key b: no such key in the secret's JSON object"},
		{"awssm:prod/plain#a", "secret awssm:prod/plain#a: json key a: the SecretString is not a JSON object"},
		{"awssm:prod/bin", "secret awssm:prod/bin: the secret holds SecretBinary"},
	}
	for _, tt := range tests {
		_, err := f.cache.Value(context.Background(), tt.ref)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want %q", tt.ref, err, tt.want)
		}
		noLeak(t, err, "value-XYZ")
	}
}

// paved without AWS credentials refuses to start, naming the reference
// and the cause.
func TestAWSNoCredentials(t *testing.T) {
	sim := smsim.New(smsim.Options{})
	srv := httptest.NewServer(sim)
	defer srv.Close()
	smsim.Isolate(t, "us-east-1", false, srv.URL)
	_, err := NewCache(Options{}).Value(context.Background(), "awssm:prod/port#clientSecret")
	if err == nil || !errors.Is(err, ErrNoCredentials) || !strings.HasPrefix(err.Error(), "secret awssm:prod/port#clientSecret: no AWS credentials found") {
		t.Fatalf("err = %v", err)
	}
	if sim.Calls() != 0 {
		t.Fatal("asked Secrets Manager without credentials")
	}
}

func TestAWSNoRegion(t *testing.T) {
	sim := smsim.New(smsim.Options{})
	srv := httptest.NewServer(sim)
	defer srv.Close()
	smsim.Isolate(t, "", true, srv.URL)
	_, err := NewCache(Options{}).Value(context.Background(), "awssm:prod/port")
	if err == nil || !strings.Contains(err.Error(), "secret awssm:prod/port: no AWS region") {
		t.Fatalf("err = %v", err)
	}
	// An ARN carries its region.
	arn := sim.Put("prod/port", "v")
	if v, err := NewCache(Options{}).Value(context.Background(), "awssm:"+arn); err != nil || v.Get() != "v" {
		t.Fatalf("by ARN without a region: %v", err)
	}
}

// file: references are refreshed too (a Kubernetes Secret volume is
// updated in place); env: ones are not read again.
func TestFileRotation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(path, []byte("file-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"E": "env-1"}
	c := NewCache(Options{Resolver: Resolver{LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }}})
	fv, err := c.Value(context.Background(), "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := c.Value(context.Background(), "env:E")
	if err != nil {
		t.Fatal(err)
	}
	_ = os.WriteFile(path, []byte("file-2\n"), 0o600)
	env["E"] = "env-2"
	if err := c.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if fv.Get() != "file-2" || ev.Get() != "env-1" {
		t.Fatalf("file %q env %q", fv.Get(), ev.Get())
	}
	_ = os.Remove(path)
	if err := c.Refresh(context.Background()); err == nil || fv.Get() != "file-2" {
		t.Fatalf("a vanished file: %v, %q", err, fv.Get())
	}
}
