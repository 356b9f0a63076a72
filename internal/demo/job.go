package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/paved-idp/paved/internal/callback"
	"github.com/paved-idp/paved/internal/cost"
	"github.com/paved-idp/paved/internal/preview"
	"github.com/paved-idp/paved/internal/run"
	"github.com/paved-idp/paved/internal/sim/cloudsim"
	"github.com/paved-idp/paved/internal/sim/gitlabsim"
	"github.com/paved-idp/paved/internal/telemetry"
)

// ProvisionJob plays the provisioning pipeline's jobs against cloud, as
// deploy/gitlab's component does against AWS: it reads the variables paved
// passed, previews the stack (`pulumi preview --json`, read by the same
// code as `paved preview`), posts the preview and follows paved's verdict —
// applying only on "apply" — then posts log lines and stack outputs with the
// run's token through the client `paved report` uses. The queue named
// payment-events fails to apply, to show a failed run.
func ProvisionJob(hc *http.Client, cloud *cloudsim.Cloud) func(ctx context.Context, p gitlabsim.Pipeline) error {
	return func(ctx context.Context, p gitlabsim.Pipeline) error {
		v := func(k string) string { s, _ := p.Var(k); return s }
		var req run.PipelineRequest
		if err := json.Unmarshal([]byte(v("PAVED_REQUEST")), &req); err != nil {
			return fmt.Errorf("read PAVED_REQUEST: %w", err)
		}
		cb, err := callback.NewClient(v("PAVED_URL"), v("PAVED_RUN_ID"), v("PAVED_RUN_TOKEN"), hc)
		if err != nil {
			return err
		}
		// As `paved report` does with the job's TRACEPARENT variable.
		if tp := v("TRACEPARENT"); telemetry.ValidTraceparent(tp) {
			cb.Traceparent = tp
		}
		stack := req.Stack.Tenant + "-" + req.Stack.Environment + "-" + req.Stack.Service
		if req.Operation == run.Drift {
			return checkDrift(ctx, cb, cloud, stack)
		}
		destroy := req.Operation == run.Delete
		w := wanted(req, stack)
		// As `paved preview` does: the shipped prices estimate the change.
		prices, err := cost.Shipped()
		if err != nil {
			return err
		}

		previewCmd := "pulumi preview --json --stack " + stack
		if destroy {
			previewCmd += " --destroy"
		}
		pv, err := preview.Parse(bytes.NewReader(cloud.PreviewJSON(stack, w.resources, destroy)), destroy, prices)
		if err != nil {
			return err
		}
		if err := cb.Logs(ctx, []string{previewCmd}); err != nil {
			return err
		}
		verdict, err := cb.Preview(ctx, pv)
		if err != nil {
			return err
		}
		switch verdict.Verdict {
		case run.VerdictApply:
		case run.VerdictDryRun, run.VerdictAwaitApproval:
			return cb.Logs(ctx, []string{fmt.Sprintf("paved: %s (%s): the apply job does nothing", verdict.Verdict, verdict.Summary)})
		default:
			return fmt.Errorf("paved refused the preview (%s): %v", verdict.Verdict, verdict.Reasons)
		}

		lines := []string{"pulumi up --yes --stack " + stack}
		if destroy {
			lines = []string{"pulumi destroy --yes --stack " + stack}
		}
		lines = append(lines, w.lines...)
		if err := cb.Logs(ctx, lines); err != nil {
			return err
		}
		if w.failure != nil {
			return w.failure
		}
		cloud.Apply(stack, w.resources, destroy)
		return cb.Outputs(ctx, w.outputs)
	}
}

// checkDrift plays the drift job: refresh the stack in preview, post what
// it found, apply nothing.
func checkDrift(ctx context.Context, cb *callback.Client, cloud *cloudsim.Cloud, stack string) error {
	pv, err := preview.Parse(bytes.NewReader(cloud.RefreshJSON(stack)), false, nil)
	if err != nil {
		return err
	}
	if err := cb.Logs(ctx, []string{"pulumi refresh --preview-only --json --stack " + stack}); err != nil {
		return err
	}
	v, err := cb.Preview(ctx, pv)
	if err != nil {
		return err
	}
	if v.Verdict != run.VerdictDrift {
		return fmt.Errorf("paved answered a drift check with %s", v.Verdict)
	}
	return nil
}

