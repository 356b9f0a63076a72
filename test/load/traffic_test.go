package load

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paved-idp/paved/internal/sim/portsim"
	h "github.com/paved-idp/paved/test/harness"
)

// loadClient keeps enough idle connections for the highest concurrency, so
// that no trial measures connection set-up (the harness's client keeps two).
var loadClient = &http.Client{Timeout: time.Minute, Transport: &http.Transport{
	MaxIdleConns: 4096, MaxIdleConnsPerHost: 2048, IdleConnTimeout: 2 * time.Minute, DisableCompression: true,
}}

// pool is a set of Port runs, created in the Port simulator, and their
// webhook bodies (signed only when sent).
type pool struct {
	portIDs []string
	bodies  [][]byte
}

// makePool creates n Port runs of add-s3-bucket on service svc-<i mod
// stacks> (prefix names the services) and their webhook bodies.
func makePool(t testing.TB, e *h.Env, n, stacks int, prefix string) pool {
	t.Helper()
	p := pool{portIDs: make([]string, n), bodies: make([][]byte, n)}
	var wg sync.WaitGroup
	var failed atomic.Value
	const workers = 2
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				inv := h.Bucket(h.Dana, "dev", map[string]any{"bucketName": fmt.Sprintf("b%07d", i)})
				entity := *h.Checkout
				entity.Identifier = fmt.Sprintf("%s-%04d", prefix, i%stacks)
				inv.Entity = &entity
				id, err := e.Port.CreateRun(inv)
				if err != nil {
					failed.Store(err)
					return
				}
				body, err := e.Port.WebhookBody(id, e.URL+"/webhooks/port")
				if err != nil {
					failed.Store(err)
					return
				}
				p.portIDs[i], p.bodies[i] = id, body
			}
		}()
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		t.Fatal(err)
	}
	return p
}

// answer is what one delivery got.
type answer struct {
	code   int
	runID  string
	state  string
	portID string
	err    error
	// sent is when the request was (to be) sent; done when its answer was
	// read; began when the open loop's sender actually sent it.
	sent, done, began time.Time
}

// send signs body now and posts it to url.
func send(sim *portsim.Sim, url string, body []byte) answer {
	a := answer{sent: time.Now()}
	req, err := sim.SignedRequest(context.Background(), url, body, a.sent)
	if err != nil {
		a.err = err
		return a
	}
	resp, err := loadClient.Do(req)
	if err != nil {
		a.err, a.done = err, time.Now()
		return a
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	a.done, a.code = time.Now(), resp.StatusCode
	var v struct {
		RunID string `json:"runId"`
		State string `json:"state"`
	}
	_ = json.Unmarshal(b, &v)
	a.runID, a.state = v.RunID, v.State
	return a
}

// tally sums up a trial's answers.
type tally struct {
	sent, accepted, c5xx, other, errs int
	elapsed                           time.Duration
	latencies                         []time.Duration
	answers                           []answer
	firstErr                          string
}

func (t *tally) add(a answer) {
	t.sent++
	t.answers = append(t.answers, a)
	switch {
	case a.err != nil:
		t.errs++
		if t.firstErr == "" {
			t.firstErr = a.err.Error()
		}
	case a.code == http.StatusAccepted:
		t.accepted++
	case a.code >= 500:
		t.c5xx++
		if t.firstErr == "" {
			t.firstErr = fmt.Sprintf("HTTP %d", a.code)
		}
	default:
		t.other++
		if t.firstErr == "" {
			t.firstErr = fmt.Sprintf("HTTP %d", a.code)
		}
	}
	if a.err == nil {
		t.latencies = append(t.latencies, a.done.Sub(a.sent))
	}
}

func (t *tally) merge(o *tally) {
	t.sent += o.sent
	t.accepted += o.accepted
	t.c5xx += o.c5xx
	t.other += o.other
	t.errs += o.errs
	t.latencies = append(t.latencies, o.latencies...)
	t.answers = append(t.answers, o.answers...)
	if t.firstErr == "" {
		t.firstErr = o.firstErr
	}
}

func (t *tally) rate() float64 { return float64(t.sent) / t.elapsed.Seconds() }

// closedLoop sends with conc workers, each waiting for its answer before
// the next request, until dur has passed or (unless cyclic) the pool is
// used up. A cyclic trial reuses bodies (for the bare baseline, which
// stores nothing).
func closedLoop(sim *portsim.Sim, url string, p pool, cyclic bool, conc int, dur time.Duration) tally {
	var next atomic.Int64
	parts := make([]tally, conc)
	start := time.Now()
	deadline := start.Add(dur)
	var wg sync.WaitGroup
	for w := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				i := int(next.Add(1) - 1)
				if i >= len(p.bodies) && !cyclic {
					return
				}
				i %= len(p.bodies)
				a := send(sim, url, p.bodies[i])
				a.portID = p.portIDs[i]
				parts[w].add(a)
			}
		}()
	}
	wg.Wait()
	var total tally
	total.elapsed = time.Since(start)
	for i := range parts {
		total.merge(&parts[i])
	}
	return total
}

// openLoop sends at a fixed rate on a schedule, without waiting for
// answers, and measures each request from its scheduled send time (so a
// stalled server or a late sender shows as latency). It also returns how
// late the sender was at worst.
func openLoop(sim *portsim.Sim, url string, p pool, perSecond int, dur time.Duration) (tally, time.Duration) {
	n := min(int(dur.Seconds()*float64(perSecond)), len(p.bodies))
	interval := time.Second / time.Duration(perSecond)
	results := make([]answer, n)
	var wg sync.WaitGroup
	start := time.Now().Add(10 * time.Millisecond)
	var worstLag time.Duration
	for i := range n {
		at := start.Add(time.Duration(i) * interval)
		if d := time.Until(at); d > 0 {
			time.Sleep(d)
		} else if -d > worstLag {
			worstLag = -d
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := send(sim, url, p.bodies[i])
			a.began, a.sent, a.portID = a.sent, at, p.portIDs[i] // latency from the schedule
			results[i] = a
		}()
	}
	wg.Wait()
	var total tally
	total.elapsed = time.Since(start)
	for _, a := range results {
		total.add(a)
	}
	return total, worstLag
}

// bareServer is the baseline process (test/load/bare).
type bareServer struct {
	URL string
	cmd *exec.Cmd
}

func startBare(t *testing.T) *bareServer {
	t.Helper()
	cmd := exec.Command(bareBin)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addr, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		_ = cmd.Process.Kill()
		t.Fatalf("bare server: %v", err)
	}
	b := &bareServer{URL: "http://" + strings.TrimSpace(addr), cmd: cmd}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	return b
}
