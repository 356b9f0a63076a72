package inputschema

import "testing"

func TestCheckTypes(t *testing.T) {
	got := CheckTypes(map[string]any{"properties": map[string]any{
		"a": map[string]any{"type": "integr"},
		"b": map[string]any{"type": []any{"string", "null"}},
		"c": map[string]any{"type": float64(3)},
		"d": map[string]any{},
	}})
	if len(got) != 2 || got[0].Input != "a" || got[0].Msg != "unknown type integr; use one of array, boolean, integer, null, number, object, string" ||
		got[1].Input != "c" || got[1].Msg != "must be a type name or a list of them, got 3" {
		t.Errorf("CheckTypes = %+v", got)
	}
}
