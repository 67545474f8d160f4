// Command mplb-cost-bench measures what the filter costs as one service
// grows (issue 19, "cost as the service grows"): for each mode (subset,
// session, override) and each size of profile (2, 10, 100, 1,000 pods) it
// runs the scale world of istio-harness/mesh on Istio's own generation
// (mplb-istiod, the committed manifests, render-istio's output) and
// measures on the sidecar Envoy:
//
//   - Envoy CPU per request (/proc/<pid>/stat around a bounded burst) with
//     the filter (unstamped requests, the filter picks) and without it (the
//     bench client's sidecar, outside namespace hotel: requests pre-stamped
//     with the header the filter would set, and plain ones);
//   - Envoy's RSS and admin /memory with and without the filter;
//   - the configuration Istio pushed (admin /config_dump, per xDS type);
//   - the time a table change takes to reach the data path.
//
// It prints a markdown table and writes it with the raw figures
// (raw.json) to --results.
//
//	cd istio-harness && MPLB_WEIGHT_SERVER=... MPLB_FILTER_WASM=... \
//	  go run ./cmd/mplb-cost-bench --results ../results/i19-cost
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/multiparty-lb/multiparty-lb/istio-harness/mesh"
)

// Config is the bench's parameters (recorded in raw.json).
type Config struct {
	Modes    []string `json:"modes"`
	Sizes    []int    `json:"sizes"`
	Requests int      `json:"requests"`
	Workers  int      `json:"workers"`
	Reps     int      `json:"reps"`
	Changes  int      `json:"changes"`
	TableTTL string   `json:"table_ttl"`
}

var (
	mu      sync.Mutex
	current *mesh.Stack
)

func main() {
	modes := flag.String("modes", "subset,session,override", "modes, comma-separated")
	sizes := flag.String("sizes", "2,10,100,1000", "profile's pod counts, comma-separated")
	requests := flag.Int("requests", 10000, "requests per measured burst")
	workers := flag.Int("workers", 8, "concurrent connections per burst")
	reps := flag.Int("reps", 5, "measured bursts per path, the paths interleaved (the median is reported)")
	changes := flag.Int("changes", 5, "table changes timed per world")
	results := flag.String("results", "", "folder for table.md and raw.json (none: print only)")
	keep := flag.Bool("keep", false, "keep each world's logs and configs (printed path)")
	from := flag.String("table-from", "", "print the table of a raw.json written before (runs nothing)")
	flag.Parse()
	if *from != "" {
		cfg, runs, err := readRaw(*from)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Print(Markdown(cfg, runs))
		return
	}
	cfg := Config{Modes: strings.Split(*modes, ","), Requests: *requests, Workers: *workers,
		Reps: *reps, Changes: *changes, TableTTL: "10s"}
	for _, s := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 2 {
			log.Fatalf("--sizes: %q is not a pod count >= 2", s)
		}
		cfg.Sizes = append(cfg.Sizes, n)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-sig
		mu.Lock()
		if current != nil {
			current.Close()
		}
		os.Exit(130)
	}()
	istiod, cleanup, err := istiodBinary()
	if err != nil {
		log.Fatal(err)
	}
	defer cleanup()
	var runs []*Run
	for _, mode := range cfg.Modes {
		for _, n := range cfg.Sizes {
			log.Printf("--- %s, %d endpoints", mode, n)
			r := runOne(cfg, istiod, mode, n, *keep)
			runs = append(runs, r)
			for _, e := range r.Errors {
				log.Printf("%s %d: %s", mode, n, e)
			}
			if *results != "" { // after every world, so a cut run keeps what it measured
				if err := write(*results, cfg, runs, Markdown(cfg, runs)); err != nil {
					log.Fatal(err)
				}
			}
		}
	}
	table := Markdown(cfg, runs)
	fmt.Print(table)
	if *results != "" {
		if err := write(*results, cfg, runs, table); err != nil {
			log.Fatal(err)
		}
	}
}

func write(dir string, cfg Config, runs []*Run, table string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	raw, err := json.MarshalIndent(map[string]any{"config": cfg, "runs": runs}, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "raw.json"), raw, 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "table.md"), []byte(table), 0o644)
}

func readRaw(path string) (Config, []*Run, error) {
	var raw struct {
		Config Config `json:"config"`
		Runs   []*Run `json:"runs"`
	}
	data, err := os.ReadFile(path)
	if err == nil {
		err = json.Unmarshal(data, &raw)
	}
	return raw.Config, raw.Runs, err
}

// istiodBinary is MPLB_ISTIOD, else mplb-istiod built into a temp folder.
func istiodBinary() (string, func(), error) {
	if p := os.Getenv("MPLB_ISTIOD"); p != "" {
		return p, func() {}, nil
	}
	tmp, err := os.MkdirTemp("", "mplb-istiod-bin-")
	if err != nil {
		return "", nil, err
	}
	bin := filepath.Join(tmp, "mplb-istiod")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/mplb-istiod")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		_ = os.RemoveAll(tmp)
		return "", nil, fmt.Errorf("building mplb-istiod (run from istio-harness/): %w", err)
	}
	return bin, func() { _ = os.RemoveAll(tmp) }, nil
}
