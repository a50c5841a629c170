package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"soldout/internal/journal"
	"soldout/internal/sanity/memlake"
	"soldout/internal/stock"
	"soldout/internal/stripeapi"
	"soldout/internal/stripeapi/stripetest"
)

// opsShop is a running soldout (serve, in process, on a real SQLite journal)
// and what the operator commands need to reach the same journal, dataset
// and Stripe account.
type opsShop struct {
	t       *testing.T
	srv     *testServer
	lakeURL string
	stripe  *stripetest.Server
	env     map[string]string // the commands' settings, on top of testEnv's
	// writesDown makes the commands' Sanity refuse every mutation with 503.
	writesDown atomic.Bool
}

func startShop(t *testing.T) *opsShop {
	t.Helper()
	db := filepath.Join(t.TempDir(), "journal.db")
	o := &opsShop{t: t, srv: startServe(t, map[string]string{"DATABASE_URL": db}), stripe: stripetest.New()}
	t.Cleanup(o.stripe.Close)
	// A second listener on the same dataset, for the commands.
	lakeSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if o.writesDown.Load() && strings.Contains(r.URL.Path, "/data/mutate/") {
			http.Error(w, `{"statusCode":503,"error":"Service Unavailable","message":"down"}`, http.StatusServiceUnavailable)
			return
		}
		o.srv.lake.ServeHTTP(w, r)
	}))
	t.Cleanup(lakeSrv.Close)
	o.lakeURL = lakeSrv.URL
	o.env = map[string]string{
		"DATABASE_URL": db, "STRIPE_SECRET_KEY": stripetest.SecretKey, "STRIPE_API_BASE": o.stripe.URL(), "SOLDOUT_LOG_FORMAT": "text",
		// A run that dies mid-write blocks its sale for the lease's time.
		"SOLDOUT_TIME_BUDGET": "1s", "SOLDOUT_LEASE_TTL": "2s",
	}
	return o
}

// runCommand runs soldout with args and returns its output and exit status,
// as main would report them.
func runCommand(t *testing.T, getenv func(string) string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := run(ctx, args, getenv, &out, &errOut); err != nil {
		code = exitCode(err)
		errOut.WriteString("soldout: " + err.Error() + "\n")
	}
	return out.String(), errOut.String(), code
}

func (o *opsShop) soldout(args ...string) (stdout, stderr string, code int) {
	o.t.Helper()
	return runCommand(o.t, testEnv(o.lakeURL, o.env), args...)
}

