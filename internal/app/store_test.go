package app

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/paved-idp/paved/internal/config"
	"github.com/paved-idp/paved/internal/secret"
	"github.com/paved-idp/paved/internal/store/postgres"
	"github.com/paved-idp/paved/internal/store/postgres/pgtest"
	"github.com/paved-idp/paved/internal/store/sqlite"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// testConfig is a valid config whose secrets come from env, the fake
// environment it returns.
func testConfig(t *testing.T) (config.Config, map[string]string) {
	cfg := config.Default()
	cfg.Server.PublicURL = "http://127.0.0.1:1"
	cfg.Server.ShutdownTimeout = 5 * time.Second
	cfg.ActionsDir, cfg.PolicyDir = "../../actions", "../../actions/policy"
	cfg.Port.Enabled = false
	cfg.GitLab.BaseURL, cfg.GitLab.Token, cfg.GitLab.WebhookToken = "http://127.0.0.1:1", "env:GL", "env:HOOK"
	cfg.API.RunTokenKey = "env:KEY"
	cfg.Environments = []config.Environment{{Name: "dev"}}
	cfg.Tenants = []string{"acme"}
	cfg.Store.Path = t.TempDir() + "/paved.db"
	return cfg, map[string]string{"GL": "glpat-x", "HOOK": "hook-x", "KEY": "key-x"}
}

func build(t *testing.T, cfg config.Config, env map[string]string, log *zap.Logger) (*App, error) {
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	return Build(context.Background(), cfg, log, Options{Resolver: secret.Resolver{LookupEnv: lookup}})
}

// paved runs on PostgreSQL when the config says so: the DSN is resolved
// from its secret reference, the store is the postgres one, and neither
// the DSN nor its password reaches the log.
func TestRunsOnPostgres(t *testing.T) {
	cfg, env := testConfig(t)
	cfg.Store = config.Store{Driver: "postgres", DSN: "env:PAVED_DATABASE_URL"}
	dsn := pgtest.DSN(t)
	env["PAVED_DATABASE_URL"] = dsn
	core, logs := observer.New(zap.DebugLevel)
	a, err := build(t, cfg, env, zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	if fc, ok := a.Store.(finishCounter); !ok {
		t.Fatalf("store is %T, want it counted", a.Store)
	} else if _, ok := fc.Store.(*postgres.Store); !ok {
		t.Fatalf("store is %T, want *postgres.Store", fc.Store)
	}
	base, stop := serve(t, a)
	resp, err := http.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("readyz on postgres: %d", resp.StatusCode)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	password := dsn[strings.Index(dsn, "password=")+len("password="):]
	password = password[:strings.IndexByte(password, ' ')]
	for _, e := range logs.All() {
		line := e.Message + " " + fmt.Sprint(e.ContextMap())
		if strings.Contains(line, password) || strings.Contains(line, dsn) {
			t.Fatalf("the log repeats the DSN: %s", e.Message)
		}
	}
}

// serve runs a on a loopback port; stop shuts it down and returns Run's error.
func serve(t *testing.T, a *App) (base string, stop func() error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx, ln) }()
	return "http://" + ln.Addr().String(), func() error { cancel(); return <-done }
}

func TestStoreChoiceAndErrors(t *testing.T) {
	cfg, env := testConfig(t)
	a, err := build(t, cfg, env, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	if fc, ok := a.Store.(finishCounter); !ok {
		t.Fatalf("store is %T, want it counted", a.Store)
	} else if _, ok := fc.Store.(*sqlite.Store); !ok {
		t.Fatalf("default store is %T, want *sqlite.Store", fc.Store)
	}
	a.Store.Close()

	cfg.Store = config.Store{Driver: "postgres", DSN: "env:PAVED_DATABASE_URL"}
	if _, err := build(t, cfg, env, zap.NewNop()); err == nil || !strings.Contains(err.Error(), "store.dsn") {
		t.Fatalf("unset DSN variable: %v", err)
	}
	env["PAVED_DATABASE_URL"] = "postgres://paved:s3cret-pw@[bad"
	if _, err := build(t, cfg, env, zap.NewNop()); err == nil || strings.Contains(err.Error(), "s3cret-pw") {
		t.Fatalf("bad DSN: %v (must fail without repeating it)", err)
	}
}
