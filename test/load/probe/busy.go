package probe

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// A busy box, made by the harness so that anyone can re-run it:
// PAVED_LOAD_BUSY=N starts N processes that spin for the whole run, at
// the default priority, beside paved (the neighbours of a shared machine).

// StartNeighbours starts n spinning processes at nice 0 and stops them when
// t ends.
func StartNeighbours(t testing.TB, n int) {
	for range n {
		cmd := exec.Command("sh", "-c", "while :; do :; done")
		if err := cmd.Start(); err != nil {
			t.Fatalf("start a busy neighbour: %v", err)
		}
		_ = syscall.Setpriority(syscall.PRIO_PROCESS, cmd.Process.Pid, 0)
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	}
}

// BusyNeighbours reads PAVED_LOAD_BUSY: how many neighbours to start.
func BusyNeighbours(t testing.TB) int {
	v := os.Getenv("PAVED_LOAD_BUSY")
	if v == "" {
		return 0
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		t.Fatalf("PAVED_LOAD_BUSY=%q: want a number of spinning processes", v)
	}
	return n
}

// ProtectGenerator raises this process's threads (the load generator and
// the simulators) to nice -10 for an open-loop trial, so that on a busy box
// the sender keeps its schedule and the latency measured is paved's, not
// the instrument's. Linux nice is per thread; threads started later inherit
// it from the thread that starts them. PAVED_LOAD_PROTECT=0 leaves the
// generator at its priority (as rounds one to nine measured). It returns
// what it did and the function that puts every thread back.
func ProtectGenerator() (string, func()) {
	if os.Getenv("PAVED_LOAD_PROTECT") == "0" {
		return "generator not protected (PAVED_LOAD_PROTECT=0)", func() {}
	}
	before := map[int]int{}
	for _, tid := range threads() {
		nice, err := threadNice(tid)
		if err != nil {
			continue // the thread has ended
		}
		err = syscall.Setpriority(syscall.PRIO_PROCESS, tid, -10)
		if err == syscall.ESRCH {
			continue // ended since it was read
		}
		before[tid] = nice
		if err != nil {
			for tid, nice := range before {
				_ = syscall.Setpriority(syscall.PRIO_PROCESS, tid, nice)
			}
			return fmt.Sprintf("generator not protected (%v: needs root or CAP_SYS_NICE)", err), func() {}
		}
	}
	return "generator at nice -10", func() {
		base := 0
		for _, nice := range before {
			base = nice
			break
		}
		for _, tid := range threads() {
			nice, ok := before[tid]
			if !ok {
				nice = base // started during the trial
			}
			_ = syscall.Setpriority(syscall.PRIO_PROCESS, tid, nice)
		}
	}
}

func threads() []int {
	ents, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return nil
	}
	var tids []int
	for _, e := range ents {
		if tid, err := strconv.Atoi(e.Name()); err == nil {
			tids = append(tids, tid)
		}
	}
	return tids
}

// threadNice reads a thread's nice value (field 19 of its stat).
func threadNice(tid int) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/self/task/%d/stat", tid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:]) // the name may hold spaces
	if len(fields) < 17 {
		return 0, fmt.Errorf("thread %d: short stat", tid)
	}
	return strconv.Atoi(fields[16])
}
