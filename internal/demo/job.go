package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/paved-idp/paved/internal/run"
	"github.com/paved-idp/paved/internal/sim/gitlabsim"
)

// ProvisionJob plays the pipeline's provisioning job: it reads the variables
// paved passed, "applies" the stack, and calls paved back with log lines and
// stack outputs using the run's token — what `paved report` does in the
// real pipeline. The queue named payment-events fails, to show a failed run.
func ProvisionJob(hc *http.Client) func(ctx context.Context, p gitlabsim.Pipeline) error {
	return func(ctx context.Context, p gitlabsim.Pipeline) error {
		v := func(k string) string { s, _ := p.Var(k); return s }
		var req run.PipelineRequest
		if err := json.Unmarshal([]byte(v("PAVED_REQUEST")), &req); err != nil {
			return fmt.Errorf("read PAVED_REQUEST: %w", err)
		}
		cb := callback{hc: hc, base: v("PAVED_URL") + "/api/v1/runs/" + v("PAVED_RUN_ID"), token: v("PAVED_RUN_TOKEN")}
		stack := req.Stack.Tenant + "-" + req.Stack.Environment + "-" + req.Stack.Service
		lines := []string{"pulumi preview --stack " + stack, "pulumi up --stack " + stack + " --yes"}
		var outputs map[string]any
		var failure error
		switch req.Action {
		case "add-s3-bucket":
			name := fmt.Sprintf("%s-%v", stack, req.Inputs["bucketName"])
			outputs = map[string]any{"bucketName": name, "bucketArn": "arn:aws:s3:::" + name, "region": "eu-west-1"}
			lines = append(lines, "+ aws:s3/bucketV2:BucketV2 "+name+" created (encrypted, private, TLS-only)")
		case "add-sqs-queue":
			name := fmt.Sprintf("%s-%v", stack, req.Inputs["queueName"])
			if req.Inputs["queueName"] == "payment-events" {
				lines = append(lines, "error: creating SQS queue "+name+": QueueAlreadyExists (simulated failure)")
				failure = errors.New("pulumi up failed")
				break
			}
			arn := "arn:aws:sqs:eu-west-1:123456789012:" + name
			outputs = map[string]any{"queueUrl": "https://sqs.eu-west-1.amazonaws.com/123456789012/" + name, "queueArn": arn, "deadLetterArn": arn + "-dlq"}
			lines = append(lines, "+ aws:sqs/queue:Queue "+name+" created (with dead-letter queue)")
		default:
			outputs = map[string]any{"url": "https://" + req.Stack.Service + "." + req.Stack.Environment + ".acme.example"}
		}
		if err := cb.post(ctx, "/logs", map[string]any{"lines": lines}); err != nil {
			return err
		}
		if failure != nil {
			return failure
		}
		return cb.post(ctx, "/outputs", map[string]any{"outputs": outputs})
	}
}

type callback struct {
	hc          *http.Client
	base, token string
}

func (c callback) post(ctx context.Context, path string, body any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("post %s: %w", path, err)
	}
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		return fmt.Errorf("post %s: %s", path, resp.Status)
	}
	return nil
}
