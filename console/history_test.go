package console

import (
	"sync"
	"testing"
	"time"
)

func TestSeries(t *testing.T) {
	var s Series
	t0 := time.Unix(1_800_000_000, 0) // a minute's start
	for range 3 {
		s.add(t0)
	}
	s.add(t0.Add(59 * time.Second))
	s.add(t0.Add(2 * time.Minute))
	got := s.Last(t0.Add(2 * time.Minute))
	if got[Minutes-1] != 1 || got[Minutes-2] != 0 || got[Minutes-3] != 4 {
		t.Fatalf("last minutes %v", got[Minutes-3:])
	}
	// An hour on, the slot of t0 is reused: its old count is gone; the
	// minute two after t0 is still in the window, as the second.
	s.add(t0.Add(time.Hour))
	if got := s.Last(t0.Add(time.Hour)); got[Minutes-1] != 1 || got[1] != 1 || sum(got) != 2 {
		t.Fatalf("an hour later %v", got)
	}
	if got := s.Last(t0.Add(3 * time.Hour)); got != [Minutes]uint64{} {
		t.Fatalf("hours later the series still shows %v", got)
	}
}

// Counting from many goroutines loses nothing.
func TestSeriesConcurrent(t *testing.T) {
	var s Series
	now := time.Now()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				s.add(now)
			}
		})
	}
	wg.Wait()
	if got := s.Last(now)[Minutes-1]; got != 8000 {
		t.Fatalf("counted %d, want 8000", got)
	}
}

func sum(counts [Minutes]uint64) (n uint64) {
	for _, c := range counts {
		n += c
	}
	return n
}
