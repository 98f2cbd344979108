// Package benchload is the closed-loop load the project's Go benchmarks share: a number of
// concurrent clients that each run the next operation as soon as their last one returned.
package benchload

import (
	"sync"
	"sync/atomic"
	"testing"
)

// Clients runs op b.N times in total from clients goroutines, numbering the operations 1 to b.N,
// and fails the benchmark with the first error (each client stops at its first). The timer runs
// only while the clients do.
func Clients(b *testing.B, clients int, op func(i int) error) {
	b.Helper()
	var next atomic.Int64
	var failed atomic.Value
	var wg sync.WaitGroup
	b.ResetTimer()
	for range clients {
		wg.Go(func() {
			for {
				i := int(next.Add(1))
				if i > b.N {
					return
				}
				if err := op(i); err != nil {
					failed.CompareAndSwap(nil, err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
}
