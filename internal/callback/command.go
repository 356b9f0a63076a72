package callback

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/paved-idp/paved/internal/telemetry"
)

// maxBatch caps the log lines of one request, so a long log is sent in
// bodies paved accepts.
const maxBatch = 500

// NewCommand returns `paved report`. The run token comes only from the
// PAVED_RUN_TOKEN environment variable, never a flag, so it does not show
// in process lists or shell history.
func NewCommand() *cobra.Command {
	var baseURL, runID, outputsPath, logPath string
	var messages []string
	cmd := &cobra.Command{
		Use:   "report",
		Short: "Post a pipeline run's log lines and stack outputs to paved",
		Long: "report posts log lines (--log FILE or -, --message) and the object printed by\n" +
			"`pulumi stack output --json` (--outputs FILE or -) to paved for the run, with the\n" +
			"run token from PAVED_RUN_TOKEN.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if outputsPath == "-" && logPath == "-" {
				return errors.New("only one of --outputs and --log can read stdin")
			}
			c, err := clientFromEnv("report", baseURL, runID)
			if err != nil {
				return err
			}
			return report(cmd, c, outputsPath, logPath, messages)
		},
	}
	f := cmd.Flags()
	f.StringVar(&baseURL, "url", "", "paved's base URL (default $PAVED_URL)")
	f.StringVar(&runID, "run", "", "the run id (default $PAVED_RUN_ID)")
	f.StringVar(&outputsPath, "outputs", "", "file with `pulumi stack output --json`, or - for stdin")
	f.StringVar(&logPath, "log", "", "file of log lines, or - for stdin")
	f.StringArrayVar(&messages, "message", nil, "a log line (repeatable)")
	return cmd
}

// clientFromEnv makes the client of a pipeline command: flags, else the
// variables paved gives the pipeline; the token only from PAVED_RUN_TOKEN.
func clientFromEnv(command, baseURL, runID string) (*Client, error) {
	c, err := NewClient(orEnv(baseURL, "PAVED_URL"), orEnv(runID, "PAVED_RUN_ID"), os.Getenv("PAVED_RUN_TOKEN"), nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %w (set --url/PAVED_URL, --run/PAVED_RUN_ID and PAVED_RUN_TOKEN)", command, err)
	}
	// A malformed one is left out rather than sent: tracing must never
	// fail a pipeline.
	if tp := os.Getenv("TRACEPARENT"); telemetry.ValidTraceparent(tp) {
		c.Traceparent = tp
	}
	return c, nil
}

func report(cmd *cobra.Command, c *Client, outputsPath, logPath string, messages []string) error {
	ctx := cmd.Context()
	lines := append([]string(nil), messages...)
	if logPath != "" {
		err := withInput(cmd.InOrStdin(), logPath, func(r io.Reader) error {
			sc := bufio.NewScanner(r)
			sc.Buffer(make([]byte, 64*1024), 1024*1024)
			for sc.Scan() {
				lines = append(lines, sc.Text())
			}
			return sc.Err()
		})
		if err != nil {
			return fmt.Errorf("read log: %w", err)
		}
	}
	for len(lines) > 0 {
		n := min(len(lines), maxBatch)
		if err := c.Logs(ctx, lines[:n]); err != nil {
			return err
		}
		lines = lines[n:]
	}
	if outputsPath != "" {
		var outputs map[string]any
		err := withInput(cmd.InOrStdin(), outputsPath, func(r io.Reader) error {
			return json.NewDecoder(r).Decode(&outputs)
		})
		if err != nil {
			return fmt.Errorf("read outputs (want the JSON object of `pulumi stack output --json`): %w", err)
		}
		if err := c.Outputs(ctx, outputs); err != nil {
			return err
		}
	}
	fmt.Fprintf(cmd.OutOrStdout(), "reported to paved for run %s\n", c.runID)
	return nil
}

func withInput(stdin io.Reader, path string, read func(io.Reader) error) error {
	if path == "-" {
		return read(stdin)
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return read(f)
}

func orEnv(v, env string) string {
	if strings.TrimSpace(v) != "" {
		return v
	}
	return os.Getenv(env)
}
