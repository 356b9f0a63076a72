package operator

import (
	"net/http"

	"github.com/paved-idp/paved/internal/logstream"
)

// stream sends a run's log live (see logstream). The first connection
// starts after ?after=, the lines the page already shows.
func (u *ui) stream(w http.ResponseWriter, r *http.Request, s session) {
	rn, ok := u.findRun(w, r, s)
	if !ok {
		return
	}
	after, err := logstream.ResumeAt(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	logstream.Serve(w, r, u.runs, rn.ID, after, logstream.Options{Poll: u.poll, Heartbeat: u.heartbeat, Done: u.cfg.Done, Log: u.log})
}
