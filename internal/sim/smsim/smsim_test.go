package smsim

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
)

var created = time.Date(2026, 3, 1, 12, 0, 0, 500e6, time.UTC)

func newSim(t *testing.T, region string) (*Sim, *httptest.Server) {
	t.Helper()
	sim := New(Options{Region: region, Now: func() time.Time { return created }})
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	return sim, srv
}

// client is aws-sdk-go-v2's real client pointed at the simulator through
// BaseEndpoint, with static test credentials.
func client(srv *httptest.Server, region string) *secretsmanager.Client {
	return secretsmanager.New(secretsmanager.Options{
		Region:       region,
		BaseEndpoint: aws.String(srv.URL),
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "AKIDTEST", SecretAccessKey: "test-secret-key", Source: "test"}, nil
		}),
		HTTPClient: srv.Client(),
	})
}

func TestSDKReadsSecretValue(t *testing.T) {
	sim, srv := newSim(t, "eu-west-1")
	arn := sim.Put("prod/port", `{"clientId":"id-1"}`)
	c := client(srv, "eu-west-1")
	for _, id := range []string{"prod/port", arn, strings.TrimSuffix(arn, arn[len(arn)-7:])} {
		out, err := c.GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{SecretId: aws.String(id)})
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		if aws.ToString(out.SecretString) != `{"clientId":"id-1"}` || aws.ToString(out.Name) != "prod/port" || aws.ToString(out.ARN) != arn ||
			len(out.VersionStages) != 1 || out.VersionStages[0] != "AWSCURRENT" || aws.ToString(out.VersionId) == "" {
			t.Fatalf("%s: got %+v", id, out)
		}
		if !out.CreatedDate.Equal(created) {
			t.Fatalf("CreatedDate %v, want %v", out.CreatedDate, created)
		}
	}
	if !strings.HasPrefix(arn, "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/port-") || len(arn) != len("arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/port-")+6 {
		t.Fatalf("arn %s", arn)
	}
	if sim.Calls() != 3 {
		t.Fatalf("calls %d", sim.Calls())
	}
}

func TestSDKRotationAndStages(t *testing.T) {
	sim, srv := newSim(t, "us-east-1")
	sim.Put("gl", "v1")
	sim.Put("gl", "v2")
	c := client(srv, "us-east-1")
	get := func(in *secretsmanager.GetSecretValueInput) (*secretsmanager.GetSecretValueOutput, error) {
		in.SecretId = aws.String("gl")
		return c.GetSecretValue(context.Background(), in)
	}
	cur, err := get(&secretsmanager.GetSecretValueInput{})
	if err != nil || aws.ToString(cur.SecretString) != "v2" {
		t.Fatalf("current: %v %v", cur, err)
	}
	prev, err := get(&secretsmanager.GetSecretValueInput{VersionStage: aws.String("AWSPREVIOUS")})
	if err != nil || aws.ToString(prev.SecretString) != "v1" || prev.VersionStages[0] != "AWSPREVIOUS" {
		t.Fatalf("previous: %v %v", prev, err)
	}
	byID, err := get(&secretsmanager.GetSecretValueInput{VersionId: prev.VersionId})
	if err != nil || aws.ToString(byID.SecretString) != "v1" {
		t.Fatalf("by id: %v %v", byID, err)
	}
	_, err = get(&secretsmanager.GetSecretValueInput{VersionStage: aws.String("AWSPENDING")})
	var nf *types.ResourceNotFoundException
	if !errors.As(err, &nf) || !strings.Contains(err.Error(), "staging label: AWSPENDING") {
		t.Fatalf("pending: %v", err)
	}
}

func TestSDKErrors(t *testing.T) {
	sim, srv := newSim(t, "us-east-1")
	sim.Put("gone", "x")
	sim.Delete("gone")
	sim.PutBinary("bin", []byte{0, 1, 2})
	c := client(srv, "us-east-1")
	_, err := c.GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{SecretId: aws.String("nope")})
	var nf *types.ResourceNotFoundException
	if !errors.As(err, &nf) || nf.ErrorMessage() != "Secrets Manager can't find the specified secret." {
		t.Fatalf("missing: %v", err)
	}
	_, err = c.GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{SecretId: aws.String("gone")})
	var ir *types.InvalidRequestException
	if !errors.As(err, &ir) || !strings.Contains(err.Error(), "marked for deletion") {
		t.Fatalf("deleted: %v", err)
	}
	out, err := c.GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{SecretId: aws.String("bin")})
	if err != nil || out.SecretString != nil || string(out.SecretBinary) != "\x00\x01\x02" {
		t.Fatalf("binary: %+v %v", out, err)
	}
	// Signed for another region, as a client that ignores an ARN's region would.
	_, err = client(srv, "eu-central-1").GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{SecretId: aws.String("bin")})
	if err == nil || !strings.Contains(err.Error(), InvalidSignature+": Credential should be scoped to a valid region, not 'eu-central-1'") {
		t.Fatalf("wrong region: %v", err)
	}
}

