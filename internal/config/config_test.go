package config

import (
	"os"
	"strings"
	"testing"
	"time"
)

func TestExampleConfigLoads(t *testing.T) {
	cfg, err := Load("../../deploy/paved.example.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Store.Path != "/var/lib/paved/paved.db" || len(cfg.Environments) != 3 || !cfg.Environments[2].Production || cfg.GitLab.PollInterval != 30*time.Second {
		t.Fatalf("example config read as %+v", cfg)
	}
}

func TestEnvironmentOverrides(t *testing.T) {
	data, err := os.ReadFile("../../deploy/paved.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := Parse(data, []string{"PAVED_SERVER_LISTEN=:9999", "PAVED_GITLAB_POLLINTERVAL=2m", "PAVED_TENANTS=a, b", "PAVED_PORT_ENABLED=false", "HOME=/root", "PAVED_WORKERS_REPORTCONCURRENCY=9"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Server.Listen != ":9999" || cfg.GitLab.PollInterval != 2*time.Minute || strings.Join(cfg.Tenants, "|") != "a|b" || cfg.Port.Enabled || cfg.Workers.ReportConcurrency != 9 {
		t.Fatalf("overrides not applied: %+v", cfg)
	}
	if _, err := Parse(data, []string{"PAVED_GITLAB_POLLINTERVAL=soon"}); err == nil || !strings.Contains(err.Error(), "PAVED_GITLAB_POLLINTERVAL") {
		t.Fatalf("bad override: %v", err)
	}
}

func TestBadConfigSaysWhatIsWrong(t *testing.T) {
	tests := []struct{ name, yaml, want string }{
		{"unknown key", "sever: {}", "field sever not found"},
		{"secret value instead of reference", validRefs + "port: {clientID: env:A, clientSecret: hunter2}", "port.clientSecret: must be a secret reference"},
		{"no environments", "gitlab: {baseURL: https://g, token: env:T, webhookToken: env:W}\napi: {runTokenKey: env:K}\nport: {enabled: false}\ntenants: [a]", "environments: name at least one"},
		{"duplicate environment", validRefs + "environments: [{name: dev}, {name: dev}]", "environments[1].name"},
		{"bad url", validRefs + "server: {publicURL: ftp://x}", "server.publicURL: must be an http(s) URL"},
		{"bad driver", validRefs + "store: {driver: mysql}", `store.driver: must be sqlite or postgres, not "mysql"`},
		{"postgres without dsn", validRefs + "store: {driver: postgres}", "store.dsn: is required with driver postgres"},
		{"postgres dsn as a value", validRefs + "store: {driver: postgres, dsn: 'postgres://paved:hunter2@db/paved'}", "store.dsn: must be a secret reference"},
		{"sqlite without path", validRefs + "store: {driver: sqlite, path: ''}", "store.path: is required with driver sqlite"},
		{"not yaml", "{", "parse config"},
		{"awssm empty json key", validRefs + "port: {clientID: 'awssm:prod/port#', clientSecret: 'awssm:prod/port#clientSecret'}", "port.clientID: awssm: reference: the JSON key after '#' is empty"},
		{"awssm bad name", validRefs + "port: {clientID: 'awssm:hunter2 x', clientSecret: 'env:S'}", "port.clientID: awssm: reference: a secret name may hold only"},
		{"awssm not a secret ARN", validRefs + "port: {clientID: 'awssm:arn:aws:s3:::hunter2', clientSecret: 'env:S'}", "port.clientID: awssm: reference: not a Secrets Manager secret ARN"},
		{"refresh interval", validRefs + "secrets: {refreshInterval: 0s}", "secrets.refreshInterval: must be positive"},
		{"api client token as a value", "tenants: [a]\ngitlab: {baseURL: 'https://g', token: 'env:T', webhookToken: 'env:W'}\napi: {runTokenKey: 'env:K', clients: {backstage: {token: hunter2}}}", "api.clients.backstage.token: must be a secret reference"},
		{"api client named api", "tenants: [a]\ngitlab: {baseURL: 'https://g', token: 'env:T', webhookToken: 'env:W'}\napi: {runTokenKey: 'env:K', clients: {api: {token: env:X}}}", `client name "api" must be`},
		{"operator token as a value", validRefs + "operator: {tokens: {alice: hunter2}}", "operator.tokens.alice: must be a secret reference"},
		{"operator bad name", validRefs + "operator: {tokens: {'a b': env:X}}", `operator name "a b" must be`},
		{"tracing bad endpoint", validRefs + "tracing: {endpoint: 'otel:4318'}", "tracing.endpoint: must be an http(s) URL"},
		{"tracing ratio", validRefs + "tracing: {sampleRatio: 2}", "tracing.sampleRatio: must be between 0 and 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml), nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("error repeats a secret value: %v", err)
			}
		})
	}
}

const validRefs = "tenants: [a]\ngitlab: {baseURL: 'https://g', token: 'env:T', webhookToken: 'env:W'}\napi: {runTokenKey: 'env:K'}\n"

func FuzzParse(f *testing.F) {
	if data, err := os.ReadFile("../../deploy/paved.example.yaml"); err == nil {
		f.Add(data)
	}
	f.Add([]byte(validRefs))
	f.Add([]byte("server: {listen: ':1'}\nworkers: {interval: -1s}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data, nil)
		if err == nil {
			if verr := cfg.Validate(); verr != nil {
				t.Fatalf("Parse accepted a config Validate refuses: %v", verr)
			}
		}
	})
}

