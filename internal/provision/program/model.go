package program

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/paved-idp/paved/internal/provision/spec"
	"github.com/paved-idp/paved/internal/run"
)

// ReadRequest reads the PAVED_REQUEST file.
func ReadRequest(path string) (run.PipelineRequest, error) {
	var req run.PipelineRequest
	b, err := os.ReadFile(path)
	if err != nil {
		return req, fmt.Errorf("read request: %w", err)
	}
	if err := json.Unmarshal(b, &req); err != nil {
		return req, fmt.Errorf("decode request %s: %w", path, err)
	}
	return req, nil
}

// ReadModel reads the previous model: the output of
// `pulumi stack output pavedModel --json`. A missing or empty file, or
// "null", means the stack has no service yet.
func ReadModel(path string) (*spec.Service, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read model: %w", err)
	}
	b = bytes.TrimSpace(b)
	if len(b) == 0 || string(b) == "null" || string(b) == "{}" {
		return nil, nil
	}
	var m spec.Service
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("decode model %s: %w", path, err)
	}
	return &m, nil
}

// modelOutput exports the model as a plain object, so the next run reads
// it back with `pulumi stack output pavedModel --json`.
func modelOutput(m *spec.Service) pulumi.Output {
	b, _ := json.Marshal(m) // a spec.Service always marshals
	var v map[string]any
	_ = json.Unmarshal(b, &v)
	return pulumi.ToMap(v).ToMapOutput()
}
