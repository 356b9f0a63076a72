// Package catalogcmd is paved's commands for the catalog as code:
// `paved render port|backstage`, `paved sync port` and `paved validate`.
// actions/*.yaml and blueprints/*.json are the single source of truth; these
// commands turn them into what Port and Backstage read, put them into Port,
// and check them in the platform team's CI.
package catalogcmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/paved-idp/paved/internal/config"
	"github.com/paved-idp/paved/internal/portal/port"
	"github.com/paved-idp/paved/internal/portsync"
	"github.com/paved-idp/paved/internal/render"
	"github.com/paved-idp/paved/internal/secret"
	"github.com/paved-idp/paved/internal/validate"
)

// Commands returns the commands, for the root command to add.
func Commands() []*cobra.Command {
	renderCmd := &cobra.Command{Use: "render", Short: "Render the catalog for a portal: port or backstage"}
	renderCmd.AddCommand(renderPortCmd(), renderBackstageCmd())
	syncCmd := &cobra.Command{Use: "sync", Short: "Put the rendered catalog into a portal: port"}
	syncCmd.AddCommand(syncPortCmd())
	return []*cobra.Command{renderCmd, syncCmd, validateCmd()}
}

// sources are where the definitions are; --config supplies what no flag
// says.
type sources struct {
	config, actions, blueprints, policy, url string
	cfg                                      *config.Config
}

func (s *sources) flags(cmd *cobra.Command, policy, url bool) {
	f := cmd.Flags()
	f.StringVar(&s.config, "config", "", "paved's config file: its actionsDir, blueprintsDir, policyDir, server.publicURL and port settings are the defaults")
	f.StringVar(&s.actions, "actions", "actions", "action definitions directory")
	f.StringVar(&s.blueprints, "blueprints", "blueprints", "Port blueprints directory (\"\": do not check outputs against blueprints)")
	if policy {
		f.StringVar(&s.policy, "policy", "actions/policy", "policy directory (Rego and its *_test.rego)")
	}
	if url {
		f.StringVar(&s.url, "url", "", "paved's public webhook URL for Port (default: the config's server.publicURL + /webhooks/port)")
	}
}

// resolve reads --config, if given, for the flags left unset.
func (s *sources) resolve(cmd *cobra.Command) error {
	if s.config == "" {
		return nil
	}
	cfg, err := config.Load(s.config, os.Environ())
	if err != nil {
		return err
	}
	s.cfg = &cfg
	for _, d := range []struct {
		flag string
		dst  *string
		val  string
	}{{"actions", &s.actions, cfg.ActionsDir}, {"blueprints", &s.blueprints, cfg.BlueprintsDir}, {"policy", &s.policy, cfg.PolicyDir}} {
		if f := cmd.Flags().Lookup(d.flag); f != nil && !f.Changed && d.val != "" {
			*d.dst = d.val
		}
	}
	if s.url == "" && cfg.Server.PublicURL != "" {
		s.url = strings.TrimRight(cfg.Server.PublicURL, "/") + "/webhooks/port"
	}
	return nil
}

// load reads the definitions, refusing any with problems: rendering a
// broken catalog would only move the problem to the portal.
func (s *sources) load(cmd *cobra.Command) (validate.Definitions, error) {
	defs, probs := validate.Load(s.actions, s.blueprints)
	if len(probs) > 0 {
		fmt.Fprintln(cmd.ErrOrStderr(), validate.Report(probs))
		return defs, fmt.Errorf("%d problem(s) in the definitions", len(probs))
	}
	return defs, nil
}

func (s *sources) renderPort(cmd *cobra.Command) (render.Port, error) {
	if err := s.resolve(cmd); err != nil {
		return render.Port{}, err
	}
	if s.url == "" {
		return render.Port{}, errors.New("need paved's webhook URL: give --url, or --config with server.publicURL")
	}
	defs, err := s.load(cmd)
	if err != nil {
		return render.Port{}, err
	}
	return render.RenderPort(defs.Actions, defs.Blueprints, render.PortOptions{WebhookURL: s.url})
}

func renderPortCmd() *cobra.Command {
	var src sources
	var out string
	cmd := &cobra.Command{
		Use:   "port",
		Short: "Write Port's blueprint and action JSON (to --out DIR/{blueprints,actions}/<id>.json, or stdout)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := src.renderPort(cmd)
			if err != nil {
				return err
			}
			if out == "" {
				return writeJSON(cmd.OutOrStdout(), map[string]any{"blueprints": p.Blueprints, "actions": p.Actions})
			}
			for dir, docs := range map[string][]map[string]any{"blueprints": p.Blueprints, "actions": p.Actions} {
				for _, d := range docs {
					b, err := render.JSON(d)
					if err != nil {
						return err
					}
					if err := writeFile(filepath.Join(out, dir, fmt.Sprint(d["identifier"])+".json"), b); err != nil {
						return err
					}
				}
			}
			return nil
		},
	}
	src.flags(cmd, false, true)
	cmd.Flags().StringVar(&out, "out", "", "directory to write into (default: stdout, one JSON document)")
	return cmd
}

