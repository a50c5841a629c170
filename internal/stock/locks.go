package stock

import (
	"context"
	"slices"
	"sync"
)

// keyedLocks serialises work on one artwork within a process, so that two
// deliveries for the same piece are decided one after the other instead of
// both reaching Sanity. Waiting honours the caller's context.
type keyedLocks struct {
	mu    sync.Mutex
	locks map[string]*keyLock
}

type keyLock struct {
	ch   chan struct{} // holds one token while the key is locked
	refs int
}

func (k *keyedLocks) lock(ctx context.Context, key string) (unlock func(), err error) {
	k.mu.Lock()
	if k.locks == nil {
		k.locks = make(map[string]*keyLock)
	}
	l := k.locks[key]
	if l == nil {
		l = &keyLock{ch: make(chan struct{}, 1)}
		k.locks[key] = l
	}
	l.refs++
	k.mu.Unlock()

	release := func() {
		k.mu.Lock()
		if l.refs--; l.refs == 0 {
			delete(k.locks, key)
		}
		k.mu.Unlock()
	}
	select {
	case l.ch <- struct{}{}:
		return func() { <-l.ch; release() }, nil
	case <-ctx.Done():
		release()
		return nil, ctx.Err()
	}
}

// lockAll locks every key, in sorted order so that two callers locking
// overlapping sets cannot deadlock, and returns one unlock for all of them.
func (k *keyedLocks) lockAll(ctx context.Context, keys []string) (unlock func(), err error) {
	keys = slices.Sorted(slices.Values(keys))
	unlocks := make([]func(), 0, len(keys))
	unlockAll := func() {
		for _, u := range slices.Backward(unlocks) {
			u()
		}
	}
	for _, key := range keys {
		u, err := k.lock(ctx, key)
		if err != nil {
			unlockAll()
			return nil, err
		}
		unlocks = append(unlocks, u)
	}
	return unlockAll, nil
}
