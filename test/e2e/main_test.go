// Package e2e drives the real paved binary, as a child process, through the
// Port and GitLab simulators over real HTTP, with a real SQLite file.
package e2e

import (
	"testing"

	"github.com/paved-idp/paved/test/harness"
)

var pavedBin string

func TestMain(m *testing.M) { harness.Main(m, &pavedBin) }
