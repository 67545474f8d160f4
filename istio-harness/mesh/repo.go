package mesh

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
)

// Repo locates the repository and the built artefacts the world runs.
type Repo struct {
	// Root is the repository's root directory.
	Root string
}

// FindRepo walks up from the working directory to the folder holding
// istio-harness/ and Cargo.toml.
func FindRepo() (Repo, error) {
	dir, err := os.Getwd()
	if err != nil {
		return Repo{}, err
	}
	for {
		if fileExists(filepath.Join(dir, "Cargo.toml")) && fileExists(filepath.Join(dir, "istio-harness", "go.mod")) {
			return Repo{Root: dir}, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return Repo{}, errors.New("no repository root (Cargo.toml beside istio-harness/) above the working directory")
		}
		dir = parent
	}
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// artefact is env var, else the default path, which must exist.
func (r Repo) artefact(env, def, hint string) (string, error) {
	if v := os.Getenv(env); v != "" {
		def = v
	}
	if !fileExists(def) {
		return "", fmt.Errorf("%s not found (set %s, or %s)", def, env, hint)
	}
	return def, nil
}

// Envoy is MPLB_ENVOY, else the venv's envoy from scripts/setup.sh.
func (r Repo) Envoy() (string, error) {
	home, _ := os.UserHomeDir()
	cache := os.Getenv("MPLB_CACHE")
	if cache == "" {
		cache = filepath.Join(home, ".cache", "mplb")
	}
	return r.artefact("MPLB_ENVOY", filepath.Join(cache, "venv", "bin", "envoy"), "run `. scripts/setup.sh`")
}

// Target is cargo's target directory: CARGO_TARGET_DIR, else target/.
func (r Repo) Target() string {
	if d := os.Getenv("CARGO_TARGET_DIR"); d != "" {
		return d
	}
	return filepath.Join(r.Root, "target")
}

// WeightServer is MPLB_WEIGHT_SERVER, else <target>/debug/weight-server.
func (r Repo) WeightServer() (string, error) {
	return r.artefact("MPLB_WEIGHT_SERVER", filepath.Join(r.Target(), "debug", "weight-server"),
		"run `cargo build -p weight-server`")
}

// FilterWasm is MPLB_FILTER_WASM, else the wasm-release build of the filter.
func (r Repo) FilterWasm() (string, error) {
	return r.artefact("MPLB_FILTER_WASM",
		filepath.Join(r.Target(), "wasm32-wasip1", "wasm-release", "mplb_filter.wasm"),
		"run `cargo build -p mplb-filter --target wasm32-wasip1 --profile wasm-release`")
}

// Manifest reads a committed file under envoyfilter/.
func (r Repo) Manifest(rel string) (string, error) {
	data, err := os.ReadFile(filepath.Join(r.Root, "envoyfilter", rel))
	return string(data), err
}

// RenderIstio runs `weight-server render-istio` on a topology file.
func (r Repo) RenderIstio(topology, mode string) (string, error) {
	bin, err := r.WeightServer()
	if err != nil {
		return "", err
	}
	cmd := exec.Command(bin, "render-istio", "--topology", topology, "--mode", mode)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("render-istio --mode %s: %w: %s", mode, err, stderr.String())
	}
	return string(out), nil
}

var urlLine = regexp.MustCompile(`(?m)^(\s*)url: .*$`)

// LocalWasmPlugin points a committed WasmPlugin's `url` at the built module
// (file://, which Istio passes to Envoy as a local data source over ECDS)
// and sets pluginConfig keys (e.g. mode) to the given values.
func LocalWasmPlugin(manifest, wasm string, set map[string]string) (string, error) {
	if !urlLine.MatchString(manifest) {
		return "", errors.New("WasmPlugin without a url line")
	}
	out := urlLine.ReplaceAllString(manifest, "${1}url: file://"+wasm)
	for k, v := range set {
		re := regexp.MustCompile(`(?m)^(\s+)` + regexp.QuoteMeta(k) + `: .*$`)
		if !re.MatchString(out) {
			return "", fmt.Errorf("WasmPlugin has no pluginConfig key %q", k)
		}
		out = re.ReplaceAllString(out, "${1}"+k+": "+v)
	}
	return out, nil
}

// IstioCRDs is MPLB_ISTIO_CRDS, else the CRDs of the istio.io/api module
// this module pins, from the Go module cache (`go list -m`).
func IstioCRDs() (string, error) {
	if v := os.Getenv("MPLB_ISTIO_CRDS"); v != "" {
		return v, nil
	}
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "istio.io/api").Output()
	if err != nil {
		return "", fmt.Errorf("go list -m istio.io/api: %w", err)
	}
	p := filepath.Join(strings.TrimSpace(string(out)), "kubernetes", "customresourcedefinitions.gen.yaml")
	if !fileExists(p) {
		return "", fmt.Errorf("%s missing", p)
	}
	return p, nil
}
