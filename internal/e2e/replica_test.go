package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"soldout/internal/journal"
)

const (
	webhookSecret = "whsec_e2e_0123456789abcdef"
	// The budget and the lease are shortened so that a claim left by a
	// killed replica expires in seconds, not in the default 20 s; the lease
	// must outlast the budget.
	testBudget   = 3 * time.Second
	testLeaseTTL = 4 * time.Second
	// startTimeout bounds a replica's start (migrations included).
	startTimeout = 20 * time.Second
	// stopTimeout bounds a graceful stop: soldout's own bound is the budget
	// plus 2 s.
	stopTimeout = testBudget + 10*time.Second
)

// cluster is a set of soldout replicas sharing one journal and one fake
// Sanity; replicas[i] talks to the fake through door i.
type cluster struct {
	t        *testing.T
	dbURL    string
	sanity   *fakeSanity
	extra    []string // more environment, e.g. SOLDOUT_SANITY_RATE=4
	replicas []*replica
}

// newCluster creates a fresh schema and starts n replicas on it.
func newCluster(t *testing.T, n int, sanity func(slots int) *fakeSanity, extra ...string) *cluster {
	t.Helper()
	c := &cluster{t: t, dbURL: postgresURL(t), extra: extra}
	c.sanity = sanity(n)
	c.replicas = make([]*replica, n)
	for i := range n {
		c.replicas[i] = &replica{slot: i, env: c.env(i)}
	}
	t.Cleanup(c.stopAll)
	// Started together, as a platform starting replicas does: the
	// migrations must take turns.
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i, r := range c.replicas {
		wg.Go(func() { errs[i] = r.start() })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	return c
}

func (c *cluster) env(slot int) []string {
	return append([]string{
		"STRIPE_WEBHOOK_SECRET=" + webhookSecret,
		"SANITY_PROJECT_ID=e2etest",
		"SANITY_DATASET=" + sanityDataset,
		"SANITY_API_TOKEN=" + sanityToken,
		"SANITY_API_HOST=" + c.sanity.url(slot),
		"DATABASE_URL=" + c.dbURL,
		"SOLDOUT_LOG_FORMAT=json",
		"SOLDOUT_TIME_BUDGET=" + testBudget.String(),
		"SOLDOUT_LEASE_TTL=" + testLeaseTTL.String(),
	}, c.extra...)
}

// journal opens the shared journal for the test's own reads.
func (c *cluster) journal() *journal.DB {
	c.t.Helper()
	db, err := journal.Open(context.Background(), c.dbURL)
	if err != nil {
		c.t.Fatalf("open journal: %v", err)
	}
	c.t.Cleanup(func() { db.Close() })
	return db
}

// stopAll stops every replica still running, fails the test on a race
// report, and shows the logs of all of them when the test failed.
func (c *cluster) stopAll() {
	for _, r := range c.replicas {
		if err := r.terminate(); err != nil {
			c.t.Errorf("replica %d: %v", r.slot, err)
		}
		if races := r.logs.find("WARNING: DATA RACE"); len(races) > 0 {
			c.t.Errorf("replica %d: %d data races reported on its stderr", r.slot, len(races))
		}
	}
	if c.t.Failed() {
		for _, r := range c.replicas {
			c.t.Logf("replica %d, last warnings and errors:\n%s", r.slot, r.logs.tail(20))
		}
	}
}

// replica is one `soldout serve` process, restartable with the same
// environment.
type replica struct {
	slot int
	env  []string
	logs logLines

	mu   sync.Mutex
	addr string // "" while not serving
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
	err  error         // cmd.Wait's result, set before done closes
}

func (r *replica) start() error {
	cmd := exec.Command(soldoutBin, "serve", "-addr", "127.0.0.1:0")
	cmd.Env = r.env
	ready := make(chan string, 1)
	r.logs.onAddr(ready)
	cmd.Stdout, cmd.Stderr = &r.logs, &r.logs
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("replica %d: %w", r.slot, err)
	}
	done := make(chan struct{})
	r.mu.Lock()
	r.cmd, r.done = cmd, done
	r.mu.Unlock()
	go func() {
		err := cmd.Wait()
		r.mu.Lock()
		r.err, r.addr = err, ""
		r.mu.Unlock()
		close(done)
	}()
	select {
	case addr := <-ready:
		r.mu.Lock()
		r.addr = addr
		r.mu.Unlock()
		return nil
	case <-done:
		return fmt.Errorf("replica %d exited at start: %v\n%s", r.slot, r.err, r.logs.tail(20))
	case <-time.After(startTimeout):
		_ = cmd.Process.Kill()
		return fmt.Errorf("replica %d did not start within %s\n%s", r.slot, startTimeout, r.logs.tail(20))
	}
}