// ok runs a command that must succeed and returns its stdout.
func (o *opsShop) ok(args ...string) string {
	o.t.Helper()
	out, errOut, code := o.soldout(args...)
	if code != 0 {
		o.t.Fatalf("soldout %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// decode runs a command with -json and decodes its output into v; it
// returns the exit status.
func (o *opsShop) decode(v any, args ...string) int {
	o.t.Helper()
	out, errOut, code := o.soldout(append(args, "-json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		o.t.Fatalf("soldout %s -json: %v\n%s%s", strings.Join(args, " "), err, out, errOut)
	}
	return code
}

// trigger sends a signed sample event to the running server.
func (o *opsShop) trigger(kind, artwork, session string) (triggerReport, int) {
	o.t.Helper()
	var rep triggerReport
	code := o.decode(&rep, "trigger", "-url", o.srv.url+"/api/webhook", "-kind", kind, "-artwork", artwork, "-session", session,
		"-email", session+"@example.com", "-amount", "120000")
	return rep, code
}

func (o *opsShop) sell(kind, artwork, session, want string) triggerReport {
	o.t.Helper()
	rep, code := o.trigger(kind, artwork, session)
	var body struct{ Outcome string }
	_ = json.Unmarshal(rep.Body, &body)
	if code != 0 || body.Outcome != want {
		o.t.Fatalf("trigger %s %s %s: exit %d, %s; want %s", kind, artwork, session, code, rep.Body, want)
	}
	return rep
}

func (o *opsShop) artwork(id string, available bool) {
	o.srv.lake.Put(map[string]any{"_id": id, "_type": "artwork", "isAvailable": available})
}

func (o *opsShop) available(id string) any {
	d, _ := o.srv.lake.Get(id)
	return d["isAvailable"]
}

func wantIn(t *testing.T, what, text string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(text, w) {
			t.Errorf("%s lacks %q:\n%s", what, w, text)
		}
	}
}

func TestOpsEventsAndSales(t *testing.T) {
	o := startShop(t)
	o.artwork("art-1", true)
	o.artwork("art-2", true)
	sale := o.sell("paid", "art-1", "cs_alice", "sold")
	o.sell("paid", "art-1", "cs_bob", "double_sale")
	o.sell("unpaid", "art-2", "cs_sepa", "held")
	o.sell("async-failed", "art-2", "cs_sepa", "released")
	ghost, code := o.trigger("paid", "art-ghost", "cs_ghost")
	if code != 1 || ghost.Status != 500 {
		t.Fatalf("a sale of an unknown artwork: exit %d, status %d", code, ghost.Status)
	}
	// A delivery that a crash interrupted: recorded, never finished.
	db, err := journal.Open(context.Background(), o.env["DATABASE_URL"])
	if err != nil {
		t.Fatal(err)
	}
	crashed := stock.Event{ID: "evt_crashed", Type: stock.CheckoutCompleted, Created: time.Now(), Payload: []byte(`{"object":"event"}`),
		Session: stock.Session{ID: "cs_crashed", ArtworkIDs: []string{"art-3"}}}
	_, err = db.RecordDelivery(context.Background(), crashed, time.Now().Add(-time.Minute))
	db.Close()
	if err != nil {
		t.Fatal(err)
	}

	var events []eventView
	if code := o.decode(&events, "events", "list"); code != 0 || len(events) != 6 {
		t.Fatalf("events list: exit %d, %d events", code, len(events))
	}
	if events[0].ID != ghost.EventID || events[0].Outcome != stock.OutcomeFailed || events[0].LastError == "" || events[0].Payload != nil {
		t.Errorf("newest event: %+v", events[0])
	}
	for _, e := range events {
		if want := e.ID == ghost.EventID || e.ID == "evt_crashed"; e.NotApplied != want {
			t.Errorf("%s (outcome %q): not_applied %v, want %v", e.ID, e.Outcome, e.NotApplied, want)
		}
	}
	for _, tt := range []struct {
		args []string
		want int
	}{
		{[]string{"-outcome", "failed"}, 1},
		{[]string{"-outcome", "unfinished"}, 1},
		{[]string{"-outcome", "not_applied"}, 2},
		{[]string{"-outcome", "sold"}, 1},
		{[]string{"-artwork", "art-2"}, 2},
		{[]string{"-type", stock.CheckoutAsyncFailed}, 1},
		{[]string{"-limit", "2"}, 2},
		{[]string{"-since", "1ns"}, 0},
		{[]string{"-since", "0"}, 6},
	} {
		var got []eventView
		if code := o.decode(&got, append([]string{"events", "list"}, tt.args...)...); code != 0 || len(got) != tt.want {
			t.Errorf("events list %v: exit %d, %d events, want %d", tt.args, code, len(got), tt.want)
		}
	}
	wantIn(t, "events list", o.ok("events", "list"), "RECEIVED", "OUTCOME", sale.EventID, "double_sale", "released",
		"2 not applied", "soldout replay ID", "(unfinished)")
	wantIn(t, "events list -outcome not_applied", o.ok("events", "list", "-outcome", "not_applied"), "evt_crashed", ghost.EventID, "2 not applied")
	// Counted over the window, not over the rows -limit leaves.
	wantIn(t, "events list -limit 1", o.ok("events", "list", "-limit", "1"), "2 not applied in this window")
	wantIn(t, "events show of an unfinished event", o.ok("events", "show", "evt_crashed"), "Not finished: a crash or a stop interrupted it; the next delivery finishes it, or: soldout replay evt_crashed")
	wantIn(t, "events show of a failed event", o.ok("events", "show", ghost.EventID), "Fix what the last error says, then: soldout replay "+ghost.EventID)
	wantIn(t, "events list -limit 2", o.ok("events", "list", "-limit", "2"), "the newest 2 shown; there are more", "-limit 0")
	if out := o.ok("events", "list", "-limit", "6"); strings.Contains(out, "newest") {
		t.Errorf("events list -limit 6 of 6 events says that there may be more:\n%s", out)
	}
	wantIn(t, "events list (none)", o.ok("events", "list", "-outcome", "held", "-artwork", "art-1"), "no events match", "in the last 24h0m0s", "-since 0")
	// Days, as the runbook counts Stripe's retries.
	wantIn(t, "events list -since 7d", o.ok("events", "list", "-since", "7d"), sale.EventID)

	show := o.ok("events", "show", ghost.EventID)
	wantIn(t, "events show", show, "failed", "last error", "art-ghost", "does not exist", "soldout replay "+ghost.EventID, "Payload:", `"object": "event"`)
	var shown eventView
	if o.decode(&shown, "events", "show", sale.EventID); shown.Outcome != stock.OutcomeSold || len(shown.Sales) != 1 || shown.Sales[0].SessionID != "cs_alice" {
		t.Errorf("events show -json: %+v", shown)
	}
	var payload struct{ ID, Type string }
	if err := json.Unmarshal(shown.Payload, &payload); err != nil || payload.ID != sale.EventID || payload.Type != stock.CheckoutCompleted {
		t.Errorf("payload %s: %v", shown.Payload, err)
	}

	sales := o.ok("sales", "list")
	wantIn(t, "sales list", sales, "CREATED", "cs_alice@example.com", "1,200.00 EUR", "released", "Double sales",
		"holds it (sold)", "checked out too", "cs_bob@example.com")
	wantIn(t, "sales list -limit 2", o.ok("sales", "list", "-limit", "2"), "the newest 2 shown; there are more (-limit 0 shows all, -state double_sale every double sale)")
	if out := o.ok("sales", "list", "-limit", "100"); strings.Contains(out, "newest") {
		t.Errorf("sales list of fewer than its limit says there are more:\n%s", out)
	}
	var doubles []saleView
	if o.decode(&doubles, "sales", "list", "-state", "double_sale"); len(doubles) != 1 || doubles[0].SessionID != "cs_bob" ||
		doubles[0].Holder == nil || doubles[0].Holder.SessionID != "cs_alice" || doubles[0].Amount != 120000 {
		t.Errorf("double sales: %+v", doubles)
	}
	var ofArt2 []saleView
	if o.decode(&ofArt2, "sales", "list", "-artwork", "art-2"); len(ofArt2) != 1 || ofArt2[0].State != "released" || ofArt2[0].Holder != nil {
		t.Errorf("sales of art-2: %+v", ofArt2)
	}

	for _, args := range [][]string{
		{"events"}, {"events", "nope"}, {"events", "list", "-outcome", "nope"}, {"events", "list", "-since", "-1h"},
		{"events", "show"}, {"events", "show", "a", "b"}, {"sales", "list", "-state", "nope"}, {"sales", "list", "extra"},
	} {
		if _, _, code := o.soldout(args...); code != 2 {
			t.Errorf("soldout %v: exit %d, want 2", args, code)
		}
	}
	_, errOut, code := o.soldout("events", "show", "evt_nope")
	if code != 1 || !strings.Contains(errOut, "events list") {
		t.Errorf("unknown event: exit %d, %s", code, errOut)
	}
}

// TestOpsReplayOfASuccessPageRequest: an event from POST /api/fulfil holds
// soldout's record of the session, not a Stripe event; replay says what
// applies it instead.
func TestOpsReplayOfASuccessPageRequest(t *testing.T) {
	o := startShop(t)
	db, err := journal.Open(context.Background(), o.env["DATABASE_URL"])
	if err != nil {
		t.Fatal(err)
	}
	id := "fulfil:cs_test_page:paid"
	ev := stock.Event{ID: id, Type: stock.CheckoutCompleted, Created: time.Now(), Payload: []byte(`{"object":"soldout.fulfil","source":"POST /api/fulfil","session":{"id":"cs_test_page"}}`)}
	_, err = db.RecordDelivery(context.Background(), ev, time.Now())
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	_, errOut, code := o.soldout("replay", id)
	if code != 1 || !strings.Contains(errOut, "POST /api/fulfil") || !strings.Contains(errOut, "soldout reconcile --apply") {
		t.Fatalf("replay of a success-page event: exit %d, %s", code, errOut)
	}
	// events show does not advise the replay that refuses it.
	if out := o.ok("events", "show", id); !strings.Contains(out, "`soldout reconcile --apply` applies its session (replay cannot)") || strings.Contains(out, "soldout replay "+id) {
		t.Errorf("events show of an unfinished success-page event:\n%s", out)
	}
}

func TestOpsReplay(t *testing.T) {
	o := startShop(t)
	failed, code := o.trigger("paid", "art-r", "cs_r")
	if code != 1 {
		t.Fatalf("trigger: exit %d", code)
	}
	id := failed.EventID

	// The artwork is still missing: the replay fails too, and says why.
	_, errOut, code := o.soldout("replay", id)
	if code != 1 || !strings.Contains(errOut, "not applied, with Sanity project abc123, dataset production") || !strings.Contains(errOut, "does not exist") {
		t.Fatalf("replay before the fix: exit %d, %s", code, errOut)
	}
	o.artwork("art-r", true) // restored
	wantIn(t, "replay", o.ok("replay", id), "replayed "+id, "art-r", "sold")
	if o.available("art-r") != false {
		t.Fatal("replay did not mark the artwork unavailable")
	}
	var rec eventView
	if o.decode(&rec, "events", "show", id); rec.Outcome != stock.OutcomeSold || rec.Attempts != 3 {
		t.Fatalf("after replay: %+v", rec)
	}

	// Applied: nothing more is done unless forced.
	writes := len(o.srv.lake.Transactions())
	wantIn(t, "replay of a final event", o.ok("replay", id), "already decided (outcome sold: art-r=sold)", "--force")
	var rep replayReport
	if o.decode(&rep, "replay", id); rep.Replayed || rep.PreviousOutcome != stock.OutcomeSold {
		t.Errorf("replay -json: %+v", rep)
	}
	if len(o.srv.lake.Transactions()) != writes {
		t.Fatal("replaying an applied event wrote to Sanity")
	}

	// An editor put it back on sale: -force writes it unavailable again,
	// as a run of its own, and the original keeps its outcome.
	o.artwork("art-r", true)
	if o.decode(&rep, "replay", "--force", id); !rep.Replayed || rep.Outcome != stock.OutcomeSold || !strings.HasPrefix(rep.RunID, "replay:"+id+":") {
		t.Fatalf("replay -force: %+v", rep)
	}
	if o.available("art-r") != false {
		t.Fatal("replay -force left the artwork for sale")
	}
	var runs []eventView
	o.decode(&runs, "events", "list", "-artwork", "art-r")
	if len(runs) != 2 || runs[0].ID != rep.RunID || runs[1].ID != id || runs[1].Outcome != stock.OutcomeSold {
		t.Fatalf("events of art-r: %+v", runs)
	}

	// A forced run that fails is replayed under its own id.
	o.artwork("art-r", true)
	o.writesDown.Store(true)
	if code := o.decode(&rep, "replay", "--force", id); code != 1 || rep.Error == "" {
		t.Fatalf("replay --force with Sanity down: exit %d, %+v", code, rep)
	}
	o.writesDown.Store(false)
	time.Sleep(2100 * time.Millisecond) // the failed run's lease
	if o.decode(&rep, "replay", rep.RunID); rep.Outcome != stock.OutcomeSold || rep.RunID != rep.EventID {
		t.Fatalf("replay of the failed run: %+v", rep)
	}
	if o.available("art-r") != false {
		t.Fatal("the replayed run left the artwork for sale")
	}

	if _, errOut, code := o.soldout("replay", "evt_nope"); code != 1 || !strings.Contains(errOut, "events list") {
		t.Errorf("unknown event: exit %d, %s", code, errOut)
	}
	if _, _, code := o.soldout("replay"); code != 2 {
		t.Errorf("no event id: exit %d", code)
	}
}

func TestOpsReconcile(t *testing.T) {
	o := startShop(t)
	now := time.Now()
	put := func(id, payment string, metadata map[string]string) {
		o.stripe.Put(stripetest.Session{ID: id, Status: stripetest.StatusComplete, PaymentStatus: payment, Email: id + "@example.com",
			AmountTotal: 120000, Currency: "eur", Metadata: metadata, Created: now.Add(-time.Hour)})
	}
	o.artwork("art-ok", true)
	o.artwork("art-lost", true)
	put("cs_ok", stripetest.PaymentPaid, map[string]string{"artworkId": "art-ok"})
	o.sell("paid", "art-ok", "cs_ok", "sold")
	put("cs_lost", stripetest.PaymentPaid, map[string]string{"artworkId": "art-lost"})
	put("cs_second", stripetest.PaymentPaid, map[string]string{"artworkId": "art-ok"})
	put("cs_ghost", stripetest.PaymentPaid, map[string]string{"artworkId": "art-ghost"})
	// Over a page of sessions without metadata: auto-pagination.
	for range 120 {
		o.stripe.Put(stripetest.Session{Status: stripetest.StatusComplete, PaymentStatus: stripetest.PaymentPaid, Created: now.Add(-2 * time.Hour)})
	}

	kinds := func(fs []findingView) string {
		var s []string
		for _, f := range fs {
			s = append(s, f.SessionID+"="+string(f.Kind))
		}
		return strings.Join(s, " ")
	}
	writes := len(o.srv.lake.Transactions())
	out, errOut, code := o.soldout("reconcile")
	if code != 3 || !strings.Contains(errOut, "3 inconsistencies: `soldout reconcile --apply` fixes 2") {
		t.Fatalf("reconcile: exit %d\n%s%s", code, out, errOut)
	}
	wantIn(t, "reconcile", out, "124 complete Checkout Sessions", "120 without artwork metadata", "Read-only", "KIND", "missing",
		"cs_lost@example.com", "1,200.00 EUR", "double_sale", "cs_ok, cs_ok@example.com, sold", "unknown_artwork", "--apply")
	if o.stripe.Requests(stripetest.EndpointList) != 2 {
		t.Errorf("%d list requests, want 2 pages", o.stripe.Requests(stripetest.EndpointList))
	}
	var rep reconcileReport
	if o.decode(&rep, "reconcile", "-since", "24h"); kinds(rep.Findings) != "cs_ghost=unknown_artwork cs_second=double_sale cs_lost=missing" ||
		rep.Remaining != nil || rep.Findings[2].Fixable != true || rep.Findings[0].Fixable {
		t.Fatalf("reconcile -json: %+v", rep)
	}
	if len(o.srv.lake.Transactions()) != writes || o.available("art-lost") != true {
		t.Fatal("a read-only reconcile changed Sanity")
	}

	// -apply: what the pipeline can fix is fixed; the rest is left.
	out, errOut, code = o.soldout("reconcile", "--apply")
	if code != 3 || !strings.Contains(errOut, "2 inconsistencies left after --apply") {
		t.Fatalf("reconcile -apply: exit %d\n%s%s", code, out, errOut)
	}
	wantIn(t, "reconcile -apply", out, "Applied through the pipeline", "reconcile:cs_lost:paid:", "art-lost=sold", "art-ok=double_sale", "Checked again, still inconsistent")
	if o.available("art-lost") != false {
		t.Fatal("reconcile -apply left a paid artwork for sale")
	}
	var lost []saleView
	if o.decode(&lost, "sales", "list", "-artwork", "art-lost"); len(lost) != 1 || lost[0].State != "sold" || lost[0].Email != "cs_lost@example.com" {
		t.Fatalf("sale after reconcile: %+v", lost)
	}

	// The artwork restored, -apply sells it to cs_ghost; the double sale
	// stays until a person refunds it.
	o.artwork("art-ghost", true)
	if o.decode(&rep, "reconcile", "-apply"); kinds(*rep.Remaining) != "cs_second=double_sale" || (*rep.Remaining)[0].Holder.SessionID != "cs_ok" {
		t.Fatalf("remaining: %+v", rep.Remaining)
	}
	if _, errOut, code := o.soldout("reconcile"); code != 3 || !strings.Contains(errOut, "1 inconsistency, each needing a person") {
		t.Fatalf("double sale only: exit %d, %s", code, errOut)
	}
	// Nothing left that --apply can do: it says so, and blames no error.
	out, errOut, code = o.soldout("reconcile", "--apply")
	if code != 3 || !strings.Contains(errOut, "1 inconsistency left after --apply, each needing a person") || strings.Contains(errOut, "error") {
		t.Fatalf("reconcile -apply with nothing to apply: exit %d, %s", code, errOut)
	}
	wantIn(t, "reconcile -apply with nothing to apply", out, "Nothing to apply", "SESSION CREATED")
	if strings.Contains(out, "Applied through the pipeline") {
		t.Errorf("an empty table of what was applied:\n%s", out)
	}

	for _, tt := range []struct {
		name string
		env  map[string]string
		fail func()
		want string
	}{
		{"no key", map[string]string{"STRIPE_SECRET_KEY": ""}, nil, "STRIPE_SECRET_KEY is not set"},
		{"wrong key", map[string]string{"STRIPE_SECRET_KEY": "sk_test_wrong"}, nil, "STRIPE_SECRET_KEY was refused"},
		{"Stripe down", nil, func() { o.stripe.FailNext(1, 500) }, "An unknown error occurred"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{}
			for k, v := range o.env {
				env[k] = v
			}
			for k, v := range tt.env {
				env[k] = v
			}
			if tt.fail != nil {
				tt.fail()
			}
			_, errOut, code := runCommand(t, testEnv(o.lakeURL, env), "reconcile")
			if code != 1 || !strings.Contains(errOut, tt.want) || strings.Contains(errOut, "sk_test_wrong") {
				t.Errorf("exit %d, %s", code, errOut)
			}
		})
	}
}

// TestOpsReconcileCouldNotCheck: a check that could not run exits 1, not
// 3, so that a cron job tells "Stripe unreachable" from inconsistencies.
func TestOpsReconcileCouldNotCheck(t *testing.T) {
	o := startShop(t)
	o.env["STRIPE_API_BASE"] = "http://127.0.0.1:1"
	if _, errOut, code := o.soldout("reconcile"); code != 1 || !strings.Contains(errOut, "soldout: reconcile:") {
		t.Errorf("reconcile with Stripe unreachable: exit %d, %s", code, errOut)
	}
}

// TestOpsCommandsRunOnTheServersDataset: replay and reconcile from a shell
// whose Sanity dataset is not the one serve writes for the journal are
// refused before they change anything.
func TestOpsCommandsRunOnTheServersDataset(t *testing.T) {
	o := startShop(t)
	failed, _ := o.trigger("paid", "art-d", "cs_d")
	o.env["SANITY_DATASET"] = "staging"
	for _, args := range [][]string{{"replay", failed.EventID}, {"reconcile"}} {
		if _, errOut, code := o.soldout(args...); code != 1 || !strings.Contains(errOut, "this shell's Sanity is project/dataset abc123/staging") ||
			!strings.Contains(errOut, "soldout serve writes this journal's sales to abc123/production") {
			t.Errorf("%v from a shell of another dataset: exit %d, %s", args, code, errOut)
		}
	}
	var rec eventView
	if o.decode(&rec, "events", "show", failed.EventID); rec.Attempts != 1 {
		t.Errorf("a refused replay was journaled: %+v", rec)
	}
	out, _, _ := o.soldout("check")
	wantIn(t, "check from a shell of another dataset", out, "sanity dataset", "serve would write to abc123/staging, but the journal's sales are of abc123/production")
}

func TestOpsReconcileConsistent(t *testing.T) {
	o := startShop(t)
	o.artwork("art-1", true)
	o.stripe.Put(stripetest.Session{ID: "cs_1", Status: stripetest.StatusComplete, PaymentStatus: stripetest.PaymentPaid,
		Metadata: map[string]string{"artworkId": "art-1"}})
	o.sell("paid", "art-1", "cs_1", "sold")
	wantIn(t, "reconcile", o.ok("reconcile", "-apply"), "1 complete Checkout Session from", "consistent")
	var rep reconcileReport
	if code := o.decode(&rep, "reconcile"); code != 0 || rep.Findings == nil || len(rep.Findings) != 0 {
		t.Errorf("exit %d, %+v", code, rep)
	}
}

func TestOpsCheck(t *testing.T) {
	stripe := stripetest.New()
	t.Cleanup(stripe.Close)
	lake := memlake.New("production", "sk-sanity-test-token")
	// A token that may not read drafts, or not write, is played by a
	// handler that answers as Sanity does for it.
	var fault func(w http.ResponseWriter, r *http.Request) bool
	sanitySrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if fault == nil || !fault(w, r) {
			lake.ServeHTTP(w, r)
		}
	}))
	t.Cleanup(sanitySrv.Close)
	hideDrafts := func(w http.ResponseWriter, r *http.Request) bool {
		if !strings.Contains(r.URL.Path, "/data/doc/") || !strings.Contains(r.URL.Path, "drafts.") {
			return false
		}
		id := r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:]
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"documents":[],"omitted":[{"id":"` + id + `","reason":"permission"}]}`))
		return true
	}
	readOnly := func(w http.ResponseWriter, r *http.Request) bool {
		if !strings.Contains(r.URL.Path, "/data/mutate/") {
			return false
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write([]byte(`{"error":{"type":"mutationError","description":"Mutation(s) failed with 1 error(s)","items":[{"index":0,"error":{"type":"insufficientPermissionsError","description":"Insufficient permissions; permission \"create\" required"}}]}}`))
		return true
	}
	newerJournal := func(t *testing.T) string {
		path := filepath.Join(t.TempDir(), "newer.db")
		db, err := journal.Open(context.Background(), path)
		if err != nil {
			t.Fatal(err)
		}
		db.Close()
		raw, err := sql.Open("sqlite", path)
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		if _, err := raw.Exec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (99, '0099_future.sql', 0)`); err != nil {
			t.Fatal(err)
		}
		return path
	}

	// A journal as serve leaves it; check opens nothing else.
	servedJournal := func(t *testing.T) string {
		path := filepath.Join(t.TempDir(), "j.db")
		db, err := journal.Open(context.Background(), path)
		if err != nil {
			t.Fatal(err)
		}
		db.Close()
		return path
	}
	noJournal := func(t *testing.T) string { return filepath.Join(t.TempDir(), "tpyo.db") }
	olderJournal := func(t *testing.T) string {
		path := servedJournal(t)
		raw, err := sql.Open("sqlite", path)
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		if _, err := raw.Exec(`DROP TABLE settings; DELETE FROM schema_migrations WHERE version = 4`); err != nil {
			t.Fatal(err)
		}
		return path
	}
	foreignFile := func(t *testing.T) string {
		path := filepath.Join(t.TempDir(), "shop.db")
		raw, err := sql.Open("sqlite", path)
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		if _, err := raw.Exec(`CREATE TABLE customers (id INTEGER PRIMARY KEY)`); err != nil {
			t.Fatal(err)
		}
		return path
	}
	schemaVersion := func(t *testing.T, path string) int {
		raw, err := sql.Open("sqlite", path)
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		var v int
		if err := raw.QueryRow(`SELECT MAX(version) FROM schema_migrations`).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}

	liveJournal := func(t *testing.T) string {
		path := filepath.Join(t.TempDir(), "live.db")
		db, err := journal.Open(context.Background(), path)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if err := db.SetSetting(context.Background(), stripeModeSetting, string(stock.ModeLive)); err != nil {
			t.Fatal(err)
		}
		return path
	}

	tests := []struct {
		name  string
		env   map[string]string
		fault func(w http.ResponseWriter, r *http.Request) bool
		db    func(t *testing.T) string
		want  map[string]string // check → status, and every other line ok or skip
		hint  string            // in the failing line
		after func(t *testing.T, path string)
	}{
		{name: "all good", want: map[string]string{"settings": checkOK, "webhook secret": checkOK, "sanity": checkOK,
			"sanity drafts": checkOK, "sanity write": checkOK, "journal": checkOK, "stripe mode": checkOK, "stripe key": checkOK}},
		{name: "a test key on a journal served in live mode", db: liveJournal, want: map[string]string{"stripe mode": checkWarn}},
		{name: "no Stripe key", env: map[string]string{"STRIPE_SECRET_KEY": ""}, want: map[string]string{"stripe key": checkSkip}},
		{name: "not a webhook secret", env: map[string]string{"STRIPE_WEBHOOK_SECRET": "sk_live_123456789"},
			want: map[string]string{"webhook secret": checkFail}, hint: "whsec_"},
		{name: "no Sanity project", env: map[string]string{"SANITY_PROJECT_ID": ""},
			want: map[string]string{"sanity settings": checkFail, "sanity": checkSkip}, hint: "sanity.config.ts"},
		{name: "bad port", env: map[string]string{"PORT": "eighty"}, want: map[string]string{"settings": checkFail}, hint: "PORT"},
		{name: "token refused", env: map[string]string{"SANITY_API_TOKEN": "sk-wrong"}, want: map[string]string{"sanity": checkFail}, hint: "Editor"},
		{name: "no such dataset", env: map[string]string{"SANITY_DATASET": "staging"}, want: map[string]string{"sanity": checkFail}, hint: "no dataset staging"},
		{name: "Sanity unreachable", env: map[string]string{"SANITY_API_HOST": "http://127.0.0.1:1"}, want: map[string]string{"sanity": checkFail}, hint: "no usable answer"},
		{name: "token cannot read drafts", fault: hideDrafts, want: map[string]string{"sanity drafts": checkFail, "sanity write": checkOK}, hint: "may not read drafts.soldout-check"},
		{name: "token cannot write", fault: readOnly, want: map[string]string{"sanity drafts": checkOK, "sanity write": checkFail}, hint: "Viewer tokens cannot write"},
		{name: "journal from a newer soldout", db: newerJournal, want: map[string]string{"journal": checkFail}, hint: "newer"},
		{name: "no journal yet", db: noJournal, want: map[string]string{"journal": checkWarn, "stripe mode": checkOK},
			after: func(t *testing.T, path string) {
				if _, err := os.Stat(path); err == nil {
					t.Error("check created a journal")
				}
			}},
		{name: "another application's database", db: foreignFile, want: map[string]string{"journal": checkFail, "stripe mode": checkOK}, hint: "customers"},
		{name: "journal of an older soldout", db: olderJournal, want: map[string]string{"journal": checkWarn, "stripe mode": checkOK},
			after: func(t *testing.T, path string) {
				if v := schemaVersion(t, path); v != journal.LatestSchemaVersion()-1 {
					t.Errorf("after check the schema is at version %d: check migrated the journal", v)
				}
			}},
		{name: "journal URL not supported", env: map[string]string{"DATABASE_URL": "mysql://u:hunter2@db/x"}, want: map[string]string{"journal": checkFail}, hint: "DATABASE_URL"},
		{name: "Stripe key refused", env: map[string]string{"STRIPE_SECRET_KEY": "sk_test_wrong"}, want: map[string]string{"stripe key": checkFail}, hint: "refused"},
		{name: "not a Stripe key", env: map[string]string{"STRIPE_SECRET_KEY": "pk_test_123"}, want: map[string]string{"stripe key": checkFail}, hint: "publishable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{"STRIPE_SECRET_KEY": stripetest.SecretKey, "STRIPE_API_BASE": stripe.URL()}
			if tt.db == nil {
				tt.db = servedJournal
			}
			env["DATABASE_URL"] = tt.db(t)
			for k, v := range tt.env {
				env[k] = v
			}
			fault = tt.fault
			defer func() { fault = nil }()
			getenv := testEnv(sanitySrv.URL, env)
			var results []checkResult
			out, errOut, code := runCommand(t, getenv, "check", "-json")
			if err := json.Unmarshal([]byte(out), &results); err != nil {
				t.Fatalf("%v\n%s%s", err, out, errOut)
			}
			failing := false
			for _, r := range results {
				want, listed := tt.want[r.Check]
				switch {
				case listed && r.Status != want:
					t.Errorf("%s: %s (%s), want %s", r.Check, r.Status, r.Detail, want)
				case !listed && r.Status == checkFail:
					t.Errorf("%s failed too: %s", r.Check, r.Detail)
				}
				if r.Status == checkFail {
					failing = true
					if !strings.Contains(r.Detail, tt.hint) {
						t.Errorf("%s: %q does not say %q", r.Check, r.Detail, tt.hint)
					}
				}
				delete(tt.want, r.Check)
			}
			if len(tt.want) > 0 {
				t.Errorf("no line for %v", tt.want)
			}
			if wantCode := map[bool]int{false: 0, true: 1}[failing]; code != wantCode {
				t.Errorf("exit %d, want %d", code, wantCode)
			}
			text, _, _ := runCommand(t, getenv, "check")
			for _, secret := range []string{testSecret, "sk-sanity-test-token", stripetest.SecretKey, "hunter2"} {
				if strings.Contains(out+text+errOut, secret) {
					t.Errorf("output shows %q", secret)
				}
			}
			if !strings.Contains(text, "✓ settings") && !strings.Contains(text, "✗ settings") {
				t.Errorf("text output:\n%s", text)
			}
			if tt.after != nil {
				tt.after(t, env["DATABASE_URL"])
			}
		})
	}
}