// want is what the golden path would declare for a request.
type want struct {
	resources []cloudsim.Resource
	outputs   map[string]any
	lines     []string
	failure   error
}

func wanted(req run.PipelineRequest, stack string) want {
	tags := map[string]any{"paved:tenant": req.Stack.Tenant, "paved:environment": req.Stack.Environment, "paved:service": req.Stack.Service}
	switch req.Action {
	case "add-s3-bucket":
		// The shape cmd/provision exports: every bucket of the stack by name.
		name := fmt.Sprintf("%s-%v", stack, req.Inputs["bucketName"])
		return want{
			resources: []cloudsim.Resource{
				{Type: "aws:s3/bucketV2:BucketV2", Name: name, Inputs: map[string]any{"bucket": name, "tags": tags,
					"versioning": req.Inputs["versioning"], "retentionDays": req.Inputs["retentionDays"]}},
				{Type: "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", Name: name, Inputs: map[string]any{"bucket": name,
					"blockPublicAcls": true, "blockPublicPolicy": true, "ignorePublicAcls": true, "restrictPublicBuckets": true}},
			},
			outputs: map[string]any{"stack": stack, "region": "eu-west-1", "buckets": map[string]any{
				fmt.Sprint(req.Inputs["bucketName"]): map[string]any{"name": name, "arn": "arn:aws:s3:::" + name}}},
			lines: []string{"+ aws:s3/bucketV2:BucketV2 " + name + " created (encrypted, private, TLS-only)"},
		}
	case "add-sqs-queue":
		name := fmt.Sprintf("%s-%v", stack, req.Inputs["queueName"])
		arn := "arn:aws:sqs:eu-west-1:123456789012:" + name
		w := want{
			resources: []cloudsim.Resource{
				{Type: "aws:sqs/queue:Queue", Name: name, Inputs: map[string]any{"name": name, "tags": tags,
					"visibilityTimeoutSeconds": req.Inputs["visibilityTimeoutSeconds"]}},
				{Type: "aws:sqs/queue:Queue", Name: name + "-dlq", Inputs: map[string]any{"name": name + "-dlq", "tags": tags}},
			},
			outputs: map[string]any{"stack": stack, "region": "eu-west-1", "queues": map[string]any{
				fmt.Sprint(req.Inputs["queueName"]): map[string]any{"url": "https://sqs.eu-west-1.amazonaws.com/123456789012/" + name, "arn": arn, "dlqArn": arn + "-dlq"}}},
			lines: []string{"+ aws:sqs/queue:Queue " + name + " created (with dead-letter queue)"},
		}
		if req.Inputs["queueName"] == "payment-events" {
			w.lines = []string{"error: creating SQS queue " + name + ": QueueAlreadyExists (simulated failure)"}
			w.failure = errors.New("pulumi up failed")
		}
		return w
	case "delete-service":
		return want{outputs: map[string]any{"stack": stack, "destroyed": true}, lines: []string{"- every resource of stack " + stack + " deleted"}}
	default:
		return want{
			resources: []cloudsim.Resource{
				// The shape pulumi-kubernetes previews: what the price table
				// reads is spec.replicas and the containers' requests.
				{Type: "kubernetes:apps/v1:Deployment", Name: stack, Inputs: map[string]any{
					"metadata": map[string]any{"name": stack, "labels": tags},
					"spec": map[string]any{"replicas": req.Inputs["replicas"], "template": map[string]any{"spec": map[string]any{
						"containers": []any{map[string]any{"name": "app", "resources": map[string]any{"requests": map[string]any{"cpu": "250m", "memory": "256Mi"}}}}}}}}},
				{Type: "kubernetes:core/v1:Service", Name: stack, Inputs: map[string]any{"port": 80, "labels": tags}},
			},
			outputs: map[string]any{"stack": stack, "url": "https://" + req.Stack.Service + "." + req.Stack.Environment + ".acme.example"},
		}
	}
}
