package boltstore

// Group commit: the write transactions of concurrent requests share one
// commit, and one fsync.

import (
	"fmt"
	"sync"

	bolt "go.etcd.io/bbolt"
)

// maxGroup bounds the writes one commit takes, so that a long queue is
// answered in steps rather than all after one large commit.
const maxGroup = 256

// groupCommit runs write transactions so that those arriving while a
// commit is under way share the next one: under load, many requests pay
// one fsync between them. A lone write starts at once, with no wait for
// company (bolt's DB.Batch waits up to MaxBatchDelay for one, which a
// lone request would pay).
//
// Each write keeps its own atomicity and error. A write whose function
// fails undoes the shared transaction: it is then run alone, so that its
// error is its own (unless it ran first in the group, when it already
// was), and the others are committed without it. A function
// may therefore run more than once, each time from the state the
// transaction sees; the store's functions set everything they report
// afresh on each run. An answered write is on disk, as with DB.Update.
type groupCommit struct {
	db *bolt.DB

	mu      sync.Mutex
	queue   []*write
	running bool
}

// write is one caller's transaction function and where its result goes.
type write struct {
	fn   func(*bolt.Tx) error
	done chan error
}

// update runs fn in a write transaction, committed with whatever else is
// waiting, and returns its error or the commit's. A caller that finds no
// commit under way commits its own group at once, then hands what queued
// meanwhile to a goroutine of its own: no caller waits for writes that
// came after its own, and a lone write costs no hand-off.
func (g *groupCommit) update(fn func(*bolt.Tx) error) error {
	w := &write{fn: fn, done: make(chan error, 1)}
	g.mu.Lock()
	g.queue = append(g.queue, w)
	if g.running {
		g.mu.Unlock()
		return <-w.done
	}
	g.running = true
	group := g.take()
	g.mu.Unlock()
	g.commit(group)
	g.mu.Lock()
	if len(g.queue) > 0 {
		go g.commitAll()
	} else {
		g.running = false
	}
	g.mu.Unlock()
	return <-w.done
}

// take removes the next group from the queue; g.mu is held.
func (g *groupCommit) take() []*write {
	group := g.queue[:min(len(g.queue), maxGroup):min(len(g.queue), maxGroup)]
	if g.queue = g.queue[len(group):]; len(g.queue) == 0 {
		g.queue = nil
	}
	return group
}

// commitAll commits what is queued, group by group, until nothing is.
func (g *groupCommit) commitAll() {
	for {
		g.mu.Lock()
		group := g.take()
		if len(group) == 0 {
			g.running = false
			g.mu.Unlock()
			return
		}
		g.mu.Unlock()
		g.commit(group)
	}
}

// commit runs the group's functions in one transaction. When one fails,
// it runs alone (unless it ran first, on the state it would see alone) and
// the rest are tried again without it.
func (g *groupCommit) commit(group []*write) {
	for len(group) > 0 {
		failed := -1
		err := g.db.Update(func(tx *bolt.Tx) error {
			for i, w := range group {
				if err := call(w.fn, tx); err != nil {
					failed = i
					return err
				}
			}
			return nil
		})
		if failed < 0 {
			// Committed, or the commit itself failed: the same for all.
			for _, w := range group {
				w.done <- err
			}
			return
		}
		alone := group[failed]
		if failed == 0 {
			// It ran first, on the state a transaction of its own would
			// see: its error is already its own (a lone write's always).
			alone.done <- err
		} else {
			alone.done <- g.db.Update(func(tx *bolt.Tx) error { return call(alone.fn, tx) })
		}
		group = append(group[:failed:failed], group[failed+1:]...)
	}
}

// call runs fn, turning a panic into its error so that one bad write
// cannot take the others' answers with it.
func call(fn func(*bolt.Tx) error, tx *bolt.Tx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("a store write panicked: %v", p)
		}
	}()
	return fn(tx)
}
