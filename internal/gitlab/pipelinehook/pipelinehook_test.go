package pipelinehook

import (
	"errors"
	"net/http"
	"os"
	"testing"
)

func TestDecode(t *testing.T) {
	sample, err := os.ReadFile("testdata/pipeline_hook.json")
	if err != nil {
		t.Fatal(err)
	}
	good := http.Header{"X-Gitlab-Token": {"s3cret"}, "X-Gitlab-Event": {"Pipeline Hook"}}
	tests := []struct {
		name    string
		header  http.Header
		body    string
		secret  string
		wantErr error
	}{
		{"docs sample", good, string(sample), "s3cret", nil},
		{"bad token", http.Header{"X-Gitlab-Token": {"guess"}, "X-Gitlab-Event": {"Pipeline Hook"}}, string(sample), "s3cret", ErrUnauthorized},
		{"missing token", http.Header{"X-Gitlab-Event": {"Pipeline Hook"}}, string(sample), "s3cret", ErrUnauthorized},
		{"empty secret refuses", http.Header{"X-Gitlab-Event": {"Pipeline Hook"}}, string(sample), "", ErrUnauthorized},
		{"wrong event header", http.Header{"X-Gitlab-Token": {"s3cret"}, "X-Gitlab-Event": {"Job Hook"}}, string(sample), "s3cret", ErrNotPipelineHook},
		{"wrong object kind", good, `{"object_kind":"build","object_attributes":{"id":1,"status":"success"}}`, "s3cret", ErrNotPipelineHook},
		{"malformed", good, `{"object_kind":`, "s3cret", errMalformedPayload},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := Decode(tt.header, []byte(tt.body), tt.secret)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr != nil {
				return
			}
			if ev.PipelineID != 31 || ev.ProjectID != 1 || ev.ProjectPath != "gitlab-org/gitlab-test" ||
				ev.Name != "Pipeline for branch: master" || ev.Source != "merge_request_event" ||
				ev.Status != "success" || ev.Ref != "master" ||
				ev.URL != "http://example.com/gitlab-org/gitlab-test/-/pipelines/31" ||
				ev.Variables["NESTOR_PROD_ENVIRONMENT"] != "us-west-1" {
				t.Errorf("event %+v", ev)
			}
			if len(ev.Builds) != 5 || ev.Builds[2] != (Build{ID: 378, Name: "test-build", Stage: "test", Status: "failed", FailureReason: "script_failure"}) {
				t.Errorf("builds %+v", ev.Builds)
			}
		})
	}
}
