package httpapi

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// refusalLogEvery spaces the log lines of refused requests of one kind: a
// flood must not become a flood of lines.
const refusalLogEvery = 10 * time.Second

// maxRefusalKinds bounds the kinds tracked at once: a client inventing
// origins or ids must not grow the map without end.
const maxRefusalKinds = 1024

// otherRefusals is the kind of every line past maxRefusalKinds.
const otherRefusals = "other"

// refusals writes the log lines of refused requests, at most one of each
// kind and level per refusalLogEvery: the first at once, then one that says
// how many it held back since the last. A scanner posting forged webhooks,
// or a crowd during an outage, must not bury the lines an operator needs;
// the metrics still count every request. A kind names what the operator
// would fix (a signature failure's reason, an origin, an artwork and an
// error code), so that one fault's lines do not hide another's; past
// maxRefusalKinds at once, new kinds share one.
type refusals struct {
	log *slog.Logger

	mu    sync.Mutex
	kinds map[string]*refusalCount
}

type refusalCount struct {
	logged time.Time // when the last line of this kind was written
	held   int       // lines held back since
}

func newRefusals(log *slog.Logger) *refusals {
	return &refusals{log: log, kinds: map[string]*refusalCount{}}
}

// allow reports whether a line of kind may be written at now, and how many
// of that kind were held back since the last one.
func (r *refusals) allow(kind string, now time.Time) (ok bool, held int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.kinds[kind]
	if c == nil && len(r.kinds) >= maxRefusalKinds {
		// Forget the kinds with nothing held back that could log now anyway.
		for k, old := range r.kinds {
			if old.held == 0 && now.Sub(old.logged) >= refusalLogEvery {
				delete(r.kinds, k)
			}
		}
		if len(r.kinds) >= maxRefusalKinds {
			kind = otherRefusals
			c = r.kinds[kind]
		}
	}
	if c == nil {
		c = &refusalCount{}
		r.kinds[kind] = c
	}
	if !c.logged.IsZero() && now.Sub(c.logged) < refusalLogEvery {
		c.held++
		return false, 0
	}
	held, c.held, c.logged = c.held, 0, now
	return true, held
}

// Log writes the line unless one of its kind was written less than
// refusalLogEvery ago; a line after held-back ones says how many.
func (r *refusals) Log(ctx context.Context, level slog.Level, kind, msg string, attrs ...any) {
	ok, held := r.allow(kind+"@"+level.String(), time.Now())
	if !ok {
		return
	}
	if held > 0 {
		attrs = append(attrs, "held_back", held)
	}
	r.log.Log(ctx, level, msg, attrs...)
}
