package res

import (
	"encoding/json"
	"fmt"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// JSON renders a document that needs the values of some outputs (ARNs,
// URLs) once they are known. The build function gets the resolved values
// in order. It is used instead of pulumi.JSONMarshal because that cannot
// marshal unknowns nested in a document during a preview.
func JSON(build func(v []string) any, outs ...pulumi.StringInput) pulumi.StringOutput {
	ins := make([]any, len(outs))
	for i, o := range outs {
		ins[i] = o
	}
	return pulumi.All(ins...).ApplyT(func(vs []any) (string, error) {
		strs := make([]string, len(vs))
		for i, v := range vs {
			strs[i], _ = v.(string)
		}
		b, err := json.Marshal(build(strs))
		if err != nil {
			return "", fmt.Errorf("render JSON document: %w", err)
		}
		return string(b), nil
	}).(pulumi.StringOutput)
}

// Statement is one IAM policy statement; Policy wraps statements in the
// 2012-10-17 policy language envelope.
type Statement struct {
	Sid       string         `json:"Sid,omitempty"`
	Effect    string         `json:"Effect"`
	Principal any            `json:"Principal,omitempty"`
	Action    []string       `json:"Action"`
	Resource  []string       `json:"Resource,omitempty"`
	Condition map[string]any `json:"Condition,omitempty"`
}

// Policy is an IAM policy document.
func Policy(st ...Statement) map[string]any {
	return map[string]any{"Version": "2012-10-17", "Statement": st}
}
