package benchload

import (
	"errors"
	"sync"
	"testing"
)

func TestClientsRunsEveryOperationOnce(t *testing.T) {
	res := testing.Benchmark(func(b *testing.B) {
		var mu sync.Mutex
		seen := map[int]int{}
		Clients(b, 8, func(i int) error {
			mu.Lock()
			seen[i]++
			mu.Unlock()
			return nil
		})
		if len(seen) != b.N {
			b.Fatalf("%d distinct operations for b.N = %d", len(seen), b.N)
		}
		for i := 1; i <= b.N; i++ {
			if seen[i] != 1 {
				b.Fatalf("operation %d ran %d times", i, seen[i])
			}
		}
	})
	if res.N == 0 {
		t.Fatal("the benchmark failed")
	}
}

func TestClientsFailsOnError(t *testing.T) {
	res := testing.Benchmark(func(b *testing.B) {
		Clients(b, 4, func(i int) error {
			if i == 3 {
				return errors.New("boom")
			}
			return nil
		})
	})
	if res.N != 0 {
		t.Fatalf("a failing op gave a result with N = %d, want a failed benchmark", res.N)
	}
}
