package mesh

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Echo is what a test pod answers: who it is and the headers it got.
type Echo struct {
	// Pod is the answering pod's name.
	Pod string `json:"pod"`
	// Endpoint is the x-lb-endpt header the pod received ("" if none).
	Endpoint string `json:"x-lb-endpt"`
	// Session is the x-lb-session header the pod received ("" if none).
	Session string `json:"x-lb-session"`
	// Host is the x-lb-host header (override mode) the pod received ("" if none).
	Host string `json:"x-lb-host"`
	// Authority is the request's host.
	Authority string `json:"authority"`
	// Status is the HTTP status the client saw (filled in by the client).
	Status int `json:"-"`
}

// PodServers are the running echo servers of the test pods.
type PodServers struct {
	servers []*http.Server
	wg      sync.WaitGroup
}

// StartPods serves an echo server per pod on its address, HTTP/1.1 and
// HTTP/2 without TLS (Envoy speaks h2c to ports Istio calls grpc).
func StartPods(pods []Pod) (*PodServers, error) {
	ps := &PodServers{}
	for _, p := range pods {
		l, err := net.Listen("tcp", p.Addr())
		if err != nil {
			ps.Close()
			return nil, fmt.Errorf("pod %s: listen %s: %w", p.Name, p.Addr(), err)
		}
		name := p.Name
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("content-type", "application/json")
			_ = json.NewEncoder(w).Encode(Echo{
				Pod: name, Endpoint: r.Header.Get("x-lb-endpt"),
				Session: r.Header.Get("x-lb-session"), Host: r.Header.Get("x-lb-host"), Authority: r.Host,
			})
		})
		srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
		srv.Protocols = new(http.Protocols)
		srv.Protocols.SetHTTP1(true)
		srv.Protocols.SetUnencryptedHTTP2(true)
		ps.servers = append(ps.servers, srv)
		ps.wg.Add(1)
		go func() { defer ps.wg.Done(); _ = srv.Serve(l) }()
	}
	return ps, nil
}

// Close stops every echo server.
func (ps *PodServers) Close() {
	for _, s := range ps.servers {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = s.Shutdown(ctx)
		cancel()
	}
	ps.wg.Wait()
}

// Client sends requests to an Envoy listener with a given authority.
type Client struct {
	// URL is the listener's base URL (http://127.0.0.1:port).
	URL string
	// Authority is the Host header (the destination service's name).
	Authority string
	http      *http.Client
}

// NewClient makes a client with keep-alive connections.
func NewClient(listener, authority string) *Client {
	return &Client{URL: "http://" + listener, Authority: authority, http: &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: 16, DisableCompression: true},
	}}
}

// NewClientVia is NewClient whose connections dial makes (the waypoint
// tests: each one an HBONE tunnel through the waypoint).
func NewClientVia(listener, authority string, dial func(ctx context.Context, network, addr string) (net.Conn, error)) *Client {
	c := NewClient(listener, authority)
	c.http.Transport.(*http.Transport).DialContext = dial
	return c
}

// Get sends one GET with the given extra headers; a non-JSON answer (an
// Envoy error) gives an Echo with only Status set.
func (c *Client) Get(headers map[string]string) (Echo, error) {
	req, err := http.NewRequest(http.MethodGet, c.URL+"/", nil)
	if err != nil {
		return Echo{}, err
	}
	req.Host = c.Authority
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return Echo{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if err != nil {
		return Echo{}, err
	}
	var e Echo
	if resp.StatusCode == http.StatusOK && strings.HasPrefix(resp.Header.Get("content-type"), "application/json") {
		if err := json.Unmarshal(body, &e); err != nil {
			return Echo{}, fmt.Errorf("answer %q: %w", body, err)
		}
	}
	e.Status = resp.StatusCode
	return e, nil
}

// Many sends n requests over `workers` connections (bounded in count and by
// the client timeout) and returns the answers in completion order.
func (c *Client) Many(n, workers int, headers map[string]string) ([]Echo, error) {
	jobs := make(chan struct{}, n)
	for i := 0; i < n; i++ {
		jobs <- struct{}{}
	}
	close(jobs)
	var mu sync.Mutex
	var out []Echo
	var firstErr error
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range jobs {
				e, err := c.Get(headers)
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				if err == nil {
					out = append(out, e)
				}
				mu.Unlock()
				if err != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	return out, firstErr
}
