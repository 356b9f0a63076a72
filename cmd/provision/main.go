// Command provision is the Pulumi program the provisioning pipeline runs
// (deploy/pulumi/Pulumi.yaml). It reads the run's request from the file
// named by PAVED_REQUEST, the stack's previous model from PAVED_MODEL and
// the platform from PAVED_PLATFORM_CONFIG, judges the request against the
// platform rules before registering anything, and deploys the service's
// whole model to the stack <tenant>-<environment>-<service>.
//
// `provision check` does the judging only and prints the new model; the
// pipeline runs it before `pulumi preview` so a refused request fails fast
// with the rules it breaks.
//
// Built with -tags provisionmocks (tests only), the binary runs the program
// against Pulumi's mock engine instead of a real one and prints what it
// registered; see mocks.go.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/paved-idp/paved/internal/provision/platform"
	"github.com/paved-idp/paved/internal/provision/program"
)

func main() {
	cfg, plan, err := load(os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, "provision:", err)
		os.Exit(1)
	}
	if len(os.Args) > 1 && os.Args[1] == "check" {
		if err := printModel(os.Stdout, plan); err != nil {
			fmt.Fprintln(os.Stderr, "provision:", err)
			os.Exit(1)
		}
		return
	}
	deploy(cfg, plan)
}

// deploy runs the program under the Pulumi engine that started the binary;
// the mock build replaces it.
var deploy = func(cfg *platform.Config, plan *program.Plan) {
	pulumi.Run(func(ctx *pulumi.Context) error { return program.Deploy(ctx, cfg, plan) })
}

// load reads the platform, the request and the previous model, and plans.
func load(getenv func(string) string) (*platform.Config, *program.Plan, error) {
	path := getenv("PAVED_PLATFORM_CONFIG")
	if path == "" {
		path = platform.DefaultPath
	}
	cfg, err := platform.Load(path)
	if err != nil {
		return nil, nil, err
	}
	reqPath := getenv("PAVED_REQUEST")
	if reqPath == "" {
		return nil, nil, fmt.Errorf("PAVED_REQUEST is not set (the pipeline passes the request as a file variable)")
	}
	req, err := program.ReadRequest(reqPath)
	if err != nil {
		return nil, nil, err
	}
	prev, err := program.ReadModel(getenv("PAVED_MODEL"))
	if err != nil {
		return nil, nil, err
	}
	plan, err := program.NewPlan(cfg, prev, req)
	if err != nil {
		return nil, nil, err
	}
	return cfg, plan, nil
}

func printModel(w io.Writer, p *program.Plan) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(map[string]any{"stack": p.Target.StackName(), "model": p.Model}); err != nil {
		return fmt.Errorf("print model: %w", err)
	}
	return nil
}
