package controlplane

import (
	"fmt"
	"log"
	"os"
	"runtime"
	"sync"
)

// failer is the test.Failer Istio's fake server asks for, for a long-running
// process: a failure is logged and ends the process (at start-up or in a
// serving goroutine alike); cleanups run, last first, on Close.
type failer struct {
	mu       sync.Mutex
	cleanups []func()
	tempDir  string
}

func (f *failer) Fail()    { f.FailNow() }
func (f *failer) FailNow() { log.Print("istio: failure"); os.Exit(1) }
func (f *failer) Helper()  {}
func (f *failer) Log(a ...any) {
	log.Print(a...)
}
func (f *failer) Logf(format string, a ...any) { log.Printf(format, a...) }
func (f *failer) Fatal(a ...any)               { log.Print("istio: fatal: ", fmt.Sprint(a...)); os.Exit(1) }
func (f *failer) Fatalf(format string, a ...any) {
	log.Printf("istio: fatal: "+format, a...)
	os.Exit(1)
}
func (f *failer) Skip(a ...any) { log.Print("istio: skip: ", fmt.Sprint(a...)); runtime.Goexit() }

func (f *failer) TempDir() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.tempDir == "" {
		d, err := os.MkdirTemp("", "mplb-istiod-")
		if err != nil {
			f.Fatalf("temp dir: %v", err)
		}
		f.tempDir = d
	}
	return f.tempDir
}

func (f *failer) Cleanup(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cleanups = append(f.cleanups, fn)
}

// close runs the cleanups, last registered first.
func (f *failer) close() {
	f.mu.Lock()
	fns := f.cleanups
	f.cleanups = nil
	dir := f.tempDir
	f.mu.Unlock()
	for i := len(fns) - 1; i >= 0; i-- {
		fns[i]()
	}
	if dir != "" {
		_ = os.RemoveAll(dir)
	}
}
