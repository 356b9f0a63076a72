package webhook_test

import (
	"net/http"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/paved-idp/paved/internal/portal/port/webhook"
)

// The intake's first two steps for Port's default webhook body: the
// signature check (HMAC-SHA256 over "<timestamp>.<body>") and the decode.
func benchBody(b *testing.B) ([]byte, http.Header, webhook.Verifier) {
	body, err := os.ReadFile("testdata/day2_default.json")
	if err != nil {
		b.Fatal(err)
	}
	secret := []byte("port-client-secret-123")
	now := time.Now()
	ts := strconv.FormatInt(now.Unix(), 10)
	hdr := http.Header{}
	hdr.Set(webhook.HeaderTimestamp, ts)
	hdr.Set(webhook.HeaderSignature, webhook.Sign(secret, ts, body))
	return body, hdr, webhook.Verifier{Secret: secret, Now: func() time.Time { return now }}
}

func BenchmarkVerify(b *testing.B) {
	body, hdr, v := benchBody(b)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if err := v.Verify(hdr, body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	body, _, _ := benchBody(b)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := webhook.Decode(body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyDecode(b *testing.B) {
	body, hdr, v := benchBody(b)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if err := v.Verify(hdr, body); err != nil {
			b.Fatal(err)
		}
		if _, err := webhook.Decode(body); err != nil {
			b.Fatal(err)
		}
	}
}
