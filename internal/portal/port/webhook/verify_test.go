package webhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"testing"
	"time"
)

var (
	testSecret = []byte("port-client-secret-123")
	testNow    = time.Date(2026, 11, 3, 9, 12, 45, 0, time.UTC)
)

func readSample(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func signedHeader(secret []byte, ts time.Time, body []byte) http.Header {
	s := strconv.FormatInt(ts.Unix(), 10)
	h := http.Header{}
	h.Set(HeaderTimestamp, s)
	h.Set(HeaderSignature, Sign(secret, s, body))
	return h
}

func TestVerify(t *testing.T) {
	body := readSample(t, "day2_default.json")

	// Re-serialised JSON has the same meaning but other bytes.
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatal(err)
	}
	reser, _ := json.Marshal(v)

	tampered := bytes.Replace(body, []byte(`"orders"`), []byte(`"orderz"`), 1)
	good := signedHeader(testSecret, testNow, body)

	tests := []struct {
		name   string
		header http.Header
		body   []byte
		want   error
	}{
		{"good signature", good, body, nil},
		{"several signatures, one good", header(good.Get(HeaderTimestamp),
			"v1,AAAA "+good.Get(HeaderSignature)), body, nil},
		{"several after one version", header(good.Get(HeaderTimestamp),
			"v1,AAAA,"+good.Get(HeaderSignature)[3:]), body, nil},
		{"unknown version only", header(good.Get(HeaderTimestamp),
			"v2,"+good.Get(HeaderSignature)[3:]), body, ErrBadSignature},
		{"signature without version", header(good.Get(HeaderTimestamp),
			good.Get(HeaderSignature)[3:]), body, ErrBadSignature},
		{"wrong secret", signedHeader([]byte("another-secret"), testNow, body), body, ErrBadSignature},
		{"tampered body", good, tampered, ErrBadSignature},
		{"re-serialised JSON", good, reser, ErrBadSignature},
		{"signature not base64", header(good.Get(HeaderTimestamp), "v1,!!!"), body, ErrBadSignature},
		{"timestamp changed after signing", header(strconv.FormatInt(testNow.Unix()+1, 10),
			good.Get(HeaderSignature)), body, ErrBadSignature},
		{"no headers", http.Header{}, body, ErrMissingSignature},
		{"no signature", header(good.Get(HeaderTimestamp), ""), body, ErrMissingSignature},
		{"no timestamp", header("", good.Get(HeaderSignature)), body, ErrMissingSignature},
		{"stale timestamp", signedHeader(testSecret, testNow.Add(-6*time.Minute), body), body, ErrStaleTimestamp},
		{"future timestamp", signedHeader(testSecret, testNow.Add(6*time.Minute), body), body, ErrStaleTimestamp},
		{"just inside tolerance", signedHeader(testSecret, testNow.Add(-5*time.Minute), body), body, nil},
		{"timestamp in milliseconds", func() http.Header {
			ms := strconv.FormatInt(testNow.UnixMilli(), 10)
			return header(ms, Sign(testSecret, ms, body))
		}(), body, ErrStaleTimestamp},
		{"timestamp not a number", func() http.Header {
			return header("yesterday", Sign(testSecret, "yesterday", body))
		}(), body, ErrStaleTimestamp},
	}
	vf := Verifier{Secret: testSecret, Now: func() time.Time { return testNow }}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := vf.Verify(tt.header, tt.body)
			if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
}

func header(ts, sig string) http.Header {
	h := http.Header{}
	if ts != "" {
		h.Set(HeaderTimestamp, ts)
	}
	if sig != "" {
		h.Set(HeaderSignature, sig)
	}
	return h
}

func TestVerifyToleranceAndSecret(t *testing.T) {
	body := []byte(`{"a":1}`)
	h := signedHeader(testSecret, testNow.Add(-90*time.Second), body)
	now := func() time.Time { return testNow }

	if err := (Verifier{Secret: testSecret, Now: now, Tolerance: time.Minute}).Verify(h, body); !errors.Is(err, ErrStaleTimestamp) {
		t.Errorf("1m tolerance, 90s old: %v, want ErrStaleTimestamp", err)
	}
	if err := (Verifier{Secret: testSecret, Now: now, Tolerance: 2 * time.Minute}).Verify(h, body); err != nil {
		t.Errorf("2m tolerance, 90s old: %v", err)
	}
	empty := signedHeader(nil, testNow, body)
	if err := (Verifier{Now: now}).Verify(empty, body); !errors.Is(err, ErrBadSignature) {
		t.Errorf("no secret: %v, want ErrBadSignature", err)
	}
}

// TestVerifyOverHTTP sends a signed request through a real server, the way
// Port does, and checks the handler sees the headers and raw bytes.
func TestVerifyOverHTTP(t *testing.T) {
	body := readSample(t, "create_no_entity.json")
	vf := Verifier{Secret: testSecret, Now: func() time.Time { return testNow }}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw := new(bytes.Buffer)
		if _, err := raw.ReadFrom(r.Body); err != nil {
			t.Error(err)
		}
		if err := vf.Verify(r.Header, raw.Bytes()); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()

	ts := strconv.FormatInt(testNow.Unix(), 10)
	req, _ := http.NewRequest(http.MethodPost, srv.URL, bytes.NewReader(body))
	// Port's docs spell the headers in lower case.
	req.Header["x-port-timestamp"] = []string{ts}
	req.Header["x-port-signature"] = []string{Sign(testSecret, ts, body)}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("status %d, want 202", resp.StatusCode)
	}
}

func TestSignKnownVector(t *testing.T) {
	// Computed independently: printf '1700000000.{}' | openssl dgst -sha256 -hmac secret -binary | base64
	got := Sign([]byte("secret"), "1700000000", []byte("{}"))
	if got != knownVector {
		t.Fatalf("Sign = %s, want %s", got, knownVector)
	}
}

const knownVector = "v1,uFabeHmf+ePL/w/C1jozorV/MoKr0Hw3rl6OfXml8WM="
