package demo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/paved-idp/paved/internal/callback"
	"github.com/paved-idp/paved/internal/run"
	"github.com/paved-idp/paved/internal/sim/gitlabsim"
	"github.com/paved-idp/paved/internal/telemetry"
)

// ProvisionJob plays the pipeline's provisioning job: it reads the variables
// paved passed, "applies" the stack, and calls paved back with log lines and
// stack outputs with the run's token through the same client `paved report`
// uses in the real pipeline. The queue named payment-events fails, to show a failed run.
func ProvisionJob(hc *http.Client) func(ctx context.Context, p gitlabsim.Pipeline) error {
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
		lines := []string{"pulumi preview --stack " + stack, "pulumi up --stack " + stack + " --yes"}
		var outputs map[string]any
		var failure error
		switch req.Action {
		case "add-s3-bucket":
			// The shape cmd/provision exports: every bucket of the stack by name.
			name := fmt.Sprintf("%s-%v", stack, req.Inputs["bucketName"])
			outputs = map[string]any{"stack": stack, "region": "eu-west-1", "buckets": map[string]any{
				fmt.Sprint(req.Inputs["bucketName"]): map[string]any{"name": name, "arn": "arn:aws:s3:::" + name}}}
			lines = append(lines, "+ aws:s3/bucketV2:BucketV2 "+name+" created (encrypted, private, TLS-only)")
		case "add-sqs-queue":
			name := fmt.Sprintf("%s-%v", stack, req.Inputs["queueName"])
			if req.Inputs["queueName"] == "payment-events" {
				lines = append(lines, "error: creating SQS queue "+name+": QueueAlreadyExists (simulated failure)")
				failure = errors.New("pulumi up failed")
				break
			}
			arn := "arn:aws:sqs:eu-west-1:123456789012:" + name
			outputs = map[string]any{"stack": stack, "region": "eu-west-1", "queues": map[string]any{
				fmt.Sprint(req.Inputs["queueName"]): map[string]any{"url": "https://sqs.eu-west-1.amazonaws.com/123456789012/" + name, "arn": arn, "dlqArn": arn + "-dlq"}}}
			lines = append(lines, "+ aws:sqs/queue:Queue "+name+" created (with dead-letter queue)")
		default:
			outputs = map[string]any{"stack": stack, "url": "https://" + req.Stack.Service + "." + req.Stack.Environment + ".acme.example"}
		}
		if err := cb.Logs(ctx, lines); err != nil {
			return err
		}
		if failure != nil {
			return failure
		}
		return cb.Outputs(ctx, outputs)
	}
}
