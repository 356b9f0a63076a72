// Package config reads paved's one config file (YAML) and applies PAVED_*
// environment overrides, then validates the result before anything starts.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/paved-idp/paved/internal/secret"
)

// Config is the whole of paved's configuration. Secret fields hold
// references (env:NAME, file:/path, awssm:name-or-arn[#json-key]), never
// values.
type Config struct {
	Server       Server        `yaml:"server"`
	Store        Store         `yaml:"store"`
	ActionsDir   string        `yaml:"actionsDir"`
	PolicyDir    string        `yaml:"policyDir"`
	Port         Port          `yaml:"port"`
	GitLab       GitLab        `yaml:"gitlab"`
	API          API           `yaml:"api"`
	Environments []Environment `yaml:"environments"`
	Tenants      []string      `yaml:"tenants"`
	Workers      Workers       `yaml:"workers"`
	Limits       Limits        `yaml:"limits"`
	Log          Log           `yaml:"log"`
	Secrets      Secrets       `yaml:"secrets"`
	Operator     Operator      `yaml:"operator"`
	Approvals    Approvals     `yaml:"approvals"`
	Drift        Drift         `yaml:"drift"`
	Expiry       Expiry        `yaml:"expiry"`
	Tracing      Tracing       `yaml:"tracing"`
	// BlueprintsDir holds the Port blueprints actions write to; serve checks
	// the actions against them when it exists (internal/validate).
	BlueprintsDir string `yaml:"blueprintsDir"`
	// PolicyTestCache is the file that remembers which versions of the
	// policy directory passed their Rego tests, so that serve skips them
	// on a restart with the same files (validate.PassedTests). Empty: beside
	// the SQLite database (store.path + ".rego-tests"), none with
	// PostgreSQL; "off": the tests run at every start.
	PolicyTestCache string `yaml:"policyTestCache"`
}

// checkTestCache refuses a policyTestCache that is a YAML boolean read as a
// string (false would name a file "false"), and one inside policyDir,
// whose every write would change the files it remembers.
func checkTestCache(bad func(key, format string, args ...any), c Config) {
	switch strings.ToLower(c.PolicyTestCache) {
	case "false", "no", "n", "true", "yes", "y", "on", "0", "1":
		bad("policyTestCache", "is a file path, or off; not %q", c.PolicyTestCache)
		return
	}
	if path := c.RegoTestCache(); path != "" {
		if rel, err := filepath.Rel(c.PolicyDir, path); err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			bad("policyTestCache", "%s is inside policyDir %s: the file would change what it remembers", path, c.PolicyDir)
		}
	}
}

// RegoTestCache is the PolicyTestCache file in use, "" for none.
func (c Config) RegoTestCache() string {
	switch {
	case c.PolicyTestCache == "off":
		return ""
	case c.PolicyTestCache != "":
		return c.PolicyTestCache
	case c.Store.Driver == "sqlite" || c.Store.Driver == "":
		return c.Store.Path + ".rego-tests"
	}
	return ""
}

// Operator is paved's web page for the platform team, at /ui/.
type Operator struct {
	// Tokens sign operators in: the operator's name (shown in the audit
	// trail) to a secret reference. No tokens, no page.
	Tokens map[string]string `yaml:"tokens"`
	// SessionTTL is how long a sign-in lasts.
	SessionTTL time.Duration `yaml:"sessionTTL"`
}

// Approvals tunes runs that wait for an approver.
type Approvals struct {
	// TTL is how long a run waits for a decision before it is rejected;
	// 0 waits for ever.
	TTL time.Duration `yaml:"ttl"`
}

// Drift schedules drift checks: every stack whose last run succeeded is
// refreshed in preview (PAVED_OPERATION=DRIFT) every Interval, through the
// stack's queue like any run, and the result is written to its entities.
type Drift struct {
	// Interval between two checks of a stack; 0 checks none.
	Interval time.Duration `yaml:"interval"`
	// Environments are checked; empty: every environment.
	Environments []string `yaml:"environments"`
}

