package harness

import "os"

// PID is the process id of the paved currently running (0 before it
// starts), for load tests that read its /proc/<pid>/status.
func (e *Env) PID() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.cmd == nil || e.cmd.Process == nil {
		return 0
	}
	return e.cmd.Process.Pid
}

// ConfigPath is the config file paved runs with; its secrets are env:
// references to the variables Environ names.
func (e *Env) ConfigPath() string { return e.cfgPath }

// Environ is the environment launch gives paved (keep the two in step):
// the test process's own plus the secret variables the config refers to,
// for a test that starts paved with ConfigPath itself.
func (e *Env) Environ() []string {
	return append(os.Environ(), "E2E_PORT_ID="+PortID, "E2E_PORT_SECRET="+PortSecret, "E2E_GITLAB_TOKEN="+GitLabToken,
		"E2E_HOOK_TOKEN="+HookToken, "E2E_API_TOKEN="+APIToken, "E2E_RUN_KEY="+RunKey, "E2E_DATABASE_URL="+e.dbURL)
}

// DatabaseURL is the PostgreSQL database paved runs on ("" on SQLite, whose
// file is DBPath), for a test that reads paved's rows after it stops.
func (e *Env) DatabaseURL() string { return e.dbURL }
