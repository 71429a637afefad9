package bench

// What the harnesses share: timing and resource figures, and the child
// process that runs their fake servers outside the measured one.

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// rateText is an emulated link's rate cap for the reader.
func rateText(bps int) string {
	if bps <= 0 {
		return "no rate cap"
	}
	return fmt.Sprintf("%.2f MiB/s", float64(bps)/(1<<20))
}

// cpuTime is the user and system CPU time this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// measure times n calls spread over conc goroutines and returns their
// latencies sorted. Each goroutine gets its call from newCall and makes
// one untimed call first, to warm its connection up.
func measure(conc, n int, newCall func(worker int) (call func(i int) error, release func(), err error)) ([]time.Duration, error) {
	var mu sync.Mutex
	var lat []time.Duration
	var firstErr error
	var wg sync.WaitGroup
	per := n / conc
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := make([]time.Duration, 0, per)
			call, release, err := newCall(w)
			if err == nil {
				defer release()
				err = call(0)
				for i := 0; i < per && err == nil; i++ {
					t0 := time.Now()
					err = call(i)
					local = append(local, time.Since(t0))
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil && firstErr == nil {
				firstErr = err
			}
			lat = append(lat, local...)
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	slices.Sort(lat)
	return lat, nil
}

// pct is the p-th percentile of sorted latencies.
func pct(sorted []time.Duration, p int) time.Duration {
	i := (len(sorted)*p + 99) / 100
	i = min(max(i-1, 0), len(sorted)-1)
	return sorted[i].Round(time.Microsecond)
}

// peakRSS is VmHWM from /proc/self/status, in bytes.
func peakRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// benchChild starts this binary with args as the fake servers of a
// benchmark, outside the measured process. ask sends a command line (none
// when cmd is empty) and reads the child's next answer line as fields;
// stop ends the child. Runtime knobs given to measure ncspv (GOGC,
// GOMEMLIMIT, GODEBUG) are not passed to it.
func benchChild(args ...string) (ask func(cmd string) ([]string, error), stop func(), err error) {
	self, err := os.Executable()
	if err != nil {
		return nil, nil, err
	}
	child := exec.Command(self, args...)
	child.Stderr = os.Stderr
	child.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "GOGC=") || strings.HasPrefix(kv, "GOMEMLIMIT=") || strings.HasPrefix(kv, "GODEBUG=")
	})
	stdin, _ := child.StdinPipe()
	stdout, _ := child.StdoutPipe()
	if err := child.Start(); err != nil {
		return nil, nil, err
	}
	rd := bufio.NewReader(stdout)
	ask = func(cmd string) ([]string, error) {
		if cmd != "" {
			fmt.Fprintln(stdin, cmd)
		}
		line, err := rd.ReadString('\n')
		if err != nil {
			return nil, fmt.Errorf("bench server: %w", err)
		}
		return strings.Fields(line), nil
	}
	return ask, func() { stdin.Close(); child.Wait() }, nil
}

// buildKind says whether this binary links libc (cgo), which adds about
// 1.5 MiB of resident pages; release builds are static.
func buildKind() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "CGO_ENABLED" && s.Value == "1" {
				return "cgo (libc linked; release builds are static)"
			}
		}
	}
	return "static"
}

// parseRange reads "MIN-MAX", two coinbase sizes chaingen can build.
func parseRange(s string) (int, int, error) {
	a, b, ok := strings.Cut(s, "-")
	lo, err1 := strconv.Atoi(a)
	hi, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || lo < 100 || hi < lo+34 || hi > 100000 {
		return 0, 0, fmt.Errorf("%q is not MIN-MAX with 100 <= MIN, MIN+34 <= MAX <= 100000 (a payout output is 34 bytes)", s)
	}
	return lo, hi, nil
}
