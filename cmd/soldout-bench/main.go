// Command soldout-bench measures soldout end to end on this machine: it
// starts a built `soldout serve` as a child process, with its journal, in
// front of a Sanity stand-in (memlake, in this process, with an optional
// latency), and sends it correctly signed, distinct paid Checkout events over
// loopback HTTP. It builds nothing itself:
//
//	go build -o /tmp/soldout ./cmd/soldout
//	go run ./cmd/soldout-bench -binary /tmp/soldout
//
// Modes (-mode, comma-separated, or all):
//
//	ceiling  a minimal program that only makes soldout's Sanity requests: the bound
//	soldout  soldout under load: events/s, latency, Sanity requests, RSS, CPU
//	cold     exec → first 2xx with an empty journal, median of -cold-runs
//	sweep    ceiling and soldout at each concurrency of -sweep
//	history  soldout on an empty journal and on one holding -history events
//
// See BENCHMARKS.md for the method and the results.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "soldout-bench:", err)
		os.Exit(1)
	}
}

type options struct {
	binary        string
	n, c, warmup  int
	sanityLatency time.Duration
	sanityRate    float64
	databaseURL   string
	dir           string
	modes         []string
	repeat        int
	coldRuns      int
	sweep         []int
	history       int
	jsonPath      string
	serverEnv     []string // extra KEY=VALUE for soldout alone
}

var allModes = []string{"ceiling", "soldout", "cold", "sweep", "history"}

func parseOptions(args []string, stderr io.Writer) (*options, error) {
	fs := flag.NewFlagSet("soldout-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := &options{}
	fs.StringVar(&o.binary, "binary", "", "a built soldout (go build -o /tmp/soldout ./cmd/soldout); needed by every mode but ceiling")
	fs.IntVar(&o.n, "n", 5000, "measured events per run, each a distinct artwork")
	fs.IntVar(&o.c, "c", 16, "concurrent requests")
	fs.IntVar(&o.warmup, "warmup", 500, "events sent before measuring, at the same concurrency")
	fs.DurationVar(&o.sanityLatency, "sanity-latency", 0, "delay the Sanity fake adds to every request, e.g. 50ms")
	fs.Float64Var(&o.sanityRate, "sanity-rate", 1e6, "SOLDOUT_SANITY_RATE for the server: 1e6 does not pace; 25 is production's default")
	fs.StringVar(&o.databaseURL, "database-url", "", "journal: empty for a fresh SQLite file per run; a postgres:// URL for a fresh schema per run on that server")
	fs.StringVar(&o.dir, "dir", "", "directory for the SQLite journals (default $TMPDIR); must be a real disk, not tmpfs, for fsync to count")
	mode := fs.String("mode", "ceiling,soldout", "comma-separated: "+strings.Join(allModes, ", ")+"; or all")
	fs.IntVar(&o.repeat, "repeat", 1, "ceiling, soldout and history runs each this many times, interleaved; the median is reported")
	fs.IntVar(&o.coldRuns, "cold-runs", 5, "cold starts to take the median of")
	sweep := fs.String("sweep", "1,4,16,64", "concurrencies of the sweep")
	fs.IntVar(&o.history, "history", 1_000_000, "events already in the journal for the history mode")
	fs.StringVar(&o.jsonPath, "json", "", "also write the results to this file as JSON")
	fs.Func("server-env", "KEY=VALUE for soldout's environment only, e.g. GOMAXPROCS=1 (repeatable); unlike the bench's own environment, it leaves the load generator alone", func(kv string) error {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			return fmt.Errorf("%q is not KEY=VALUE", kv)
		}
		o.serverEnv = append(o.serverEnv, kv)
		return nil
	})
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if *mode == "all" {
		o.modes = allModes
	} else {
		for m := range strings.SplitSeq(*mode, ",") {
			if m = strings.TrimSpace(m); !slices.Contains(allModes, m) {
				return nil, fmt.Errorf("-mode: %q is not one of %s", m, strings.Join(allModes, ", "))
			}
			o.modes = append(o.modes, m)
		}
	}
	for s := range strings.SplitSeq(*sweep, ",") {
		c, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || c < 1 {
			return nil, fmt.Errorf("-sweep: %q is not a positive concurrency", s)
		}
		o.sweep = append(o.sweep, c)
	}
	switch {
	case o.n < 1 || o.c < 1 || o.warmup < 0 || o.repeat < 1 || o.coldRuns < 1 || o.history < 1:
		return nil, errors.New("-n, -c, -repeat, -cold-runs and -history must be positive, -warmup not negative")
	case o.sanityRate <= 0:
		return nil, errors.New("-sanity-rate must be positive")
	case o.databaseURL != "" && !strings.HasPrefix(o.databaseURL, "postgres://") && !strings.HasPrefix(o.databaseURL, "postgresql://"):
		return nil, errors.New("-database-url: only postgres:// URLs; SQLite journals are fresh files in -dir")
	}
	if slices.ContainsFunc(o.modes, func(m string) bool { return m != "ceiling" }) {
		if o.binary == "" {
			return nil, errors.New("-binary is required: go build -o /tmp/soldout ./cmd/soldout, then -binary /tmp/soldout")
		}
		if st, err := os.Stat(o.binary); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
			return nil, fmt.Errorf("-binary %s is not an executable file", o.binary)
		}
	}
	return o, nil
}

