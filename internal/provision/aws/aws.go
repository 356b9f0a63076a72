// Package aws holds the golden path's AWS components: a KMS key, SQS
// queues with dead-letter queues, SNS topics, S3 buckets, DynamoDB tables,
// Aurora databases with their security groups, Secrets Manager secrets, the
// service's ECR repository and its IAM role for service accounts (IRSA).
// Each component applies the platform rules by construction, through the
// typed pulumi-aws SDK and res.New; package audit proves it.
package aws

import (
	"fmt"
	"strings"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/kms"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/paved-idp/paved/internal/provision/platform"
	"github.com/paved-idp/paved/internal/provision/res"
)

// component is the state of every golden-path component; its children
// carry the substance.
type component struct{ pulumi.ResourceState }

// begin registers a component of the given kind and returns the scope its
// resources register in.
func begin(s res.Scope, kind, name string) (res.Scope, *component, error) {
	c := &component{}
	child, err := s.Component("paved:aws:"+kind, name, c)
	return child, c, err
}

// end records the component's outputs; they show in `pulumi stack`.
func end(s res.Scope, c *component, outs pulumi.Map) error {
	if err := s.Ctx.RegisterResourceOutputs(c, outs); err != nil {
		return fmt.Errorf("register outputs: %w", err)
	}
	return nil
}

// Grant is what the service's IAM role may do to one of its resources.
// Components return grants instead of writing policy, so the role's policy
// lists exactly the resources the stack created.
type Grant struct {
	Sid       string
	Actions   []string
	Resources []pulumi.StringOutput
	// ABAC marks services whose authorization supports the
	// aws:ResourceTag condition key; multi-tenant roles then also require
	// the resource's tenant tag.
	ABAC bool
}

// Key is the KMS key a stack encrypts with.
type Key struct {
	Arn pulumi.StringOutput
}

// Grant lets the service use the key for its encrypted resources.
func (k Key) Grant() Grant {
	return Grant{
		Sid:     "UseKey",
		Actions: []string{"kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"},
		// The key's ARN is known; the shared key of a multi-tenant tenant
		// carries the tenant tag, the service's own key gets it here.
		Resources: []pulumi.StringOutput{k.Arn},
		ABAC:      true,
	}
}

// NewKey gives a single-tenant service its own customer-managed key, with
// rotation, and a multi-tenant service the tenant's shared key, looked up by
// alias so the role's policy can name the key's ARN.
func NewKey(s res.Scope) (Key, error) {
	t := s.Target
	if t.Tenancy == platform.Multi {
		alias, err := kms.LookupAlias(s.Ctx, &kms.LookupAliasArgs{Name: t.SharedKeyAlias()}, s.InvokeOpts()...)
		if err != nil {
			return Key{}, fmt.Errorf("look up tenant key %s: %w", t.SharedKeyAlias(), err)
		}
		return Key{Arn: pulumi.String(alias.TargetKeyArn).ToStringOutput()}, nil
	}
	s, c, err := begin(s, "Key", t.Name("key"))
	if err != nil {
		return Key{}, err
	}
	key, err := res.New(s, kms.NewKey, t.Name("key"), &kms.KeyArgs{
		Description:          pulumi.String("paved: encryption at rest for " + t.StackName()),
		EnableKeyRotation:    pulumi.Bool(true),
		DeletionWindowInDays: pulumi.Int(byEnv(t, 30, 7)),
	})
	if err != nil {
		return Key{}, err
	}
	if _, err := res.New(s, kms.NewAlias, t.Name("key-alias"), &kms.AliasArgs{
		Name:        pulumi.String("alias/" + t.StackName()),
		TargetKeyId: key.KeyId,
	}); err != nil {
		return Key{}, err
	}
	return Key{Arn: key.Arn}, end(s, c, pulumi.Map{"arn": key.Arn})
}

// byEnv picks the production or the non-production value.
func byEnv[T any](t platform.Target, prod, other T) T {
	if t.Production() {
		return prod
	}
	return other
}

// suffix appends a fixed suffix to an ARN once it is known ("/*" for the
// objects of a bucket).
func suffix(arn pulumi.StringOutput, s string) pulumi.StringOutput {
	return arn.ApplyT(func(a string) string { return a + s }).(pulumi.StringOutput)
}

// fifoName adds the ".fifo" suffix AWS demands of FIFO queues and topics.
func fifoName(name string, fifo bool) string {
	if fifo && !strings.HasSuffix(name, ".fifo") {
		return name + ".fifo"
	}
	return name
}

// sid makes a policy statement id; IAM allows only letters and digits.
func sid(kind, name string) string {
	return kind + strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, name)
}
