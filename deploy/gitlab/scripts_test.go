package gitlab

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The jobs' scripts, run: before_script and script in one bash, as GitLab's
// runner runs them, from a checkout with paved's variables, against stub
// commands (pulumi, paved, aws, provision) that record how they were called
// and whether the run token was in their environment.

// runToken is the run token paved gives the pipeline in these runs.
const runToken = "tok-9f3c1d7e-run-token"

// stub is the one script behind every stubbed command (by its name). Its
// paved preview writes $FAKE_VERDICT and fails on a refusal, as paved
// preview's contract has it (apply, dry_run, await_approval and
// drift_checked are successes).
const stub = `#!/bin/bash
name="$(basename "$0")"
seen=no
if env | grep -qF '` + runToken + `'; then seen=yes; fi
printf '%s %s token=%s\n' "$name" "$*" "$seen" >> "$STUB_LOG"
case "$name $*" in
  "pulumi preview "*)
    echo "warning: a message of pulumi's" >&2
    printf '%s\n' '{"steps":[{"op":"create","urn":"urn:pulumi:s::p::aws:s3/bucketV2:BucketV2::b"}],"changeSummary":{"create":1}}' ;;
  "pulumi refresh "*)
    echo "warning: a refresh message of pulumi's" >&2
    printf '%s\n' '{"steps":[{"op":"update","urn":"urn:pulumi:s::p::aws:s3/bucketV2:BucketV2::b"}],"changeSummary":{"update":1}}' ;;
  "pulumi stack output pavedModel"*) exit 1 ;;
  "pulumi stack output --json") echo '{"bucket":"b"}' ;;
  "paved preview "*)
    while [ $# -gt 0 ]; do
      if [ "$1" = --verdict-file ]; then printf '%s\n' "$FAKE_VERDICT" > "$2"; fi
      shift
    done
    echo "paved: preview +1 ~0 -0 for run r_1: $FAKE_VERDICT"
    case "$FAKE_VERDICT" in refused|digest_changed) echo "paved refused the preview" >&2; exit 1 ;; esac ;;
esac
exit 0
`

type jobRun struct {
	dir   string   // CI_PROJECT_DIR
	out   string   // the job log
	err   error    // the shell's exit
	calls []string // "name args token=yes|no", in order
}

func (r jobRun) called(prefix string) []string {
	var out []string
	for _, c := range r.calls {
		if strings.HasPrefix(c, prefix) {
			out = append(out, c)
		}
	}
	return out
}

func (r jobRun) file(t *testing.T, rel string) (string, bool) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(r.dir, rel))
	if errors.Is(err, os.ErrNotExist) {
		return "", false
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(b), true
}

// runJob runs job of the README's pipeline with paved's variables (and
// extra ones); files are put into the checkout first (artifacts of earlier
// jobs); prelude runs before the job's lines.
func runJob(t *testing.T, job string, vars map[string]string, files map[string]string, prelude string) jobRun {
	t.Helper()
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash to run the job scripts with")
	}
	cfg, err := includeComponents(t, readmeConsumer(t), componentProject)
	if err != nil {
		t.Fatal(err)
	}
	def, err := resolveExtends(cfg, job, 0)
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	dir, bin, tmp := filepath.Join(root, "checkout"), filepath.Join(root, "bin"), filepath.Join(root, "tmp")
	for _, d := range []string{filepath.Join(dir, "deploy", "pulumi"), bin, tmp} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(bin, "stub"), []byte(stub), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"pulumi", "paved", "aws", "provision"} {
		if err := os.Symlink("stub", filepath.Join(bin, name)); err != nil {
			t.Fatal(err)
		}
	}
	for rel, content := range files {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	env := map[string]string{
		"PATH": bin + ":/usr/local/bin:/usr/bin:/bin", "HOME": root, "TMPDIR": tmp,
		"CI_PROJECT_DIR": dir, "STUB_LOG": filepath.Join(root, "calls"),
		"PAVED_URL": "https://paved.example.com", "PAVED_RUN_TOKEN": runToken,
		"PAVED_AWS_ID_TOKEN": "oidc-token", "PAVED_REQUEST": filepath.Join(root, "request.json"),
	}
	for k, v := range vars {
		env[k] = v
	}
	// Job variables, expanded with the pipeline's (paved's win in GitLab,
	// but it sets none of these).
	jobVars, _ := def["variables"].(map[string]any)
	for k, v := range jobVars {
		env[k] = os.Expand(fmt.Sprint(v), func(name string) string { return env[name] })
	}
	var lines []string
	if prelude != "" {
		lines = append(lines, prelude)
	}
	for _, key := range []string{"before_script", "script"} {
		list, _ := def[key].([]any)
		for _, l := range list {
			lines = append(lines, fmt.Sprint(l))
		}
	}
	script := filepath.Join(root, "job.sh")
	if err := os.WriteFile(script, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bash, "--noprofile", "--norc", script)
	cmd.Dir = dir
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out, runErr := cmd.CombinedOutput()
	r := jobRun{dir: dir, out: string(out), err: runErr}
	if b, err := os.ReadFile(env["STUB_LOG"]); err == nil {
		r.calls = strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	}
	if strings.Contains(r.out, runToken) {
		t.Errorf("%s: the job log shows the run token:\n%s", job, r.out)
	}
	return r
}