// A dispatch lease shorter than a trigger call could let a second worker
// trigger the same run while the first call is still in flight.
func TestLeaseMustOutlastATriggerCall(t *testing.T) {
	data, err := os.ReadFile("../../deploy/paved.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	_, err = Parse(data, []string{"PAVED_WORKERS_LEASE=20s", "PAVED_GITLAB_TIMEOUT=30s"})
	if err == nil || !strings.Contains(err.Error(), "workers.lease: must be longer than gitlab.timeout") {
		t.Fatalf("lease 20s with a 30s GitLab timeout: %v", err)
	}
}

func TestPostgresStore(t *testing.T) {
	data, err := os.ReadFile("../../deploy/paved.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	pg := strings.Replace(string(data), "  driver: sqlite\n", "  driver: postgres\n  dsn: env:PAVED_DATABASE_URL\n", 1)
	cfg, err := Parse([]byte(pg), nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Store.Driver != "postgres" || cfg.Store.DSN != "env:PAVED_DATABASE_URL" {
		t.Fatalf("store = %+v", cfg.Store)
	}
	cfg, err = Parse(data, []string{"PAVED_STORE_DRIVER=postgres", "PAVED_STORE_DSN=file:/run/secrets/dsn"})
	if err != nil || cfg.Store.Driver != "postgres" || cfg.Store.DSN != "file:/run/secrets/dsn" {
		t.Fatalf("from the environment: %+v, %v", cfg.Store, err)
	}
	if _, err := Parse(data, []string{"PAVED_STORE_DRIVER=postgres"}); err == nil || !strings.Contains(err.Error(), "store.dsn: is required") {
		t.Fatalf("postgres without a dsn: %v", err)
	}
}

func TestDispatchConcurrency(t *testing.T) {
	data, err := os.ReadFile("../../deploy/paved.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := Parse(data, []string{"PAVED_WORKERS_DISPATCHCONCURRENCY=16"})
	if err != nil || cfg.Workers.DispatchConcurrency != 16 {
		t.Fatalf("dispatchConcurrency 16: %+v, %v", cfg.Workers, err)
	}
	if _, err = Parse(data, []string{"PAVED_WORKERS_DISPATCHCONCURRENCY=0"}); err == nil || !strings.Contains(err.Error(), "dispatchConcurrency") {
		t.Fatalf("dispatchConcurrency 0: %v, want it refused by name", err)
	}
}

func TestSecretsConfig(t *testing.T) {
	data, err := os.ReadFile("../../deploy/paved.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := Parse(data, nil)
	if err != nil || cfg.Secrets.RefreshInterval != 5*time.Minute {
		t.Fatalf("default refresh interval: %+v, %v", cfg.Secrets, err)
	}
	cfg, err = Parse(append(data, "\nsecrets: {refreshInterval: 30s}\n"...), []string{"PAVED_PORT_CLIENTID=awssm:prod/port#clientId",
		"PAVED_PORT_CLIENTSECRET=awssm:arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/port-AbCdEf#clientSecret"})
	if err != nil || cfg.Secrets.RefreshInterval != 30*time.Second || cfg.Port.ClientID != "awssm:prod/port#clientId" {
		t.Fatalf("refreshInterval 30s with awssm references: %+v, %v", cfg.Secrets, err)
	}
	if cfg, err = Parse(data, []string{"PAVED_SECRETS_REFRESHINTERVAL=1m"}); err != nil || cfg.Secrets.RefreshInterval != time.Minute {
		t.Fatalf("from the environment: %+v, %v", cfg.Secrets, err)
	}
}

func TestPolicyTestCache(t *testing.T) {
	data, err := os.ReadFile("../../deploy/paved.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		env  []string
		want string // RegoTestCache, or the error's text
		ok   bool
	}{
		{nil, "", true}, // filled in below from the example's store path
		{[]string{"PAVED_POLICYTESTCACHE=off"}, "", true},
		{[]string{"PAVED_POLICYTESTCACHE=/var/cache/paved/rego"}, "/var/cache/paved/rego", true},
		{[]string{"PAVED_STORE_DRIVER=postgres", "PAVED_STORE_DSN=env:DB"}, "", true},
		{[]string{"PAVED_STORE_DRIVER=postgres", "PAVED_STORE_DSN=env:DB", "PAVED_POLICYTESTCACHE=/tmp/rego"}, "/tmp/rego", true},
		{[]string{"PAVED_POLICYTESTCACHE=false"}, `policyTestCache: is a file path, or off; not "false"`, false},
		{[]string{"PAVED_POLICYDIR=/etc/paved/policy", "PAVED_POLICYTESTCACHE=/etc/paved/policy/passed"}, "is inside policyDir", false},
	} {
		cfg, err := Parse(data, c.env)
		if !c.ok {
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%v: %v, want an error with %q", c.env, err, c.want)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%v: %v", c.env, err)
		}
		want := c.want
		if c.env == nil {
			want = cfg.Store.Path + ".rego-tests"
		}
		if got := cfg.RegoTestCache(); got != want {
			t.Errorf("%v: RegoTestCache %q, want %q", c.env, got, want)
		}
	}
}
