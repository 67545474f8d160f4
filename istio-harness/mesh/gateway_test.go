package mesh

import (
	"strings"
	"testing"
)

func TestBindGatewaysSetsTheBindOfEveryServerOnly(t *testing.T) {
	in := `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: hotel}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: ["*"]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: vs, namespace: hotel}
spec: {hosts: ["*"], gateways: [gw]}
`
	out, err := BindGateways(in, "127.0.0.60")
	if err != nil {
		t.Fatal(err)
	}
	docs, err := SplitYAML(out)
	if err != nil || len(docs) != 2 {
		t.Fatalf("%v: %d documents", err, len(docs))
	}
	server := docs[0]["spec"].(doc)["servers"].([]any)[0].(doc)
	if server["bind"] != "127.0.0.60" || server["port"].(doc)["number"] != float64(80) {
		t.Errorf("server: %v", server)
	}
	if strings.Contains(out[strings.Index(out, "VirtualService"):], "bind") {
		t.Errorf("the VirtualService changed: %s", out)
	}
	if _, err := BindGateways(docsOnly(t, in, 1), "127.0.0.60"); err == nil {
		t.Error("a stream without a Gateway was accepted")
	}
}

func docsOnly(t *testing.T, stream string, i int) string {
	t.Helper()
	docs, err := SplitYAML(stream)
	if err != nil {
		t.Fatal(err)
	}
	out, err := JoinYAML(docs[i : i+1])
	if err != nil {
		t.Fatal(err)
	}
	return out
}