// noTokenBut checks that only commands starting with one of allowed saw
// the run token, and that they did.
func noTokenBut(t *testing.T, r jobRun, job string, allowed ...string) {
	t.Helper()
	for _, c := range r.calls {
		want := slices.ContainsFunc(allowed, func(p string) bool { return strings.HasPrefix(c, p) })
		if seen := strings.HasSuffix(c, " token=yes"); seen != want {
			t.Errorf("%s: %q: run token in its environment = %v, want %v", job, c, seen, want)
		}
	}
}

// TestPreviewJobsRun: the preview jobs save pulumi's JSON, post it with
// paved preview (which alone gets the run token), keep pulumi's messages
// and paved's verdict in paved-logs/preview.log, and fail on a refusal.
func TestPreviewJobsRun(t *testing.T) {
	for _, tc := range []struct {
		job, operation, pulumi, paved string
	}{
		{"preview", "CREATE", "pulumi preview --json --non-interactive token=no",
			"paved preview --file $DIR/paved-out/preview.json --verdict-file $DIR/paved-out/verdict token=yes"},
		{"preview-destroy", "DELETE", "pulumi preview --destroy --json --non-interactive token=no",
			"paved preview --destroy --file $DIR/paved-out/preview.json --verdict-file $DIR/paved-out/verdict token=yes"},
	} {
		for _, verdict := range []string{"apply", "dry_run", "await_approval", "refused", "digest_changed"} {
			for _, prelude := range []string{"", "set -a"} {
				name := fmt.Sprintf("%s (%s, prelude %q)", tc.job, verdict, prelude)
				r := runJob(t, tc.job, pavedVars(tc.operation, "prod", "FAKE_VERDICT="+verdict), nil, prelude)
				refused := verdict == "refused" || verdict == "digest_changed"
				if (r.err != nil) != refused {
					t.Errorf("%s: exit %v, want a failure: %v\n%s", name, r.err, refused, r.out)
				}
				pulumi, paved := r.called("pulumi preview"), r.called("paved ")
				wantPaved := strings.ReplaceAll(tc.paved, "$DIR", r.dir)
				if !slices.Equal(pulumi, []string{tc.pulumi}) || !slices.Equal(paved, []string{wantPaved}) {
					t.Errorf("%s: ran %v and %v, want %q and %q", name, pulumi, paved, tc.pulumi, wantPaved)
				}
				noTokenBut(t, r, name, "paved preview ")
				if j, _ := r.file(t, "paved-out/preview.json"); !strings.HasPrefix(j, `{"steps":`) {
					t.Errorf("%s: paved-out/preview.json = %q, want pulumi's JSON alone", name, j)
				}
				if v, _ := r.file(t, "paved-out/verdict"); v != verdict+"\n" {
					t.Errorf("%s: paved-out/verdict = %q", name, v)
				}
				log, _ := r.file(t, "paved-logs/preview.log")
				if !strings.Contains(log, "warning: a message of pulumi's") || !strings.Contains(log, "for run r_1: "+verdict) {
					t.Errorf("%s: paved-logs/preview.log lacks pulumi's messages or paved's verdict:\n%s", name, log)
				}
				if len(r.called("pulumi up")) > 0 || len(r.called("pulumi destroy")) > 0 {
					t.Errorf("%s: a preview job applied: %v", name, r.calls)
				}
			}
		}
	}
}

