// Package pgtest gives tests a real PostgreSQL: one throwaway cluster per
// test binary (initdb in a temp dir, pg_ctl start on a free loopback port,
// stopped and removed when the tests end), and a fresh database in it for
// each test, so tests stay isolated.
//
// A package that uses it calls Main from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
//
// When PostgreSQL is not installed, DSN skips the test — or fails it, when
// PAVED_REQUIRE_POSTGRES=1 (CI sets it), so that a missing install cannot
// pass for a green run. Run as root, the cluster runs as the "postgres"
// user (or "nobody"), which initdb and postgres require.
package pgtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/paved-idp/paved/internal/store/postgres"
)

// RequireEnv names the variable that turns a missing PostgreSQL from a
// skip into a failure.
const RequireEnv = "PAVED_REQUIRE_POSTGRES"

// superuser is the cluster's superuser, the role tests connect as.
const superuser = "paved"

var (
	mainCalled atomic.Bool
	once       sync.Once
	shared     *cluster
	startErr   error
	errMissing = errors.New("PostgreSQL is not installed: no initdb and pg_ctl in PATH, /usr/lib/postgresql/*/bin or /usr/local/bin (Debian: apt-get install postgresql)")
	dbSeq      atomic.Int64
)

// Main runs the tests, then stops and removes the cluster if a test
// started one. Its result is the tests' exit code.
func Main(m *testing.M) int {
	mainCalled.Store(true)
	code := m.Run()
	if shared != nil {
		if err := shared.stop(); err != nil {
			fmt.Fprintln(os.Stderr, "pgtest:", err)
			if code == 0 {
				code = 1
			}
		}
	}
	return code
}

// Open opens a store on dsn, closed at the test's end.
func Open(t testing.TB, dsn string) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// DSN creates an empty database in the test binary's cluster (starting the
// cluster on first use) and returns a connection string for it, with the
// password in it: never log it. The database is dropped when the test ends;
// close what uses it in a cleanup registered after DSN.
func DSN(t testing.TB) string {
	t.Helper()
	if !mainCalled.Load() {
		t.Fatal("pgtest: call pgtest.Main from the package's TestMain, so that the cluster is stopped after the tests")
	}
	once.Do(func() { shared, startErr = start() })
	if errors.Is(startErr, errMissing) {
		if os.Getenv(RequireEnv) == "1" {
			t.Fatalf("pgtest: %v; %s=1 requires it", startErr, RequireEnv)
		}
		t.Skipf("pgtest: %v (set %s=1 to fail instead of skipping)", startErr, RequireEnv)
	}
	if startErr != nil {
		t.Fatalf("pgtest: start PostgreSQL: %v", startErr)
	}
	name := fmt.Sprintf("paved_test_%d", dbSeq.Add(1))
	ctx := context.Background()
	if err := shared.admin(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("pgtest: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		if err := shared.admin(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("pgtest: drop database %s: %v", name, err)
		}
	})
	return shared.dsn(name)
}

// cluster is one running PostgreSQL server.
type cluster struct {
	bin      string // directory holding initdb, pg_ctl and postgres
	dir      string // temp dir: data/, the socket, the log, the password file
	port     int
	password string
	cred     *syscall.Credential // nil: run as ourselves

	mu   sync.Mutex
	conn *pgx.Conn // to database postgres, for CREATE/DROP DATABASE
}

func (c *cluster) dsn(db string) string {
	return fmt.Sprintf("host=127.0.0.1 port=%d user=%s password=%s dbname=%s sslmode=disable", c.port, superuser, c.password, db)
}

func (c *cluster) admin(ctx context.Context, sql string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn == nil || c.conn.IsClosed() {
		conn, err := pgx.Connect(ctx, c.dsn("postgres"))
		if err != nil {
			return err
		}
		c.conn = conn
	}
	_, err := c.conn.Exec(ctx, sql)
	return err
}

