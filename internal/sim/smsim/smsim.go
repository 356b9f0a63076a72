// Package smsim simulates AWS Secrets Manager's GetSecretValue for tests and
// the demo: an http.Handler speaking the AWS JSON 1.1 protocol as AWS
// documents it, so that aws-sdk-go-v2's real client can be pointed at it
// (AWS_ENDPOINT_URL_SECRETS_MANAGER, or BaseEndpoint on
// secretsmanager.Options).
//
// The wire format:
//
//	POST /
//	X-Amz-Target: secretsmanager.GetSecretValue
//	Content-Type: application/x-amz-json-1.1
//	Authorization: AWS4-HMAC-SHA256 Credential=<key>/<yyyymmdd>/<region>/secretsmanager/aws4_request, SignedHeaders=..., Signature=<hex>
//	{"SecretId": "<name or ARN>", "VersionId"?: "...", "VersionStage"?: "AWSCURRENT"}
//
//	200 {"ARN","Name","VersionId","SecretString" | "SecretBinary","VersionStages":[...],"CreatedDate":<epoch seconds>}
//	400 {"__type":"ResourceNotFoundException","message":"Secrets Manager can't find the specified secret."}
//
// Signatures are not checked cryptographically, but a request must carry an
// Authorization header of SigV4's shape, scoped to the simulator's region and
// to secretsmanager, with a matching X-Amz-Date: a client that signs for the
// wrong region is refused as AWS refuses it.
package smsim

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Error types of the simulated API, as AWS names them in "__type".
const (
	ResourceNotFound      = "ResourceNotFoundException"
	InvalidRequest        = "InvalidRequestException"
	InvalidParameter      = "InvalidParameterException"
	MissingAuthentication = "MissingAuthenticationTokenException"
	IncompleteSignature   = "IncompleteSignatureException"
	InvalidSignature      = "InvalidSignatureException"
	UnknownOperation      = "UnknownOperationException"
	Serialization         = "SerializationException"
	Validation            = "ValidationException"
)

const (
	jsonType     = "application/x-amz-json-1.1"
	targetPrefix = "secretsmanager."
	msgNotFound  = "Secrets Manager can't find the specified secret."
	stageCurrent = "AWSCURRENT"
	stagePrev    = "AWSPREVIOUS"
	maxBodyBytes = 64 << 10
)

// Options configure a Sim.
type Options struct {
	Region  string           // default us-east-1
	Account string           // default 123456789012
	Now     func() time.Time // CreatedDate's clock; nil means time.Now
}

// Sim is a simulated Secrets Manager in one region of one account. It is
// safe for concurrent use.
type Sim struct {
	opt Options

	mu      sync.Mutex
	secrets map[string]*secret // by name
	calls   int
	seq     int

	requests atomic.Int64
}

type secret struct {
	name, arn string
	deleted   bool
	versions  []*version // oldest first
}

type version struct {
	id      string
	str     *string
	bin     []byte
	stages  []string
	created time.Time
}

// New returns an empty simulator.
func New(opt Options) *Sim {
	if opt.Region == "" {
		opt.Region = "us-east-1"
	}
	if opt.Account == "" {
		opt.Account = "123456789012"
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	return &Sim{opt: opt, secrets: map[string]*secret{}}
}

// Region is the region requests must be signed for.
func (s *Sim) Region() string { return s.opt.Region }

// Put creates the secret name with value, or rotates it: the new version
// becomes AWSCURRENT, the one before AWSPREVIOUS. It returns the secret's ARN.
func (s *Sim) Put(name, value string) string { return s.put(name, &value, nil) }

// PutBinary is Put for a SecretBinary secret.
func (s *Sim) PutBinary(name string, value []byte) string {
	return s.put(name, nil, append([]byte(nil), value...))
}

func (s *Sim) put(name string, str *string, bin []byte) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	sec, ok := s.secrets[name]
	if !ok {
		sec = &secret{name: name, arn: s.arnOf(name)}
		s.secrets[name] = sec
	}
	for _, v := range sec.versions {
		switch {
		case v.has(stageCurrent):
			v.stages = []string{stagePrev}
		case v.has(stagePrev):
			v.stages = nil // deprecated: reachable by VersionId only
		}
	}
	s.seq++
	sec.versions = append(sec.versions, &version{id: versionID(name, s.seq), str: str, bin: bin,
		stages: []string{stageCurrent}, created: s.opt.Now()})
	sec.deleted = false
	return sec.arn
}

