package aws

import (
	"encoding/json"
	"fmt"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/ecr"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/iam"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/secretsmanager"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/paved-idp/paved/internal/provision/platform"
	"github.com/paved-idp/paved/internal/provision/res"
	"github.com/paved-idp/paved/internal/provision/spec"
)

// Secret is a Secrets Manager secret.
type Secret struct {
	Arn   pulumi.StringOutput
	Grant Grant
}

// NewSecret creates an empty, KMS-encrypted secret for the team to fill;
// Pulumi never holds its value. A deleted secret stays recoverable for 30
// days in production, 7 elsewhere (the AWS minimum).
func NewSecret(s res.Scope, key Key, sc spec.Secret) (*Secret, error) {
	t := s.Target
	s, c, err := begin(s, "Secret", t.Name(sc.Name))
	if err != nil {
		return nil, err
	}
	desc := sc.Description
	if desc == "" {
		desc = "paved: " + sc.Name + " of " + t.StackName()
	}
	secret, err := res.New(s, secretsmanager.NewSecret, t.Name(sc.Name), &secretsmanager.SecretArgs{
		Name:                 pulumi.String(t.StackName() + "/" + sc.Name),
		Description:          pulumi.String(desc),
		KmsKeyId:             key.Arn,
		RecoveryWindowInDays: pulumi.Int(byEnv(t, 30, 7)),
	})
	if err != nil {
		return nil, err
	}
	out := &Secret{Arn: secret.Arn, Grant: Grant{
		Sid: sid("Secret", sc.Name), Actions: []string{"secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"},
		Resources: []pulumi.StringOutput{secret.Arn}, ABAC: true,
	}}
	return out, end(s, c, pulumi.Map{"arn": secret.Arn})
}

// Repository is the service's ECR repository.
type Repository struct {
	URL, Arn pulumi.StringOutput
}

// NewRepository creates the service's image repository: immutable tags
// (a tag always means one image), scan on push, KMS encryption, and a
// lifecycle policy keeping the last images. Nodes pull with their own role,
// so the service's role gets no grant.
func NewRepository(s res.Scope, key Key) (*Repository, error) {
	t := s.Target
	s, c, err := begin(s, "Repository", t.Name())
	if err != nil {
		return nil, err
	}
	repo, err := res.New(s, ecr.NewRepository, t.Name(), &ecr.RepositoryArgs{
		Name:                       pulumi.String(t.Tenant.Name + "/" + t.Environment.Name + "/" + t.Service),
		ImageTagMutability:         pulumi.String("IMMUTABLE"),
		ImageScanningConfiguration: &ecr.RepositoryImageScanningConfigurationArgs{ScanOnPush: pulumi.Bool(true)},
		EncryptionConfigurations: ecr.RepositoryEncryptionConfigurationArray{&ecr.RepositoryEncryptionConfigurationArgs{
			EncryptionType: pulumi.String("KMS"), KmsKey: key.Arn,
		}},
		ForceDelete: pulumi.Bool(!t.Production()),
	})
	if err != nil {
		return nil, err
	}
	policy, err := json.Marshal(map[string]any{"rules": []map[string]any{{
		"rulePriority": 1, "description": "keep the last images",
		"selection": map[string]any{"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": byEnv(t, 50, 10)},
		"action":    map[string]any{"type": "expire"},
	}}})
	if err != nil {
		return nil, fmt.Errorf("ECR lifecycle policy: %w", err)
	}
	if _, err := res.New(s, ecr.NewLifecyclePolicy, t.Name("lifecycle"), &ecr.LifecyclePolicyArgs{
		Repository: repo.Name, Policy: pulumi.String(policy),
	}); err != nil {
		return nil, err
	}
	return &Repository{URL: repo.RepositoryUrl, Arn: repo.Arn},
		end(s, c, pulumi.Map{"url": repo.RepositoryUrl, "arn": repo.Arn})
}

// Role is the service's IAM role for its Kubernetes service account.
type Role struct {
	Arn pulumi.StringOutput
}

// NewRole creates the IRSA role: only the service's own service account in
// its namespace, through the environment's cluster OIDC provider, may
// assume it, and its one inline policy allows exactly the grants of the
// stack's resources. A multi-tenant role also requires the tenant tag on
// every resource whose service supports tag conditions, so a mistake in an
// ARN cannot cross into another tenant.
func NewRole(s res.Scope, grants []Grant) (*Role, error) {
	t := s.Target
	s, c, err := begin(s, "Role", t.Name("role"))
	if err != nil {
		return nil, err
	}
	issuer := t.Environment.OIDCIssuer
	trust, err := json.Marshal(res.Policy(res.Statement{
		Effect:    "Allow",
		Principal: map[string]any{"Federated": fmt.Sprintf("arn:aws:iam::%s:oidc-provider/%s", t.AccountID, issuer)},
		Action:    []string{"sts:AssumeRoleWithWebIdentity"},
		Condition: map[string]any{"StringEquals": map[string]any{
			issuer + ":sub": "system:serviceaccount:" + t.Namespace() + ":" + t.ServiceAccount(),
			issuer + ":aud": "sts.amazonaws.com",
		}},
	}))
	if err != nil {
		return nil, fmt.Errorf("trust policy: %w", err)
	}
	role, err := res.New(s, iam.NewRole, t.Name("role"), &iam.RoleArgs{
		Name:               pulumi.String(t.Name("role")),
		AssumeRolePolicy:   pulumi.String(trust),
		MaxSessionDuration: pulumi.Int(3600),
	})
	if err != nil {
		return nil, err
	}
	if len(grants) > 0 {
		if _, err := res.New(s, iam.NewRolePolicy, t.Name("role-policy"), &iam.RolePolicyArgs{
			Role: role.Name, Name: pulumi.String("paved-least-privilege"), Policy: policyOf(t, grants),
		}); err != nil {
			return nil, err
		}
	}
	return &Role{Arn: role.Arn}, end(s, c, pulumi.Map{"arn": role.Arn})
}

// policyOf renders the grants as one policy once every ARN is known.
func policyOf(t platform.Target, grants []Grant) pulumi.StringOutput {
	var arns []pulumi.StringInput
	for _, g := range grants {
		for _, r := range g.Resources {
			arns = append(arns, r)
		}
	}
	return res.JSON(func(v []string) any {
		var st []res.Statement
		i := 0
		for _, g := range grants {
			s := res.Statement{Sid: g.Sid, Effect: "Allow", Action: g.Actions, Resource: v[i : i+len(g.Resources)]}
			i += len(g.Resources)
			if g.ABAC && t.Tenancy == platform.Multi {
				s.Condition = map[string]any{"StringEquals": map[string]any{"aws:ResourceTag/" + platform.TagTenant: t.Tenant.Name}}
			}
			st = append(st, s)
		}
		return res.Policy(st...)
	}, arns...)
}
