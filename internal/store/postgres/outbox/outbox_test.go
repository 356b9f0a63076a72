package outbox_test

import (
	"context"
	"encoding/json"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/paved-idp/paved/internal/store/postgres"
	"github.com/paved-idp/paved/internal/store/postgres/pgtest"
)

// The outbox is tested through the store that embeds it: its tables are
// the store's, made by the store's migrations, and its tasks are written
// by the store's changes.

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// open opens a store on dsn, closed at the test's end.
func open(t testing.TB, dsn string) *postgres.Store { return pgtest.Open(t, dsn) }

// connect opens a connection of the test's own to dsn, for what it reads
// and writes behind the store's back; closed at the test's end.
func connect(t testing.TB, dsn string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func mustJSON(t testing.TB, data []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(data, v); err != nil {
		t.Errorf("decode %s: %v", data, err)
	}
}
