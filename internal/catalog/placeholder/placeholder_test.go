package placeholder

import (
	"slices"
	"testing"

	"github.com/paved-idp/paved/internal/run"
)

func TestOutputPaths(t *testing.T) {
	r := &run.Run{Request: run.Request{Inputs: map[string]any{"q": "orders", "n": float64(3)}},
		Outputs: map[string]any{"url": "u", "queues": map[string]any{"orders": map[string]any{"arn": "a"}, "3": "three"}}}
	tests := []struct {
		ref  string
		want any
		ok   bool
	}{
		{"outputs.url", "u", true},
		{"outputs.queues[inputs.q].arn", "a", true},
		{"outputs.queues[inputs.n]", "three", true},
		{"outputs.queues[inputs.missing].arn", nil, false},
		{"outputs.queues[inputs.q].nope", nil, false},
		{"outputs.url.deeper", nil, false},
	}
	for _, tt := range tests {
		got, ok := outputAt(r, tt.ref)
		if ok != tt.ok || got != tt.want {
			t.Errorf("%s = %v, %v; want %v, %v", tt.ref, got, ok, tt.want, tt.ok)
		}
	}
}

func TestPathInputs(t *testing.T) {
	if got := PathInputs("outputs.a[inputs.x].b[inputs.y]"); !slices.Equal(got, []string{"x", "y"}) {
		t.Errorf("PathInputs = %v", got)
	}
	if got := PathInputs("outputs.a.b"); got != nil {
		t.Errorf("PathInputs without inputs = %v", got)
	}
}

func TestWhole(t *testing.T) {
	for tmpl, want := range map[string]string{"${inputs.a}": "inputs.a", "${a}-${b}": "", "x${a}": "", "${a}x": "", "plain": ""} {
		if ref, ok := Whole(tmpl); ref != want || ok != (want != "") {
			t.Errorf("Whole(%q) = %q, %v", tmpl, ref, ok)
		}
	}
}