func TestOpsTrigger(t *testing.T) {
	o := startShop(t)
	o.artwork("art-1", true)
	port := o.srv.url[strings.LastIndexByte(o.srv.url, ':')+1:]

	// PORT makes the default -url only.
	o.env["PORT"] = "eighty"
	if _, errOut, code := o.soldout("trigger", "-artwork", "art-0"); code != 1 || !strings.Contains(errOut, `PORT="eighty"`) {
		t.Errorf("trigger to a bad PORT: exit %d, %s", code, errOut)
	}
	wantIn(t, "trigger -url with a bad PORT", o.ok("trigger", "-url", o.srv.url+"/api/webhook"), "200 OK")

	// Defaults: paid, to localhost:$PORT, a new session.
	o.env["PORT"] = port
	out := o.ok("trigger", "-artwork", "art-1")
	wantIn(t, "trigger", out, "sent checkout.session.completed evt_trigger_", "to http://localhost:"+port+"/api/webhook", "200 OK", `"outcome":"sold"`)
	if o.available("art-1") != false {
		t.Fatal("the triggered sale did not reach Sanity")
	}
	// Without -artwork, the default event changes nothing and logs no error.
	wantIn(t, "trigger without artwork", o.ok("trigger", "-url", o.srv.url+"/api/webhook"), "checkout.session.expired", `"outcome":"ignored"`)
	wantIn(t, "a paid trigger without artwork", o.ok("trigger", "-url", o.srv.url+"/api/webhook", "-kind", "paid"), "checkout.session.completed", `"outcome":"invalid_metadata"`)

	// A paid session naming no artwork is decided: a replay says a person
	// must act.
	wantIn(t, "replay of invalid metadata", o.ok("replay", invalidEventID(t, o)), "already decided (outcome invalid_metadata", "a person must act on invalid_metadata")

	o.env["STRIPE_WEBHOOK_SECRET"] = "whsec_another_endpoint_secret"
	if _, errOut, code := o.soldout("trigger", "-url", o.srv.url+"/api/webhook"); code != 1 || !strings.Contains(errOut, "another STRIPE_WEBHOOK_SECRET") {
		t.Errorf("wrong secret: exit %d, %s", code, errOut)
	}
	// While rolling: trigger signs with the first, which the server lacks.
	o.env["STRIPE_WEBHOOK_SECRET"] = "whsec_another_endpoint_secret," + testSecret
	if _, errOut, code := o.soldout("trigger", "-url", o.srv.url+"/api/webhook"); code != 1 || !strings.Contains(errOut, "the first of this shell's 2") {
		t.Errorf("several secrets, the first wrong: exit %d, %s", code, errOut)
	}
	if _, errOut, code := o.soldout("trigger", "-url", "http://127.0.0.1:1/api/webhook"); code != 1 || !strings.Contains(errOut, "soldout serve") {
		t.Errorf("nobody listening: exit %d, %s", code, errOut)
	}
	if _, _, code := o.soldout("trigger", "-kind", "refunded"); code != 2 {
		t.Errorf("bad kind: exit %d", code)
	}
	o.env["STRIPE_WEBHOOK_SECRET"] = ""
	if _, errOut, code := o.soldout("trigger"); code != 1 || !strings.Contains(errOut, "STRIPE_WEBHOOK_SECRET is not set") {
		t.Errorf("no secret: exit %d, %s", code, errOut)
	}
}

