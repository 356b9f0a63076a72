package naming

import (
	"strconv"
	"testing"
	"time"
)

func TestRunIDOfName(t *testing.T) {
	for name, want := range map[string]string{
		PipelineName("r_1"): "r_1", "paved r_0123456789abcdef0123": "r_0123456789abcdef0123",
		"": "", "paved": "", "paved ": "", "paved  r_1": "", "Paved r_1": "", "deploy r_1": "", "pavedr_1": "",
	} {
		got, ok := RunIDOfName(name)
		if got != want || ok != (want != "") {
			t.Errorf("RunIDOfName(%q) = %q, %v; want %q", name, got, ok, want)
		}
	}
}

func TestNamingsAreBounded(t *testing.T) {
	var s Seen
	now := time.Now()
	for i := 0; i < maxRefs+50; i++ {
		s.Observe("p", "ref-"+strconv.Itoa(i), int64(i+1), PipelineName("r_1"), now)
	}
	if n := len(s.refs); n != maxRefs {
		t.Fatalf("%d namings, want at most %d", n, maxRefs)
	}
	if !s.NamesRuns("p", "ref-"+strconv.Itoa(maxRefs+49), now) {
		t.Error("the latest naming was evicted")
	}
}
