// Command mplb-istiod serves Istio's own xDS generation (the in-process
// control plane of istio.io/istio) for the given Istio config and Kubernetes
// objects on a loopback port, until SIGTERM. Real Envoys bootstrap from it.
//
//	mplb-istiod --config a.yaml --config b.yaml --kube world.yaml \
//	  --ads 127.0.0.1:0 --http 127.0.0.1:0 [--persistent-session]
//
// When serving, it prints one line on stdout: `ready ads=<addr> http=<addr>`.
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/multiparty-lb/multiparty-lb/istio-harness/controlplane"
)

type files []string

func (f *files) String() string     { return strings.Join(*f, ",") }
func (f *files) Set(v string) error { *f = append(*f, v); return nil }

func main() {
	var config, kube files
	flag.Var(&config, "config", "Istio config YAML file (repeatable)")
	flag.Var(&kube, "kube", "Kubernetes objects YAML file (repeatable)")
	ads := flag.String("ads", "127.0.0.1:0", "ADS (gRPC) listen address")
	web := flag.String("http", "127.0.0.1:0", "metrics and debug listen address")
	session := flag.Bool("persistent-session", false, "PILOT_ENABLE_PERSISTENT_SESSION_FILTER=true")
	flag.Parse()

	cfg, err := readAll(config)
	if err != nil {
		log.Fatal(err)
	}
	objs, err := readAll(kube)
	if err != nil {
		log.Fatal(err)
	}
	cp, err := controlplane.Start(controlplane.Options{
		Config: cfg, Kube: objs, ADSListen: *ads, HTTPListen: *web, PersistentSession: *session,
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("ready ads=%s http=%s\n", cp.ADSAddr, cp.HTTPAddr)
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	<-stop
	cp.Close()
}

// readAll joins the files into one YAML stream.
func readAll(paths []string) (string, error) {
	var b strings.Builder
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			return "", fmt.Errorf("read %s: %w", p, err)
		}
		b.WriteString("\n---\n")
		b.Write(data)
		b.WriteString("\n")
	}
	return b.String(), nil
}
