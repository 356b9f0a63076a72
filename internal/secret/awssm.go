package secret

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/arn"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// AWS reads secrets with aws-sdk-go-v2's Secrets Manager client
// (GetSecretValue). Credentials and region come from the SDK's default
// chain: IRSA web identity (AWS_ROLE_ARN + AWS_WEB_IDENTITY_TOKEN_FILE),
// AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, the shared config and
// credentials files (AWS_PROFILE), container and EC2 instance roles. A
// secret named by its ARN is read in the ARN's region. The endpoint may be
// overridden as the SDK allows, e.g. AWS_ENDPOINT_URL_SECRETS_MANAGER.
type AWS struct {
	cfg aws.Config

	mu      sync.Mutex
	clients map[string]*secretsmanager.Client // by region
}

// ErrNoCredentials is wrapped by NewAWS when the default chain finds no
// credentials.
var ErrNoCredentials = errors.New("no AWS credentials found (tried IRSA web identity, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, the shared config and credentials files, container and EC2 instance roles)")

// NewAWS loads the SDK's default configuration, optionally adjusted by opts,
// and checks that it yields credentials, so that a paved without any fails
// at start saying so rather than at the first read.
func NewAWS(ctx context.Context, opts ...func(*config.LoadOptions) error) (*AWS, error) {
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("load AWS configuration: %w", err)
	}
	if cfg.Credentials == nil {
		return nil, ErrNoCredentials
	}
	if _, err := cfg.Credentials.Retrieve(ctx); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNoCredentials, err)
	}
	return &AWS{cfg: cfg, clients: map[string]*secretsmanager.Client{}}, nil
}

// SecretString returns the SecretString of the secret's AWSCURRENT version.
func (a *AWS) SecretString(ctx context.Context, id string) (string, error) {
	region := a.cfg.Region
	if strings.HasPrefix(id, "arn:") {
		if parsed, err := arn.Parse(id); err == nil && parsed.Region != "" {
			region = parsed.Region
		}
	}
	if region == "" {
		return "", errors.New("no AWS region: set AWS_REGION (or the profile's region), or name the secret by its ARN")
	}
	out, err := a.client(region).GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(id)})
	if err != nil {
		// The SDK's error names the operation, the status, the request id
		// and AWS's error code and message; none of it is the value.
		return "", fmt.Errorf("read from AWS Secrets Manager (%s): %w", region, err)
	}
	if out.SecretString == nil {
		return "", errors.New("the secret holds SecretBinary, not SecretString; paved reads strings only")
	}
	return *out.SecretString, nil
}

func (a *AWS) client(region string) *secretsmanager.Client {
	a.mu.Lock()
	defer a.mu.Unlock()
	c, ok := a.clients[region]
	if !ok {
		c = secretsmanager.NewFromConfig(a.cfg, func(o *secretsmanager.Options) { o.Region = region })
		a.clients[region] = c
	}
	return c
}
