// Package program is the provisioning program's logic: it turns a pipeline
// request and the stack's previous model into a judged plan, then deploys
// the plan's components and exports their outputs for paved.
package program

import (
	"errors"
	"fmt"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/paved-idp/paved/internal/provision/aws"
	"github.com/paved-idp/paved/internal/provision/k8s"
	"github.com/paved-idp/paved/internal/provision/platform"
	"github.com/paved-idp/paved/internal/provision/res"
	"github.com/paved-idp/paved/internal/provision/rules"
	"github.com/paved-idp/paved/internal/provision/spec"
	"github.com/paved-idp/paved/internal/run"
)

// ModelOutput is the stack output that carries the model to the next run.
const ModelOutput = "pavedModel"

// Plan is a judged model for its target: deploying it breaks no rule.
type Plan struct {
	Model  *spec.Service
	Target platform.Target
}

// NewPlan applies the request to the previous model (nil for a new
// service), resolves the target and runs the request rules. Nothing is
// registered; a refused request fails here with the rules it breaks.
func NewPlan(cfg *platform.Config, prev *spec.Service, req run.PipelineRequest) (*Plan, error) {
	if req.Operation == run.Delete {
		return nil, errors.New("a DELETE operation destroys the stack (pulumi destroy); there is nothing to plan")
	}
	m, err := spec.Apply(prev, req)
	if err != nil {
		return nil, fmt.Errorf("run %s: %w", req.RunID, err)
	}
	t, err := cfg.Resolve(m.Tenant, m.Environment, m.Name, m.Team, m.Tenancy)
	if err != nil {
		return nil, fmt.Errorf("run %s: %w", req.RunID, err)
	}
	m.Tenancy = t.Tenancy // record the tenant default the service got
	if err := rules.CheckModel(m, t); err != nil {
		return nil, fmt.Errorf("run %s refused: %w", req.RunID, err)
	}
	return &Plan{Model: m, Target: t}, nil
}