// invalidEventID is the id of the newest invalid_metadata event.
func invalidEventID(t *testing.T, o *opsShop) string {
	t.Helper()
	var events []eventView
	o.decode(&events, "events", "list", "-outcome", "invalid_metadata")
	if len(events) == 0 {
		t.Fatal("no invalid_metadata event")
	}
	return events[0].ID
}

// TestEventsListTellsOfOlderFailures: an event still failing whose first
// delivery is older than the window is not listed, but counted below the
// list; and a listing that finds nothing names its filters.
func TestEventsListTellsOfOlderFailures(t *testing.T) {
	o := startShop(t)
	o.artwork("art-1", true)
	o.sell("paid", "art-1", "cs_new", "sold")
	db, err := journal.Open(context.Background(), o.env["DATABASE_URL"])
	if err != nil {
		t.Fatal(err)
	}
	// One failed event from before the window, one from within it.
	for id, ago := range map[string]time.Duration{"evt_old": 30 * time.Hour, "evt_recent": time.Hour} {
		ev := stock.Event{ID: id, Type: stock.CheckoutCompleted, Created: time.Now().Add(-ago - time.Hour), Payload: []byte(`{"object":"event"}`),
			Session: stock.Session{ID: "cs_" + id, ArtworkIDs: []string{"art-2"}}}
		_, err = db.RecordDelivery(context.Background(), ev, time.Now().Add(-ago))
		if err == nil {
			err = db.FinishEvent(context.Background(), ev.ID, stock.OutcomeFailed, "", "sanity down", time.Now().Add(-ago))
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	const note = "1 more not applied, first received before this window: `soldout events list -outcome not_applied -since 0` lists them."
	wantIn(t, "events list", o.ok("events", "list"), "cs_new", note)
	wantIn(t, "events list -outcome not_applied", o.ok("events", "list", "-outcome", "not_applied"), "evt_recent", note)
	wantIn(t, "events list -outcome unfinished", o.ok("events", "list", "-outcome", "unfinished"),
		`no events match -outcome "unfinished" (journal: sqlite) in the last 24h0m0s`)
	wantIn(t, "events list -artwork art-2", o.ok("events", "list", "-artwork", "art-2"),
		"1 more not applied, first received before this window: `soldout events list -outcome not_applied -artwork art-2 -since 0` lists them.")
	for _, args := range [][]string{{"-outcome", "sold"}, {"-outcome", "unfinished"}} {
		if out := o.ok(append([]string{"events", "list"}, args...)...); strings.Contains(out, "before this window") {
			t.Errorf("events list %v counts failed events it does not list:\n%s", args, out)
		}
	}
	if out := o.ok("events", "list", "-since", "0"); !strings.Contains(out, "evt_old") || strings.Contains(out, "before this window") {
		t.Errorf("events list -since 0 lists everything and notes nothing:\n%s", out)
	}
	if out := o.ok("events", "list", "-artwork", "art-1"); strings.Contains(out, "before this window") {
		t.Errorf("the note counts another artwork's events:\n%s", out)
	}
}

func TestVersion(t *testing.T) {
	out, _, code := runCommand(t, testEnv("", nil), "version")
	wantIn(t, "version", out, "soldout ", runtime.Version(), fmt.Sprintf("journal schema %d", journal.LatestSchemaVersion()), stripeapi.APIVersion)
	if code != 0 {
		t.Errorf("version: exit %d", code)
	}
}

func TestOpsHelp(t *testing.T) {
	getenv := testEnv("", nil)
	help, _, _ := runCommand(t, getenv, "help")
	wantIn(t, "help", help, "events", "sales", "replay", "reconcile", "check", "trigger", "serve", "demo")
	if got, all := listedEnv(help), everySetting(); !slices.Equal(got, all) {
		t.Errorf("help lists %v, want every setting %v", got, all)
	}
	journalOnly := []string{"DATABASE_URL"}
	pipeline := []string{"DATABASE_URL", "SANITY_API_HOST", "SANITY_API_TOKEN", "SANITY_API_VERSION", "SANITY_DATASET", "SANITY_PROJECT_ID",
		"SOLDOUT_LEASE_TTL", "SOLDOUT_LOG_FORMAT", "SOLDOUT_LOG_LEVEL", "SOLDOUT_SANITY_RATE", "SOLDOUT_STRIPE_MODE", "SOLDOUT_TIME_BUDGET", "STRIPE_SECRET_KEY"}
	// Each command's help lists the settings it reads, and no other.
	for _, tt := range []struct {
		args  []string
		wants []string
		env   []string // sorted
	}{
		{[]string{"events", "list", "-h"}, []string{"soldout events list", "-since", "-outcome", "-artwork", "-limit", "-json", "-database-url"}, journalOnly},
		{[]string{"events", "show", "-h"}, []string{"soldout events show", "EVENT_ID", "payload"}, journalOnly},
		{[]string{"events", "-h"}, []string{"soldout events <list|show>"}, nil},
		{[]string{"sales", "list", "-h"}, []string{"soldout sales list", "-state", "double_sale"}, journalOnly},
		{[]string{"replay", "-h"}, []string{"soldout replay", "-force", "EVENT_ID"}, pipeline},
		{[]string{"reconcile", "-h"}, []string{"soldout reconcile", "-since", "-apply"}, append(slices.Clone(pipeline), "STRIPE_API_BASE")},
		{[]string{"check", "-h"}, []string{"soldout check", "✓", "\nEnvironment:\n"}, everySetting()},
		{[]string{"trigger", "-h"}, []string{"soldout trigger", "-url", "-kind", "-session", "-artwork", "default -url"},
			[]string{"DATABASE_URL", "PORT", "SOLDOUT_STRIPE_MODE", "STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET"}},
		{[]string{"demo", "-h"}, []string{"soldout demo", "-keep"}, []string{"SOLDOUT_LOG_LEVEL"}},
		{[]string{"serve", "-h"}, []string{"soldout serve", "\nEnvironment:\n"}, everySetting()},
	} {
		what := strings.Join(tt.args, " ")
		stdout, stderr, code := runCommand(t, getenv, tt.args...)
		if code != 0 {
			t.Errorf("%v: exit %d", tt.args, code)
		}
		wantIn(t, what, stdout+stderr, tt.wants...)
		got := listedEnv(stdout + stderr)
		slices.Sort(got)
		if want := slices.Sorted(slices.Values(tt.env)); !slices.Equal(got, want) {
			t.Errorf("%s lists the settings %v, want %v", what, got, want)
		}
	}
}

// listedEnv returns the names of the settings a help text lists.
func listedEnv(help string) []string {
	_, section, ok := strings.Cut(help, "\nEnvironment")
	if !ok {
		return nil
	}
	var names []string
	for _, line := range strings.Split(section, "\n")[1:] {
		if !strings.HasPrefix(line, "  ") {
			break
		}
		names = append(names, strings.Fields(line)[0])
	}
	return names
}

// everySetting names envHelp's settings, in its order.
func everySetting() []string {
	var names []string
	for _, e := range envHelp {
		names = append(names, e.name)
	}
	return names
}

// TestFlagMistakes: a mistake on the command line gets one line, the error
// and where the help is, not a screen of help around it.
func TestFlagMistakes(t *testing.T) {
	getenv := testEnv("", nil)
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"events", "list", "-bogus"}, "soldout: flag provided but not defined: -bogus (see `soldout events list -h`)\n"},
		{[]string{"events", "list", "-limit", "x"}, "soldout: invalid value \"x\" for flag -limit: parse error (see `soldout events list -h`)\n"},
		{[]string{"events", "show"}, "soldout: missing EVENT_ID (see `soldout events show -h`)\n"},
		{[]string{"replay", "evt_1", "extra"}, "soldout: unexpected argument \"extra\" (see `soldout replay -h`)\n"},
		{[]string{"reconcile", "-since"}, "soldout: flag needs an argument: -since (see `soldout reconcile -h`)\n"},
		{[]string{"evnets", "list"}, "soldout: unknown command \"evnets\": did you mean \"events\"? (see `soldout help`)\n"},
		{[]string{"events", "bogus"}, "soldout: unknown command \"bogus\" for soldout events: use one of list, show (see `soldout events -h`)\n"},
		{[]string{"events"}, "soldout: missing command after \"events\": use one of list, show (see `soldout events -h`)\n"},
		{[]string{"events", "list", "-type", "checkout.sesion.completed"}, "soldout: -type \"checkout.sesion.completed\" is no Checkout Session event: did you mean \"checkout.session.completed\"? (soldout acts on checkout.session.completed, checkout.session.async_payment_succeeded, checkout.session.async_payment_failed, checkout.session.expired) (see `soldout events list -h`)\n"},
		{[]string{"trigger", "-mode", "prod"}, "soldout: -mode \"prod\": test or live (see `soldout trigger -h`)\n"},
		{[]string{"version", "extra"}, "soldout: unexpected argument \"extra\" (see `soldout version -h`)\n"},
		{[]string{"events", "list", "-type", "checkout.session.complete"}, "soldout: -type \"checkout.session.complete\" is no Checkout Session event: did you mean \"checkout.session.completed\"? (soldout acts on checkout.session.completed, checkout.session.async_payment_succeeded, checkout.session.async_payment_failed, checkout.session.expired) (see `soldout events list -h`)\n"},
		{[]string{"trigger", "-kind", "refunded"}, "soldout: -kind \"refunded\": use paid, unpaid, async-succeeded, async-failed or expired (see `soldout trigger -h`)\n"},
		{[]string{"reconcile", "-since", "0"}, "soldout: -since must be positive, e.g. 72h (see `soldout reconcile -h`)\n"},
	} {
		stdout, stderr, code := runCommand(t, getenv, tt.args...)
		if code != 2 || stdout != "" || stderr != tt.want {
			t.Errorf("%v: exit %d, stdout %q, stderr\n%s\nwant exit 2 and only\n%s", tt.args, code, stdout, stderr, tt.want)
		}
	}
}