// TestApplyJobsRun: up and destroy apply only on the verdict apply; a dry
// run's or a guarded run's verdict ends them successfully without touching
// the stack, no verdict (or another word) fails them; none has the token.
func TestApplyJobsRun(t *testing.T) {
	for _, tc := range []struct{ job, operation, apply string }{
		{"up", "CREATE", "pulumi up --yes --diff --non-interactive token=no"},
		{"destroy", "DELETE", "pulumi destroy --yes --non-interactive token=no"},
	} {
		for _, verdict := range []string{"apply", "dry_run", "await_approval", "", "refused", "digest_changed", "drift_checked", "applied", "apply $(touch pwned)"} {
			files := map[string]string{}
			if verdict != "" {
				files["paved-out/verdict"] = verdict + "\n"
			}
			name := fmt.Sprintf("%s (verdict %q)", tc.job, verdict)
			r := runJob(t, tc.job, pavedVars(tc.operation, "prod"), files, "")
			noTokenBut(t, r, name)
			applied := len(r.called("pulumi up")) + len(r.called("pulumi destroy"))
			outputs, hasOutputs := r.file(t, "paved-out/outputs.json")
			if _, err := os.Stat(filepath.Join(r.dir, "deploy", "pulumi", "pwned")); err == nil {
				t.Errorf("%s: the verdict was run as a command", name)
			}
			switch verdict {
			case "apply":
				if r.err != nil || !slices.Equal(r.called(strings.Join(strings.Fields(tc.apply)[:2], " ")), []string{tc.apply}) || !hasOutputs {
					t.Errorf("%s: exit %v, calls %v, outputs %q: want it applied\n%s", name, r.err, r.calls, outputs, r.out)
				}
			case "dry_run", "await_approval":
				if r.err != nil || applied > 0 || hasOutputs {
					t.Errorf("%s: exit %v, calls %v: want a success that applies nothing\n%s", name, r.err, r.calls, r.out)
				}
				if !strings.Contains(r.out, "paved: "+verdict+": nothing is applied") {
					t.Errorf("%s: the log does not say why nothing is applied:\n%s", name, r.out)
				}
			default:
				if r.err == nil || applied > 0 || hasOutputs {
					t.Errorf("%s: exit %v, calls %v: want a failure that applies nothing\n%s", name, r.err, r.calls, r.out)
				}
				if !strings.Contains(r.out, "nothing is applied") {
					t.Errorf("%s: the log does not say that nothing is applied:\n%s", name, r.out)
				}
			}
		}
	}
}

