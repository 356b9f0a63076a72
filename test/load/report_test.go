package load

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	h "github.com/paved-idp/paved/test/harness"
)

// figure is one measured number beside its target.
type figure struct {
	scenario, name, value, target, verdict string
}

var (
	figMu   sync.Mutex
	figures []figure
)

// report records a figure and prints it at once, so a run that dies half
// way still shows what it measured.
func report(scenario, name, value, target, verdict string) {
	figMu.Lock()
	figures = append(figures, figure{scenario, name, value, target, verdict})
	figMu.Unlock()
	if target == "" {
		target = "-"
	}
	fmt.Printf("FIGURE %-9s | %-58s | %-34s | target %-14s %s\n", scenario, name, value, target, verdict)
}

// note prints a line of context that is not a figure.
func note(format string, args ...any) { fmt.Printf("NOTE   "+format+"\n", args...) }

func printSummary() {
	figMu.Lock()
	defer figMu.Unlock()
	if len(figures) == 0 {
		return
	}
	fmt.Println("\n== load figures (value: median [min–max] of the repeats unless the name says otherwise)")
	fmt.Printf("| %s | %s | %s | %s | %s |\n", "scenario", "figure", "value", "target", "verdict")
	fmt.Println("| --- | --- | --- | --- | --- |")
	for _, f := range figures {
		t := f.target
		if t == "" {
			t = "—"
		}
		fmt.Printf("| %s | %s | %s | %s | %s |\n", f.scenario, f.name, f.value, t, f.verdict)
	}
}

// verdict says whether a figure met its target ("met", "missed").
func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}

// spread is "median [min–max]" of vs, formatted by f.
func spread(vs []float64, f func(float64) string) string {
	if len(vs) == 0 {
		return "n/a"
	}
	if len(vs) == 1 {
		return f(vs[0]) + " (1 run)"
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	return fmt.Sprintf("%s [%s–%s]", f(median(s)), f(s[0]), f(s[len(s)-1]))
}

func median(vs []float64) float64 {
	if len(vs) == 0 {
		return 0
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func maxOf(vs []float64) float64 {
	if len(vs) == 0 {
		return 0
	}
	return slices.Max(vs)
}

// quantile is the nearest-rank q-quantile of ds (0 for none).
func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(q*float64(len(s))+0.999999) - 1
	return s[max(0, min(i, len(s)-1))]
}

func ms(v float64) string   { return strconv.FormatFloat(v, 'f', 1, 64) + " ms" }
func secs(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) + " s" }
func pct(v float64) string  { return strconv.FormatFloat(v, 'f', 2, 64) + " %" }
func rps(v float64) string  { return strconv.FormatFloat(v, 'f', 0, 64) + " req/s" }
func ratio(v float64) string {
	return strconv.FormatFloat(v, 'f', 2, 64)
}
func mib(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) + " MiB" }
func count(v float64) string {
	return strconv.FormatFloat(v, 'f', 0, 64)
}
func toMS(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// procStatus reads VmRSS and VmHWM (in MiB) of a process.
func procStatus(pid int) (rss, hwm float64, err error) {
	m, err := procMemory(pid)
	return m["VmRSS"], m["VmHWM"], err
}

// procMemory reads the memory lines of a process's /proc status, in MiB:
// VmRSS, VmHWM, and VmRSS's parts RssAnon (the process's own memory: heap,
// stacks) and RssFile (pages of its executable and other mapped files,
// shared with the page cache).
func procMemory(pid int) (map[string]float64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	m := map[string]float64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || (k != "VmRSS" && k != "VmHWM" && k != "RssAnon" && k != "RssFile") {
			continue
		}
		kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
		if err != nil {
			return nil, err
		}
		m[k] = kb / 1024
	}
	return m, sc.Err()
}

// printMachine prints what BENCHMARKS.md must state about the machine and
// the code measured.
func printMachine() {
	model := "unknown"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	mem := "unknown"
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
				mem = fmt.Sprintf("%.1f GiB", kb/1024/1024)
			}
		}
	}
	fmt.Printf("MACHINE nproc=%d cpu=%q ram=%s go=%s %s/%s\n", runtime.NumCPU(), model, mem, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	head := gitOut("rev-parse", "--short", "HEAD")
	dirty := gitOut("status", "--porcelain", "--untracked-files=all")
	var files []string
	for _, l := range strings.Split(dirty, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			files = append(files, l)
		}
	}
	state := "clean"
	if len(files) > 0 {
		state = "DIRTY: " + strings.Join(files, ", ")
	}
	fmt.Printf("COMMIT %s (tree %s); paved was built from this working tree\n", head, state)
}

func gitOut(args ...string) string {
	cmd := exec.Command("git", args...)
	cmd.Dir = h.RepoRoot()
	b, err := cmd.Output()
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	return strings.TrimSpace(string(b))
}

// procCPU is the CPU time (user + system, every thread) a process has used,
// from /proc/PID/stat; pid 0 is this process. The kernel counts it in
// clock ticks (USER_HZ, 100 a second on Linux): 10 ms resolution, plenty
// for trials of seconds.
func procCPU(pid int) (time.Duration, error) {
	path := "/proc/self/stat"
	if pid != 0 {
		path = fmt.Sprintf("/proc/%d/stat", pid)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces:
	// the fields after its closing one are space separated; utime and
	// stime are fields 14 and 15, the 12th and 13th after it.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, fmt.Errorf("%s: no command name", path)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("%s: %d fields after the command name", path, len(f))
	}
	var ticks int64
	for _, s := range f[11:13] {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", path, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * (time.Second / 100), nil
}

// cpuMeter measures the CPU processes use over a stretch of time.
type cpuMeter struct {
	pids  []int
	start []time.Duration
}

func meterCPU(t *testing.T, pids ...int) *cpuMeter {
	m := &cpuMeter{pids: pids}
	for _, pid := range pids {
		c, err := procCPU(pid)
		if err != nil {
			t.Fatalf("read CPU time: %v", err)
		}
		m.start = append(m.start, c)
	}
	return m
}

// used is each process's CPU since meterCPU, in the order given.
func (m *cpuMeter) used(t *testing.T) []time.Duration {
	out := make([]time.Duration, len(m.pids))
	for i, pid := range m.pids {
		c, err := procCPU(pid)
		if err != nil {
			t.Fatalf("read CPU time: %v", err)
		}
		out[i] = c - m.start[i]
	}
	return out
}

func usec(v float64) string { return strconv.FormatFloat(v, 'f', 0, 64) + " µs" }