func TestFormatAmount(t *testing.T) {
	for _, tt := range []struct {
		minor    int64
		currency string
		want     string
	}{
		{120000, "eur", "1,200.00 EUR"},
		{5, "usd", "0.05 USD"},
		{0, "eur", "0.00 EUR"},
		{123456789, "gbp", "1,234,567.89 GBP"},
		{5000, "jpy", "5,000 JPY"},
		{1230, "kwd", "1.230 KWD"},
		{-250, "eur", "-2.50 EUR"},
		{100, "", "1.00"},
	} {
		if got := formatAmount(tt.minor, tt.currency); got != tt.want {
			t.Errorf("formatAmount(%d, %q) = %q, want %q", tt.minor, tt.currency, got, tt.want)
		}
	}
}

func TestOpsRefuseAMissingJournal(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "tpyo.db")
	env := func(k string) string { return map[string]string{"DATABASE_URL": missing}[k] }
	for _, args := range [][]string{{"events", "list"}, {"events", "show", "evt_1"}, {"sales", "list"}} {
		_, stderr, code := runCommand(t, env, args...)
		if code != 1 || !strings.Contains(stderr, "DATABASE_URL") || !strings.Contains(stderr, "no journal") {
			t.Errorf("%v: exit %d, %q", args, code, stderr)
		}
	}
	if _, stderr, _ := runCommand(t, func(string) string { return "" }, "events", "list", "-database-url", missing); !strings.Contains(stderr, "(-database-url)") {
		t.Errorf("a path given by flag is reported under another name: %q", stderr)
	}
	// replay and reconcile too: on an empty journal reconcile would take
	// every paid session for unrecorded, and --apply would apply them there.
	pipeline := testEnv("http://127.0.0.1:1", map[string]string{"DATABASE_URL": missing,
		"STRIPE_SECRET_KEY": "sk_test_4eC39HqLyjWDarjtT1zdp7dc", "STRIPE_API_BASE": "http://127.0.0.1:1"})
	for _, args := range [][]string{{"replay", "evt_1"}, {"reconcile"}, {"reconcile", "--apply"}} {
		_, stderr, code := runCommand(t, pipeline, args...)
		if code != 1 || !strings.Contains(stderr, "DATABASE_URL") || !strings.Contains(stderr, "no journal") {
			t.Errorf("%v: exit %d, %q", args, code, stderr)
		}
	}
	if _, err := os.Stat(missing); err == nil {
		t.Fatal("an operator command created an empty journal")
	}
}

