package waypoint

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// istiodBin is the mplb-istiod the data-path test runs: MPLB_ISTIOD, else
// built here.
var istiodBin string

func TestMain(m *testing.M) {
	istiodBin = os.Getenv("MPLB_ISTIOD")
	var tmp string
	if istiodBin == "" {
		var err error
		if tmp, err = os.MkdirTemp("", "mplb-istiod-bin-"); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		istiodBin = filepath.Join(tmp, "mplb-istiod")
		cmd := exec.Command("go", "build", "-o", istiodBin, "../cmd/mplb-istiod")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "building mplb-istiod:", err)
			os.Exit(1)
		}
	}
	code := m.Run()
	if tmp != "" {
		_ = os.RemoveAll(tmp)
	}
	os.Exit(code)
}