// Expiry tunes ephemeral stacks (a CREATE with the input ttl): the portal
// is warned WarnBefore their expiry, and expired stacks are looked for
// every Interval.
type Expiry struct {
	WarnBefore time.Duration `yaml:"warnBefore"`
	Interval   time.Duration `yaml:"interval"`
}

// Tracing exports OpenTelemetry traces over OTLP/HTTP; off without an
// endpoint.
type Tracing struct {
	// Endpoint is the collector's OTLP/HTTP base URL
	// (http://otel-collector:4318); traces go to <endpoint>/v1/traces.
	Endpoint    string  `yaml:"endpoint"`
	ServiceName string  `yaml:"serviceName"`
	SampleRatio float64 `yaml:"sampleRatio"` // of new traces; a traced caller's choice is kept
}

// Secrets tunes how secret references are kept current.
type Secrets struct {
	// RefreshInterval is how often file: and awssm: references are read
	// again, so that a rotated secret is used without a restart.
	RefreshInterval time.Duration `yaml:"refreshInterval"`
}

// Limits cap what one run's pipeline may post through its callbacks.
type Limits struct {
	RunLogLines    int `yaml:"runLogLines"`
	RunOutputBytes int `yaml:"runOutputBytes"` // the outputs as JSON
}

// Server is the HTTP listener.
type Server struct {
	Listen string `yaml:"listen"`
	// PublicURL is how pipelines reach paved to post logs and outputs.
	PublicURL       string        `yaml:"publicURL"`
	ShutdownTimeout time.Duration `yaml:"shutdownTimeout"`
	MaxBodyBytes    int64         `yaml:"maxBodyBytes"`
}

// Store picks the run store: sqlite (one process, the default) or postgres
// (any number of replicas sharing one database).
type Store struct {
	Driver string `yaml:"driver"` // sqlite or postgres
	Path   string `yaml:"path"`   // sqlite: the database file
	// DSN is postgres's connection string (keyword/value or postgres:// URL,
	// pool_max_conns and the like included). It is a secret reference
	// (env:, file:, awssm:): a DSN may carry a password.
	DSN string `yaml:"dsn"`
}

// Port is the Port organisation paved serves.
type Port struct {
	Enabled            bool          `yaml:"enabled"`
	BaseURL            string        `yaml:"baseURL"`
	ClientID           string        `yaml:"clientID"`     // secret reference
	ClientSecret       string        `yaml:"clientSecret"` // secret reference; also the webhook signing key
	SignatureTolerance time.Duration `yaml:"signatureTolerance"`
	UserCacheTTL       time.Duration `yaml:"userCacheTTL"`
	// Timeout bounds one call to Port's API.
	Timeout time.Duration `yaml:"timeout"`
}

// GitLab is the GitLab instance that runs the pipelines.
type GitLab struct {
	BaseURL           string        `yaml:"baseURL"`
	Token             string        `yaml:"token"`        // secret reference
	WebhookToken      string        `yaml:"webhookToken"` // secret reference
	RequestsPerMinute int           `yaml:"requestsPerMinute"`
	Timeout           time.Duration `yaml:"timeout"`
	// PollInterval is how often runs whose webhook did not come are checked.
	PollInterval time.Duration `yaml:"pollInterval"`
	// ReconcileAfter is how long after a trigger with an unknown outcome
	// paved waits before looking for its pipeline (GitLab may still be
	// creating it); only then may it trigger again. Keep it above the
	// longest a create-pipeline request can run in GitLab (its request
	// timeout, 60 s by default).
	ReconcileAfter time.Duration `yaml:"reconcileAfter"`
}

// API guards paved's own HTTP API.
type API struct {
	// Tokens are bearer tokens of callers paved knows by no name (recorded
	// as "api"); secret references.
	Tokens []string `yaml:"tokens"`
	// Clients are named callers (backstage, a CI bot): their runs and
	// actions are recorded under the name.
	Clients     map[string]APIClient `yaml:"clients"`
	RunTokenKey string               `yaml:"runTokenKey"` // secret reference; signs per-run pipeline tokens
}

