package smsim

import (
	"os"
	"path/filepath"
	"testing"
)

// Isolate gives aws-sdk-go-v2's default credential chain, for one test, an
// environment of its own: no profile or instance role, empty shared files,
// static credentials only when withCreds, region (unless empty) and the
// simulator at endpoint (unless empty) as Secrets Manager. It sets the
// process environment: tests using it must not run in parallel.
func Isolate(t testing.TB, region string, withCreds bool, endpoint string) {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{"config", "credentials"} {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE",
		"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SECRETS_MANAGER", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"} {
		t.Setenv(k, "") // restored after the test
		os.Unsetenv(k)
	}
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	if region != "" {
		t.Setenv("AWS_REGION", region)
	}
	if withCreds {
		t.Setenv("AWS_ACCESS_KEY_ID", "AKIDTEST")
		t.Setenv("AWS_SECRET_ACCESS_KEY", "test-secret-key")
	}
	if endpoint != "" {
		t.Setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", endpoint)
	}
}
