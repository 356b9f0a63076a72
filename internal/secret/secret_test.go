package secret

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type fakeSM map[string]string

func (f fakeSM) SecretString(_ context.Context, id string) (string, error) {
	if v, ok := f[id]; ok {
		return v, nil
	}
	return "", errors.New("ResourceNotFoundException")
}

// noLeak fails when err carries any of the secret values.
func noLeak(t *testing.T, err error, values ...string) {
	t.Helper()
	for _, v := range values {
		if err != nil && strings.Contains(err.Error(), v) {
			t.Fatalf("error leaks a secret value: %v", err)
		}
	}
}

func TestResolve(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "s")
	if err := os.WriteFile(file, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	_ = os.WriteFile(empty, nil, 0o600)
	env := map[string]string{"SET": "from-env"}
	r := Resolver{LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }, AWS: fakeSM{
		"prod/port":  "from-aws",
		"prod/json":  `{"clientId":"id-hunter2","clientSecret":"sec-hunter2","n":1,"empty":""}`,
		"prod/plain": "hunter2-not-json",
		"prod/array": `["hunter2"]`,
		"prod/empty": "",
	}}
	tests := []struct {
		ref, want, wantErr string
	}{
		{ref: "env:SET", want: "from-env"},
		{ref: "env:UNSET", wantErr: "UNSET is not set"},
		{ref: "file:" + file, want: "from-file"},
		{ref: "file:" + empty, wantErr: "empty"},
		{ref: "file:" + filepath.Join(dir, "missing"), wantErr: "no such file"},
		{ref: "awssm:prod/port", want: "from-aws"},
		{ref: "awssm:nope", wantErr: "secret awssm:nope: ResourceNotFound"},
		{ref: "awssm:prod/json#clientId", want: "id-hunter2"},
		{ref: "awssm:prod/json#clientSecret", want: "sec-hunter2"},
		{ref: "awssm:prod/json#other", wantErr: "secret awssm:prod/json#other: json key other: no such key"},
		{ref: "awssm:prod/json#n", wantErr: "secret awssm:prod/json#n: json key n: its value is not a JSON string"},
		{ref: "awssm:prod/json#empty", wantErr: "secret awssm:prod/json#empty: the secret is empty"},
		{ref: "awssm:prod/plain#clientId", wantErr: "secret awssm:prod/plain#clientId: json key clientId: the SecretString is not a JSON object"},
		{ref: "awssm:prod/array#clientId", wantErr: "not a JSON object"},
		{ref: "awssm:prod/empty", wantErr: "secret awssm:prod/empty: the secret is empty"},
		{ref: "awssm:prod/json#", wantErr: "JSON key after '#' is empty"},
		{ref: "hunter2", wantErr: "must be a reference"},
		{ref: "plain:hunter2", wantErr: "must be a reference"},
	}
	for _, tt := range tests {
		t.Run(tt.ref, func(t *testing.T) {
			got, err := r.Resolve(context.Background(), tt.ref)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				noLeak(t, err, "hunter2")
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
	if _, err := (Resolver{}).Resolve(context.Background(), "awssm:x"); err == nil || !strings.Contains(err.Error(), "not configured") {
		t.Fatalf("awssm without a fetcher: %v", err)
	}
}

func TestParse(t *testing.T) {
	const arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/port-AbCdEf"
	good := map[string]Ref{
		"env:A":                     {Kind: "env", Arg: "A"},
		"file:/run/s#x":             {Kind: "file", Arg: "/run/s#x"},
		"awssm:prod/port":           {Kind: "awssm", Arg: "prod/port"},
		"awssm:prod/port#clientId":  {Kind: "awssm", Arg: "prod/port", Key: "clientId"},
		"awssm:a_b+c=d.e@f-g":       {Kind: "awssm", Arg: "a_b+c=d.e@f-g"},
		"awssm:" + arn:              {Kind: "awssm", Arg: arn},
		"awssm:" + arn + "#k":       {Kind: "awssm", Arg: arn, Key: "k"},
		"awssm:" + arn[:len(arn)-7]: {Kind: "awssm", Arg: arn[:len(arn)-7]},
		"awssm:arn:aws-cn:secretsmanager:cn-north-1:1:secret:x": {Kind: "awssm", Arg: "arn:aws-cn:secretsmanager:cn-north-1:1:secret:x"},
	}
	for ref, want := range good {
		if got, err := Parse(ref); err != nil || got != want {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", ref, got, err, want)
		}
	}
	bad := map[string]string{
		"":                       "must be a reference",
		"env:":                   "must be a reference",
		"awssm:":                 "must be a reference",
		"vault:x":                "must be a reference",
		"awssm:#k":               "name or ARN is empty",
		"awssm:x#":               "JSON key after '#' is empty",
		"awssm:has space":        "only letters, digits",
		"awssm:arn:aws:s3:::bkt": "not a Secrets Manager secret ARN",
		"awssm:arn:aws:secretsmanager::1:secret:x":         "not a Secrets Manager secret ARN",
		"awssm:arn:aws:secretsmanager:us-east-1:1:secret:": "not a Secrets Manager secret ARN",
	}
	for ref, want := range bad {
		if _, err := Parse(ref); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%q) = %v; want %q", ref, err, want)
		} else if !strings.Contains(ErrNotAReference.Error(), ref) && strings.Contains(err.Error(), ref) {
			t.Errorf("Parse(%q) repeats its input: %v", ref, err)
		}
	}
}

// A Value prints as its reference however it is formatted.
func TestValueNeverPrintsItsValue(t *testing.T) {
	v := NewValue("awssm:prod/port#clientSecret", "hunter2")
	for _, s := range []string{fmt.Sprint(v), fmt.Sprintf("%s %v %+v %#v %q", v, v, v, v, v)} {
		if strings.Contains(s, "hunter2") || !strings.Contains(s, "awssm:prod/port#clientSecret") {
			t.Fatalf("formatted as %q", s)
		}
	}
	if v.Get() != "hunter2" || v.Ref() != "awssm:prod/port#clientSecret" {
		t.Fatal(v.Get(), v.Ref())
	}
}
