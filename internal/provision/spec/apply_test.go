package spec

import (
	"errors"
	"testing"

	"github.com/paved-idp/paved/internal/run"
)

var st = run.Stack{Tenant: "acme", Environment: "dev", Service: "orders"}

func TestApply(t *testing.T) {
	s, err := Apply(nil, run.PipelineRequest{Action: ActionCreateService, Stack: st, Team: "payments",
		Inputs: map[string]any{"name": "orders", "replicas": "2", "tenancy": "multi"}})
	if err != nil {
		t.Fatal(err)
	}
	if s.Workload.Kind != Deployment || s.Workload.Replicas != 2 || s.Tenancy != "multi" || s.Team != "payments" {
		t.Fatalf("service = %+v", s)
	}
	add := run.PipelineRequest{Action: ActionAddQueue, Stack: st, Inputs: map[string]any{"queueName": "jobs", "fifo": true}}
	s2, err := Apply(s, add)
	if err != nil {
		t.Fatal(err)
	}
	s3, err := Apply(s2, add) // a repeated run changes nothing
	if err != nil || len(s3.Queues) != 1 || !s3.Queues[0].FIFO || s3.Queues[0].MaxReceiveCount != 5 {
		t.Fatalf("queues = %+v, %v", s3.Queues, err)
	}
	if len(s.Queues) != 0 {
		t.Fatal("Apply modified its input")
	}
	s4, err := Apply(s3, run.PipelineRequest{Action: ActionRemove, Stack: st, Inputs: map[string]any{"kind": "queue", "name": "jobs"}})
	if err != nil || len(s4.Queues) != 0 {
		t.Fatalf("remove: %+v, %v", s4.Queues, err)
	}
}

func TestApplyRefuses(t *testing.T) {
	cases := map[string]struct {
		prev *Service
		req  run.PipelineRequest
	}{
		"resource before service": {nil, run.PipelineRequest{Action: ActionAddBucket, Stack: st}},
		"other tenant in inputs": {nil, run.PipelineRequest{Action: ActionCreateService, Stack: st, Team: "t",
			Inputs: map[string]any{"tenant": "globex"}}},
		"bad number":     {&Service{Name: "orders", Tenant: "acme", Environment: "dev"}, run.PipelineRequest{Action: ActionAddQueue, Stack: st, Inputs: map[string]any{"maxReceiveCount": "many"}}},
		"unknown action": {&Service{Name: "orders", Tenant: "acme", Environment: "dev"}, run.PipelineRequest{Action: "launch-rocket", Stack: st}},
		"foreign model":  {&Service{Name: "billing", Tenant: "acme", Environment: "dev"}, run.PipelineRequest{Action: ActionAddCache, Stack: st}},
	}
	for name, c := range cases {
		if _, err := Apply(c.prev, c.req); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := Apply(nil, run.PipelineRequest{Action: ActionAddBucket, Stack: st}); !errors.Is(err, ErrNoService) {
		t.Errorf("err = %v", err)
	}
}
