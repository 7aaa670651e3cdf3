package clustertest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

// etcdConfig is what etcd's flags are built from.
type etcdConfig struct {
	dataDir    string
	clientPort int
	peerPort   int
}

func (c etcdConfig) clientURL() string {
	return fmt.Sprintf("http://%s:%d", loopback, c.clientPort)
}

// etcdArgs returns etcd's flags: one member on loopback, plain HTTP, and
// no fsync, since the data lives only as long as the test.
func etcdArgs(c etcdConfig) []string {
	peer := fmt.Sprintf("http://%s:%d", loopback, c.peerPort)
	return []string{
		"--name=testcluster",
		"--data-dir=" + c.dataDir,
		"--listen-client-urls=" + c.clientURL(),
		"--advertise-client-urls=" + c.clientURL(),
		"--listen-peer-urls=" + peer,
		"--initial-advertise-peer-urls=" + peer,
		"--initial-cluster=testcluster=" + peer,
		"--unsafe-no-fsync",
		"--log-level=warn",
	}
}

// startEtcd runs etcd and waits until /health says so.
func startEtcd(ctx context.Context, bin, logDir string, c etcdConfig, timeout time.Duration) (*process, error) {
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	p := newProcess("etcd", bin, etcdArgs(c), logDir)
	return launch(ctx, p, timeout, httpCheck(client, c.clientURL()+"/health"))
}

// compactEtcd compacts etcd's history up to its current revision, through
// etcd's JSON gateway to its v3 client API, and returns that revision. A
// watch from any older resourceVersion then gets 410 Gone (when the API
// server's watch cache is off).
func compactEtcd(ctx context.Context, clientURL string) (int64, error) {
	var status struct {
		Header struct {
			Revision string `json:"revision"`
		} `json:"header"`
	}
	if err := etcdCall(ctx, clientURL+"/v3/maintenance/status", map[string]any{}, &status); err != nil {
		return 0, fmt.Errorf("read etcd revision: %w", err)
	}
	rev, err := strconv.ParseInt(status.Header.Revision, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("read etcd revision %q: %w", status.Header.Revision, err)
	}
	req := map[string]any{"revision": strconv.FormatInt(rev, 10), "physical": true}
	if err := etcdCall(ctx, clientURL+"/v3/kv/compaction", req, nil); err != nil {
		return 0, fmt.Errorf("compact etcd at revision %d: %w", rev, err)
	}
	return rev, nil
}

// etcdCall posts in as JSON to url and decodes the answer into out.
func etcdCall(ctx context.Context, url string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("POST %s: %s: %s", url, resp.Status, data)
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(data, out)
}
