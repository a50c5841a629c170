package journal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"soldout/internal/stock"
)

// TestCommitterIsolatesFailures runs one batch by hand, so that its ops are
// certain to share a transaction: a verdict leaves the batch alone, while a
// write that fails halfway makes the batch run again with savepoints, which
// undo that write's change and keep everybody else's.
func TestCommitterIsolatesFailures(t *testing.T) {
	d := open(t, sqliteURL(t))
	bg := context.Background()
	insert, keys := scratch(t, d)
	runs := map[string]int{}
	counted := func(name string, fn func(context.Context) error) *writeOp {
		return &writeOp{ctx: bg, done: make(chan error, 1), fn: func(ctx context.Context) error {
			runs[name]++
			return fn(ctx)
		}}
	}
	verdict := stock.Errorf(stock.Conflict, "taken")
	boom := errors.New("boom")

	t.Run("verdicts stay in the batch", func(t *testing.T) {
		clear(runs)
		a, v, b := counted("a", insert("a")), counted("v", func(context.Context) error { return verdict }), counted("b", insert("b"))
		d.w.apply([]*writeOp{a, v, b})
		if err := errors.Join(<-a.done, <-b.done); err != nil {
			t.Fatal(err)
		}
		if err := <-v.done; err != verdict {
			t.Fatalf("verdict op: %v", err)
		}
		if runs["a"] != 1 || runs["v"] != 1 || runs["b"] != 1 {
			t.Fatalf("ran %v, want each op once", runs)
		}
		if got := keys(); !slices.Equal(got, []string{"a", "b"}) {
			t.Fatalf("rows %v, want a and b", got)
		}
	})

	t.Run("a failure halfway is undone alone", func(t *testing.T) {
		clear(runs)
		c := counted("c", insert("c"))
		half := counted("half", func(ctx context.Context) error {
			if err := insert("half")(ctx); err != nil {
				return err
			}
			return boom
		})
		e := counted("e", insert("e"))
		d.w.apply([]*writeOp{c, half, e})
		if err := errors.Join(<-c.done, <-e.done); err != nil {
			t.Fatal(err)
		}
		if err := <-half.done; err != boom {
			t.Fatalf("failing op: %v", err)
		}
		if runs["c"] != 2 || runs["half"] != 2 || runs["e"] != 1 {
			t.Fatalf("ran %v, want c and half twice (again with savepoints), e once", runs)
		}
		if got := keys(); !slices.Equal(got, []string{"a", "b", "c", "e"}) {
			t.Fatalf("rows %v, want c and e added, not half", got)
		}
	})

	t.Run("a staged write is answered before the commit, and once", func(t *testing.T) {
		clear(runs)
		staged := stagedOp(bg, func(ctx context.Context) (bool, error) {
			runs["s"]++
			return true, insert("s")(ctx)
		})
		answered := make(chan error, 1)
		go func() { answered <- <-staged.done }()
		// The next op runs after the staged one and before the commit: it
		// sees the staged answer arrive, then fails halfway so that the
		// batch runs again, with the staged write in it once more.
		var sawAnswer bool
		later := counted("later", func(ctx context.Context) error {
			if runs["later"] == 1 {
				select {
				case err := <-answered:
					sawAnswer = err == nil
				case <-time.After(5 * time.Second):
				}
				return boom
			}
			return insert("later")(ctx)
		})
		d.w.apply([]*writeOp{staged, later})
		if !sawAnswer {
			t.Fatal("the staged write was not answered before the commit")
		}
		if err := <-later.done; err != nil {
			t.Fatal(err)
		}
		if runs["s"] != 2 || len(staged.done) != 0 {
			t.Fatalf("ran %v, %d answers left: want s run twice and answered once", runs, len(staged.done))
		}
		if got := keys(); !slices.Contains(got, "s") || !slices.Contains(got, "later") {
			t.Fatalf("rows %v, want s and later committed", got)
		}
	})

	t.Run("a verdict after a change is undone, and the caller gets the verdict", func(t *testing.T) {
		clear(runs)
		lateInsert := func(k string) func(context.Context) error {
			return func(ctx context.Context) error {
				if err := insert(k)(ctx); err != nil {
					return err
				}
				return partial{verdict}
			}
		}
		f, late, g := counted("f", insert("f")), counted("late", lateInsert("late")), counted("g", insert("g"))
		d.w.apply([]*writeOp{f, late, g})
		if err := errors.Join(<-f.done, <-g.done); err != nil {
			t.Fatal(err)
		}
		if err := <-late.done; err != (partial{verdict}) {
			t.Fatalf("late op: %v", err)
		}
		// Through the running committer, the caller sees the verdict itself.
		if err := d.w.do(bg, lateInsert("late2")); err != verdict {
			t.Fatalf("caller got %v, want the verdict itself", err)
		}
		if got := keys(); slices.Contains(got, "late") || slices.Contains(got, "late2") || !slices.Contains(got, "f") || !slices.Contains(got, "g") {
			t.Fatalf("rows %v, want f and g kept, late and late2 undone", got)
		}
	})
}

