package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"soldout/internal/stock"
	"soldout/internal/stripehook"
)

// Stripe redelivers every non-2xx with exponential backoff over hours; the
// driver does the same over milliseconds.
const (
	firstBackoff = 20 * time.Millisecond
	maxBackoff   = 500 * time.Millisecond
	// maxAttempts bounds one delivery's redeliveries. Reaching it is a
	// failure of the test: soldout never applied the event.
	maxAttempts = 200
	// answerTimeout is the driver's patience with one request: the longest
	// soldout may take is the budget, so waiting longer only proves a bug.
	answerTimeout = testBudget + 5*time.Second
)

// event is one Stripe event of a scenario.
type event struct {
	id      string
	typ     string
	session string
	artwork string // "" for a session without artwork metadata
	payload []byte
}

func newEvent(id, typ, paymentStatus, session, artwork string) *event {
	s := stripehook.Sample{
		EventID: id, Type: typ, SessionID: session, PaymentStatus: paymentStatus,
		Email: session + "@example.com", AmountTotal: 120000, Currency: "eur",
	}
	if artwork != "" {
		s.ArtworkIDs = []string{artwork}
	}
	return &event{id: id, typ: typ, session: session, artwork: artwork, payload: s.JSON()}
}

// delivery is one delivery of an event, first to replica slot; its
// redeliveries go wherever the load balancer (a seeded random pick) sends
// them.
type delivery struct {
	ev   *event
	slot int
}

// job is deliveries made at the same moment: an event sent twice at once to
// two replicas, or two buyers' sessions for one artwork.
type job []delivery

// answer is what one HTTP attempt got.
type answer struct {
	event   string
	slot    int
	status  int // 0: no HTTP answer (refused, reset, timeout)
	outcome stock.Outcome
	code    string
	at      time.Time // when the answer arrived
	took    time.Duration
}

func (a answer) ok() bool { return a.status >= 200 && a.status < 300 }

// driver delivers jobs the way Stripe does: signed with the current time,
// redelivered until 2xx, in parallel by a bounded pool of workers.
type driver struct {
	c       *cluster
	workers int
	seed    uint64
	client  *http.Client
	// onAnswer, if set, sees every answer as it arrives; it must not block.
	onAnswer func(answer)

	attempts atomic.Int64
	inflight []atomic.Int64 // per slot, requests awaiting an answer

	mu      sync.Mutex
	answers []answer
	gaveUp  []string // event ids of deliveries that never got a 2xx
}

func newDriver(c *cluster, workers int, seed uint64) *driver {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = workers * 2
	return &driver{
		c: c, workers: workers, seed: seed,
		client:   &http.Client{Transport: t, Timeout: answerTimeout},
		inflight: make([]atomic.Int64, len(c.replicas)),
	}
}

// run delivers every job and returns when each delivery got a 2xx or gave
// up, or ctx ended.
func (d *driver) run(ctx context.Context, jobs []job) {
	ch := make(chan int)
	var wg sync.WaitGroup
	for range d.workers {
		wg.Go(func() {
			for i := range ch {
				d.do(ctx, i, jobs[i])
			}
		})
	}
send:
	for i := range jobs {
		select {
		case ch <- i:
		case <-ctx.Done():
			break send
		}
	}
	close(ch)
	wg.Wait()
	d.client.CloseIdleConnections()
}

// do runs a job's deliveries concurrently, released together.
func (d *driver) do(ctx context.Context, n int, j job) {
	start := make(chan struct{})
	var wg sync.WaitGroup
	for k, dl := range j {
		rng := rand.New(rand.NewPCG(d.seed, uint64(n)<<8|uint64(k)))
		wg.Go(func() {
			<-start
			d.deliver(ctx, dl, rng)
		})
	}
	close(start)
	wg.Wait()
}

func (d *driver) deliver(ctx context.Context, dl delivery, rng *rand.Rand) {
	slot, wait := dl.slot, firstBackoff
	for attempt := 1; ; attempt++ {
		a := d.post(ctx, slot, dl.ev)
		if a.ok() {
			return
		}
		if attempt == maxAttempts || ctx.Err() != nil {
			d.mu.Lock()
			d.gaveUp = append(d.gaveUp, dl.ev.id)
			d.mu.Unlock()
			return
		}
		// Full jitter, so that redeliveries of a burst do not come back in
		// step.
		t := time.NewTimer(wait/2 + time.Duration(rng.Int64N(int64(wait/2)+1)))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
		wait = min(2*wait, maxBackoff)
		slot = rng.IntN(len(d.c.replicas))
	}
}

// post makes one attempt against replica slot.
func (d *driver) post(ctx context.Context, slot int, ev *event) answer {
	d.attempts.Add(1)
	a := answer{event: ev.id, slot: slot}
	start := time.Now()
	if addr := d.c.replicas[slot].address(); addr != "" {
		d.inflight[slot].Add(1)
		a.status, a.outcome, a.code = d.send(ctx, addr, ev)
		d.inflight[slot].Add(-1)
	}
	a.at = time.Now()
	a.took = a.at.Sub(start)
	d.mu.Lock()
	d.answers = append(d.answers, a)
	d.mu.Unlock()
	if d.onAnswer != nil {
		d.onAnswer(a)
	}
	return a
}

func (d *driver) send(ctx context.Context, addr string, ev *event) (int, stock.Outcome, string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/api/webhook", bytes.NewReader(ev.payload))
	if err != nil {
		return 0, "", err.Error()
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Stripe-Signature", stripehook.Sign(ev.payload, webhookSecret, time.Now()))
	resp, err := d.client.Do(req)
	if err != nil {
		return 0, "", err.Error()
	}
	defer resp.Body.Close()
	var body struct {
		Outcome stock.Outcome `json:"outcome"`
		Code    string        `json:"code"`
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	_ = json.Unmarshal(b, &body)
	return resp.StatusCode, body.Outcome, body.Code
}

// snapshot returns the answers so far and the deliveries that gave up.
func (d *driver) snapshot() (answers []answer, gaveUp []string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]answer(nil), d.answers...), append([]string(nil), d.gaveUp...)
}
