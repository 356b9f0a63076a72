package port

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/paved-idp/paved/internal/clip"
)

// cachedUser is one UserTeams answer and when it goes stale.
type cachedUser struct {
	teams []string
	until time.Time
}

// UserTeams returns the identifiers of the teams of the Port user with this
// email, from GET /v1/users/{email}. Port's webhook names the user but not
// their teams, and team-based policy compares them with an entity's team,
// which holds team identifiers. Answers are cached for Options.UserCacheTTL;
// failures are not.
//
// Port documents the answer as {ok, user{email, ..., teams: [name],
// roles: [{name}], teamsIdentifiers: [identifier]}}. The identifiers are
// taken from teamsIdentifiers; only an answer without that field (older
// Port) falls back to the team names, which then stand in for identifiers.
func (c *Client) UserTeams(ctx context.Context, email string) ([]string, error) {
	email = strings.TrimSpace(email)
	if email == "" {
		return nil, fmt.Errorf("port: get user: empty email: %w", ErrInvalid)
	}
	// The email comes from the webhook body; it names the call in errors.
	op := "get user " + clip.String(email, 100)
	key := strings.ToLower(email)
	now := c.now()
	c.umu.Lock()
	if u, ok := c.users[key]; ok && now.Before(u.until) {
		c.umu.Unlock()
		return slices.Clone(u.teams), nil
	}
	c.umu.Unlock()

	var out struct {
		User *struct {
			Teams []json.RawMessage `json:"teams"`
			// A pointer, to tell "absent" (older Port) from "no teams".
			TeamsIdentifiers *[]string `json:"teamsIdentifiers"`
		} `json:"user"`
	}
	err := c.do(ctx, call{
		op: op, method: http.MethodGet,
		path: "/v1/users/" + url.PathEscape(email), out: &out,
	})
	if err != nil {
		return nil, err
	}
	if out.User == nil {
		return nil, fmt.Errorf("port: %s: answer has no user", op)
	}
	var teams []string
	if ids := out.User.TeamsIdentifiers; ids != nil {
		for _, id := range *ids {
			if id != "" {
				teams = append(teams, id)
			}
		}
	} else {
		teams = teamNames(out.User.Teams)
	}
	if teams == nil {
		teams = []string{}
	}

	c.umu.Lock()
	c.users[key] = cachedUser{teams: teams, until: now.Add(c.userTTL)}
	if len(c.users) > 1024 {
		// Keep the cache bounded without a background sweeper.
		for k, u := range c.users {
			if !now.Before(u.until) {
				delete(c.users, k)
			}
		}
	}
	c.umu.Unlock()
	return slices.Clone(teams), nil
}

// teamNames reads the names in a user's teams, the fallback when Port sends
// no teamsIdentifiers. Port's published schema lists them as strings, while
// its field selectors (teams.name, teams.provider) imply objects; both forms
// are read.
func teamNames(raw []json.RawMessage) []string {
	var names []string
	for _, r := range raw {
		var s string
		if json.Unmarshal(r, &s) == nil {
			if s != "" {
				names = append(names, s)
			}
			continue
		}
		var t struct {
			Name string `json:"name"`
		}
		if json.Unmarshal(r, &t) == nil && t.Name != "" {
			names = append(names, t.Name)
		}
	}
	return names
}
