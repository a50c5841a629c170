package main

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"soldout/internal/stripehook"
)

// machine describes where the numbers were taken.
type machine struct {
	CPUs      int    `json:"cpus"`
	CPUModel  string `json:"cpu_model"`
	Memory    string `json:"memory"`
	Kernel    string `json:"kernel"`
	Go        string `json:"go"`
	JournalFS string `json:"journal_fs"` // filesystem of the SQLite journals' directory
	// ReferenceDecodeUs is what this machine takes, alone, to decode one
	// benchmark event with stripehook.Decode: shared virtual machines of the
	// same model differ by 2× from one day to the next, and this says which
	// kind of day a report comes from.
	ReferenceDecodeUs float64 `json:"reference_decode_us"`
}

func machineInfo(dir string) machine {
	m := machine{CPUs: runtime.NumCPU(), Go: runtime.Version()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		first, _, _ := strings.Cut(string(b), "\n")
		var kb int64
		if _, err := fmt.Sscanf(first, "MemTotal: %d kB", &kb); err == nil {
			m.Memory = fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if dir == "" {
		dir = os.TempDir()
	}
	m.JournalFS = filesystem(dir)
	m.ReferenceDecodeUs = referenceDecode()
	return m
}

// referenceDecode times stripehook.Decode of one benchmark event for 300 ms
// in this goroutine and returns the mean per decode, in µs.
func referenceDecode() float64 {
	body := makeEvents("ref", 0, 1)[0].body
	n, start := 0, time.Now()
	for time.Since(start) < 300*time.Millisecond {
		if _, err := stripehook.Decode(body); err != nil {
			panic(fmt.Sprintf("the benchmark's own event does not decode: %v", err))
		}
		n++
	}
	return float64(time.Since(start).Microseconds()) / float64(n)
}

// cpuTicks is the machine's CPU time from /proc/stat, all CPUs: the total,
// and what the hypervisor gave to other guests while this one wanted to run.
type cpuTicks struct{ total, steal int64 }

func machineCPU() cpuTicks {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuTicks{}
	}
	first, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(first)
	var t cpuTicks
	for i, v := range f[1:] {
		n, _ := strconv.ParseInt(v, 10, 64)
		if i < 8 { // user … steal; guest times are already in user
			t.total += n
		}
		if i == 7 {
			t.steal = n
		}
	}
	return t
}

// stealPercent is the share of the machine's CPU time stolen between a and b.
func stealPercent(a, b cpuTicks) float64 {
	if b.total <= a.total {
		return 0
	}
	return 100 * float64(b.steal-a.steal) / float64(b.total-a.total)
}

// filesystem names the filesystem holding dir, by statfs(2)'s magic number.
func filesystem(dir string) string {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return "unknown"
	}
	switch st.Type {
	case 0xEF53:
		return "ext4"
	case 0x58465342:
		return "xfs"
	case 0x9123683E:
		return "btrfs"
	case 0x01021994:
		return "tmpfs"
	case 0x794C7630:
		return "overlayfs"
	case 0x2FC12FC1:
		return "zfs"
	}
	return fmt.Sprintf("0x%x", st.Type)
}

func printMachine(w io.Writer, m machine, s settings) {
	fmt.Fprintf(w, "machine: %d CPUs (%s), %s, Linux %s, %s; journal: %s", m.CPUs, m.CPUModel, m.Memory, m.Kernel, m.Go, s.Journal)
	if s.Journal == "sqlite" {
		fmt.Fprintf(w, " on %s", m.JournalFS)
	}
	fmt.Fprintf(w, "\nreference: one event decoded in %.1f µs on this machine now\n", m.ReferenceDecodeUs)
	fmt.Fprintf(w, "events %d per run after %d warm-up, concurrency %d, Sanity fake latency %v ms, SOLDOUT_SANITY_RATE %g\n",
		s.Events, s.Warmup, s.Concurrency, s.SanityLatencyMs, s.SanityRate)
	if len(s.ServerEnv) > 0 {
		fmt.Fprintf(w, "soldout's extra environment: %s\n", strings.Join(s.ServerEnv, " "))
	}
}

