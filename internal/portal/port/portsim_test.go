package port

import (
	"context"
	"net/http/httptest"
	"reflect"
	"testing"

	"github.com/paved-idp/paved/internal/sim/portsim"
)

// TestAgainstPortsim runs the client against the Port simulator, which
// follows Port's API reference rather than this client: the user answer
// carries team names and teamsIdentifiers, and UserTeams must pick the
// identifiers, the values an entity's team holds.
func TestAgainstPortsim(t *testing.T) {
	sim := portsim.New(portsim.Config{
		ClientID: testClientID, ClientSecret: testClientSecret,
		Users: map[string]portsim.User{
			"dana@example.com": {FirstName: "Dana", Teams: []string{"Payments EU", "Platform"},
				TeamIdentifiers: []string{"payments_eu", "platform"}},
			"sam@example.com": {Teams: []string{"web"}}, // identifiers default to the names
		},
	})
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	c := NewClient(srv.URL, testClientID, testClientSecret, Options{HTTPClient: srv.Client()})
	ctx := context.Background()

	for email, want := range map[string][]string{
		"dana@example.com": {"payments_eu", "platform"},
		"sam@example.com":  {"web"},
	} {
		got, err := c.UserTeams(ctx, email)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("UserTeams(%s) = %v, want %v", email, got, want)
		}
	}
	if _, err := c.UserTeams(ctx, "nobody@example.com"); !IsPermanent(err) {
		t.Errorf("unknown user: err = %v, want a permanent error", err)
	}
}
