package e2e

import (
	"fmt"
	h "github.com/paved-idp/paved/test/harness"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/paved-idp/paved/internal/run"
	"github.com/paved-idp/paved/internal/sim/gitlabsim"
)

func TestCancelStopsThePipeline(t *testing.T) {
	e := h.Start(t, pavedBin, h.Options{Outcome: h.LongPipeline})
	portRun, ans := e.Press(h.Bucket(h.Dana, "dev", nil))
	e.WaitState(ans.RunID, "running")
	if code := e.Post("/api/v1/runs/"+ans.RunID+"/cancel", `{"by":"dana@acme.example"}`); code != 200 {
		t.Fatalf("cancel: %d", code)
	}
	r := e.WaitPort(portRun)
	if r.Status != "FAILURE" || !strings.Contains(r.Summary, "canceled by dana@acme.example") {
		t.Fatalf("Port run %s %q", r.Status, r.Summary)
	}
	waitPipeline(t, e, gitlabsim.StatusCanceled)
	if code := e.Post("/api/v1/runs/"+ans.RunID+"/cancel", `{"by":"dana@acme.example"}`); code != 409 {
		t.Fatalf("second cancel: %d, want 409", code)
	}
}

func TestTimedOutRunCancelsItsPipeline(t *testing.T) {
	e := h.Start(t, pavedBin, h.Options{Outcome: h.LongPipeline, ActionTimeout: "1s", PollInterval: 300 * time.Millisecond})
	portRun, ans := e.Press(h.Bucket(h.Dana, "dev", nil))
	r := e.WaitPort(portRun)
	if r.Status != "FAILURE" || r.StatusLabel != "Timed out" || !strings.Contains(r.Summary, "timed out") {
		t.Fatalf("Port run %s (%s) %q", r.Status, r.StatusLabel, r.Summary)
	}
	if st := e.RunState(ans.RunID); st != "timed_out" {
		t.Fatalf("run state %s", st)
	}
	waitPipeline(t, e, gitlabsim.StatusCanceled)
}

func waitPipeline(t *testing.T, e *h.Env, status string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if ps := e.GitLab.Pipelines(); len(ps) == 1 && ps[0].Status == status {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("pipelines %+v, want one %s", e.GitLab.Pipelines(), status)
}

// TestPavedReportAgainstTheRealServer plays the pipeline's report job:
// `paved report` posts log lines and stack outputs with the run's token.
func TestPavedReportAgainstTheRealServer(t *testing.T) {
	e := h.Start(t, pavedBin, h.Options{Outcome: h.LongPipeline})
	portRun, ans := e.Press(h.Bucket(h.Dana, "dev", nil))
	e.WaitState(ans.RunID, "running")
	outputs := filepath.Join(t.TempDir(), "outputs.json")
	if err := os.WriteFile(outputs, []byte(`{"bucketName":"b","bucketArn":"arn:aws:s3:::from-paved-report","region":"eu-west-1"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	report := func(token string, args ...string) (string, error) {
		cmd := exec.Command(pavedBin, append([]string{"report"}, args...)...)
		cmd.Env = append(os.Environ(), "PAVED_URL="+e.URL, "PAVED_RUN_ID="+ans.RunID, "PAVED_RUN_TOKEN="+token)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	token := run.Token([]byte(h.RunKey), ans.RunID)
	if out, err := report(token, "--outputs", outputs, "--message", "stack applied by the report job"); err != nil {
		t.Fatalf("paved report: %v\n%s", err, out)
	}
	if out, err := report(run.Token([]byte(h.RunKey), "r_other"), "--message", "x"); err == nil || strings.Contains(out, token) {
		t.Fatalf("report with another run's token succeeded or printed a token: %v\n%s", err, out)
	}
	var got struct {
		Outputs map[string]any `json:"outputs"`
	}
	e.API("GET", "/api/v1/runs/"+ans.RunID, &got)
	if got.Outputs["bucketArn"] != "arn:aws:s3:::from-paved-report" {
		t.Fatalf("outputs %v", got.Outputs)
	}
	// End the run; the report job's line reached Port before the final status.
	if code := e.Post("/api/v1/runs/"+ans.RunID+"/cancel", `{"by":"test"}`); code != 200 {
		t.Fatalf("cancel %d", code)
	}
	r := e.WaitPort(portRun)
	if !strings.Contains(h.LogText(r), "stack applied by the report job") {
		t.Fatalf("Port log lacks the report job's line:\n%s", h.LogText(r))
	}
}

// TestGracefulRestartPicksUpEveryRun stops paved with SIGTERM while runs
// are queued, dispatching and running, and starts it again.
func TestGracefulRestartPicksUpEveryRun(t *testing.T) {
	e := h.Start(t, pavedBin, h.Options{PollInterval: 300 * time.Millisecond, Outcome: func(gitlabsim.Pipeline) gitlabsim.Outcome {
		return gitlabsim.Outcome{Status: gitlabsim.StatusSuccess, Created: 50 * time.Millisecond, Pending: 50 * time.Millisecond, Running: 700 * time.Millisecond}
	}})
	var portRuns []string
	for i := 0; i < 6; i++ {
		id, ans := e.Press(h.Bucket(h.Dana, "dev", map[string]any{"bucketName": fmt.Sprintf("bucket-%d", i)}))
		if ans.Code != 202 {
			t.Fatalf("answer %+v", ans)
		}
		portRuns = append(portRuns, id)
	}
	e.Term()
	e.Restart()
	for _, id := range portRuns {
		if r := e.WaitPort(id); r.Status != "SUCCESS" || r.TerminalAttempts != 1 {
			t.Fatalf("Port run %s: %s (%s) after %d final statuses", id, r.Status, r.Summary, r.TerminalAttempts)
		}
	}
	if n := len(e.GitLab.Pipelines()); n != len(portRuns) {
		t.Fatalf("%d pipelines for %d runs", n, len(portRuns))
	}
	if !strings.Contains(e.Log(), "paved stopped") {
		t.Fatal("paved did not log a clean stop")
	}
}
