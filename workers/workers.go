// Package workers runs the iterations of a loop on several goroutines:
// file system work (creating, linking, chmodding thousands of files) is
// kernel time that parallel callers share out over the cores.
package workers

import "sync"

// ForEach calls f(0) to f(n-1) on up to workers goroutines and returns
// the error of the lowest index that failed. Indices are handed out in
// order and none is started after a failure, so every index below the
// failing one has run: the error is the one a sequential loop would give.
func ForEach(n, workers int, f func(i int) error) error {
	if workers <= 1 || n <= 1 {
		for i := 0; i < n; i++ {
			if err := f(i); err != nil {
				return err
			}
		}
		return nil
	}
	var (
		mu     sync.Mutex
		next   int
		failed = n // lowest failed index so far
		first  error
		wg     sync.WaitGroup
	)
	for range min(workers, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := next
				if i >= n || failed < n {
					mu.Unlock()
					return
				}
				next++
				mu.Unlock()
				if err := f(i); err != nil {
					mu.Lock()
					if i < failed {
						failed, first = i, err
					}
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	return first
}