// APIClient is one named caller of the API.
type APIClient struct {
	Token string `yaml:"token"` // secret reference
	// Actions, when set, are the only actions the client may submit.
	Actions []string `yaml:"actions"`
}

// Environment is a deployment environment policy knows.
type Environment struct {
	Name       string `yaml:"name"`
	Production bool   `yaml:"production"`
}

// Workers tunes the background workers.
type Workers struct {
	Interval          time.Duration `yaml:"interval"`
	ReportConcurrency int           `yaml:"reportConcurrency"`
	// DispatchConcurrency is how many GitLab triggers one process makes at
	// once: with GitLab answering in 50 ms, 4 at once dispatch ~60 runs a
	// second at best.
	DispatchConcurrency int           `yaml:"dispatchConcurrency"`
	Lease               time.Duration `yaml:"lease"`
	// RunTimeout applies to actions that declare no timeout of their own.
	RunTimeout time.Duration `yaml:"runTimeout"`
}

// Log sets the logger.
type Log struct {
	Format string `yaml:"format"` // json or console
	Level  string `yaml:"level"`
}

// Default returns the configuration paved runs with when a file says nothing.
func Default() Config {
	return Config{
		Server:     Server{Listen: "127.0.0.1:8080", ShutdownTimeout: 20 * time.Second, MaxBodyBytes: 1 << 20},
		Store:      Store{Driver: "sqlite", Path: "paved.db"},
		ActionsDir: "actions", PolicyDir: "actions/policy", BlueprintsDir: "blueprints",
		Port:      Port{Enabled: true, BaseURL: "https://api.getport.io", SignatureTolerance: 5 * time.Minute, UserCacheTTL: time.Minute, Timeout: 10 * time.Second},
		GitLab:    GitLab{RequestsPerMinute: 600, Timeout: 30 * time.Second, PollInterval: 30 * time.Second, ReconcileAfter: 2 * time.Minute},
		Workers:   Workers{Interval: time.Second, ReportConcurrency: 4, DispatchConcurrency: 8, Lease: time.Minute, RunTimeout: time.Hour},
		Limits:    Limits{RunLogLines: 10000, RunOutputBytes: 256 << 10},
		Log:       Log{Format: "json", Level: "info"},
		Secrets:   Secrets{RefreshInterval: secret.DefaultRefreshInterval},
		Operator:  Operator{SessionTTL: 12 * time.Hour},
		Expiry:    Expiry{WarnBefore: 24 * time.Hour, Interval: time.Minute},
		Approvals: Approvals{TTL: 72 * time.Hour},
		Tracing:   Tracing{ServiceName: "paved", SampleRatio: 1},
	}
}

// Load reads path over the defaults, then applies environment overrides
// (PAVED_SERVER_LISTEN=:9090 sets server.listen) and validates.
func Load(path string, environ []string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("read config: %w", err)
	}
	return Parse(data, environ)
}

// Parse is Load on bytes.
func Parse(data []byte, environ []string) (Config, error) {
	cfg := Default()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)                                               // a misspelt key is an error, not a silent default
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) { // an empty file means all defaults
		return Config{}, fmt.Errorf("parse config: %w", err)
	}
	if err := applyEnv(reflect.ValueOf(&cfg).Elem(), "PAVED", envMap(environ)); err != nil {
		return Config{}, err
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

func envMap(environ []string) map[string]string {
	m := map[string]string{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, "PAVED_") {
			m[k] = v
		}
	}
	return m
}

var durationType = reflect.TypeOf(time.Duration(0))

func applyEnv(v reflect.Value, prefix string, env map[string]string) error {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		name := prefix + "_" + strings.ToUpper(tag)
		fv := v.Field(i)
		if f.Type.Kind() == reflect.Struct {
			if err := applyEnv(fv, name, env); err != nil {
				return err
			}
			continue
		}
		raw, ok := env[name]
		if !ok {
			continue
		}
		if err := setField(fv, raw); err != nil {
			return fmt.Errorf("environment %s: %w", name, err)
		}
	}
	return nil
}

