// Command paved is the backend of an Internal Developer Platform: it turns
// Port and Backstage actions into policy-checked GitLab pipelines running
// Pulumi, and reports their results back to the portal.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/paved-idp/paved/internal/app"
	"github.com/paved-idp/paved/internal/callback"
	"github.com/paved-idp/paved/internal/catalogcmd"
	"github.com/paved-idp/paved/internal/config"
	"github.com/paved-idp/paved/internal/demo"
	"github.com/paved-idp/paved/internal/gcpace"
	"github.com/paved-idp/paved/internal/telemetry"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := root().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "paved:", err)
		os.Exit(1)
	}
}

func root() *cobra.Command {
	cmd := &cobra.Command{
		Use:           "paved",
		Short:         "Turn portal actions into policy-checked GitLab pipelines, and report back",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	cmd.AddCommand(serveCmd(), demoCmd(), versionCmd(), callback.NewCommand(), callback.NewPreviewCommand())
	cmd.AddCommand(catalogcmd.Commands()...)
	return cmd
}

func serveCmd() *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the paved server against real Port and GitLab",
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(path, os.Environ())
			if err != nil {
				return err
			}
			log, err := newLogger(cfg.Log)
			if err != nil {
				return err
			}
			defer func() { _ = log.Sync() }()
			a, err := app.Build(cmd.Context(), cfg, log, app.Options{Version: version})
			if err != nil {
				return err
			}
			// The GC's pace follows the load (see gcpace); a process-wide
			// setting, so the command owns it, not the app.
			if p := gcpace.New(); p != nil {
				go p.Run(cmd.Context())
			}
			return a.Run(cmd.Context(), nil)
		},
	}
	cmd.Flags().StringVar(&path, "config", "paved.yaml", "config file (YAML)")
	return cmd
}

func demoCmd() *cobra.Command {
	var opt demo.Options
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run paved on loopback against simulated Port and GitLab, and show four actions end to end",
		RunE: func(cmd *cobra.Command, _ []string) error {
			return demo.Run(cmd.Context(), cmd.OutOrStdout(), opt)
		},
	}
	cmd.Flags().StringVar(&opt.ActionsDir, "actions", "actions", "action definitions directory")
	cmd.Flags().StringVar(&opt.PolicyDir, "policy", "actions/policy", "policy directory")
	cmd.Flags().BoolVar(&opt.Verbose, "verbose", false, "show paved's own log lines")
	return cmd
}

func versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print paved's version",
		Run: func(cmd *cobra.Command, _ []string) {
			v := version
			if bi, ok := debug.ReadBuildInfo(); ok {
				v += " (" + bi.GoVersion + ")"
			}
			fmt.Fprintln(cmd.OutOrStdout(), "paved", v)
		},
	}
}

func newLogger(c config.Log) (*zap.Logger, error) {
	level, err := zapcore.ParseLevel(c.Level)
	if err != nil {
		return nil, fmt.Errorf("log.level: %w", err)
	}
	zc := zap.NewProductionConfig()
	if c.Format == "console" {
		zc = zap.NewDevelopmentConfig()
	}
	zc.Level = zap.NewAtomicLevelAt(level)
	if zc.Sampling == nil {
		return zc.Build()
	}
	// zap's preset samples every message; paved only its access line.
	zc.Sampling = nil
	return zc.Build(zap.WrapCore(telemetry.SampleAccessLine))
}
