package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// server is a child process under measure: `soldout serve` or the ceiling.
type server struct {
	cmd    *exec.Cmd
	url    string // http://host:port
	stderr *tail
	exited chan struct{}
	err    error // Wait's, once exited is closed
}

// runtimeEnv is a child's base environment: nothing of the caller's leaks
// in (a DATABASE_URL or SOLDOUT_METRICS_ADDR would change what is measured)
// except the Go runtime's own knobs, so that GOGC or GOMAXPROCS experiments
// stay possible.
func runtimeEnv() []string {
	env := []string{"PATH=" + os.Getenv("PATH")}
	for _, k := range []string{"HOME", "GOGC", "GOMAXPROCS", "GOMEMLIMIT", "GODEBUG"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// serverEnv is soldout's whole environment.
func serverEnv(o *options, sanityURL, journalURL, secret string) []string {
	// -server-env comes last: exec takes the last of duplicate keys.
	return append(append(runtimeEnv(),
		"STRIPE_WEBHOOK_SECRET="+secret,
		"SANITY_PROJECT_ID=bench", "SANITY_DATASET="+fakeDataset, "SANITY_API_TOKEN="+fakeToken,
		"SANITY_API_HOST="+sanityURL,
		"DATABASE_URL="+journalURL,
		"SOLDOUT_SANITY_RATE="+strconv.FormatFloat(o.sanityRate, 'g', -1, 64),
		// One JSON line per event, as in production; stdout goes to
		// /dev/null, so the write is paid but nothing reads it.
		"SOLDOUT_LOG_LEVEL=info", "SOLDOUT_LOG_FORMAT=json",
	), o.serverEnv...)
}

// startServer execs soldout serve; it does not wait for it to listen.
func startServer(o *options, addr string, env []string) (*server, error) {
	cmd := exec.Command(o.binary, "serve", "-addr", addr)
	cmd.Env = env
	return startChild(cmd, addr)
}

// startChild starts cmd, a server that will listen on addr.
func startChild(cmd *exec.Cmd, addr string) (*server, error) {
	s := &server{cmd: cmd, url: "http://" + addr, stderr: &tail{max: 8 << 10}, exited: make(chan struct{})}
	cmd.Stderr = s.stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", cmd.Path, err)
	}
	go func() {
		s.err = cmd.Wait()
		close(s.exited)
	}()
	return s, nil
}

// name is the child's program and subcommand, for errors.
func (s *server) name() string { return filepath.Base(s.cmd.Path) + " " + s.cmd.Args[1] }

// died describes an early exit of the child, with the end of its stderr.
func (s *server) died() error {
	return fmt.Errorf("%s exited: %v\n%s", s.name(), s.err, s.stderr)
}

// waitHealthy polls GET /healthz until it answers 200.
func (s *server) waitHealthy(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	client := &http.Client{Timeout: time.Second}
	for time.Now().Before(deadline) {
		select {
		case <-s.exited:
			return s.died()
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		if resp, err := client.Get(s.url + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	return fmt.Errorf("%s did not answer /healthz within %v\n%s", s.name(), timeout, s.stderr)
}

// stop asks the child to finish (SIGTERM) and kills it if it takes longer
// than its own shutdown budget would allow.
func (s *server) stop() error {
	select {
	case <-s.exited:
		return s.died()
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(15 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
		return fmt.Errorf("%s did not stop within 15s of SIGTERM; killed\n%s", s.name(), s.stderr)
	}
	if s.err != nil {
		return fmt.Errorf("%s stopped with %v\n%s", s.name(), s.err, s.stderr)
	}
	return nil
}

// freeAddr picks a loopback port that is free now. Another process could
// take it before the child binds it; the child then fails to start, loudly.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat's times: 100 on every
// architecture Linux and Go share.
const clockTicks = 100

// procCPU returns the user plus system CPU time that pid has used, all its
// threads included.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("CPU time needs Linux's /proc: %w", err)
	}
	// The command name may contain spaces; the fields after it do not.
	i := bytes.LastIndexByte(b, ')')
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	var ticks int64
	for _, s := range f[11:13] { // utime and stime, fields 14 and 15 of stat(5)
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}

// procPeakRSS returns VmHWM, the most resident memory pid has had.
func procPeakRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("peak RSS needs Linux's /proc: %w", err)
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmHWM in /proc/" + strconv.Itoa(pid) + "/status")
}

// tail keeps the last max bytes written to it.
type tail struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(t.b))
}
