package mesh

import "fmt"

// BindGateways sets `bind: ip` on every server of every Gateway in a YAML
// stream. Istio binds a gateway's listeners to the wildcard address unless
// the server names one; the test world binds them to the gateway pod's
// loopback address so nothing of a test listens beyond 127.0.0.0/8. Nothing
// else of the Gateways changes.
func BindGateways(stream, ip string) (string, error) {
	docs, err := SplitYAML(stream)
	if err != nil {
		return "", err
	}
	bound := 0
	for _, d := range docs {
		if kindOf(d) != "Gateway" {
			continue
		}
		spec, _ := d["spec"].(doc)
		servers, _ := spec["servers"].([]any)
		for i, s := range servers {
			server, ok := s.(doc)
			if !ok {
				return "", fmt.Errorf("Gateway server %d is not an object", i)
			}
			if b, set := server["bind"]; set && b != ip {
				return "", fmt.Errorf("Gateway server %d already binds %v", i, b)
			}
			server["bind"] = ip
			bound++
		}
	}
	if bound == 0 {
		return "", fmt.Errorf("no Gateway server to bind")
	}
	return JoinYAML(docs)
}