// TestDriftJobRuns: the drift job refreshes the stack in preview only, into
// paved-out/drift.json, posts it with paved preview (which alone gets the
// run token), keeps pulumi's messages and paved's verdict in
// paved-logs/drift.log, and succeeds only on drift_checked; whatever paved
// answers, nothing is applied and no outputs are written.
func TestDriftJobRuns(t *testing.T) {
	for _, verdict := range []string{"drift_checked", "apply", "dry_run", "await_approval", "refused", "digest_changed", "", "drift_checked $(touch pwned)"} {
		for _, prelude := range []string{"", "set -a"} {
			name := fmt.Sprintf("drift (%q, prelude %q)", verdict, prelude)
			r := runJob(t, "drift", pavedVars("DRIFT", "prod", "FAKE_VERDICT="+verdict), nil, prelude)
			if checked := verdict == "drift_checked"; (r.err == nil) != checked {
				t.Errorf("%s: exit %v, want a success: %v\n%s", name, r.err, checked, r.out)
			}
			refresh, posted := r.called("pulumi refresh"), r.called("paved ")
			wantRefresh := "pulumi refresh --preview-only --json --non-interactive token=no"
			wantPost := "paved preview --file " + r.dir + "/paved-out/drift.json --verdict-file " + r.dir + "/paved-out/verdict token=yes"
			if !slices.Equal(refresh, []string{wantRefresh}) || !slices.Equal(posted, []string{wantPost}) {
				t.Errorf("%s: ran %v and %v, want %q and %q", name, refresh, posted, wantRefresh, wantPost)
			}
			noTokenBut(t, r, name, "paved preview ")
			for _, c := range r.calls {
				if strings.HasPrefix(c, "pulumi ") && !strings.HasPrefix(c, "pulumi refresh --preview-only ") &&
					!strings.HasPrefix(c, "pulumi login ") && !strings.HasPrefix(c, "pulumi stack select ") && !strings.HasPrefix(c, "pulumi stack output pavedModel ") {
					t.Errorf("%s: a drift check ran %q", name, c)
				}
				if strings.HasPrefix(c, "provision ") {
					t.Errorf("%s: a drift check ran %q", name, c)
				}
			}
			if j, _ := r.file(t, "paved-out/drift.json"); !strings.HasPrefix(j, `{"steps":`) {
				t.Errorf("%s: paved-out/drift.json = %q, want pulumi's JSON alone", name, j)
			}
			if v, _ := r.file(t, "paved-out/verdict"); v != verdict+"\n" {
				t.Errorf("%s: paved-out/verdict = %q", name, v)
			}
			log, _ := r.file(t, "paved-logs/drift.log")
			if !strings.Contains(log, "warning: a refresh message of pulumi's") || !strings.Contains(log, "for run r_1: "+verdict) {
				t.Errorf("%s: paved-logs/drift.log lacks pulumi's messages or paved's verdict:\n%s", name, log)
			}
			for _, f := range []string{"paved-out/preview.json", "paved-out/outputs.json"} {
				if _, ok := r.file(t, f); ok {
					t.Errorf("%s: a drift check wrote %s", name, f)
				}
			}
			if _, err := os.Stat(filepath.Join(r.dir, "deploy", "pulumi", "pwned")); err == nil {
				t.Errorf("%s: the verdict was run as a command", name)
			}
			if verdict != "drift_checked" && verdict != "refused" && verdict != "digest_changed" &&
				!strings.Contains(r.out, "not a drift check's verdict; nothing is applied") {
				t.Errorf("%s: the log does not say why the job failed:\n%s", name, r.out)
			}
		}
	}

	// The report job posts the drift check's log, and no outputs.
	r := runJob(t, "report", pavedVars("DRIFT", "prod"), map[string]string{
		"paved-logs/drift.log": "paved: preview +0 ~1 -0 for run r_1: drift_checked\n",
	}, "")
	if r.err != nil || !slices.Equal(r.called("paved report "), []string{"paved report --message == drift --log paved-logs/drift.log token=yes"}) {
		t.Errorf("report of a drift check: exit %v, calls %v\n%s", r.err, r.calls, r.out)
	}
}

// TestOtherJobsRun: check never has the run token; report gives it to
// paved report, which posts every log.
func TestOtherJobsRun(t *testing.T) {
	r := runJob(t, "check", pavedVars("CREATE", "dev"), nil, "")
	if r.err != nil || len(r.called("provision check")) != 1 {
		t.Errorf("check: exit %v, calls %v\n%s", r.err, r.calls, r.out)
	}
	noTokenBut(t, r, "check")

	r = runJob(t, "report", pavedVars("CREATE", "dev"), map[string]string{
		"paved-logs/preview.log": "paved: preview +1 ~0 -0 for run r_1: dry_run\n",
		"paved-logs/check.log":   "ok\n",
	}, "")
	if r.err != nil || len(r.called("paved report --message")) != 2 || len(r.called("paved report --outputs")) != 0 {
		t.Errorf("report: exit %v, calls %v\n%s", r.err, r.calls, r.out)
	}
	noTokenBut(t, r, "report", "paved report ")
}
