package webhook

import (
	"reflect"
	"strings"
	"testing"

	"github.com/paved-idp/paved/internal/run"
)

// TestDecodeRenderedBody: the body paved renders into its Port actions
// (internal/render) decodes into the same request as Port's legacy default
// body for the same run. Each *_rendered.json is what that body template
// yields from the run's trigger data (internal/render's tests check that it
// is exactly that), each legacy fixture the default body Port sent for it.
func TestDecodeRenderedBody(t *testing.T) {
	for _, tt := range []struct{ legacy, rendered string }{
		{"day2_default.json", "day2_rendered.json"},
		{"create_no_entity.json", "create_rendered.json"},
	} {
		t.Run(tt.rendered, func(t *testing.T) {
			want, err := Decode(readSample(t, tt.legacy))
			if err != nil {
				t.Fatalf("legacy body: %v", err)
			}
			got, err := Decode(readSample(t, tt.rendered))
			if err != nil {
				t.Fatalf("rendered body: %v", err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("rendered body decodes to\n%+v\nthe legacy body to\n%+v", got, want)
			}
		})
	}
}

// TestDecodeEntityWithoutBlueprint: an entity from trigger data that leaves
// its blueprint out takes the action's (context.blueprint).
func TestDecodeEntityWithoutBlueprint(t *testing.T) {
	body := strings.Replace(string(readSample(t, "day2_rendered.json")), `"blueprint": "service",
      "team"`, `"team"`, 1)
	if !strings.Contains(string(readSample(t, "day2_rendered.json")), `"blueprint": "service",
      "team"`) {
		t.Fatal("fixture changed: no entity blueprint to remove")
	}
	inv, err := Decode([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if inv.Request.Entity.Blueprint != "service" || inv.Operation != run.Day2 {
		t.Fatalf("entity %+v, operation %s", inv.Request.Entity, inv.Operation)
	}
}
