package aws

import (
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/paved-idp/paved/internal/provision/res"
	"github.com/paved-idp/paved/internal/provision/spec"
)

// Queue is an SQS queue and its dead-letter queue.
type Queue struct {
	URL, Arn, DLQURL, DLQArn pulumi.StringOutput
	Grant                    Grant
}

// NewQueue creates the queue and a dead-letter queue that receives messages
// after MaxReceiveCount failed receives; both are encrypted with the
// stack's key.
func NewQueue(s res.Scope, key Key, q spec.Queue) (*Queue, error) {
	t := s.Target
	s, c, err := begin(s, "Queue", t.Name(q.Name))
	if err != nil {
		return nil, err
	}
	common := func(name string, retention int) pulumi.Map {
		m := pulumi.Map{
			"name":                         pulumi.String(fifoName(name, q.FIFO)),
			"kmsMasterKeyId":               key.Arn,
			"kmsDataKeyReusePeriodSeconds": pulumi.Int(300),
			"messageRetentionSeconds":      pulumi.Int(retention),
		}
		if q.FIFO {
			m["fifoQueue"] = pulumi.Bool(true)
			m["contentBasedDeduplication"] = pulumi.Bool(true)
		}
		return m
	}
	// The dead-letter queue keeps messages for the SQS maximum, 14 days,
	// so a failure found late can still be replayed.
	dlq, err := s.Register(res.SQSQueue, t.Name(q.Name, "dlq"), common(t.Name(q.Name, "dlq"), 1209600))
	if err != nil {
		return nil, err
	}
	props := common(t.Name(q.Name), 345600)
	props["visibilityTimeoutSeconds"] = pulumi.Int(q.VisibilityTimeoutSeconds)
	props["redrivePolicy"] = res.JSON(func(v []string) any {
		return map[string]any{"deadLetterTargetArn": v[0], "maxReceiveCount": q.MaxReceiveCount}
	}, dlq.Arn)
	main, err := s.Register(res.SQSQueue, t.Name(q.Name), props)
	if err != nil {
		return nil, err
	}
	out := &Queue{
		URL: main.URL, Arn: main.Arn, DLQURL: dlq.URL, DLQArn: dlq.Arn,
		Grant: Grant{
			Sid: sid("Queue", q.Name),
			Actions: []string{"sqs:SendMessage", "sqs:ReceiveMessage", "sqs:DeleteMessage",
				"sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"},
			Resources: []pulumi.StringOutput{main.Arn, dlq.Arn},
			ABAC:      true,
		},
	}
	return out, end(s, c, pulumi.Map{"url": main.URL, "arn": main.Arn, "dlqUrl": dlq.URL, "dlqArn": dlq.Arn})
}

// Topic is an SNS topic.
type Topic struct {
	Arn   pulumi.StringOutput
	Grant Grant
}

// NewTopic creates an encrypted SNS topic.
func NewTopic(s res.Scope, key Key, tp spec.Topic) (*Topic, error) {
	t := s.Target
	s, c, err := begin(s, "Topic", t.Name(tp.Name))
	if err != nil {
		return nil, err
	}
	props := pulumi.Map{
		"name":           pulumi.String(fifoName(t.Name(tp.Name), tp.FIFO)),
		"kmsMasterKeyId": key.Arn,
	}
	if tp.FIFO {
		props["fifoTopic"] = pulumi.Bool(true)
		props["contentBasedDeduplication"] = pulumi.Bool(true)
	}
	topic, err := s.Register(res.SNSTopic, t.Name(tp.Name), props)
	if err != nil {
		return nil, err
	}
	out := &Topic{Arn: topic.Arn, Grant: Grant{
		Sid: sid("Topic", tp.Name), Actions: []string{"sns:Publish", "sns:GetTopicAttributes"},
		Resources: []pulumi.StringOutput{topic.Arn}, ABAC: true,
	}}
	return out, end(s, c, pulumi.Map{"arn": topic.Arn})
}
