package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"

	"soldout/internal/stripehook"
)

// coldResult is exec → first 2xx to a webhook, on an empty journal.
type coldResult struct {
	Journal  string    `json:"journal"`
	RunsMs   []float64 `json:"runs_ms"`
	MedianMs float64   `json:"median_ms"`
	MinMs    float64   `json:"min_ms"`
	MaxMs    float64   `json:"max_ms"`
}

// coldStart times, o.coldRuns times, from just before exec to the first 2xx
// answer to a signed event, each start on a new empty journal (so the time
// includes creating and migrating it). The event is sent from the first
// moment, again every 200 µs while the port refuses connections.
func coldStart(ctx context.Context, o *options, js journals) (coldResult, error) {
	res := coldResult{Journal: js.kind()}
	fk, prefix, err := startSeeded(o.sanityLatency, o.coldRuns)
	if err != nil {
		return res, err
	}
	defer fk.close()
	events := makeEvents(prefix, 0, o.coldRuns)
	for i := range o.coldRuns {
		d, err := coldOnce(ctx, o, js, fk, events[i].body)
		if err != nil {
			return res, fmt.Errorf("cold start %d: %w", i+1, err)
		}
		res.RunsMs = append(res.RunsMs, ms(d))
	}
	sorted := slices.Sorted(slices.Values(res.RunsMs))
	res.MedianMs, res.MinMs, res.MaxMs = sorted[len(sorted)/2], sorted[0], sorted[len(sorted)-1]
	return res, nil
}

func coldOnce(ctx context.Context, o *options, js journals, fk *fake, body []byte) (time.Duration, error) {
	url, cleanup, err := js.fresh(ctx)
	if err != nil {
		return 0, err
	}
	defer cleanup()
	addr, err := freeAddr()
	if err != nil {
		return 0, err
	}
	secret := "whsec_bench_" + randomHex(16)
	env := serverEnv(o, fk.url, url, secret)
	signature := []string{stripehook.Sign(body, secret, time.Now())}
	client := &http.Client{Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()

	start := time.Now()
	srv, err := startServer(o, addr, env)
	if err != nil {
		return 0, err
	}
	deadline := start.Add(10 * time.Second)
	var took time.Duration
	for took == 0 {
		select {
		case <-srv.exited:
			return 0, srv.died()
		case <-ctx.Done():
			_ = srv.stop()
			return 0, ctx.Err()
		default:
		}
		if time.Now().After(deadline) {
			_ = srv.stop()
			return 0, fmt.Errorf("no answer within 10s\n%s", srv.stderr)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.url+"/api/webhook", bytes.NewReader(body))
		if err != nil {
			return 0, err
		}
		req.Header["Content-Type"] = jsonType
		req.Header["Stripe-Signature"] = signature
		resp, err := client.Do(req)
		if err != nil {
			time.Sleep(200 * time.Microsecond) // not listening yet
			continue
		}
		answer, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			_ = srv.stop()
			return 0, fmt.Errorf("first answer %d %s", resp.StatusCode, bytes.TrimSpace(answer))
		}
		took = time.Since(start)
	}
	return took, srv.stop()
}
