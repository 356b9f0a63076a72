package callback

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/paved-idp/paved/internal/cost"
	"github.com/paved-idp/paved/internal/preview"
	"github.com/paved-idp/paved/internal/run"
)

// ErrNotApplied fails the preview job when paved refuses what the preview
// shows (the policy, or a preview other than the approved one).
var ErrNotApplied = errors.New("paved refused the preview: nothing may be applied")

// NewPreviewCommand returns `paved preview`: it reads `pulumi preview
// --json`, posts its summary and digest to paved and tells the pipeline
// paved's verdict — on stdout, and as one word in --verdict-file for the
// apply job to read: apply, dry_run, await_approval (or drift_checked for a
// drift check). A refusal fails the
// command (exit status 1) with paved's reasons.
func NewPreviewCommand() *cobra.Command {
	var baseURL, runID, file, verdictFile string
	var destroy bool
	cmd := &cobra.Command{
		Use:   "preview",
		Short: "Post a pipeline run's Pulumi preview to paved and print its verdict",
		Long: "preview reads the output of `pulumi preview --json` (--file FILE or -), posts the\n" +
			"resources it would change and a digest of the change to paved for the run (run token\n" +
			"from PAVED_RUN_TOKEN), and prints paved's verdict; --verdict-file gets it as one word.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return errors.New("preview: --file is required (the output of pulumi preview --json, or - for stdin)")
			}
			prices, err := cost.Shipped()
			if err != nil {
				return fmt.Errorf("preview: %w", err)
			}
			var p run.Preview
			err = withInput(cmd.InOrStdin(), file, func(r io.Reader) error {
				var err error
				p, err = preview.Parse(r, destroy, prices)
				return err
			})
			if err != nil {
				return fmt.Errorf("preview: %w", err)
			}
			c, err := clientFromEnv("preview", baseURL, runID)
			if err != nil {
				return err
			}
			// paved answers 503 while it records the run's pipeline, which
			// may take until its reconciliation (minutes) when GitLab's
			// answer to the trigger was lost: wait as long (~2 min).
			c.Attempts = 9
			v, err := c.Preview(cmd.Context(), p)
			if err != nil {
				return err
			}
			if verdictFile != "" {
				if err := os.WriteFile(verdictFile, []byte(v.Verdict+"\n"), 0o644); err != nil {
					return fmt.Errorf("preview: write the verdict: %w", err)
				}
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "paved: preview %s for run %s: %s\n", v.Summary, c.runID, v.Verdict)
			for _, r := range v.Reasons {
				fmt.Fprintf(out, "  %s\n", r)
			}
			switch v.Verdict {
			case run.VerdictApply, run.VerdictDryRun, run.VerdictAwaitApproval, run.VerdictDrift:
				return nil
			}
			return fmt.Errorf("%w (%s): %s", ErrNotApplied, v.Verdict, strings.Join(v.Reasons, "; "))
		},
	}
	f := cmd.Flags()
	f.StringVar(&baseURL, "url", "", "paved's base URL (default $PAVED_URL)")
	f.StringVar(&runID, "run", "", "the run id (default $PAVED_RUN_ID)")
	f.StringVar(&file, "file", "", "the output of `pulumi preview --json`, or - for stdin")
	f.BoolVar(&destroy, "destroy", false, "the preview is of `pulumi preview --destroy`")
	f.StringVar(&verdictFile, "verdict-file", "", "write paved's verdict (apply, dry_run, await_approval, drift_checked) to this file")
	return cmd
}