func setField(fv reflect.Value, raw string) error {
	switch {
	case fv.Type() == durationType:
		d, err := time.ParseDuration(raw)
		if err != nil {
			return err
		}
		fv.SetInt(int64(d))
	case fv.Kind() == reflect.String:
		fv.SetString(raw)
	case fv.Kind() == reflect.Bool:
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return err
		}
		fv.SetBool(b)
	case fv.Kind() == reflect.Float64:
		f, err := strconv.ParseFloat(raw, 64)
		if err != nil {
			return err
		}
		fv.SetFloat(f)
	case fv.Kind() == reflect.Int || fv.Kind() == reflect.Int64:
		n, err := strconv.ParseInt(raw, 10, 64)
		if err != nil {
			return err
		}
		fv.SetInt(n)
	case fv.Kind() == reflect.Slice && fv.Type().Elem().Kind() == reflect.String:
		var parts []string
		for _, p := range strings.Split(raw, ",") {
			if p = strings.TrimSpace(p); p != "" {
				parts = append(parts, p)
			}
		}
		fv.Set(reflect.ValueOf(parts))
	default:
		return fmt.Errorf("cannot be set from the environment")
	}
	return nil
}

// Validate reports every problem at once, each naming its key.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if c.Server.Listen == "" {
		bad("server.listen", "is required")
	}
	checkURL(bad, "server.publicURL", c.Server.PublicURL)
	if c.Server.MaxBodyBytes <= 0 {
		bad("server.maxBodyBytes", "must be positive")
	}
	switch c.Store.Driver {
	case "sqlite":
		if c.Store.Path == "" {
			bad("store.path", "is required with driver sqlite")
		}
	case "postgres":
		if c.Store.DSN == "" {
			bad("store.dsn", "is required with driver postgres")
		} else {
			checkRef(bad, "store.dsn", c.Store.DSN)
		}
	default:
		bad("store.driver", "must be sqlite or postgres, not %q", c.Store.Driver)
	}
	checkTestCache(bad, c)
	if c.Port.Enabled {
		checkURL(bad, "port.baseURL", c.Port.BaseURL)
		checkRef(bad, "port.clientID", c.Port.ClientID)
		checkRef(bad, "port.clientSecret", c.Port.ClientSecret)
		if c.Port.SignatureTolerance <= 0 {
			bad("port.signatureTolerance", "must be positive")
		}
		if c.Port.Timeout <= 0 {
			bad("port.timeout", "must be positive")
		}
	}
	checkURL(bad, "gitlab.baseURL", c.GitLab.BaseURL)
	checkRef(bad, "gitlab.token", c.GitLab.Token)
	checkRef(bad, "gitlab.webhookToken", c.GitLab.WebhookToken)
	if c.GitLab.PollInterval <= 0 {
		bad("gitlab.pollInterval", "must be positive")
	}
	if c.GitLab.ReconcileAfter < 0 {
		bad("gitlab.reconcileAfter", "must not be negative")
	}
	checkRef(bad, "api.runTokenKey", c.API.RunTokenKey)
	for i, t := range c.API.Tokens {
		checkRef(bad, fmt.Sprintf("api.tokens[%d]", i), t)
	}
	for name, cl := range c.API.Clients {
		if !operatorName(name) || name == "api" {
			bad("api.clients", "client name %q must be 1-64 letters, digits, '.', '_', '-' or '@', and not \"api\"", name)
		}
		checkRef(bad, "api.clients."+name+".token", cl.Token)
	}
	if len(c.Environments) == 0 {
		bad("environments", "name at least one environment")
	}
	seen := map[string]bool{}
	for i, e := range c.Environments {
		if e.Name == "" || seen[e.Name] {
			bad(fmt.Sprintf("environments[%d].name", i), "must be set and unique")
		}
		seen[e.Name] = true
	}
	if len(c.Tenants) == 0 {
		bad("tenants", "name at least one tenant")
	}
	if c.Workers.Interval <= 0 || c.Workers.Lease <= 0 || c.Workers.ReportConcurrency <= 0 || c.Workers.DispatchConcurrency <= 0 || c.Workers.RunTimeout <= 0 {
		bad("workers", "interval, lease, reportConcurrency, dispatchConcurrency and runTimeout must be positive")
	}
	if c.Workers.Lease > 0 && c.GitLab.Timeout > 0 && c.Workers.Lease <= c.GitLab.Timeout {
		// A trigger call still in flight when its lease ran out would let
		// another worker trigger the same run again.
		bad("workers.lease", "must be longer than gitlab.timeout (%s), the longest a trigger call may take", c.GitLab.Timeout)
	}
	if c.Limits.RunLogLines <= 0 || c.Limits.RunOutputBytes <= 0 {
		bad("limits", "runLogLines and runOutputBytes must be positive")
	}
	if c.Log.Format != "json" && c.Log.Format != "console" {
		bad("log.format", "must be json or console")
	}
	if c.Secrets.RefreshInterval <= 0 {
		bad("secrets.refreshInterval", "must be positive")
	}
	for name, ref := range c.Operator.Tokens {
		if !operatorName(name) {
			bad("operator.tokens", "operator name %q must be 1-64 letters, digits, '.', '_', '-' or '@'", name)
		}
		checkRef(bad, "operator.tokens."+name, ref)
	}
	if c.Approvals.TTL < 0 {
		bad("approvals.ttl", "must not be negative (0 waits for ever)")
	}
	if c.Drift.Interval < 0 || (c.Drift.Interval > 0 && c.Drift.Interval < time.Second) {
		bad("drift.interval", "must be 0 (no drift checks) or at least 1s")
	}
	if c.Expiry.WarnBefore < 0 {
		bad("expiry.warnBefore", "must not be negative")
	}
	if c.Expiry.Interval < time.Second {
		bad("expiry.interval", "must be at least 1s")
	}
	known := map[string]bool{}
	for _, e := range c.Environments {
		known[e.Name] = true
	}
	for _, e := range c.Drift.Environments {
		if !known[e] {
			bad("drift.environments", "environment %q is not one of environments", e)
		}
	}
	if c.Operator.SessionTTL <= 0 {
		bad("operator.sessionTTL", "must be positive")
	}
	if c.Tracing.Endpoint != "" {
		checkURL(bad, "tracing.endpoint", c.Tracing.Endpoint)
		if c.Tracing.ServiceName == "" {
			bad("tracing.serviceName", "is required with an endpoint")
		}
	}
	if c.Tracing.SampleRatio < 0 || c.Tracing.SampleRatio > 1 {
		bad("tracing.sampleRatio", "must be between 0 and 1")
	}
	return errors.Join(errs...)
}

// operatorName reports whether name matches ^[A-Za-z0-9._@-]{1,64}$. It is
// written out because a regexp's {1,64} compiles to a 60 KB program, built
// at every start for a handful of names.
func operatorName(name string) bool {
	if len(name) == 0 || len(name) > 64 {
		return false
	}
	for i := 0; i < len(name); i++ {
		switch c := name[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '_', c == '@', c == '-':
		default:
			return false
		}
	}
	return true
}

func checkURL(bad func(string, string, ...any), key, v string) {
	if v == "" {
		bad(key, "is required")
		return
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad(key, "must be an http(s) URL")
	}
}

// checkRef checks a secret reference's form; its messages never repeat the
// text, which may be a value written where a reference belongs.
func checkRef(bad func(string, string, ...any), key, v string) {
	if v == "" {
		bad(key, "is required")
		return
	}
	if _, err := secret.Parse(v); errors.Is(err, secret.ErrNotAReference) {
		bad(key, "must be a secret reference (env:NAME, file:/path or awssm:name-or-arn[#json-key]), not a value")
	} else if err != nil {
		bad(key, "%v", err)
	}
}