// Deploy registers the plan's components on ctx and exports the outputs
// paved writes to the portal entity. The stack must be the target's.
func Deploy(ctx *pulumi.Context, cfg *platform.Config, p *Plan) error {
	t, m := p.Target, p.Model
	if ctx.Stack() != t.StackName() {
		return fmt.Errorf("stack %q selected, but the request is for stack %q", ctx.Stack(), t.StackName())
	}
	s := res.Scope{Ctx: ctx, Target: t, Providers: cfg.Providers}
	// The typed args follow the SDK's schema; a plugin of another release
	// may not know a property. Said, not refused: a patch release apart
	// is usually fine, and the pin is the platform team's call.
	for _, w := range res.PinMismatches(cfg.Providers) {
		if err := ctx.Log.Warn(w, nil); err != nil {
			return fmt.Errorf("log: %w", err)
		}
	}
	key, err := aws.NewKey(s)
	if err != nil {
		return fmt.Errorf("key: %w", err)
	}
	repo, err := aws.NewRepository(s, key)
	if err != nil {
		return fmt.Errorf("repository: %w", err)
	}
	grants := []aws.Grant{key.Grant()}
	env := map[string]pulumi.StringInput{
		"AWS_REGION":        pulumi.String(t.Region),
		"PAVED_TENANT":      pulumi.String(t.Tenant.Name),
		"PAVED_ENVIRONMENT": pulumi.String(t.Environment.Name),
		"PAVED_SERVICE":     pulumi.String(t.Service),
	}
	outs := newExports()
	for _, q := range m.Queues {
		r, err := aws.NewQueue(s, key, q)
		if err != nil {
			return fmt.Errorf("queue %s: %w", q.Name, err)
		}
		grants = append(grants, r.Grant)
		env[envName("QUEUE", q.Name, "URL")] = r.URL
		outs.add("queues", q.Name, pulumi.Map{"url": r.URL, "arn": r.Arn, "dlqUrl": r.DLQURL, "dlqArn": r.DLQArn})
	}
	for _, tp := range m.Topics {
		r, err := aws.NewTopic(s, key, tp)
		if err != nil {
			return fmt.Errorf("topic %s: %w", tp.Name, err)
		}
		grants = append(grants, r.Grant)
		env[envName("TOPIC", tp.Name, "ARN")] = r.Arn
		outs.add("topics", tp.Name, pulumi.Map{"arn": r.Arn})
	}
	for _, b := range m.Buckets {
		r, err := aws.NewBucket(s, key, b)
		if err != nil {
			return fmt.Errorf("bucket %s: %w", b.Name, err)
		}
		grants = append(grants, r.Grants...)
		env[envName("BUCKET", b.Name, "NAME")] = r.Name
		outs.add("buckets", b.Name, pulumi.Map{"name": r.Name, "arn": r.Arn})
	}
	for _, tb := range m.Tables {
		r, err := aws.NewTable(s, key, tb)
		if err != nil {
			return fmt.Errorf("table %s: %w", tb.Name, err)
		}
		grants = append(grants, r.Grant)
		env[envName("TABLE", tb.Name, "NAME")] = r.Name
		outs.add("tables", tb.Name, pulumi.Map{"name": r.Name, "arn": r.Arn})
	}
	for _, d := range m.Databases {
		r, err := aws.NewDatabase(s, key, d)
		if err != nil {
			return fmt.Errorf("database %s: %w", d.Name, err)
		}
		grants = append(grants, r.Grant)
		env[envName("DATABASE", d.Name, "ENDPOINT")] = r.Endpoint
		outs.add("databases", d.Name, pulumi.Map{
			"arn": r.Arn, "endpoint": r.Endpoint, "readerEndpoint": r.ReaderEndpoint, "port": pulumi.Int(r.Port),
		})
	}
	for _, sc := range m.Secrets {
		r, err := aws.NewSecret(s, key, sc)
		if err != nil {
			return fmt.Errorf("secret %s: %w", sc.Name, err)
		}
		grants = append(grants, r.Grant)
		env[envName("SECRET", sc.Name, "ARN")] = r.Arn
		outs.add("secrets", sc.Name, pulumi.Map{"arn": r.Arn})
	}
	role, err := aws.NewRole(s, grants)
	if err != nil {
		return fmt.Errorf("role: %w", err)
	}
	if m.Cache {
		env["CACHE_URL"] = pulumi.String("redis://" + t.Service + "-cache:6379")
	}
	image := pulumi.StringInput(pulumi.String(cfg.BootstrapImage))
	if m.Workload.Image != "" {
		// A tag from the service's own repository; images from elsewhere
		// do not pass: the repository is scanned, the world is not.
		tag := m.Workload.Image
		image = repo.URL.ApplyT(func(u string) string { return u + ":" + tag }).(pulumi.StringOutput)
	}
	svc, err := k8s.NewMicroservice(s, k8s.Args{
		Workload: m.Workload, Cache: m.Cache, Image: image, RoleArn: role.Arn, Env: env,
		StorageClass: t.Environment.StorageClass,
	})
	if err != nil {
		return err
	}
	ctx.Export("stack", pulumi.String(t.StackName()))
	ctx.Export("region", pulumi.String(t.Region))
	ctx.Export("namespace", pulumi.String(svc.Namespace))
	ctx.Export("url", pulumi.String(svc.URL))
	ctx.Export("roleArn", role.Arn)
	ctx.Export("repositoryUrl", repo.URL)
	ctx.Export("kmsKeyArn", key.Arn)
	for kind, m := range outs {
		ctx.Export(kind, m)
	}
	ctx.Export(ModelOutput, modelOutput(m))
	return nil
}

// exports groups outputs by kind and resource name.
type exports map[string]pulumi.Map

func newExports() exports { return exports{} }

func (e exports) add(kind, name string, v pulumi.Map) {
	if e[kind] == nil {
		e[kind] = pulumi.Map{}
	}
	e[kind][name] = v
}

// envName is QUEUE_ORDERS_IN_URL for queue "orders-in".
func envName(kind, name, what string) string {
	return kind + "_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_")) + "_" + what
}
