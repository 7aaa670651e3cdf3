package clustertest

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// progress prints steps with the time each took and the time since start.
type progress struct {
	mu    sync.Mutex
	w     io.Writer
	start time.Time
}

func newProgress(w io.Writer) *progress {
	return &progress{w: w, start: time.Now()}
}

func (p *progress) printf(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	elapsed := time.Since(p.start).Round(100 * time.Millisecond)
	fmt.Fprintf(p.w, "clustertest [%7s] %s\n", elapsed, fmt.Sprintf(format, args...))
}

// step runs fn, printing its start and end. While fn runs longer than
// 30 seconds, it prints that it is still running every 30 seconds.
func (p *progress) step(name string, fn func() error) error {
	p.printf("%s ...", name)
	begin := time.Now()
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(30 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				p.printf("%s: still running after %s", name, time.Since(begin).Round(time.Second))
			}
		}
	})
	err := fn()
	close(done)
	wg.Wait()
	took := time.Since(begin).Round(100 * time.Millisecond)
	if err != nil {
		p.printf("%s: failed after %s", name, took)
		return err
	}
	p.printf("%s: done in %s", name, took)
	return nil
}