// Delete schedules the secret for deletion: reads of it fail with
// InvalidRequestException until it is Put again.
func (s *Sim) Delete(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sec, ok := s.secrets[name]; ok {
		sec.deleted = true
	}
}

// ARN returns the ARN the secret name has (or would have) here.
func (s *Sim) ARN(name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sec, ok := s.secrets[name]; ok {
		return sec.arn
	}
	return s.arnOf(name)
}

// Calls counts the GetSecretValue requests that passed authentication.
func (s *Sim) Calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

// arnOf is name's ARN; AWS appends six random characters to the name, the
// simulator six derived from it, so that ARNs are stable across runs.
func (s *Sim) arnOf(name string) string {
	sum := sha256.Sum256([]byte(name))
	const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	suffix := make([]byte, 6)
	for i := range suffix {
		suffix[i] = letters[int(sum[i])%len(letters)]
	}
	return fmt.Sprintf("arn:aws:secretsmanager:%s:%s:secret:%s-%s", s.opt.Region, s.opt.Account, name, suffix)
}

func versionID(name string, seq int) string {
	sum := sha256.Sum256([]byte(name + "#" + strconv.Itoa(seq)))
	h := fmt.Sprintf("%x", sum[:16])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

func (v *version) has(stage string) bool {
	for _, st := range v.stages {
		if st == stage {
			return true
		}
	}
	return false
}

// lookup finds a secret by name, full ARN or partial ARN (the ARN without
// the six-character suffix), as AWS does.
func (s *Sim) lookup(id string) *secret {
	if sec, ok := s.secrets[id]; ok {
		return sec
	}
	for _, sec := range s.secrets {
		if id == sec.arn || id == sec.arn[:len(sec.arn)-7] {
			return sec
		}
	}
	return nil
}

type getSecretValueInput struct {
	SecretID     *string `json:"SecretId"`
	VersionID    *string `json:"VersionId"`
	VersionStage *string `json:"VersionStage"`
}

type getSecretValueOutput struct {
	ARN           string      `json:"ARN"`
	Name          string      `json:"Name"`
	VersionID     string      `json:"VersionId"`
	SecretString  *string     `json:"SecretString,omitempty"`
	SecretBinary  []byte      `json:"SecretBinary,omitempty"` // base64, as JSON 1.1 sends blobs
	VersionStages []string    `json:"VersionStages"`
	CreatedDate   json.Number `json:"CreatedDate"` // epoch seconds, as JSON 1.1 sends timestamps
}

// ServeHTTP answers one AWS JSON 1.1 request.
func (s *Sim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("x-amzn-RequestId", versionID("request", int(s.requests.Add(1))))
	if r.Method != http.MethodPost || r.URL.Path != "/" {
		fail(w, http.StatusNotFound, UnknownOperation, "")
		return
	}
	if status, typ, msg := checkAuth(r, s.opt.Region); typ != "" {
		fail(w, status, typ, msg)
		return
	}
	op, ok := strings.CutPrefix(r.Header.Get("X-Amz-Target"), targetPrefix)
	if !ok || op != "GetSecretValue" {
		fail(w, http.StatusBadRequest, UnknownOperation, "")
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != jsonType {
		fail(w, http.StatusBadRequest, Serialization, "Content-Type must be "+jsonType)
		return
	}
	var in getSecretValueInput
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBodyBytes)).Decode(&in); err != nil {
		fail(w, http.StatusBadRequest, Serialization, "Start of structure or map found where not expected.")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if in.SecretID == nil || *in.SecretID == "" {
		fail(w, http.StatusBadRequest, Validation, "1 validation error detected: Value null at 'secretId' failed to satisfy constraint: Member must not be null")
		return
	}
	sec := s.lookup(*in.SecretID)
	if sec == nil {
		fail(w, http.StatusBadRequest, ResourceNotFound, msgNotFound)
		return
	}
	if sec.deleted {
		fail(w, http.StatusBadRequest, InvalidRequest, "You can't perform this operation on the secret because it was marked for deletion.")
		return
	}
	v, status, typ, msg := sec.pick(in.VersionID, in.VersionStage)
	if typ != "" {
		fail(w, status, typ, msg)
		return
	}
	out := getSecretValueOutput{ARN: sec.arn, Name: sec.name, VersionID: v.id, SecretString: v.str, SecretBinary: v.bin,
		VersionStages: append([]string{}, v.stages...),
		CreatedDate:   json.Number(strconv.FormatFloat(float64(v.created.UnixMilli())/1000, 'f', 3, 64))}
	w.Header().Set("Content-Type", jsonType)
	_ = json.NewEncoder(w).Encode(out)
}

// pick chooses the version: by VersionId, by VersionStage, or AWSCURRENT.
func (sec *secret) pick(id, stage *string) (*version, int, string, string) {
	var byID *version
	if id != nil {
		for _, v := range sec.versions {
			if v.id == *id {
				byID = v
			}
		}
		if byID == nil {
			return nil, http.StatusBadRequest, ResourceNotFound, "Secrets Manager can't find the specified secret value for VersionId: " + *id
		}
	}
	want := stageCurrent
	if stage != nil {
		want = *stage
	} else if byID != nil {
		return byID, 0, "", ""
	}
	for _, v := range sec.versions {
		if !v.has(want) {
			continue
		}
		if byID != nil && byID != v {
			return nil, http.StatusBadRequest, InvalidParameter, "The VersionId and VersionStage you specified refer to different versions of the secret."
		}
		return v, 0, "", ""
	}
	return nil, http.StatusBadRequest, ResourceNotFound, "Secrets Manager can't find the specified secret value for staging label: " + want
}

// sigV4 is the shape of a SigV4 Authorization header.
var sigV4 = regexp.MustCompile(`^AWS4-HMAC-SHA256 Credential=([^/,\s]+)/(\d{8})/([a-z0-9-]+)/([a-z0-9-]+)/aws4_request, ?SignedHeaders=([a-z0-9;-]+), ?Signature=[0-9a-f]{64}$`)

var amzDate = regexp.MustCompile(`^\d{8}T\d{6}Z$`)

// checkAuth requires a SigV4-shaped Authorization header for region and
// secretsmanager; the signature itself is not verified.
func checkAuth(r *http.Request, region string) (int, string, string) {
	auth := r.Header.Get("Authorization")
	if auth == "" {
		return http.StatusForbidden, MissingAuthentication, "Missing Authentication Token"
	}
	m := sigV4.FindStringSubmatch(auth)
	if m == nil {
		return http.StatusBadRequest, IncompleteSignature, "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' parameters (AWS4-HMAC-SHA256)."
	}
	date, scopeRegion, service, signed := m[2], m[3], m[4], ";"+m[5]+";"
	xdate := r.Header.Get("X-Amz-Date")
	if !amzDate.MatchString(xdate) {
		return http.StatusBadRequest, IncompleteSignature, "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
	}
	if !strings.HasPrefix(xdate, date) {
		return http.StatusForbidden, InvalidSignature, "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '" + date + "' != '" + xdate[:8] + "'"
	}
	if scopeRegion != region {
		return http.StatusForbidden, InvalidSignature, "Credential should be scoped to a valid region, not '" + scopeRegion + "'. "
	}
	if service != "secretsmanager" {
		return http.StatusForbidden, InvalidSignature, "Credential should be scoped to correct service: 'secretsmanager'. "
	}
	for _, h := range []string{"host", "x-amz-date"} {
		if !strings.Contains(signed, ";"+h+";") {
			return http.StatusForbidden, InvalidSignature, "The request signature does not sign the " + h + " header."
		}
	}
	return 0, "", ""
}

// fail writes an AWS JSON 1.1 error. aws-sdk-go-v2 reads the type from
// "__type" and the message from "message" (or "Message").
func fail(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("Content-Type", jsonType)
	w.WriteHeader(status)
	body := map[string]string{"__type": typ}
	if msg != "" {
		body["message"] = msg
	}
	_ = json.NewEncoder(w).Encode(body)
}
