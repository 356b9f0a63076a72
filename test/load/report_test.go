package load

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
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

func usec(v float64) string { return strconv.FormatFloat(v, 'f', 0, 64) + " µs" }