// report is everything a run of the command measured.
type report struct {
	Machine  machine      `json:"machine"`
	Settings settings     `json:"settings"`
	Ceiling  *summary     `json:"ceiling,omitempty"`
	Soldout  *summary     `json:"soldout,omitempty"`
	Fraction float64      `json:"soldout_fraction_of_ceiling,omitempty"`
	Cold     *coldResult  `json:"cold,omitempty"`
	Sweep    []sweepRow   `json:"sweep,omitempty"`
	History  *historyInfo `json:"history,omitempty"`
}

type settings struct {
	Binary          string   `json:"binary,omitempty"`
	Events          int      `json:"events"`
	Concurrency     int      `json:"concurrency"`
	Warmup          int      `json:"warmup"`
	SanityLatencyMs float64  `json:"sanity_latency_ms"`
	SanityRate      float64  `json:"sanity_rate"`
	Journal         string   `json:"journal"`
	Repeat          int      `json:"repeat"`
	ServerEnv       []string `json:"server_env,omitempty"`
}

// summary is the median of repeated runs, and the runs.
type summary struct {
	Median runResult   `json:"median"`
	Runs   []runResult `json:"runs"`
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "ceiling-worker" {
		return runCeilingWorker(ctx, args[1:])
	}
	o, err := parseOptions(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	js := journals{base: o.databaseURL, dir: o.dir}
	rep := report{Machine: machineInfo(o.dir), Settings: settings{
		Binary: o.binary, Events: o.n, Concurrency: o.c, Warmup: o.warmup,
		SanityLatencyMs: ms(o.sanityLatency), SanityRate: o.sanityRate, Journal: js.kind(), Repeat: o.repeat, ServerEnv: o.serverEnv,
	}}
	printMachine(stdout, rep.Machine, rep.Settings)
	if js.kind() == "sqlite" && rep.Machine.JournalFS == "tmpfs" {
		fmt.Fprintln(stderr, "soldout-bench: WARNING: the journal directory is on tmpfs, where fsync costs nothing; use -dir on a real disk")
	}

	has := func(m string) bool { return slices.Contains(o.modes, m) }
	if has("ceiling") || has("soldout") {
		var ceil, sold []runResult
		for i := range o.repeat {
			fmt.Fprintf(stderr, "run %d/%d at concurrency %d...\n", i+1, o.repeat, o.c)
			if has("ceiling") {
				r, err := ceilingRun(ctx, o, o.c)
				if err != nil {
					return err
				}
				ceil = append(ceil, r)
			}
			if has("soldout") {
				r, err := freshSoldoutRun(ctx, o, js, o.c)
				if err != nil {
					return err
				}
				sold = append(sold, r)
			}
		}
		var med []runResult
		if len(ceil) > 0 {
			rep.Ceiling = &summary{Median: medianRun(ceil), Runs: ceil}
			med = append(med, rep.Ceiling.Median)
		}
		if len(sold) > 0 {
			rep.Soldout = &summary{Median: medianRun(sold), Runs: sold}
			med = append(med, rep.Soldout.Median)
		}
		title := "Median of " + strconv.Itoa(o.repeat) + " runs"
		if o.repeat == 1 {
			title = "One run"
		}
		printRuns(stdout, title, med)
		if rep.Ceiling != nil && rep.Soldout != nil && rep.Ceiling.Median.EventsPerSecond > 0 {
			rep.Fraction = rep.Soldout.Median.EventsPerSecond / rep.Ceiling.Median.EventsPerSecond
			fmt.Fprintf(stdout, "\nsoldout reaches %.0f %% of the ceiling's events/s.\n", 100*rep.Fraction)
		}
	}
	if has("cold") {
		fmt.Fprintln(stderr, "cold starts...")
		c, err := coldStart(ctx, o, js)
		if err != nil {
			return err
		}
		rep.Cold = &c
		printCold(stdout, c)
	}
	if has("sweep") {
		for _, c := range o.sweep {
			fmt.Fprintf(stderr, "sweep: concurrency %d...\n", c)
			ceil, err := ceilingRun(ctx, o, c)
			if err != nil {
				return err
			}
			sold, err := freshSoldoutRun(ctx, o, js, c)
			if err != nil {
				return err
			}
			rep.Sweep = append(rep.Sweep, sweepRow{Concurrency: c, Ceiling: ceil, Soldout: sold, Fraction: sold.EventsPerSecond / ceil.EventsPerSecond})
		}
		printSweep(stdout, rep.Sweep)
	}
	if has("history") {
		h, err := historyRuns(ctx, o, js, stderr)
		if err != nil {
			return err
		}
		rep.History = &h
		printHistory(stdout, h)
	}
	if o.jsonPath != "" {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(o.jsonPath, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// runResult is one measured run of soldout or of the ceiling.
type runResult struct {
	Mode            string    `json:"mode"`              // soldout or ceiling
	Journal         string    `json:"journal,omitempty"` // sqlite or postgres
	HistoryEvents   int       `json:"history_events,omitempty"`
	Concurrency     int       `json:"concurrency"`
	Events          int       `json:"events"`
	Seconds         float64   `json:"seconds"`
	EventsPerSecond float64   `json:"events_per_second"`
	Latency         latencyMs `json:"latency_ms"`
	// Failures: in a median, the sum over the runs. Unexpected counts 2xx
	// answers that did not sell and transport errors; StillAvailable the
	// artworks a run's events did not leave unavailable in the fake.
	Non2xx         int     `json:"non_2xx"`
	Unexpected     int     `json:"unexpected"`
	StillAvailable int     `json:"still_available"`
	FirstFailure   string  `json:"first_failure,omitempty"`
	SanityPerEvent float64 `json:"sanity_requests_per_event"`
	// SanityRequests splits the measured events' requests by endpoint.
	SanityRequests requests `json:"sanity_requests"`
	PeakRSSMiB     float64  `json:"peak_rss_mib"` // of the soldout (or ceiling) process, its whole life
	CPUSeconds     float64  `json:"cpu_seconds"`  // of that process, during the measured events
	CPUMsPerEvent  float64  `json:"cpu_ms_per_event"`
	BenchCPU       float64  `json:"bench_cpu_seconds,omitempty"` // load generator and fake
	// StealPercent is the machine's CPU time that the hypervisor gave to
	// other guests during the measured events: above a few percent, the
	// run measured the neighbours too.
	StealPercent float64 `json:"steal_percent"`
}

func newRunResult(mode, journal string, c, n int, lr loadResult) runResult {
	r := runResult{
		Mode: mode, Journal: journal, Concurrency: c, Events: n, Seconds: lr.wall.Seconds(),
		Latency: summarise(lr.latencies), Non2xx: lr.non2xx, Unexpected: lr.unexpected, FirstFailure: lr.first,
	}
	if lr.wall > 0 {
		r.EventsPerSecond = float64(n) / lr.wall.Seconds()
	}
	return r
}

func (r *runResult) setRequests(req requests, events int) {
	r.SanityRequests = req
	r.SanityPerEvent = float64(req.total()) / float64(events)
}

func (r *runResult) setProcess(cpu time.Duration, peakRSS int64) {
	r.CPUSeconds = cpu.Seconds()
	r.CPUMsPerEvent = 1000 * cpu.Seconds() / float64(r.Events)
	r.PeakRSSMiB = float64(peakRSS) / (1 << 20)
}

// medianRun takes every measurement's median over runs (the mean of the two
// middle ones for an even count) and sums the failures.
func medianRun(runs []runResult) runResult {
	m := runs[0]
	med := func(field func(*runResult) *float64) {
		vs := make([]float64, len(runs))
		for i := range runs {
			vs[i] = *field(&runs[i])
		}
		slices.Sort(vs)
		*field(&m) = (vs[(len(vs)-1)/2] + vs[len(vs)/2]) / 2
	}
	for _, f := range []func(*runResult) *float64{
		func(r *runResult) *float64 { return &r.Seconds },
		func(r *runResult) *float64 { return &r.EventsPerSecond },
		func(r *runResult) *float64 { return &r.Latency.P50 },
		func(r *runResult) *float64 { return &r.Latency.P90 },
		func(r *runResult) *float64 { return &r.Latency.P99 },
		func(r *runResult) *float64 { return &r.Latency.Max },
		func(r *runResult) *float64 { return &r.SanityPerEvent },
		func(r *runResult) *float64 { return &r.PeakRSSMiB },
		func(r *runResult) *float64 { return &r.CPUSeconds },
		func(r *runResult) *float64 { return &r.CPUMsPerEvent },
		func(r *runResult) *float64 { return &r.BenchCPU },
		func(r *runResult) *float64 { return &r.StealPercent },
	} {
		med(f)
	}
	m.Non2xx, m.Unexpected, m.StillAvailable, m.FirstFailure = 0, 0, 0, ""
	for _, r := range runs {
		m.Non2xx += r.Non2xx
		m.Unexpected += r.Unexpected
		m.StillAvailable += r.StillAvailable
		if m.FirstFailure == "" {
			m.FirstFailure = r.FirstFailure
		}
	}
	return m
}

// freshSoldoutRun measures soldout on an empty journal.
func freshSoldoutRun(ctx context.Context, o *options, js journals, c int) (runResult, error) {
	url, cleanup, err := js.fresh(ctx)
	if err != nil {
		return runResult{}, err
	}
	defer cleanup()
	r, err := soldoutRun(ctx, o, c, url)
	r.Journal = js.kind()
	return r, err
}

// soldoutRun measures soldout on the journal at url.
func soldoutRun(ctx context.Context, o *options, c int, journalURL string) (runResult, error) {
	return measure(ctx, o, c, "soldout", func(addr, sanityURL, secret string) (*server, error) {
		return startServer(o, addr, serverEnv(o, sanityURL, journalURL, secret))
	})
}

// measure starts a server with launch, in front of a freshly seeded fake,
// warms it up, and measures o.n events at concurrency c.
func measure(ctx context.Context, o *options, c int, mode string,
	launch func(addr, sanityURL, secret string) (*server, error)) (runResult, error) {
	fk, prefix, err := startSeeded(o.sanityLatency, o.warmup+o.n)
	if err != nil {
		return runResult{}, err
	}
	defer fk.close()
	events := makeEvents(prefix, 0, o.warmup+o.n)
	secret := "whsec_bench_" + randomHex(16)
	addr, err := freeAddr()
	if err != nil {
		return runResult{}, err
	}
	srv, err := launch(addr, fk.url, secret)
	if err != nil {
		return runResult{}, err
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = srv.stop()
		}
	}()
	if err := srv.waitHealthy(ctx, 30*time.Second); err != nil {
		return runResult{}, err
	}
	wh := &webhooks{url: srv.url + "/api/webhook", secret: secret, client: newClient(c), events: events[:o.warmup]}
	if warm := drive(ctx, c, o.warmup, wh.send); warm.first != "" {
		return runResult{}, fmt.Errorf("warm-up: %d non-2xx, %d unexpected; first: %s", warm.non2xx, warm.unexpected, warm.first)
	}
	wh.events = events[o.warmup:]
	pid, self := srv.cmd.Process.Pid, os.Getpid()
	req0 := fk.requests()
	cpu0, err := procCPU(pid)
	if err != nil {
		return runResult{}, err
	}
	bench0, _ := procCPU(self)
	ticks0 := machineCPU()
	lr := drive(ctx, c, o.n, wh.send)
	ticks1 := machineCPU()
	cpu1, err := procCPU(pid)
	if err != nil {
		return runResult{}, err
	}
	bench1, _ := procCPU(self)
	reqs := fk.requests().minus(req0)
	rss, err := procPeakRSS(pid)
	if err != nil {
		return runResult{}, err
	}
	stopped = true
	if err := srv.stop(); err != nil {
		return runResult{}, err
	}
	r := newRunResult(mode, "", c, o.n, lr)
	r.setRequests(reqs, o.n)
	r.setProcess(cpu1-cpu0, rss)
	r.BenchCPU = (bench1 - bench0).Seconds()
	r.StealPercent = stealPercent(ticks0, ticks1)
	r.StillAvailable = fk.stillAvailable(prefix, o.warmup, o.n)
	return r, nil
}

// sweepRow is the ceiling and soldout at one concurrency.
type sweepRow struct {
	Concurrency int       `json:"concurrency"`
	Ceiling     runResult `json:"ceiling"`
	Soldout     runResult `json:"soldout"`
	Fraction    float64   `json:"soldout_fraction_of_ceiling"`
}

// historyInfo compares soldout on an empty journal with soldout on a journal
// that already holds Events events.
type historyInfo struct {
	Events      int       `json:"events"`
	FillSeconds float64   `json:"fill_seconds"`
	Empty       runResult `json:"empty"`
	Filled      runResult `json:"filled"`
	// Filled over empty: 1.2 would be 20 % slower.
	P50Ratio       float64   `json:"p50_ratio"`
	P99Ratio       float64   `json:"p99_ratio"`
	ThroughputRate float64   `json:"throughput_ratio"`
	List           listTimes `json:"list_artwork"`
}

// historyRuns fills one journal, then alternates runs on a fresh, empty
// journal and on the filled one, so that a change in the host's speed
// weighs on both sides alike.
func historyRuns(ctx context.Context, o *options, js journals, stderr io.Writer) (historyInfo, error) {
	h := historyInfo{Events: o.history}
	url, cleanup, err := js.fresh(ctx)
	if err != nil {
		return h, err
	}
	defer cleanup()
	fmt.Fprintf(stderr, "history: filling a journal with %d events...\n", o.history)
	fill, err := fillHistory(ctx, url, o.history)
	if err != nil {
		return h, err
	}
	h.FillSeconds = fill.Seconds()
	var empty, filled []runResult
	for i := range o.repeat {
		fmt.Fprintf(stderr, "history: empty journal, run %d/%d...\n", i+1, o.repeat)
		r, err := freshSoldoutRun(ctx, o, js, o.c)
		if err != nil {
			return h, err
		}
		empty = append(empty, r)
		fmt.Fprintf(stderr, "history: %d events in the journal, run %d/%d...\n", o.history, i+1, o.repeat)
		if r, err = soldoutRun(ctx, o, o.c, url); err != nil {
			return h, err
		}
		r.Journal, r.HistoryEvents = js.kind(), o.history
		filled = append(filled, r)
	}
	h.Empty, h.Filled = medianRun(empty), medianRun(filled)
	h.P50Ratio = h.Filled.Latency.P50 / h.Empty.Latency.P50
	h.P99Ratio = h.Filled.Latency.P99 / h.Empty.Latency.P99
	h.ThroughputRate = h.Filled.EventsPerSecond / h.Empty.EventsPerSecond
	h.List, err = timeListing(ctx, o, url)
	return h, err
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
