package aws

import (
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/sns"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/sqs"
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
	args := func(name string, retention int) *sqs.QueueArgs {
		a := &sqs.QueueArgs{
			Name:                         pulumi.String(fifoName(name, q.FIFO)),
			KmsMasterKeyId:               key.Arn,
			KmsDataKeyReusePeriodSeconds: pulumi.Int(300),
			MessageRetentionSeconds:      pulumi.Int(retention),
		}
		if q.FIFO {
			a.FifoQueue, a.ContentBasedDeduplication = pulumi.Bool(true), pulumi.Bool(true)
		}
		return a
	}
	// The dead-letter queue keeps messages for the SQS maximum, 14 days,
	// so a failure found late can still be replayed.
	dlq, err := res.New(s, sqs.NewQueue, t.Name(q.Name, "dlq"), args(t.Name(q.Name, "dlq"), 1209600))
	if err != nil {
		return nil, err
	}
	a := args(t.Name(q.Name), 345600)
	a.VisibilityTimeoutSeconds = pulumi.Int(q.VisibilityTimeoutSeconds)
	a.RedrivePolicy = res.JSON(func(v []string) any {
		return map[string]any{"deadLetterTargetArn": v[0], "maxReceiveCount": q.MaxReceiveCount}
	}, dlq.Arn)
	main, err := res.New(s, sqs.NewQueue, t.Name(q.Name), a)
	if err != nil {
		return nil, err
	}
	out := &Queue{
		URL: main.Url, Arn: main.Arn, DLQURL: dlq.Url, DLQArn: dlq.Arn,
		Grant: Grant{
			Sid: sid("Queue", q.Name),
			Actions: []string{"sqs:SendMessage", "sqs:ReceiveMessage", "sqs:DeleteMessage",
				"sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"},
			Resources: []pulumi.StringOutput{main.Arn, dlq.Arn},
			ABAC:      true,
		},
	}
	return out, end(s, c, pulumi.Map{"url": main.Url, "arn": main.Arn, "dlqUrl": dlq.Url, "dlqArn": dlq.Arn})
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
	a := &sns.TopicArgs{
		Name:           pulumi.String(fifoName(t.Name(tp.Name), tp.FIFO)),
		KmsMasterKeyId: key.Arn,
	}
	if tp.FIFO {
		a.FifoTopic, a.ContentBasedDeduplication = pulumi.Bool(true), pulumi.Bool(true)
	}
	topic, err := res.New(s, sns.NewTopic, t.Name(tp.Name), a)
	if err != nil {
		return nil, err
	}
	out := &Topic{Arn: topic.Arn, Grant: Grant{
		Sid: sid("Topic", tp.Name), Actions: []string{"sns:Publish", "sns:GetTopicAttributes"},
		Resources: []pulumi.StringOutput{topic.Arn}, ABAC: true,
	}}
	return out, end(s, c, pulumi.Map{"arn": topic.Arn})
}
