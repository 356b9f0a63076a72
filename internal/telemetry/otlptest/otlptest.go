// Package otlptest is an in-process OTLP/HTTP trace receiver for tests: it
// decodes what an exporter posts to /v1/traces, as a collector would, in
// either of OTLP/HTTP's encodings — binary protobuf, or JSON, which it reads
// with the official message types (protojson, unknown fields refused) after
// turning the hex ids OTLP's JSON uses into the base64 protojson expects.
package otlptest

import (
	"compress/gzip"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"

	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	common "go.opentelemetry.io/proto/otlp/common/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// Span is one received span, its ids in hex as W3C writes them.
type Span struct {
	Name, TraceID, SpanID, ParentID string
	Service                         string // the resource's service.name
	Attrs                           map[string]string
	Kind, StatusCode                int // OTLP's numbers: kind 2 server, 3 client; status 1 ok, 2 error
	StatusMessage                   string
	Events                          int
}

// Receiver collects spans.
type Receiver struct {
	*httptest.Server
	mu    sync.Mutex
	spans []Span
}

// New starts a receiver; its URL is the exporter's endpoint.
func New() *Receiver {
	r := &Receiver{}
	r.Server = httptest.NewServer(http.HandlerFunc(r.serve))
	return r
}

func (r *Receiver) serve(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost || req.URL.Path != "/v1/traces" {
		http.Error(w, "only POST /v1/traces", http.StatusNotFound)
		return
	}
	ct := req.Header.Get("Content-Type")
	if ct != "application/x-protobuf" && ct != "application/json" {
		http.Error(w, "want application/x-protobuf or application/json, got "+ct, http.StatusUnsupportedMediaType)
		return
	}
	var body io.Reader = req.Body
	if req.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(req.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = zr
	}
	raw, err := io.ReadAll(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var msg coltrace.ExportTraceServiceRequest
	if ct == "application/json" {
		raw, err = hexIDsToBase64(raw)
		if err == nil {
			err = protojson.Unmarshal(raw, &msg)
		}
	} else {
		err = proto.Unmarshal(raw, &msg)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var got []Span
	for _, rs := range msg.GetResourceSpans() {
		service := ""
		for _, kv := range rs.GetResource().GetAttributes() {
			if kv.GetKey() == "service.name" {
				service = kv.GetValue().GetStringValue()
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				sp := Span{Name: s.GetName(), TraceID: hex.EncodeToString(s.GetTraceId()), SpanID: hex.EncodeToString(s.GetSpanId()),
					ParentID: hex.EncodeToString(s.GetParentSpanId()), Service: service, Attrs: map[string]string{},
					Kind: int(s.GetKind()), StatusCode: int(s.GetStatus().GetCode()), StatusMessage: s.GetStatus().GetMessage(), Events: len(s.GetEvents())}
				for _, kv := range s.GetAttributes() {
					sp.Attrs[kv.GetKey()] = attrString(kv.GetValue())
				}
				got = append(got, sp)
			}
		}
	}
	r.mu.Lock()
	r.spans = append(r.spans, got...)
	r.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-protobuf")
	out, _ := proto.Marshal(&coltrace.ExportTraceServiceResponse{})
	_, _ = w.Write(out)
}

// hexIDsToBase64 rewrites traceId, spanId and parentSpanId (hex in OTLP's
// JSON) as base64, the encoding protojson gives bytes fields.
func hexIDsToBase64(raw []byte) ([]byte, error) {
	var doc any
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, err
	}
	var walk func(v any) error
	walk = func(v any) error {
		switch x := v.(type) {
		case map[string]any:
			for k, val := range x {
				if s, ok := val.(string); ok && (k == "traceId" || k == "spanId" || k == "parentSpanId") {
					b, err := hex.DecodeString(s)
					if err != nil {
						return fmt.Errorf("%s %q is not hex: %w", k, s, err)
					}
					x[k] = base64.StdEncoding.EncodeToString(b)
					continue
				}
				if err := walk(val); err != nil {
					return err
				}
			}
		case []any:
			for _, val := range x {
				if err := walk(val); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := walk(doc); err != nil {
		return nil, err
	}
	return json.Marshal(doc)
}

// attrString writes the attribute kinds paved sets as text.
func attrString(v *common.AnyValue) string {
	switch x := v.GetValue().(type) {
	case *common.AnyValue_StringValue:
		return x.StringValue
	case *common.AnyValue_IntValue:
		return strconv.FormatInt(x.IntValue, 10)
	case *common.AnyValue_BoolValue:
		return strconv.FormatBool(x.BoolValue)
	}
	return v.String()
}

// Spans returns what has arrived so far.
func (r *Receiver) Spans() []Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Span(nil), r.spans...)
}
