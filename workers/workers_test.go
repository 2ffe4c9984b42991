package workers

import (
	"errors"
	"fmt"
	"sync"
	"testing"
)

// TestForEach runs every index once, on one goroutine and on several.
func TestForEach(t *testing.T) {
	for _, w := range []int{0, 1, 4} {
		var mu sync.Mutex
		seen := make(map[int]int)
		err := ForEach(100, w, func(i int) error {
			mu.Lock()
			seen[i]++
			mu.Unlock()
			return nil
		})
		if err != nil || len(seen) != 100 {
			t.Errorf("ForEach(100, %d) = %v, ran %d distinct indices, want nil and 100", w, err, len(seen))
		}
		for i, c := range seen {
			if c != 1 {
				t.Errorf("ForEach(100, %d) ran index %d %d times, want once", w, i, c)
			}
		}
	}
}

// TestForEachLowestError returns the error a sequential loop would give,
// having run every index below it; on one goroutine nothing after it.
func TestForEachLowestError(t *testing.T) {
	for _, w := range []int{1, 4} {
		var mu sync.Mutex
		ran := make(map[int]bool)
		err := ForEach(1000, w, func(i int) error {
			mu.Lock()
			ran[i] = true
			mu.Unlock()
			if i == 7 || i == 9 {
				return fmt.Errorf("index %d", i)
			}
			return nil
		})
		if err == nil || err.Error() != "index 7" {
			t.Errorf("ForEach(1000, %d) = %v, want the error of index 7", w, err)
		}
		for i := 0; i <= 7; i++ {
			if !ran[i] {
				t.Errorf("ForEach(1000, %d) did not run index %d, below the failing one", w, i)
			}
		}
		if w == 1 && len(ran) != 8 {
			t.Errorf("ForEach(1000, 1) ran %d indices, want 8: none after the failure", len(ran))
		}
	}
	if err := ForEach(0, 4, func(int) error { return errors.New("called") }); err != nil {
		t.Errorf("ForEach(0, 4) = %v, want nil: nothing to run", err)
	}
}
