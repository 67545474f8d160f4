package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/multiparty-lb/multiparty-lb/istio-harness/mesh"
)

// Markdown is the figures as markdown: one row per world, then the growth
// of the filter's added cost from the smallest to the largest size.
func Markdown(cfg Config, runs []*Run) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Envoy CPU per request: median of %d bursts of %d requests over %d connections "+
		"(sidecar Envoy, --concurrency 2), the four paths interleaved in each round; "+
		"added by filter: median over rounds of (with filter - stamped, no filter). The filter's poll period is 1 s.\n\n", cfg.Reps, cfg.Requests, cfg.Workers)
	b.WriteString("| mode | endpoints | clusters / routes | CDS+LDS+RDS+ECDS KB | EDS KB | " +
		"Envoy µs/req with filter | pinned, with filter | stamped, no filter | added by filter | plain, no filter | " +
		"RSS MB with / without | allocated MB with / without | table change ms: served / followed (median, max) |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range runs {
		f, st, pl := r.Filter.Median(), r.Stamped.Median(), r.Plain.Median()
		fmt.Fprintf(&b, "| %s | %d | %d / %d | %s | %s | %s | %s | %s | %s | %s | %s / %s | %s / %s | %s |\n",
			r.Mode, r.Endpoints, r.Config.Clusters, r.Config.Routes,
			kb(r.Config.NonEDS()), kb(r.Config.Bytes["EDS"]),
			num(f), num(r.Pinned.Median()), num(st), diff(r.Filter, r.Stamped), num(pl),
			mb(r.Memory.RSS), mb(r.BareMemory.RSS), mb(r.Memory.Allocated), mb(r.BareMemory.Allocated),
			applyCell(r.Applies))
	}
	b.WriteString("\nGrowth of the filter's added cost (target: at the largest size within 1.1x of the smallest):\n\n")
	b.WriteString("| mode | added µs/req (smallest) | added µs/req (largest) | ratio | with filter: ratio | stamped, no filter: ratio | non-EDS config: ratio |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|\n")
	for _, mode := range cfg.Modes {
		var first, last *Run
		for _, r := range runs {
			if r.Mode == mode && len(r.Filter.Bursts) > 0 && len(r.Stamped.Bursts) > 0 {
				if first == nil {
					first = r
				}
				last = r
			}
		}
		if first == nil || first == last {
			continue
		}
		a0, a1 := Added(first.Filter, first.Stamped), Added(last.Filter, last.Stamped)
		fmt.Fprintf(&b, "| %s | %.1f (%d) | %.1f (%d) | %s | %s | %s | %s |\n", mode, a0, first.Endpoints,
			a1, last.Endpoints, ratio(a1, a0), ratio(last.Filter.Median(), first.Filter.Median()),
			ratio(last.Stamped.Median(), first.Stamped.Median()),
			ratio(float64(last.Config.NonEDS()), float64(first.Config.NonEDS())))
	}
	var errs []string
	for _, r := range runs {
		for _, e := range r.Errors {
			errs = append(errs, fmt.Sprintf("- %s %d: %s", r.Mode, r.Endpoints, firstLine(e)))
		}
	}
	if len(errs) > 0 {
		b.WriteString("\nErrors:\n\n" + strings.Join(errs, "\n") + "\n")
	}
	return b.String()
}

func num(x float64) string {
	if x == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f", x)
}

func diff(a, b Path) string {
	if len(a.Bursts) == 0 || len(b.Bursts) == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f", Added(a, b))
}

func ratio(a, b float64) string {
	if b <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fx", a/b)
}

func kb(n int) string { return fmt.Sprintf("%.1f", float64(n)/1024) }

func mb(n int64) string {
	if n == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f", float64(n)/(1<<20))
}

func applyCell(as []mesh.Apply) string {
	if len(as) == 0 {
		return "-"
	}
	var served, followed []float64
	maxF := 0.0
	for _, a := range as {
		served = append(served, ms(a.Served))
		f := ms(a.Followed)
		followed = append(followed, f)
		if f > maxF {
			maxF = f
		}
	}
	return fmt.Sprintf("%.0f / %.0f (%.0f)", mesh.Median(served), mesh.Median(followed), maxF)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