func renderBackstageCmd() *cobra.Command {
	var src sources
	var out string
	cmd := &cobra.Command{
		Use:   "backstage",
		Short: "Write one scaffolder Template per action (to --out DIR/<id>.yaml, or stdout)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := src.resolve(cmd); err != nil {
				return err
			}
			defs, err := src.load(cmd)
			if err != nil {
				return err
			}
			ts, err := render.RenderBackstage(defs.Actions)
			if err != nil {
				return err
			}
			if out == "" {
				docs := make([]any, len(ts))
				for i := range ts {
					docs[i] = ts[i]
				}
				b, err := render.YAML(docs...)
				if err != nil {
					return err
				}
				_, err = cmd.OutOrStdout().Write(b)
				return err
			}
			for _, t := range ts {
				b, err := render.YAML(t)
				if err != nil {
					return err
				}
				if err := writeFile(filepath.Join(out, t.Metadata.Name+".yaml"), b); err != nil {
					return err
				}
			}
			return nil
		},
	}
	src.flags(cmd, false, false)
	cmd.Flags().StringVar(&out, "out", "", "directory to write into (default: stdout, YAML documents)")
	return cmd
}

func syncPortCmd() *cobra.Command {
	var src sources
	var baseURL string
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "port",
		Short: "Create or update Port's blueprints and actions to match the rendered catalog; --dry-run prints the diff only",
		Long: "Reads each blueprint and action from Port, prints what differs, and creates or replaces only that:\n" +
			"blueprints first, then actions. A second run changes nothing. Port credentials come from\n" +
			"PORT_CLIENT_ID and PORT_CLIENT_SECRET, or else from the config's port.clientID/clientSecret references.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := src.renderPort(cmd)
			if err != nil {
				return err
			}
			api, err := src.portClient(cmd.Context(), baseURL)
			if err != nil {
				return err
			}
			_, err = portsync.Sync(cmd.Context(), portsync.Client{Port: api}, p, portsync.Options{DryRun: dryRun, Out: cmd.OutOrStdout()})
			return err
		},
	}
	src.flags(cmd, false, true)
	cmd.Flags().StringVar(&baseURL, "base-url", "", "Port's API (default: the config's port.baseURL, else "+port.DefaultBaseURL+")")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print what would change and write nothing")
	return cmd
}

// portClient builds the Port client from the environment's credentials, or
// the config's references.
func (s *sources) portClient(ctx context.Context, baseURL string) (*port.Client, error) {
	id, sec := os.Getenv("PORT_CLIENT_ID"), os.Getenv("PORT_CLIENT_SECRET")
	if (id == "" || sec == "") && s.cfg != nil {
		var err error
		if id, err = resolveSecret(ctx, s.cfg.Port.ClientID); err != nil {
			return nil, fmt.Errorf("port.clientID: %w", err)
		}
		if sec, err = resolveSecret(ctx, s.cfg.Port.ClientSecret); err != nil {
			return nil, fmt.Errorf("port.clientSecret: %w", err)
		}
	}
	if id == "" || sec == "" {
		return nil, errors.New("need Port credentials: set PORT_CLIENT_ID and PORT_CLIENT_SECRET, or give --config with port.clientID and port.clientSecret")
	}
	if baseURL == "" && s.cfg != nil {
		baseURL = s.cfg.Port.BaseURL
	}
	return port.NewClient(baseURL, id, sec, port.Options{HTTPClient: &http.Client{Timeout: 30 * time.Second}}), nil
}

// resolveSecret reads one secret reference; awssm: ones through AWS's
// default credential chain.
func resolveSecret(ctx context.Context, ref string) (string, error) {
	r := secret.Resolver{}
	if p, err := secret.Parse(ref); err == nil && p.Kind == "awssm" {
		aws, err := secret.NewAWS(ctx)
		if err != nil {
			return "", err
		}
		r.AWS = aws
	}
	return r.Resolve(ctx, ref)
}

func validateCmd() *cobra.Command {
	var src sources
	cmd := &cobra.Command{
		Use:   "validate",
		Short: "Check every action, blueprint and policy, and run the Rego unit tests; problems print as file:line: message",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := src.resolve(cmd); err != nil {
				return err
			}
			probs := validate.Dirs(cmd.Context(), src.actions, src.blueprints, src.policy)
			if len(probs) > 0 {
				fmt.Fprintln(cmd.ErrOrStderr(), validate.Report(probs))
				return fmt.Errorf("%d problem(s)", len(probs))
			}
			fmt.Fprintf(cmd.OutOrStdout(), "ok: %s, %s and %s\n", src.actions, src.blueprints, src.policy)
			return nil
		},
	}
	src.flags(cmd, true, false)
	return cmd
}

func writeJSON(w io.Writer, v any) error {
	b, err := render.JSON(v)
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

func writeFile(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
