package catalogcmd

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/paved-idp/paved/internal/sim/portsim"
)

// paved runs the commands as `paved <args>` and returns stdout, stderr and
// the error.
func paved(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	root := &cobra.Command{Use: "paved", SilenceUsage: true, SilenceErrors: true}
	root.AddCommand(Commands()...)
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err
}

var shipped = []string{"--actions", "../../actions", "--blueprints", "../../blueprints"}

func TestValidate(t *testing.T) {
	out, _, err := paved(t, append([]string{"validate", "--policy", "../../actions/policy"}, shipped...)...)
	if err != nil || !strings.HasPrefix(out, "ok: ") {
		t.Fatalf("validate: %v, %q", err, out)
	}

	dir := t.TempDir()
	for _, f := range []string{"add-s3-bucket.yaml", "add-sqs-queue.yaml", "create-service.yaml", "delete-service.yaml"} {
		b, err := os.ReadFile(filepath.Join("../../actions", f))
		if err != nil {
			t.Fatal(err)
		}
		if f == "add-sqs-queue.yaml" {
			b = bytes.Replace(b, []byte("identifier: add-sqs-queue\n"), []byte("identifier: add-sqs-queue\n  title: [\n"), 1)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, errOut, err := paved(t, "validate", "--actions", dir, "--blueprints", "../../blueprints", "--policy", "../../actions/policy")
	if err == nil || err.Error() != "1 problem(s)" || !strings.HasPrefix(errOut, filepath.Join(dir, "add-sqs-queue.yaml")+":3: YAML: ") {
		t.Fatalf("validate of a malformed action: %v\n%s", err, errOut)
	}
	// render refuses the same definitions, naming the same problem.
	if _, errOut, err := paved(t, "render", "backstage", "--actions", dir, "--blueprints", "../../blueprints"); err == nil || !strings.Contains(errOut, "add-sqs-queue.yaml:3:") {
		t.Fatalf("render of a malformed action: %v\n%s", err, errOut)
	}
}

func TestRenderPort(t *testing.T) {
	if _, _, err := paved(t, append([]string{"render", "port"}, shipped...)...); err == nil || !strings.Contains(err.Error(), "webhook URL") {
		t.Fatalf("render without a URL: %v", err)
	}
	out, _, err := paved(t, append([]string{"render", "port", "--url", "https://paved.example.com/webhooks/port"}, shipped...)...)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct{ Blueprints, Actions []map[string]any }
	if err := json.Unmarshal([]byte(out), &doc); err != nil || len(doc.Blueprints) != 5 || len(doc.Actions) != 6 {
		t.Fatalf("stdout: %v %d %d", err, len(doc.Blueprints), len(doc.Actions))
	}

	// --config supplies the directories and the URL (server.publicURL).
	cfg := filepath.Join(t.TempDir(), "paved.yaml")
	writeConfig(t, cfg, "https://paved.acme.example/")
	dir := t.TempDir()
	if _, _, err := paved(t, "render", "port", "--config", cfg, "--out", dir); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"blueprints/service.json", "blueprints/s3_bucket.json", "actions/add-s3-bucket.json", "actions/paved-approve-run.json"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(f, "actions/") && !strings.Contains(string(b), `"url": "https://paved.acme.example/webhooks/port"`) {
			t.Errorf("%s does not call the configured URL:\n%s", f, b)
		}
	}
}

func TestRenderBackstage(t *testing.T) {
	out, _, err := paved(t, append([]string{"render", "backstage"}, shipped...)...)
	if err != nil || !strings.HasPrefix(out, "apiVersion: scaffolder.backstage.io/v1beta3\n") || strings.Count(out, "\nkind: Template\n") != 4 {
		t.Fatalf("render backstage: %v\n%s", err, out)
	}
	dir := t.TempDir()
	if _, _, err := paved(t, "render", "backstage", "--actions", "../../actions", "--blueprints", "", "--out", dir); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "create-service.yaml"))
	if err != nil || !strings.Contains(string(b), "action: paved:run") {
		t.Fatalf("create-service.yaml: %v\n%s", err, b)
	}
}

func TestSyncPort(t *testing.T) {
	sim := portsim.New(portsim.Config{ClientID: "cid", ClientSecret: "csecret"})
	srv := httptest.NewServer(sim.Handler())
	defer srv.Close()
	args := append([]string{"sync", "port", "--base-url", srv.URL, "--url", "https://paved.example.com/webhooks/port"}, shipped...)

	t.Setenv("PORT_CLIENT_ID", "")
	t.Setenv("PORT_CLIENT_SECRET", "")
	if _, _, err := paved(t, args...); err == nil || !strings.Contains(err.Error(), "Port credentials") {
		t.Fatalf("sync without credentials: %v", err)
	}
	t.Setenv("PORT_CLIENT_ID", "cid")
	t.Setenv("PORT_CLIENT_SECRET", "csecret")

	out, _, err := paved(t, append(args, "--dry-run")...)
	if err != nil || !strings.Contains(out, "action create-service: create\n") || !strings.Contains(out, "nothing written") {
		t.Fatalf("dry run: %v\n%s", err, out)
	}
	if _, ok := sim.Action("create-service"); ok {
		t.Fatal("a dry run created an action")
	}
	if out, _, err = paved(t, args...); err != nil || !strings.Contains(out, "creating 11, updating 0, leaving 0 unchanged") {
		t.Fatalf("sync: %v\n%s", err, out)
	}
	if _, ok := sim.Action("create-service"); !ok {
		t.Fatal("sync did not create the action")
	}
	if out, _, err = paved(t, args...); err != nil || !strings.HasSuffix(out, "nothing to do: all 11 are as rendered\n") {
		t.Fatalf("second sync: %v\n%s", err, out)
	}

	// Credentials from the config's references, when the environment has none.
	cfg := filepath.Join(t.TempDir(), "paved.yaml")
	writeConfig(t, cfg, "https://paved.example.com")
	t.Setenv("PORT_CLIENT_ID", "")
	t.Setenv("PAVED_TEST_PORT_ID", "cid")
	t.Setenv("PAVED_TEST_PORT_SECRET", "csecret")
	if out, _, err = paved(t, "sync", "port", "--config", cfg, "--base-url", srv.URL); err != nil || !strings.Contains(out, "nothing to do") {
		t.Fatalf("sync with the config's credentials: %v\n%s", err, out)
	}
}

// writeConfig writes a valid paved config for the shipped definitions.
func writeConfig(t *testing.T, path, publicURL string) {
	t.Helper()
	abs := func(p string) string {
		a, err := filepath.Abs(p)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	cfg := `server:
  publicURL: "` + publicURL + `"
actionsDir: ` + abs("../../actions") + `
policyDir: ` + abs("../../actions/policy") + `
blueprintsDir: ` + abs("../../blueprints") + `
port:
  clientID: env:PAVED_TEST_PORT_ID
  clientSecret: env:PAVED_TEST_PORT_SECRET
gitlab:
  baseURL: https://gitlab.example.com
  token: env:GITLAB_TOKEN
  webhookToken: env:GITLAB_HOOK
api:
  runTokenKey: env:RUN_KEY
environments: [{name: dev}]
tenants: [acme]
`
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
}