// TestOpsSalesListOfAKeptPiece: after a failed hold kept the piece for a
// buyer who checked it out meanwhile, the list says so instead of naming a
// holder.
func TestOpsSalesListOfAKeptPiece(t *testing.T) {
	o := startShop(t)
	o.artwork("art-k", true)
	o.sell("unpaid", "art-k", "cs_hold", "held")
	o.sell("paid", "art-k", "cs_wait", "double_sale")
	o.sell("async-failed", "art-k", "cs_hold", "release_skipped")
	o.sell("unpaid", "art-k", "cs_sepa", "double_sale")
	wantIn(t, "sales list of a kept piece", o.ok("sales", "list", "-artwork", "art-k"),
		"kept for the buyers below", "cs_wait", "checked out too, paid", "checked out too, delayed payment pending")
	// Who paid decides who is refunded: each double sale says it, from its
	// session's newest event that tells; here a failure not applied yet (a
	// crash) for cs_sepa.
	db, err := journal.Open(context.Background(), o.env["DATABASE_URL"])
	if err != nil {
		t.Fatal(err)
	}
	failure := stock.Event{ID: "evt_sepa_failed", Type: stock.CheckoutAsyncFailed, Created: time.Now(), Payload: []byte(`{"object":"event"}`),
		Session: stock.Session{ID: "cs_sepa", ArtworkIDs: []string{"art-k"}}}
	_, err = db.RecordDelivery(context.Background(), failure, time.Now())
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	var views []saleView
	o.decode(&views, "sales", "list", "-artwork", "art-k", "-state", "double_sale")
	got := map[string]string{}
	for _, v := range views {
		got[v.SessionID] = v.Payment
	}
	if got["cs_wait"] != "paid" || got["cs_sepa"] != "payment failed: owes nothing" {
		t.Errorf("payments of the double sales: %v", got)
	}
}

