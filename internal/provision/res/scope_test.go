package res_test

import (
	"runtime/debug"
	"strings"
	"testing"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/s3"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/sqs"
	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/paved-idp/paved/internal/provision/platform"
	"github.com/paved-idp/paved/internal/provision/provisiontest"
	"github.com/paved-idp/paved/internal/provision/res"
	"github.com/paved-idp/paved/internal/provision/rules"
)

type comp struct{ pulumi.ResourceState }

// TestNewStampsEveryResource: New merges the ownership tags (over the
// component's own, which lose) into AWS Tags and the labels into
// Kubernetes metadata, leaves the caller's args as written, leaves types
// without tags untouched, parents to the component and pins the version of
// the provider whose SDK the args come from.
func TestNewStampsEveryResource(t *testing.T) {
	tg := provisiontest.Target(t, "acme", "dev", "orders", platform.Single)
	pins := platform.Providers{AWS: "6.0.1", Kubernetes: "4.0.1"}
	own := &sqs.QueueArgs{Tags: pulumi.StringMap{"extra": pulumi.String("kept"), "tenant": pulumi.String("globex")}}
	m, err := provisiontest.Run(t, tg.StackName(), func(ctx *pulumi.Context) error {
		s, err := res.Scope{Ctx: ctx, Target: tg, Providers: pins}.Component("paved:test:C", tg.Name(), &comp{})
		if err != nil {
			return err
		}
		if _, err := res.New(s, sqs.NewQueue, tg.Name("q"), own); err != nil {
			return err
		}
		if _, err := res.New(s, s3.NewBucketPolicy, tg.Name("p"), &s3.BucketPolicyArgs{Bucket: pulumi.String("b"), Policy: pulumi.String("{}")}); err != nil {
			return err
		}
		_, err = res.New(s, corev1.NewConfigMap, tg.Name("cm"), &corev1.ConfigMapArgs{Metadata: &metav1.ObjectMetaArgs{
			Labels: pulumi.StringMap{"app.kubernetes.io/name": pulumi.String("mine"), "team": pulumi.String("other")},
		}})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	reg := m.Registered()
	if len(reg) != 3 {
		t.Fatalf("%d registered", len(reg))
	}
	rs := m.Resources()
	q, p, cm := provisiontest.Only(t, rs, rules.SQSQueue, tg.Name("q")), provisiontest.Only(t, rs, rules.S3BucketPolicy, tg.Name("p")),
		provisiontest.Only(t, rs, "kubernetes:core/v1:ConfigMap", tg.Name("cm"))
	tags := q.Inputs["tags"].(map[string]any)
	if tags["tenant"] != "acme" || tags["extra"] != "kept" || tags["cost-center"] != "cc-1001" {
		t.Errorf("queue tags %v", tags)
	}
	if own.Tags.(pulumi.StringMap)["tenant"] != pulumi.String("globex") || len(own.Tags.(pulumi.StringMap)) != 2 {
		t.Errorf("the caller's args changed: %v", own.Tags)
	}
	if p.Inputs["tags"] != nil {
		t.Errorf("an untaggable type got tags: %v", p.Inputs)
	}
	labels := cm.Inputs["metadata"].(map[string]any)["labels"].(map[string]any)
	if labels["app.kubernetes.io/name"] != "mine" || labels["team"] != "payments" || labels["tenant"] != "acme" {
		t.Errorf("labels %v", labels)
	}
	for _, r := range reg {
		want := pins.AWS
		if strings.HasPrefix(string(r.Type), "kubernetes:") {
			want = pins.Kubernetes
		}
		if r.ParentType() != "paved:test:C" || r.Version != want {
			t.Errorf("%s: parent %s version %s", r.Name, r.Parent, r.Version)
		}
	}
}

// TestNewRefuses what it cannot stamp: a resource outside a component, and
// tags it cannot merge into.
func TestNewRefuses(t *testing.T) {
	tg := provisiontest.Target(t, "acme", "dev", "orders", platform.Single)
	m, err := provisiontest.Run(t, tg.StackName(), func(ctx *pulumi.Context) error {
		top := res.Scope{Ctx: ctx, Target: tg}
		if _, err := res.New(top, sqs.NewQueue, "q", &sqs.QueueArgs{}); err == nil || !strings.Contains(err.Error(), "outside a component") {
			t.Errorf("outside a component: %v", err)
		}
		s, err := top.Component("paved:test:C", tg.Name(), &comp{})
		if err != nil {
			return err
		}
		tags := pulumi.StringMap{}.ToStringMapOutput()
		if _, err := res.New(s, sqs.NewQueue, "q", &sqs.QueueArgs{Tags: tags}); err == nil || !strings.Contains(err.Error(), "Tags field must be") {
			t.Errorf("output tags: %v", err)
		}
		return nil
	})
	if err != nil || len(m.Registered()) != 0 {
		t.Fatalf("%v, %d registered", err, len(m.Registered()))
	}
}

// TestPinMismatchesNamesTheSDKs: a pin other than the SDK release the
// binary was built with is named; the SDKs' own versions are not.
func TestPinMismatchesNamesTheSDKs(t *testing.T) {
	built := []*debug.Module{{Path: res.AWSModule, Version: "v6.83.4"}, {Path: res.KubernetesModule, Version: "v4.32.0"}}
	got := res.PinMismatchesIn(platform.Providers{AWS: "0.0.1", Kubernetes: "0.0.1"}, built)
	if len(got) != 2 || !strings.Contains(strings.Join(got, " "), res.AWSModule) || !strings.Contains(strings.Join(got, " "), res.KubernetesModule) {
		t.Fatalf("mismatches %v", got)
	}
	if got := res.PinMismatchesIn(platform.Providers{AWS: "6.83.4", Kubernetes: "4.32.0"}, built); len(got) != 0 {
		t.Fatalf("the SDKs' own versions: %v", got)
	}
}
