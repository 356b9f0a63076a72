//go:build provisionmocks

package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/paved-idp/paved/internal/provision/platform"
	"github.com/paved-idp/paved/internal/provision/program"
	"github.com/paved-idp/paved/internal/provision/provisiontest"
	"github.com/paved-idp/paved/internal/provision/rules/audit"
)

// Report is what the mock build prints on stdout after a run: the
// resources registered (as the mock monitor received them), the resource
// rules they break, what lacks the platform's stamp, and the model the
// next run reads back.
type Report struct {
	Stack      string                     `json:"stack"`
	Resources  []provisiontest.Registered `json:"resources"`
	Violations []string                   `json:"violations"`
	Unstamped  []string                   `json:"unstamped"`
	Model      any                        `json:"model"`
}

// The mock build exists so a test can run the real binary on a real
// request: pulumi.Run needs the engine's monitor, which no test has. The
// stack comes from PAVED_STACK, as the pipeline selects it, so the
// program's own stack check still runs.
func init() {
	deploy = func(cfg *platform.Config, plan *program.Plan) {
		m, err := provisiontest.RunMocked("paved-provision", os.Getenv("PAVED_STACK"), func(ctx *pulumi.Context) error {
			return program.Deploy(ctx, cfg, plan)
		})
		if err != nil {
			fmt.Fprintln(os.Stderr, "provision:", err)
			os.Exit(1)
		}
		r := Report{Stack: plan.Target.StackName(), Resources: m.Registered(), Model: plan.Model,
			Unstamped: provisiontest.StampProblems(m, plan.Target, cfg.Providers)}
		for _, v := range audit.Check(plan.Target, m.Resources()) {
			r.Violations = append(r.Violations, v.Error())
		}
		if err := json.NewEncoder(os.Stdout).Encode(r); err != nil {
			fmt.Fprintln(os.Stderr, "provision: report:", err)
			os.Exit(1)
		}
	}
}