// TestOpsStripeModeIsTheServers: a live server refuses a test-mode event,
// and the commands run from a shell that knows no mode (replay needs no
// Stripe key) take the server's, recorded in the journal: a replay cannot
// apply what the server refused, and trigger signs events the server takes.
func TestOpsStripeModeIsTheServers(t *testing.T) {
	db := filepath.Join(t.TempDir(), "journal.db")
	srv := startServe(t, map[string]string{"DATABASE_URL": db, "SOLDOUT_STRIPE_MODE": "live"})
	srv.lake.Put(map[string]any{"_id": "art-m", "_type": "artwork", "isAvailable": true})
	lake := httptest.NewServer(srv.lake)
	t.Cleanup(lake.Close)
	shell := testEnv(lake.URL, map[string]string{"DATABASE_URL": db, "SOLDOUT_LOG_FORMAT": "text"}) // no key, no mode
	hook := srv.url + "/api/webhook"

	var refused triggerReport
	if out, _, code := runCommand(t, shell, "trigger", "-url", hook, "-artwork", "art-m", "-mode", "test", "-json"); code != 1 || json.Unmarshal([]byte(out), &refused) != nil || refused.Status != 500 {
		t.Fatalf("a test-mode event on a live server: exit %d, %s", code, out)
	}
	_, errOut, code := runCommand(t, shell, "replay", refused.EventID)
	if code != 1 || !strings.Contains(errOut, "test mode") || !strings.Contains(errOut, "live mode") {
		t.Fatalf("replay of the refused event from a shell without a mode: exit %d, %s", code, errOut)
	}
	if d, _ := srv.lake.Get("art-m"); d["isAvailable"] != true {
		t.Fatal("a test-mode event withdrew the piece through replay")
	}
	// A sample sale in a live shop is a real one: only on purpose.
	if _, errOut, code := runCommand(t, shell, "trigger", "-url", hook, "-artwork", "art-m"); code != 2 ||
		!strings.Contains(errOut, "the shop is in live mode (the mode serve recorded in the journal)") {
		t.Fatalf("a live sample sale without -mode live: exit %d, %s", code, errOut)
	}
	if d, _ := srv.lake.Get("art-m"); d["isAvailable"] != true {
		t.Fatal("a refused trigger withdrew the piece")
	}
	out, _, code := runCommand(t, shell, "trigger", "-url", hook, "-artwork", "art-m", "-mode", "live")
	if code != 0 || !strings.Contains(out, "live mode (session cs_live_trigger_") || !strings.Contains(out, `"outcome":"sold"`) {
		t.Fatalf("trigger -mode live from a shell without a mode: exit %d, %s", code, out)
	}
	// A shell of the other mode is not the server's: its replay is refused.
	testShell := testEnv(lake.URL, map[string]string{"DATABASE_URL": db, "STRIPE_SECRET_KEY": stripetest.SecretKey})
	if _, errOut, code := runCommand(t, testShell, "replay", refused.EventID); code != 1 || !strings.Contains(errOut, "runs this journal in live mode") {
		t.Fatalf("replay from a shell of the other mode: exit %d, %s", code, errOut)
	}
	// A serve that knows no mode is not bound by the record: it takes both,
	// and says so.
	if err := srv.stop(); err != nil {
		t.Fatal(err)
	}
	modeless := startServe(t, map[string]string{"DATABASE_URL": db})
	modeless.lake.Put(map[string]any{"_id": "art-t", "_type": "artwork", "isAvailable": true})
	if out, _, code := runCommand(t, shell, "trigger", "-url", modeless.url+"/api/webhook", "-artwork", "art-t", "-mode", "test"); code != 0 || !strings.Contains(out, `"outcome":"sold"`) {
		t.Fatalf("a test event on a serve without a mode: exit %d, %s", code, out)
	}
	if !strings.Contains(modeless.logs.all(), "ran this journal in live mode") {
		t.Error("a serve without a mode on a journal run in live mode says nothing")
	}
}

func TestSinceTakesDays(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"3d", 72 * time.Hour, true},
		{"0d", 0, true},
		{"168h", 168 * time.Hour, true},
		{"90m", 90 * time.Minute, true},
		{"0", 0, true},
		{"-1d", 0, false},
		{"-5h", 0, false},
		{"three days", 0, false},
	} {
		var d days
		err := d.Set(tt.in)
		if (err == nil) != tt.ok || err == nil && time.Duration(d) != tt.want {
			t.Errorf("-since %s: %v, %v; want %v (ok %v)", tt.in, time.Duration(d), err, tt.want, tt.ok)
		}
	}
}
