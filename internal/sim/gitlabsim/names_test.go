package gitlabsim

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
)

func TestExpandName(t *testing.T) {
	vars := map[string]string{"PAVED_RUN_ID": "r_1", "EMPTY": "", "NESTED": "run $PAVED_RUN_ID",
		"ESCAPED": "cost $$5"}
	tests := []struct{ template, want string }{
		{DefaultWorkflowName, "paved r_1"},
		{"paved ${PAVED_RUN_ID}", "paved r_1"},
		{"paved %PAVED_RUN_ID%", "paved r_1"},
		{"  paved $PAVED_RUN_ID  ", "paved r_1"}, // surrounding spaces stripped
		{"paved $UNKNOWN", "paved"},              // unknown variables become nothing
		{"$EMPTY", ""},                           // an empty name is no name
		{"   ", ""},
		{"$NESTED!", "run r_1!"}, // values referring to variables are expanded
		{"$ESCAPED", "cost $$5"}, // ...but $$ in a value is an escape
		{"paved $PAVED_RUN_IDX", "paved"},
	}
	for _, tt := range tests {
		if got := ExpandName(tt.template, vars); got != tt.want {
			t.Errorf("ExpandName(%q) = %q, want %q", tt.template, got, tt.want)
		}
	}
	// A reference cycle anywhere leaves every value unexpanded.
	if got := ExpandName("$NESTED", map[string]string{"NESTED": "run $PAVED_RUN_ID", "PAVED_RUN_ID": "r_1", "A": "$B", "B": "$A"}); got != "run $PAVED_RUN_ID" {
		t.Errorf("with a cycle: %q", got)
	}
}

// TestPipelineNames: pipelines are named from their project's workflow:name
// and the name shows where GitLab shows it: the list and GET answers and
// the hook, but not the create answer.
func TestPipelineNames(t *testing.T) {
	sim, srv := start(t, Config{Decide: slow, Projects: []Project{
		{ID: 1, Path: "platform/paved-provision"}, // the default: paved's component
		{ID: 2, Path: "team/custom", WorkflowName: "$CI_PROJECT_PATH on $CI_COMMIT_REF_NAME for ${PAVED_RUN_ID}"},
		{ID: 3, Path: "team/plain", NoWorkflowName: true}, // no workflow:name
	}})
	base := srv.URL + "/api/v4/projects/"
	body := `{"ref":"main","variables":[{"key":"PAVED_RUN_ID","value":"r_7"}]}`
	tests := []struct {
		project string
		want    any
	}{
		{"1", "paved r_7"},
		{"2", "team/custom on main for r_7"},
		{"3", nil},
	}
	for _, tt := range tests {
		t.Run(tt.project, func(t *testing.T) {
			resp, b := do(t, http.MethodPost, base+tt.project+"/pipeline", token, "application/json", body)
			if resp.StatusCode != 201 {
				t.Fatalf("create: %d %s", resp.StatusCode, b)
			}
			created := decode[map[string]any](t, b)
			if _, ok := created["name"]; ok {
				t.Errorf("create answer has a name: %v", created["name"])
			}
			if created["project_id"] == nil || created["source"] != "api" {
				t.Errorf("create answer project_id/source = %v/%v", created["project_id"], created["source"])
			}
			id := createdID(t, b)
			_, b = do(t, http.MethodGet, base+tt.project+"/pipelines/"+itoa(id), token, "", "")
			got := decode[map[string]any](t, b)
			if v, ok := got["name"]; !ok || v != tt.want || got["source"] != "api" || got["project_id"] != created["project_id"] {
				t.Errorf("GET name/source/project_id = %v/%v/%v, want %v/api/%v", got["name"], got["source"], got["project_id"], tt.want, created["project_id"])
			}
			_, b = do(t, http.MethodGet, base+tt.project+"/pipelines", token, "", "")
			list := decode[[]map[string]any](t, b)
			if len(list) != 1 || list[0]["name"] != tt.want || list[0]["source"] != "api" || list[0]["project_id"] != created["project_id"] {
				t.Errorf("list %v", list)
			}
			p, _ := sim.Pipeline(id)
			if want, _ := tt.want.(string); p.Name != want {
				t.Errorf("recorded name %q, want %q", p.Name, want)
			}
		})
	}
}

func TestNameFilterAndDefaults(t *testing.T) {
	sim, srv := start(t, Config{Decide: slow})
	base := srv.URL + "/api/v4/projects/grp%2Fsvc/"
	for _, id := range []string{"r_1", "r_2", "r_1"} {
		resp, b := do(t, http.MethodPost, base+"pipeline", token, "application/json",
			`{"ref":"main","variables":[{"key":"PAVED_RUN_ID","value":"`+id+`"}]}`)
		if resp.StatusCode != 201 {
			t.Fatalf("create: %d %s", resp.StatusCode, b)
		}
	}
	all := sim.Pipelines()
	list := func(q string) []int64 {
		resp, b := do(t, http.MethodGet, base+"pipelines?"+q, token, "", "")
		if resp.StatusCode != 200 {
			t.Fatalf("list %s: %d %s", q, resp.StatusCode, b)
		}
		var ids []int64
		for _, m := range decode[[]map[string]any](t, b) {
			ids = append(ids, int64(m["id"].(float64)))
		}
		return ids
	}
	if got := list("name=" + url.QueryEscape("paved r_1") + "&source=api&ref=main&order_by=id&sort=asc"); !equal(got, []int64{all[0].ID, all[2].ID}) {
		t.Errorf("by name: %v", got)
	}
	if got := list("name=" + url.QueryEscape("paved r")); got != nil {
		t.Errorf("the name filter is exact, got %v", got)
	}
	if got := list("name=" + url.QueryEscape("paved r_2") + "&ref=dev"); got != nil {
		t.Errorf("name on another ref: %v", got)
	}

	for q, msg := range map[string]string{
		"source=nope":      "source does not have a valid value",
		"status=passed":    "status does not have a valid value",
		"scope=all":        "scope does not have a valid value",
		"order_by=created": "order_by does not have a valid value",
		"sort=up":          "sort does not have a valid value",
		"yaml_errors=nah":  "yaml_errors is invalid",
		"created_after=x":  "created_after is invalid",
	} {
		resp, b := do(t, http.MethodGet, base+"pipelines?"+q, token, "", "")
		if resp.StatusCode != 400 || decode[map[string]string](t, b)["error"] != msg {
			t.Errorf("%s: %d %s, want 400 %q", q, resp.StatusCode, b, msg)
		}
	}
}

func TestTooLongNameFailsTheCreate(t *testing.T) {
	sim, srv := start(t, Config{Decide: slow})
	long := strings.Repeat("x", 250)
	resp, b := do(t, http.MethodPost, srv.URL+"/api/v4/projects/5/pipeline", token, "application/json",
		`{"ref":"main","variables":[{"key":"PAVED_RUN_ID","value":"`+long+`"}]}`)
	if resp.StatusCode != 400 || !strings.Contains(string(b), "Name is too long (maximum is 255 characters)") {
		t.Fatalf("got %d %s", resp.StatusCode, b)
	}
	if n := len(sim.Pipelines()); n != 0 {
		t.Errorf("%d pipelines saved", n)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
