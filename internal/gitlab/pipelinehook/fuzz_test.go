package pipelinehook

import (
	"net/http"
	"os"
	"testing"
)

func FuzzDecode(f *testing.F) {
	if sample, err := os.ReadFile("testdata/pipeline_hook.json"); err == nil {
		f.Add(sample)
	}
	f.Add([]byte(`{"object_kind":"pipeline","object_attributes":{"id":1,"status":"success","variables":[{"key":"PAVED_RUN_ID","value":"r_1"}]}}`))
	f.Add([]byte(`{"object_kind":"push"}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, body []byte) {
		h := http.Header{}
		h.Set("X-Gitlab-Event", "Pipeline Hook")
		h.Set("X-Gitlab-Token", "secret")
		ev, err := Decode(h, body, "secret")
		if err == nil && ev.PipelineID < 0 {
			t.Fatalf("negative pipeline id accepted: %d", ev.PipelineID)
		}
		h.Set("X-Gitlab-Token", "other")
		if _, err := Decode(h, body, "secret"); err == nil {
			t.Fatal("decoded with a wrong token")
		}
	})
}