// TestPingWhileWritesFail: after a write failed for want of space, Ping
// makes a real write, so that /readyz says not ready while writes fail (an
// empty transaction commits on a full disk too), and ready again once one
// commits. A journal limited to the pages it has stands in for the full disk.
func TestPingWhileWritesFail(t *testing.T) {
	d := open(t, sqliteURL(t))
	limit := func(pages string) {
		t.Helper()
		err := d.w.do(ctx, func(ctx context.Context) error {
			if pages == "" {
				if err := d.w.conn.QueryRowContext(ctx, "PRAGMA page_count").Scan(&pages); err != nil {
					return err
				}
			}
			_, err := d.w.conn.ExecContext(ctx, "PRAGMA max_page_count = "+pages)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	limit("") // no page more than it has
	var err error
	for i := 0; err == nil && i < 1000; i++ {
		ev := event(fmt.Sprintf("evt_%d", i), stock.CheckoutCompleted, "cs_full", "art-1")
		ev.Payload = bytes.Repeat([]byte("x"), 2400)
		if _, err = d.RecordDelivery(ctx, ev, t0); err == nil {
			committed(t, d)
		}
	}
	if err == nil {
		t.Fatal("the journal took a thousand events with no page to spare")
	}
	if err := d.Ping(ctx); err == nil {
		t.Fatal("Ping says ready while writes fail")
	}
	limit("1000000")
	if err := d.Ping(ctx); err != nil {
		t.Fatalf("Ping after space came back: %v", err)
	}
	if d.w.failed.Load() {
		t.Error("the probe's commit did not clear the failure")
	}
}

// A verdict reached after a change (partial: the write is undone, the caller
// told why) is no failed write: it must not set off the probe writes.
func TestVerdictAfterAChangeIsNoFailure(t *testing.T) {
	d := open(t, sqliteURL(t))
	err := d.w.do(ctx, func(ctx context.Context) error {
		if _, err := d.w.conn.ExecContext(ctx, `INSERT INTO settings (name, value) VALUES ('x', 'y')`); err != nil {
			return err
		}
		return partial{verdict: stock.ErrStale}
	})
	if !errors.Is(err, stock.ErrStale) {
		t.Fatalf("err = %v, want the verdict", err)
	}
	if d.w.failed.Load() {
		t.Error("a verdict counted as a failed write")
	}
	if v, _ := d.Setting(ctx, "x"); v != "" {
		t.Error("the write the verdict was reached after was kept")
	}
}

// scratch makes a table t (k TEXT PRIMARY KEY) for tests that drive the
// committer by hand. insert(k) is a write of one row; keys lists the rows
// committed.
func scratch(t *testing.T, d *DB) (insert func(k string) func(context.Context) error, keys func() []string) {
	t.Helper()
	bg := context.Background()
	if err := d.write(bg, func(ctx context.Context) error {
		_, err := d.w.conn.ExecContext(ctx, `CREATE TABLE t (k TEXT PRIMARY KEY)`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	insert = func(k string) func(context.Context) error {
		return func(ctx context.Context) error {
			_, err := d.w.conn.ExecContext(ctx, `INSERT INTO t (k) VALUES ($1)`, k)
			return err
		}
	}
	keys = func() []string {
		t.Helper()
		committed(t, d) // whatever was handed to the committer has run
		rows, err := d.read.QueryContext(bg, `SELECT k FROM t ORDER BY k`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var ks []string
		for rows.Next() {
			var k string
			if err := rows.Scan(&k); err != nil {
				t.Fatal(err)
			}
			ks = append(ks, k)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return ks
	}
	return insert, keys
}

// TestCommitterSkipsAGoneCaller: the committer writes nothing on behalf of a
// caller whose context ended before the batch reached its op, and tells it
// why; the rest of the batch commits.
func TestCommitterSkipsAGoneCaller(t *testing.T) {
	d := open(t, sqliteURL(t))
	bg := context.Background()
	insert, keys := scratch(t, d)

	t.Run("gone while the batch runs", func(t *testing.T) {
		// One batch run by hand, so that the three ops certainly share it
		// and the second caller goes after the batch has begun.
		gone, leave := context.WithCancel(bg)
		defer leave()
		ran := false
		first := &writeOp{ctx: bg, done: make(chan error, 1), fn: func(ctx context.Context) error {
			leave() // the next op's caller gives up while this op runs
			return insert("first")(ctx)
		}}
		skipped := &writeOp{ctx: gone, done: make(chan error, 1), fn: func(ctx context.Context) error {
			ran = true
			return insert("gone")(ctx)
		}}
		last := &writeOp{ctx: bg, done: make(chan error, 1), fn: insert("last")}
		d.w.apply([]*writeOp{first, skipped, last})
		if err := errors.Join(<-first.done, <-last.done); err != nil {
			t.Fatal(err)
		}
		if err := <-skipped.done; err != context.Canceled {
			t.Errorf("the gone caller was told %v, want %v", err, context.Canceled)
		}
		if ran {
			t.Error("the op of a caller that had gone was run")
		}
		if got := keys(); !slices.Equal(got, []string{"first", "last"}) {
			t.Fatalf("rows %v, want first and last, not gone", got)
		}
	})

	t.Run("gone before calling", func(t *testing.T) {
		// Through the running committer. With the loop idle, wait's first
		// select may hand the op over or take ctx.Done, at random; the
		// caller does not wait for the batch, so each call is followed by a
		// committed write, after which the loop is idle again. Over 64 calls
		// some ops all but certainly reach a batch, which must skip them.
		gone, leave := context.WithCancel(bg)
		leave()
		for i := range 64 {
			if err := d.w.do(gone, insert(fmt.Sprintf("late%02d", i))); err != context.Canceled {
				t.Fatalf("call %d: %v, want %v", i, err, context.Canceled)
			}
			committed(t, d)
		}
		if got := keys(); !slices.Equal(got, []string{"first", "last"}) {
			t.Fatalf("rows %v: callers that had gone were written for", got)
		}
	})
}

// TestCommitterCallerStopsWaiting: a caller whose context ends stops waiting
// for a batch held up by someone else's write (or its own), and gets
// ctx.Err() at once. A write the loop had already started still commits;
// one it had not yet taken never runs.
func TestCommitterCallerStopsWaiting(t *testing.T) {
	d := open(t, sqliteURL(t))
	bg := context.Background()
	insert, keys := scratch(t, d)

	// block submits a write that holds the loop until release is called,
	// and returns once the loop is running it.
	block := func(t *testing.T, ctx context.Context, k string) (release func(), answered <-chan error) {
		t.Helper()
		started, unblock := make(chan struct{}), make(chan struct{})
		answer := make(chan error, 1)
		go func() {
			answer <- d.w.do(ctx, func(ctx context.Context) error {
				close(started)
				<-unblock
				return insert(k)(ctx)
			})
		}()
		release = sync.OnceFunc(func() { close(unblock) })
		t.Cleanup(release) // before the journal's Close, which waits for the loop
		select {
		case <-started:
		case <-time.After(10 * time.Second):
			release()
			t.Fatal("the committer did not start the write")
		}
		return release, answer
	}
	// answer waits for a caller that should have its answer without the
	// blocked batch going on, and so fails rather than hangs when it needs
	// the batch.
	answer := func(t *testing.T, answered <-chan error) error {
		t.Helper()
		select {
		case err := <-answered:
			return err
		case <-time.After(10 * time.Second):
			t.Fatal("the caller is still waiting for the batch it gave up on")
			return nil
		}
	}

	t.Run("its write is in the batch", func(t *testing.T) {
		caller, giveUp := context.WithCancel(bg)
		defer giveUp()
		release, answered := block(t, caller, "started")
		giveUp() // while the loop holds the caller's own op
		if err := answer(t, answered); err != context.Canceled {
			t.Errorf("the caller got %v, want %v", err, context.Canceled)
		}
		release()
		if got := keys(); !slices.Contains(got, "started") {
			t.Errorf("rows %v: the write the loop had started was not committed", got)
		}
	})

	t.Run("queued behind the batch", func(t *testing.T) {
		release, answered := block(t, bg, "blocker")
		caller, cancel := context.WithTimeout(bg, 50*time.Millisecond)
		defer cancel()
		queued := make(chan error, 1)
		go func() { queued <- d.w.do(caller, insert("queued")) }()
		if err := answer(t, queued); err != context.DeadlineExceeded {
			t.Errorf("the queued caller got %v, want %v", err, context.DeadlineExceeded)
		}
		release()
		if err := answer(t, answered); err != nil {
			t.Fatal(err)
		}
		if got := keys(); !slices.Contains(got, "blocker") || slices.Contains(got, "queued") {
			t.Errorf("rows %v, want blocker and not queued: its caller had gone before the loop took it", got)
		}
	})
}