// start finds the binaries, makes a cluster and starts it.
func start() (*cluster, error) {
	bin, err := findBin()
	if err != nil {
		return nil, err
	}
	c := &cluster{bin: bin}
	if os.Geteuid() == 0 {
		if c.cred, err = unprivileged(); err != nil {
			return nil, err
		}
	}
	sweep(c.cred)
	if c.dir, err = os.MkdirTemp("", "paved-pgtest-"); err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(c.dir)
		}
	}()
	if err := os.WriteFile(filepath.Join(c.dir, "owner"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return nil, err
	}
	var pw [16]byte
	if _, err := rand.Read(pw[:]); err != nil {
		return nil, err
	}
	c.password = hex.EncodeToString(pw[:])
	pwfile := filepath.Join(c.dir, "pwfile")
	if err := os.WriteFile(pwfile, []byte(c.password+"\n"), 0o600); err != nil {
		return nil, err
	}
	if c.cred != nil {
		for _, p := range []string{c.dir, pwfile} {
			if err := os.Chown(p, int(c.cred.Uid), int(c.cred.Gid)); err != nil {
				return nil, err
			}
		}
	}
	if out, err := c.run("initdb", "-D", filepath.Join(c.dir, "data"), "-U", superuser, "--pwfile", pwfile,
		"--auth-host=scram-sha-256", "--auth-local=scram-sha-256", "-E", "UTF8", "--no-locale", "--no-sync"); err != nil {
		return nil, fmt.Errorf("initdb: %w\n%s", err, out)
	}
	os.Remove(pwfile)
	// A port picked free may be taken before the server binds it (other
	// test binaries start clusters too): try a few.
	for attempt := 1; ; attempt++ {
		if c.port, err = freePort(); err != nil {
			return nil, err
		}
		out, err := c.run("pg_ctl", "start", "-w", "-t", "120", "-D", filepath.Join(c.dir, "data"), "-l", filepath.Join(c.dir, "server.log"),
			"-o", fmt.Sprintf("-k %s -c listen_addresses=127.0.0.1 -p %d -c fsync=on -c shared_buffers=32MB", c.dir, c.port))
		if err == nil {
			break
		}
		serverLog, _ := os.ReadFile(filepath.Join(c.dir, "server.log"))
		if attempt == 3 || !bytes.Contains(serverLog, []byte("could not bind")) {
			return nil, fmt.Errorf("pg_ctl start: %w\n%s\n%s", err, out, tail(serverLog, 2000))
		}
	}
	ok = true
	return c, nil
}

// stop stops the server and removes its files.
func (c *cluster) stop() error {
	c.mu.Lock()
	if c.conn != nil {
		_ = c.conn.Close(context.Background())
	}
	c.mu.Unlock()
	out, err := c.run("pg_ctl", "stop", "-w", "-m", "fast", "-D", filepath.Join(c.dir, "data"))
	if err != nil {
		return fmt.Errorf("pg_ctl stop: %w\n%s", err, out)
	}
	return os.RemoveAll(c.dir)
}

// run runs one of the cluster's programs, as the unprivileged user when we
// are root, with no PG* variables that could point it elsewhere.
func (c *cluster) run(prog string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(c.bin, prog), args...)
	cmd.Dir = c.dir
	if cmd.Dir == "" {
		cmd.Dir = os.TempDir()
	}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PG") && !strings.HasPrefix(kv, "LC_") && !strings.HasPrefix(kv, "LANG=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "LC_ALL=C")
	if c.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 10 * time.Second
	err := cmd.Run()
	return out.Bytes(), err
}

// findBin returns the first directory holding initdb and pg_ctl: on PATH,
// then Debian's /usr/lib/postgresql/<version>/bin (newest first), then
// /usr/local/bin and /usr/local/pgsql/bin.
func findBin() (string, error) {
	var dirs []string
	if p, err := exec.LookPath("initdb"); err == nil {
		dirs = append(dirs, filepath.Dir(p))
	}
	versions, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(versions, func(i, j int) bool { return pgVersion(versions[i]) > pgVersion(versions[j]) })
	dirs = append(dirs, versions...)
	dirs = append(dirs, "/usr/local/bin", "/usr/local/pgsql/bin")
	for _, d := range dirs {
		if isExec(filepath.Join(d, "initdb")) && isExec(filepath.Join(d, "pg_ctl")) {
			return d, nil
		}
	}
	return "", errMissing
}

func pgVersion(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

func isExec(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// unprivileged is the user a root test process runs PostgreSQL as, which
// refuses to run as root: Debian's "postgres", else "nobody".
func unprivileged() (*syscall.Credential, error) {
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
		gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
		if err1 != nil || err2 != nil {
			continue
		}
		// The temp dir's parents must let that user through.
		if fi, err := os.Stat(os.TempDir()); err != nil || fi.Mode().Perm()&0o001 == 0 {
			return nil, fmt.Errorf("running as root, PostgreSQL runs as %s, who cannot enter %s: use a world-searchable TMPDIR", name, os.TempDir())
		}
		return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
	}
	return nil, errors.New("running as root, PostgreSQL needs an unprivileged user to run as, and there is neither a postgres nor a nobody user")
}

// sweep stops and removes the clusters of test binaries that died without
// stopping theirs (killed, or timed out), so they do not pile up.
func sweep(cred *syscall.Credential) {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "paved-pgtest-*"))
	for _, dir := range dirs {
		b, err := os.ReadFile(filepath.Join(dir, "owner"))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 0 || syscall.Kill(pid, 0) != syscall.ESRCH {
			continue // its owner still runs (or we cannot tell)
		}
		bin, err := findBin()
		if err != nil {
			return
		}
		stale := &cluster{bin: bin, dir: dir, cred: cred}
		if _, err := os.Stat(filepath.Join(dir, "data", "postmaster.pid")); err == nil {
			_, _ = stale.run("pg_ctl", "stop", "-w", "-m", "immediate", "-D", filepath.Join(dir, "data"))
		}
		os.RemoveAll(dir)
	}
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
