// Command mplb-istio-validate runs Istio's own validation (CRD schemas from
// istio.io/api, istiod's webhook checks from istio.io/istio) on manifest
// files and prints one line per document.
//
//	mplb-istio-validate --crds customresourcedefinitions.gen.yaml FILE...
//
// Exit 0 when every Istio document is valid, 1 when one is refused, 2 on a
// usage or read error. Kinds Istio does not own are listed as "skip".
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/multiparty-lb/multiparty-lb/istio-harness/validate"
)

func main() {
	crds := flag.String("crds", os.Getenv("MPLB_ISTIO_CRDS"), "Istio CRDs file (default $MPLB_ISTIO_CRDS)")
	flag.Parse()
	if *crds == "" || flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: mplb-istio-validate --crds FILE MANIFEST...")
		os.Exit(2)
	}
	v, err := validate.New(*crds)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	bad := false
	for _, path := range flag.Args() {
		results, err := v.File(path)
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", path, err)
			os.Exit(2)
		}
		for _, r := range results {
			id := fmt.Sprintf("%s %s/%s", r.Kind, r.Namespace, r.Name)
			switch {
			case !r.Istio:
				fmt.Printf("skip  %s: %s (not an Istio kind)\n", path, id)
			case r.Err != nil:
				bad = true
				fmt.Printf("FAIL  %s: %s: %v\n", path, id, r.Err)
			default:
				fmt.Printf("ok    %s: %s\n", path, id)
			}
			for _, w := range r.Warnings {
				fmt.Printf("warn  %s: %s: %s\n", path, id, w)
			}
		}
	}
	if bad {
		os.Exit(1)
	}
}
