// Package secret resolves secret references from the config, so that no
// secret value is ever written in the config file itself.
//
//	env:NAME        the environment variable NAME
//	file:/path      the file's content, trailing newline trimmed
//	awssm:name-or-arn  an AWS Secrets Manager secret (through a Fetcher)
package secret

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
)

// ErrNotAReference is returned for a value that is not env:, file: or awssm:.
var ErrNotAReference = errors.New("secret must be a reference: env:NAME, file:/path or awssm:name")

// Fetcher reads secrets from AWS Secrets Manager.
type Fetcher interface {
	SecretString(ctx context.Context, id string) (string, error)
}

// Resolver turns references into values.
type Resolver struct {
	LookupEnv func(string) (string, bool) // os.LookupEnv when nil
	AWS       Fetcher                     // nil: awssm: references are refused
}

// Resolve returns the secret a reference names. Errors name the reference,
// never the value.
func (r Resolver) Resolve(ctx context.Context, ref string) (string, error) {
	kind, arg, ok := strings.Cut(ref, ":")
	if !ok || arg == "" {
		return "", ErrNotAReference
	}
	switch kind {
	case "env":
		lookup := r.LookupEnv
		if lookup == nil {
			lookup = os.LookupEnv
		}
		v, ok := lookup(arg)
		if !ok || v == "" {
			return "", fmt.Errorf("secret %s: environment variable %s is not set", ref, arg)
		}
		return v, nil
	case "file":
		b, err := os.ReadFile(arg)
		if err != nil {
			return "", fmt.Errorf("secret %s: %w", ref, err)
		}
		v := strings.TrimRight(string(b), "\r\n")
		if v == "" {
			return "", fmt.Errorf("secret %s: file is empty", ref)
		}
		return v, nil
	case "awssm":
		if r.AWS == nil {
			return "", fmt.Errorf("secret %s: AWS Secrets Manager is not configured", ref)
		}
		v, err := r.AWS.SecretString(ctx, arg)
		if err != nil {
			return "", fmt.Errorf("secret %s: %w", ref, err)
		}
		return v, nil
	}
	return "", fmt.Errorf("secret %q: %w", kind+":…", ErrNotAReference)
}
