package syncbuf

import (
	"strings"
	"sync"
	"testing"
)

func TestConcurrentWritesAllArrive(t *testing.T) {
	var b Buffer
	var wg sync.WaitGroup
	for i := 0; i < 100; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = b.Write([]byte("line\n"))
		}()
	}
	wg.Wait()
	if n := strings.Count(b.String(), "line\n"); n != 100 {
		t.Fatalf("%d of 100 writes", n)
	}
}