// address is where the replica serves, or "" while it is down.
func (r *replica) address() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.addr
}

// kill is kill -9: no chance to finish anything.
func (r *replica) kill() {
	r.mu.Lock()
	cmd, done := r.cmd, r.done
	r.addr = ""
	r.mu.Unlock()
	_ = cmd.Process.Kill()
	<-done
}

// sigterm asks the replica to stop and returns its exit status once it has
// exited, or an error if it outlives stopTimeout (then it is killed).
func (r *replica) sigterm() (exit error, err error) {
	r.mu.Lock()
	cmd, done := r.cmd, r.done
	r.mu.Unlock()
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(stopTimeout):
		_ = cmd.Process.Kill()
		<-done
		return nil, fmt.Errorf("still running %s after SIGTERM; killed", stopTimeout)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err, nil
}

// terminate stops the replica if it runs: SIGTERM, and a clean exit is
// expected.
func (r *replica) terminate() error {
	r.mu.Lock()
	cmd, done := r.cmd, r.done
	r.mu.Unlock()
	if cmd == nil {
		return nil
	}
	select {
	case <-done:
		return nil // exited already: the test judged how
	default:
	}
	exit, err := r.sigterm()
	if err != nil {
		return err
	}
	if exit != nil {
		return fmt.Errorf("exit after SIGTERM: %v", exit)
	}
	return nil
}

// logLines keeps a replica's JSON log lines (all its processes'), and
// reports the address that `serve` announces.
type logLines struct {
	mu      sync.Mutex
	partial []byte
	lines   []map[string]any
	addr    chan<- string
}

func (l *logLines) onAddr(ch chan<- string) {
	l.mu.Lock()
	l.addr = ch
	l.mu.Unlock()
}

func (l *logLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.partial = append(l.partial, p...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			return len(p), nil
		}
		line := l.partial[:i]
		l.partial = l.partial[i+1:]
		var m map[string]any
		if json.Unmarshal(line, &m) != nil {
			m = map[string]any{"level": "ERROR", "msg": string(line)} // a panic or a start error
		}
		l.lines = append(l.lines, m)
		if addr, ok := m["addr"].(string); ok && l.addr != nil && strings.HasPrefix(fmt.Sprint(m["msg"]), "soldout serving") {
			l.addr <- addr
			l.addr = nil
		}
	}
}

// find returns the lines whose msg starts with prefix.
func (l *logLines) find(prefix string) []map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, m := range l.lines {
		if strings.HasPrefix(fmt.Sprint(m["msg"]), prefix) {
			out = append(out, m)
		}
	}
	return out
}

// tail renders the last n lines at WARN or above.
func (l *logLines) tail(n int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for i := len(l.lines) - 1; i >= 0 && len(out) < n; i-- {
		if lvl := fmt.Sprint(l.lines[i]["level"]); lvl == "WARN" || lvl == "ERROR" {
			b, _ := json.Marshal(l.lines[i])
			out = append(out, string(b))
		}
	}
	var sb strings.Builder
	for i := len(out) - 1; i >= 0; i-- {
		sb.WriteString(out[i] + "\n")
	}
	return sb.String()
}
