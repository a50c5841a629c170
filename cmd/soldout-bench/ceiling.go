package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"time"

	"soldout/internal/sanity"
)

// The ceiling is a minimal program that makes, per event, exactly the Sanity
// requests soldout makes for a sale of an artwork without draft or release
// versions — and nothing else: no webhook, no signature, no journal, no
// rules. It runs as a child process of its own (the bench binary run as
// `soldout-bench ceiling-worker`), so that, as with soldout, the requests
// cross from one process to another. soldout can only be slower; how much
// slower is soldout's own cost.
//
// Per event, as soldout's stock.Fulfiller and sanity.Client do:
//  1. GET doc/<id>: the published document's revision;
//  2. POST mutate: one transaction, the guarded patch isAvailable=false of
//     the published document and the patch by query of its other versions.

// ceilingOtherVersions is the filter soldout's sanity.Client sends.
const ceilingOtherVersions = `*[(_id == $draft || _id in path($versions)) && isAvailable != false]`

type ceilingClient struct {
	client            *http.Client
	docURL, mutateURL string
	auth              []string
}

func newCeilingClient(base string, c int) *ceilingClient {
	v := "/v" + sanity.DefaultAPIVersion + "/data/"
	return &ceilingClient{
		client:    newClient(c),
		docURL:    base + v + "doc/" + fakeDataset + "/",
		mutateURL: base + v + "mutate/" + fakeDataset + "?returnIds=true&visibility=sync",
		auth:      []string{"Bearer " + fakeToken},
	}
}

func (cc *ceilingClient) call(ctx context.Context, method, target string, body []byte) ([]byte, outcome) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, rd)
	if err != nil {
		return nil, failed("%v", err)
	}
	req.Header["Authorization"] = cc.auth
	req.Header["Accept"] = jsonType
	if body != nil {
		req.Header["Content-Type"] = jsonType
	}
	resp, err := cc.client.Do(req)
	if err != nil {
		return nil, failed("%v", err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, failed("%v", err)
	}
	if resp.StatusCode/100 != 2 {
		o := failed("%s %d %s", method, resp.StatusCode, bytes.TrimSpace(b))
		o.non2xx = true
		return nil, o
	}
	return b, outcome{ok: true}
}

func (cc *ceilingClient) event(ctx context.Context, id string) outcome {
	doc, o := cc.call(ctx, http.MethodGet, cc.docURL+id, nil)
	if !o.ok {
		return o
	}
	// The one thing that has to be read: the revision that guards the write.
	var docs struct {
		Documents []struct {
			ID  string `json:"_id"`
			Rev string `json:"_rev"`
		} `json:"documents"`
	}
	if err := json.Unmarshal(doc, &docs); err != nil || len(docs.Documents) == 0 {
		return failed("doc %s: %v %s", id, err, doc)
	}
	mutation := fmt.Appendf(nil, `{"mutations":[{"patch":{"id":%q,"ifRevisionID":%q,"set":{"isAvailable":false}}},`+
		`{"patch":{"query":%q,"params":{"draft":%q,"versions":%q},"set":{"isAvailable":false}}}],"transactionId":%q}`,
		id, docs.Documents[0].Rev, ceilingOtherVersions, "drafts."+id, "versions.*."+id, "ceiling-"+id)
	_, o = cc.call(ctx, http.MethodPost, cc.mutateURL, mutation)
	return o
}

// ceilingReport is what the worker prints for its parent.
type ceilingReport struct {
	WallNs      int64   `json:"wall_ns"`
	LatenciesNs []int64 `json:"latencies_ns"` // sorted
	Non2xx      int     `json:"non_2xx"`
	Unexpected  int     `json:"unexpected"`
	First       string  `json:"first,omitempty"`
	CPUNs       int64   `json:"cpu_ns"` // during the measured events
	PeakRSS     int64   `json:"peak_rss"`
}

// runCeilingWorker is the child side of the ceiling: warm-up events, then the
// measured ones, then a JSON report on stdout.
func runCeilingWorker(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("ceiling-worker", flag.ContinueOnError)
	base := fs.String("sanity", "", "the fake's base URL")
	prefix := fs.String("prefix", "", "artwork id prefix")
	n := fs.Int("n", 0, "measured events")
	warmup := fs.Int("warmup", 0, "warm-up events, before the measured ones")
	c := fs.Int("c", 1, "concurrency")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cc := newCeilingClient(*base, *c)
	drive(ctx, *c, *warmup, func(ctx context.Context, i int) outcome { return cc.event(ctx, artworkID(*prefix, i)) })
	pid := os.Getpid()
	cpu0, err := procCPU(pid)
	if err != nil {
		return err
	}
	res := drive(ctx, *c, *n, func(ctx context.Context, i int) outcome { return cc.event(ctx, artworkID(*prefix, *warmup+i)) })
	cpu1, err := procCPU(pid)
	if err != nil {
		return err
	}
	rss, err := procPeakRSS(pid)
	if err != nil {
		return err
	}
	rep := ceilingReport{WallNs: int64(res.wall), Non2xx: res.non2xx, Unexpected: res.unexpected, First: res.first,
		CPUNs: int64(cpu1 - cpu0), PeakRSS: rss}
	for _, d := range res.latencies {
		rep.LatenciesNs = append(rep.LatenciesNs, int64(d))
	}
	return json.NewEncoder(stdout).Encode(rep)
}

// ceilingRun runs the worker against a freshly seeded fake.
func ceilingRun(ctx context.Context, o *options, c int) (runResult, error) {
	fk, prefix, err := startSeeded(o.sanityLatency, o.warmup+o.n)
	if err != nil {
		return runResult{}, err
	}
	defer fk.close()
	self, err := os.Executable()
	if err != nil {
		return runResult{}, err
	}
	cmd := exec.CommandContext(ctx, self, "ceiling-worker", "-sanity", fk.url, "-prefix", prefix,
		"-n", fmt.Sprint(o.n), "-warmup", fmt.Sprint(o.warmup), "-c", fmt.Sprint(c))
	stderr := &tail{max: 8 << 10}
	cmd.Stderr = stderr
	out, err := cmd.Output()
	if err != nil {
		return runResult{}, fmt.Errorf("ceiling worker: %w\n%s", err, stderr)
	}
	var rep ceilingReport
	if err := json.Unmarshal(out, &rep); err != nil {
		return runResult{}, fmt.Errorf("ceiling worker's report: %w", err)
	}
	lat := make([]time.Duration, len(rep.LatenciesNs))
	for i, d := range rep.LatenciesNs {
		lat[i] = time.Duration(d)
	}
	reqs := fk.requests()
	r := newRunResult("ceiling", "", c, o.n, loadResult{
		wall: time.Duration(rep.WallNs), latencies: lat, non2xx: rep.Non2xx, unexpected: rep.Unexpected, first: rep.First,
	})
	// Every event makes the same requests, warm-up ones included.
	r.setRequests(reqs, o.warmup+o.n)
	r.setProcess(time.Duration(rep.CPUNs), rep.PeakRSS)
	r.StillAvailable = fk.stillAvailable(prefix, o.warmup, o.n)
	return r, nil
}