const runHeader = "| run | C | events/s | p50 ms | p90 ms | p99 ms | max ms | non-2xx | other failures | Sanity req/event | peak RSS MiB | CPU s | CPU ms/event | steal % |\n" +
	"|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n"

func runName(r runResult) string {
	name := r.Mode
	if r.Journal != "" {
		name += " (" + r.Journal
		if r.HistoryEvents > 0 {
			name += fmt.Sprintf(", %d in journal", r.HistoryEvents)
		}
		name += ")"
	}
	return name
}

func printRow(w io.Writer, r runResult) {
	fmt.Fprintf(w, "| %s | %d | %.0f | %.2f | %.2f | %.2f | %.1f | %d | %d | %.2f | %.1f | %.2f | %.3f | %.1f |\n",
		runName(r), r.Concurrency, r.EventsPerSecond, r.Latency.P50, r.Latency.P90, r.Latency.P99, r.Latency.Max,
		r.Non2xx, r.Unexpected+r.StillAvailable, r.SanityPerEvent, r.PeakRSSMiB, r.CPUSeconds, r.CPUMsPerEvent, r.StealPercent)
}

func printFailures(w io.Writer, rs ...runResult) {
	for _, r := range rs {
		if r.FirstFailure != "" {
			fmt.Fprintf(w, "first failure of %s: %s\n", runName(r), r.FirstFailure)
		}
	}
}

func printRuns(w io.Writer, title string, rs []runResult) {
	fmt.Fprintf(w, "\n%s:\n\n%s", title, runHeader)
	for _, r := range rs {
		printRow(w, r)
	}
	printFailures(w, rs...)
}

func printCold(w io.Writer, c coldResult) {
	fmt.Fprintf(w, "\nCold start, exec → first 2xx, empty %s journal: median %.1f ms (min %.1f, max %.1f) over %d runs %v\n",
		c.Journal, c.MedianMs, c.MinMs, c.MaxMs, len(c.RunsMs), c.RunsMs)
}

func printSweep(w io.Writer, rows []sweepRow) {
	fmt.Fprint(w, "\nConcurrency sweep:\n\n| C | ceiling events/s | soldout events/s | fraction | soldout p50 ms | soldout p99 ms | soldout CPU ms/event | peak RSS MiB |\n|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, r := range rows {
		fmt.Fprintf(w, "| %d | %.0f | %.0f | %.0f %% | %.2f | %.2f | %.3f | %.1f |\n", r.Concurrency, r.Ceiling.EventsPerSecond,
			r.Soldout.EventsPerSecond, 100*r.Fraction, r.Soldout.Latency.P50, r.Soldout.Latency.P99, r.Soldout.CPUMsPerEvent, r.Soldout.PeakRSSMiB)
	}
	for _, r := range rows {
		printFailures(w, r.Ceiling, r.Soldout)
	}
}

func printHistory(w io.Writer, h historyInfo) {
	fmt.Fprintf(w, "\nHistory: %d events filled in %.1f s\n\n%s", h.Events, h.FillSeconds, runHeader)
	printRow(w, h.Empty)
	printRow(w, h.Filled)
	printFailures(w, h.Empty, h.Filled)
	fmt.Fprintf(w, "\nwith history / empty: p50 ×%.2f, p99 ×%.2f, events/s ×%.2f\n", h.P50Ratio, h.P99Ratio, h.ThroughputRate)
	fmt.Fprintf(w, "events of one artwork (%d in the journal): newest 50 in %.2f ms, all in %.2f ms (median of 21 artworks, in process)\n",
		h.Events/historyArtworks, h.List.Limit50Ms, h.List.AllMs)
	if h.List.CLIError != "" {
		fmt.Fprintf(w, "`soldout events list --artwork ID`: not measured (%s)\n", h.List.CLIError)
	} else {
		fmt.Fprintf(w, "`soldout events list --artwork ID`: %.1f ms, exec to exit (median of 5)\n", h.List.CLIMs)
	}
}
