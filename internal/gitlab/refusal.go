package gitlab

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	gl "gitlab.com/gitlab-org/api/client-go"
)

// RefusedError is GitLab refusing to create a pipeline for a reason a
// platform engineer fixes in GitLab's settings. Cause says which setting;
// the error GitLab answered is wrapped (IsPermanent holds for it).
type RefusedError struct {
	Project, Ref string
	Cause        string
	Err          error
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("gitlab: trigger pipeline in %s on %s refused: %s (GitLab answered: %v)", e.Project, e.Ref, e.Cause, e.Err)
}

func (e *RefusedError) Unwrap() error { return e.Err }

// refusal names the cause of a refused create-pipeline call, or returns
// err unchanged when it is not one of GitLab's documented refusals. The
// texts are GitLab's (Ci::CreatePipelineService's chain): a role that may
// not create pipelines is a bare 403; the others are 400 with
// {"message": {"base": [...]}}.
func refusal(project, ref string, err error) error {
	var er *gl.ErrorResponse
	if !errors.As(err, &er) || er.Response == nil {
		return err
	}
	body := strings.ToLower(string(er.Body))
	var cause string
	switch code := er.Response.StatusCode; {
	case code == http.StatusUnauthorized:
		cause = "paved's GitLab token (gitlab.token) is invalid, expired or revoked"
	case code == http.StatusForbidden:
		cause = fmt.Sprintf("paved's GitLab token may not create pipelines in %s: give its project access token the api scope and at least the Developer role", project)
	case code != http.StatusBadRequest:
		return err
	case strings.Contains(body, "insufficient permissions to set pipeline variables"):
		cause = fmt.Sprintf("%s does not let the token's role use pipeline variables: in Settings → CI/CD → Variables set \"Minimum role to use pipeline variables\" (ci_pipeline_variables_minimum_override_role) to the token's role (developer or maintainer)", project)
	case strings.Contains(body, "sufficient permission to run a pipeline on"), strings.Contains(body, "insufficient permissions for protected ref"):
		cause = fmt.Sprintf("%s is protected and the token's user may not push or merge to it: allow the token's role under Settings → Repository → Protected branches (Allowed to merge), or give the token a role that is allowed", ref)
	case strings.Contains(body, "filtered out by workflow rules"):
		cause = fmt.Sprintf("the CI configuration of %s on %s refused the pipeline (workflow:rules): include the paved-provision component and keep its workflow, which admits API pipelines carrying PAVED_RUN_ID", project, ref)
	case strings.Contains(body, "reference not found"):
		cause = fmt.Sprintf("%s has no branch or tag %s: fix the action's gitlab.ref", project, ref)
	default:
		return err
	}
	return &RefusedError{Project: project, Ref: ref, Cause: cause, Err: err}
}
