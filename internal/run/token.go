package run

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
)

// Token is the bearer token a run's pipeline uses to post logs and outputs
// back to paved: an HMAC of the run id, so paved stores nothing per run and
// a token opens only its own run.
func Token(key []byte, runID string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("paved-run-token:" + runID))
	return hex.EncodeToString(m.Sum(nil))
}

// ValidToken checks a run token in constant time.
func ValidToken(key []byte, runID, token string) bool {
	return hmac.Equal([]byte(Token(key, runID)), []byte(token))
}
