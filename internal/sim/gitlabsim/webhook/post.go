package webhook

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"time"
)

// Post delivers one hook body to url as GitLab does, sending token (when
// set) as X-Gitlab-Token and uuid as the event UUID and idempotency key. Any
// answer but 2xx is an error.
func Post(ctx context.Context, client *http.Client, url, token, uuid string, payload []byte) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(payload))
	if err != nil {
		return fmt.Errorf("build hook request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "GitLab/18.0.0-gitlabsim")
	req.Header.Set("X-Gitlab-Event", "Pipeline Hook")
	req.Header.Set("X-Gitlab-Event-UUID", uuid)
	req.Header.Set("X-Gitlab-Webhook-UUID", "5d5c1b3e-0000-4000-8000-000000000001")
	req.Header.Set("X-Gitlab-Instance", "http://gitlabsim")
	req.Header.Set("Idempotency-Key", uuid)
	if token != "" {
		req.Header.Set("X-Gitlab-Token", token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("post hook: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("post hook: %s", resp.Status)
	}
	return nil
}

// NewUUID returns a random (version 4) UUID for X-Gitlab-Event-UUID.
func NewUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}