// The raw protocol: what the simulator refuses, and the exact shapes.
func TestWire(t *testing.T) {
	sim, srv := newSim(t, "us-east-1")
	sim.Put("s", "value-1")
	const auth = "AWS4-HMAC-SHA256 Credential=AKIDTEST/20260301/us-east-1/secretsmanager/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=" +
		"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	headers := func(mod func(h http.Header)) http.Header {
		h := http.Header{}
		h.Set("X-Amz-Target", "secretsmanager.GetSecretValue")
		h.Set("Content-Type", "application/x-amz-json-1.1")
		h.Set("X-Amz-Date", "20260301T120000Z")
		h.Set("Authorization", auth)
		if mod != nil {
			mod(h)
		}
		return h
	}
	tests := []struct {
		name     string
		method   string
		header   http.Header
		body     string
		status   int
		wantType string
	}{
		{"ok", "POST", headers(nil), `{"SecretId":"s"}`, 200, ""},
		{"ok with stage", "POST", headers(nil), `{"SecretId":"s","VersionStage":"AWSCURRENT"}`, 200, ""},
		{"missing", "POST", headers(nil), `{"SecretId":"other"}`, 400, ResourceNotFound},
		{"no SecretId", "POST", headers(nil), `{}`, 400, Validation},
		{"not json", "POST", headers(nil), `SecretId=s`, 400, Serialization},
		{"wrong content type", "POST", headers(func(h http.Header) { h.Set("Content-Type", "application/json") }), `{"SecretId":"s"}`, 400, Serialization},
		{"other operation", "POST", headers(func(h http.Header) { h.Set("X-Amz-Target", "secretsmanager.PutSecretValue") }), `{}`, 400, UnknownOperation},
		{"GET", "GET", headers(nil), ``, 404, UnknownOperation},
		{"no auth", "POST", headers(func(h http.Header) { h.Del("Authorization") }), `{"SecretId":"s"}`, 403, MissingAuthentication},
		{"not sigv4", "POST", headers(func(h http.Header) { h.Set("Authorization", "Bearer abc") }), `{"SecretId":"s"}`, 400, IncompleteSignature},
		{"no date", "POST", headers(func(h http.Header) { h.Del("X-Amz-Date") }), `{"SecretId":"s"}`, 400, IncompleteSignature},
		{"date mismatch", "POST", headers(func(h http.Header) { h.Set("X-Amz-Date", "20260302T000000Z") }), `{"SecretId":"s"}`, 403, InvalidSignature},
		{"other region", "POST", headers(func(h http.Header) { h.Set("Authorization", strings.Replace(auth, "us-east-1", "eu-west-1", 1)) }), `{"SecretId":"s"}`, 403, InvalidSignature},
		{"other service", "POST", headers(func(h http.Header) { h.Set("Authorization", strings.Replace(auth, "/secretsmanager/", "/kms/", 1)) }), `{"SecretId":"s"}`, 403, InvalidSignature},
		{"host unsigned", "POST", headers(func(h http.Header) { h.Set("Authorization", strings.Replace(auth, "host;", "", 1)) }), `{"SecretId":"s"}`, 403, InvalidSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, srv.URL+"/", strings.NewReader(tt.body))
			req.Header = tt.header
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			raw, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.status || resp.Header.Get("Content-Type") != "application/x-amz-json-1.1" || resp.Header.Get("X-Amzn-Requestid") == "" {
				t.Fatalf("status %d %q, want %d: %s", resp.StatusCode, resp.Header.Get("Content-Type"), tt.status, raw)
			}
			var body map[string]any
			if err := json.Unmarshal(raw, &body); err != nil {
				t.Fatalf("body %s: %v", raw, err)
			}
			if tt.wantType != "" {
				if body["__type"] != tt.wantType {
					t.Fatalf("__type %v, want %s: %s", body["__type"], tt.wantType, raw)
				}
				if strings.Contains(string(raw), "value-1") {
					t.Fatalf("error body carries the value: %s", raw)
				}
				return
			}
			for _, k := range []string{"ARN", "Name", "VersionId", "SecretString", "VersionStages", "CreatedDate"} {
				if _, ok := body[k]; !ok {
					t.Fatalf("no %s in %s", k, raw)
				}
			}
			if d, ok := body["CreatedDate"].(float64); !ok || d != 1772366400.5 {
				t.Fatalf("CreatedDate %v is not epoch seconds", body["CreatedDate"])
			}
		})
	}
	if want := `{"__type":"ResourceNotFoundException","message":"Secrets Manager can't find the specified secret."}`; !strings.Contains(errorBody(t, srv, headers(nil), `{"SecretId":"x"}`), want) {
		t.Fatalf("not-found body is not %s", want)
	}
}

func errorBody(t *testing.T, srv *httptest.Server, h http.Header, body string) string {
	req, _ := http.NewRequest("POST", srv.URL+"/", strings.NewReader(body))
	req.Header = h
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return string(raw)
}
