// Package secret resolves secret references from the config, so that no
// secret value is ever written in the config file itself.
//
//	env:NAME                 the environment variable NAME
//	file:/path               the file's content, trailing newline trimmed
//	awssm:name-or-arn        an AWS Secrets Manager secret's SecretString
//	awssm:name-or-arn#key    the string under key in that SecretString (a JSON object)
//
// A Resolver reads a reference once; a Cache resolves each reference once at
// start and keeps file: and awssm: ones current (see Cache and Value). No
// error or log line of this package ever carries a secret value.
package secret

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws/arn"
)

// ErrNotAReference is returned for a value that is not env:, file: or awssm:.
var ErrNotAReference = errors.New("secret must be a reference: env:NAME, file:/path or awssm:name[#key]")

// Fetcher reads secrets from AWS Secrets Manager: the SecretString of the
// current version (AWSCURRENT) of the secret id names (a name or an ARN).
type Fetcher interface {
	SecretString(ctx context.Context, id string) (string, error)
}

// Resolver turns references into values.
type Resolver struct {
	LookupEnv func(string) (string, bool) // os.LookupEnv when nil
	// AWS reads awssm: references. A nil AWS refuses them here; a Cache
	// given a Resolver without one makes one (NewAWS) on first use.
	AWS Fetcher
}

// Ref is a parsed reference.
type Ref struct {
	Kind string // env, file or awssm
	Arg  string // the variable, the path, or the secret's name or ARN
	Key  string // awssm only: the JSON key after '#', or ""
}

// Parse checks a reference's form without resolving it. Its errors never
// repeat the text they were given: a value written where a reference belongs
// must not reach a log.
func Parse(ref string) (Ref, error) {
	kind, arg, ok := strings.Cut(ref, ":")
	if !ok || arg == "" {
		return Ref{}, ErrNotAReference
	}
	switch kind {
	case "env", "file":
		return Ref{Kind: kind, Arg: arg}, nil
	case "awssm":
		id, key, hasKey := strings.Cut(arg, "#")
		if hasKey && key == "" {
			return Ref{}, errors.New("awssm: reference: the JSON key after '#' is empty")
		}
		if err := checkSecretID(id); err != nil {
			return Ref{}, fmt.Errorf("awssm: reference: %w", err)
		}
		return Ref{Kind: kind, Arg: id, Key: key}, nil
	}
	return Ref{}, ErrNotAReference
}

// checkSecretID accepts what Secrets Manager accepts as a SecretId: a name
// (letters, digits and /_+=.@-) or a secretsmanager ARN, whose region then
// chooses the region paved asks.
func checkSecretID(id string) error {
	if id == "" {
		return errors.New("the secret's name or ARN is empty")
	}
	if strings.HasPrefix(id, "arn:") {
		a, err := arn.Parse(id)
		if err != nil || a.Service != "secretsmanager" || a.Region == "" || !strings.HasPrefix(a.Resource, "secret:") || a.Resource == "secret:" {
			return errors.New("not a Secrets Manager secret ARN (arn:<partition>:secretsmanager:<region>:<account>:secret:<name>)")
		}
		return nil
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("/_+=.@-", c)) {
			return errors.New("a secret name may hold only letters, digits and /_+=.@-")
		}
	}
	return nil
}

// Resolve returns the secret a reference names. Errors name the reference,
// never the value.
func (r Resolver) Resolve(ctx context.Context, ref string) (string, error) {
	p, err := Parse(ref)
	if err != nil {
		if errors.Is(err, ErrNotAReference) {
			// Not even the kind is repeated: "hunter2:x" may be a value.
			return "", err
		}
		return "", fmt.Errorf("secret %s: %w", ref, err)
	}
	switch p.Kind {
	case "env":
		lookup := r.LookupEnv
		if lookup == nil {
			lookup = os.LookupEnv
		}
		v, ok := lookup(p.Arg)
		if !ok || v == "" {
			return "", fmt.Errorf("secret %s: environment variable %s is not set", ref, p.Arg)
		}
		return v, nil
	case "file":
		b, err := os.ReadFile(p.Arg)
		if err != nil {
			return "", fmt.Errorf("secret %s: %w", ref, err)
		}
		v := strings.TrimRight(string(b), "\r\n")
		if v == "" {
			return "", fmt.Errorf("secret %s: file is empty", ref)
		}
		return v, nil
	}
	if r.AWS == nil {
		return "", fmt.Errorf("secret %s: AWS Secrets Manager is not configured", ref)
	}
	s, err := r.AWS.SecretString(ctx, p.Arg)
	if err != nil {
		return "", fmt.Errorf("secret %s: %w", ref, err)
	}
	v, err := jsonKey(s, p.Key)
	if err != nil {
		return "", fmt.Errorf("secret %s: %w", ref, err)
	}
	if v == "" {
		return "", fmt.Errorf("secret %s: the secret is empty", ref)
	}
	return v, nil
}

// jsonKey returns s itself without a key, else the string under key in the
// JSON object s. Its errors carry no part of s: a JSON syntax error would
// quote the character it stopped at.
func jsonKey(s, key string) (string, error) {
	if key == "" {
		return s, nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal([]byte(s), &obj); err != nil || obj == nil {
		return "", fmt.Errorf("json key %s: the SecretString is not a JSON object", key)
	}
	raw, ok := obj[key]
	if !ok {
		return "", fmt.Errorf("json key %s: no such key in the secret's JSON object", key)
	}
	var v string
	if err := json.Unmarshal(raw, &v); err != nil {
		return "", fmt.Errorf("json key %s: its value is not a JSON string", key)
	}
	return v, nil
}
