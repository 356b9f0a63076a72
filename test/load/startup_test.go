package load

import (
	"bytes"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	h "github.com/paved-idp/paved/test/harness"
	"github.com/paved-idp/paved/test/load/probe"
)

// testStartup measures how long paved takes from exec to its first 200 on
// /readyz, and its RSS once idle, in turn: on a first start (no database,
// and the policy's Rego tests not yet passed with these files), on a fresh
// database (migrations run; the tests passed before, so they are skipped)
// and on an existing one.
func testStartup(t *testing.T, m mode) {
	e := world(t, h.Options{}, nil)
	e.Term() // the harness's own start polls every 25 ms: too coarse; start it here instead
	kinds := []string{"first", "fresh", "existing"}
	ready, mem := map[string][]float64{}, map[string][]float64{}
	for i := range len(kinds) * m.startRepeats {
		kind := kinds[i%len(kinds)]
		if kind != "existing" {
			for _, suffix := range []string{"", "-wal", "-shm"} {
				_ = os.Remove(e.DBPath + suffix)
			}
		}
		if kind == "first" {
			_ = os.Remove(e.DBPath + ".rego-tests") // config.RegoTestCache's default
		}
		r, m := timedStart(t, e)
		ready[kind] = append(ready[kind], toMS(r))
		for k, v := range m {
			mem[k] = append(mem[k], v)
		}
		note("start %d (%s): ready in %.1f ms, idle VmRSS %.1f MiB (anon %.1f, file %.1f), VmHWM %.1f MiB", i+1, kind, toMS(r), m["VmRSS"], m["RssAnon"], m["RssFile"], m["VmHWM"])
	}
	report("startup", "start-up to /readyz 200, first start (no db, Rego tests run)", spread(ready["first"], ms), "", "")
	report("startup", "start-up to /readyz 200, fresh db (exec → ready)", spread(ready["fresh"], ms), "≈32 ms (keep)", "")
	report("startup", "start-up to /readyz 200, existing db", spread(ready["existing"], ms), "≈32 ms (keep)", "")
	report("startup", "idle RSS (VmRSS 2 s after ready)", spread(mem["VmRSS"], mib), "≈35 MiB (keep)", "")
	report("startup", "… of it anonymous (RssAnon: heap, stacks)", spread(mem["RssAnon"], mib), "", "")
	report("startup", "… of it file pages (RssFile: the executable)", spread(mem["RssFile"], mib), "", "")
	report("startup", "VmHWM at that moment", spread(mem["VmHWM"], mib), "", "")
}

// timedStart runs paved with the harness's config and environment, polls
// /readyz every millisecond, waits 2 s idle, reads its memory and stops it.
func timedStart(t *testing.T, e *h.Env) (time.Duration, map[string]float64) {
	t.Helper()
	var stderr bytes.Buffer
	cmd := exec.Command(pavedBin, "serve", "--config", e.ConfigPath())
	cmd.Env = e.Environ()
	cmd.Stderr = &stderr
	poller := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		for _, secret := range []string{h.PortSecret, h.GitLabToken, h.HookToken, h.APIToken, h.RunKey} {
			if strings.Contains(stderr.String(), secret) {
				t.Errorf("paved logged a secret")
			}
		}
	}()
	var ready time.Duration
	for deadline := start.Add(20 * time.Second); ; {
		resp, err := poller.Get(e.URL + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				ready = time.Since(start)
				break
			}
		}
		select {
		case <-exited:
			t.Fatalf("paved exited at start: %s", stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("paved not ready after 20 s")
		}
		time.Sleep(time.Millisecond)
	}
	time.Sleep(2 * time.Second) // idle: workers tick, nothing to do
	m, err := probe.Memory(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	return ready, m
}
