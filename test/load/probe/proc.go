// Package probe is what the load harness reads from the machine and from
// paved: a process's CPU and memory from /proc, paved's own latency
// histogram from /metrics, and the busy box (spinning neighbours, the
// generator's threads raised above them).
package probe

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Status reads VmRSS and VmHWM (in MiB) of a process.
func Status(pid int) (rss, hwm float64, err error) {
	m, err := Memory(pid)
	return m["VmRSS"], m["VmHWM"], err
}

// Memory reads the memory lines of a process's /proc status, in MiB:
// VmRSS, VmHWM, and VmRSS's parts RssAnon (the process's own memory: heap,
// stacks) and RssFile (pages of its executable and other mapped files,
// shared with the page cache).
func Memory(pid int) (map[string]float64, error) {
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

// CPU is the CPU time (user + system, every thread) a process has used,
// from /proc/PID/stat; pid 0 is this process. The kernel counts it in
// clock ticks (USER_HZ, 100 a second on Linux): 10 ms resolution, plenty
// for trials of seconds.
func CPU(pid int) (time.Duration, error) {
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

// Meter measures the CPU processes use over a stretch of time.
type Meter struct {
	pids  []int
	start []time.Duration
}

// MeterCPU starts measuring the CPU of pids (0 is this process).
func MeterCPU(t testing.TB, pids ...int) *Meter {
	m := &Meter{pids: pids}
	for _, pid := range pids {
		c, err := CPU(pid)
		if err != nil {
			t.Fatalf("read CPU time: %v", err)
		}
		m.start = append(m.start, c)
	}
	return m
}

// Used is each process's CPU since MeterCPU, in the order given.
func (m *Meter) Used(t testing.TB) []time.Duration {
	out := make([]time.Duration, len(m.pids))
	for i, pid := range m.pids {
		c, err := CPU(pid)
		if err != nil {
			t.Fatalf("read CPU time: %v", err)
		}
		out[i] = c - m.start[i]
	}
	return out
}
