package secret

import (
	"context"
	"errors"
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

func TestResolve(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "s")
	if err := os.WriteFile(file, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	_ = os.WriteFile(empty, nil, 0o600)
	env := map[string]string{"SET": "from-env"}
	r := Resolver{LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }, AWS: fakeSM{"prod/port": "from-aws"}}
	tests := []struct {
		ref, want, wantErr string
	}{
		{ref: "env:SET", want: "from-env"},
		{ref: "env:UNSET", wantErr: "UNSET is not set"},
		{ref: "file:" + file, want: "from-file"},
		{ref: "file:" + empty, wantErr: "empty"},
		{ref: "file:" + filepath.Join(dir, "missing"), wantErr: "no such file"},
		{ref: "awssm:prod/port", want: "from-aws"},
		{ref: "awssm:nope", wantErr: "ResourceNotFound"},
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
				if strings.Contains(err.Error(), "hunter2") {
					t.Fatalf("error leaks the value: %v", err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
	if _, err := (Resolver{}).Resolve(context.Background(), "awssm:x"); err == nil {
		t.Fatal("awssm without a fetcher resolved")
	}
}
