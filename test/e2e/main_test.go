// Package e2e drives the real paved binary, as a child process, through the
// Port and GitLab simulators over real HTTP, with a real SQLite file — or,
// with PAVED_E2E_STORE=postgres, a real PostgreSQL database.
package e2e

import (
	"testing"

	"github.com/paved-idp/paved/internal/store/postgres/pgtest"
	"github.com/paved-idp/paved/test/harness"
)

var pavedBin string

func TestMain(m *testing.M) { harness.MainRun(m, &pavedBin, pgtest.Main) }
