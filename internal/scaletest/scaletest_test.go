package scaletest

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestTransportCountsRequestsAndOpenWatches(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "{}") }))
	defer srv.Close()
	var tr Transport
	client := &http.Client{Transport: tr.Wrap(http.DefaultTransport)}
	resp, err := client.Get(srv.URL + "/api/v1/pods?watch=true")
	if err != nil {
		t.Fatal(err)
	}
	if tr.OpenWatches() != 1 {
		t.Errorf("%d watches open, want 1", tr.OpenWatches())
	}
	resp.Body.Close()
	resp.Body.Close()
	if _, err := client.Get(srv.URL + "/api/v1/pods"); err != nil {
		t.Fatal(err)
	}
	if tr.Requests() != 2 || tr.OpenWatches() != 0 {
		t.Errorf("%d requests, %d watches open; want 2, 0", tr.Requests(), tr.OpenWatches())
	}
}

func TestLabels(t *testing.T) {
	l := labels(`verb="WATCH",scope="namespace",resource="jobs"`)
	if l["verb"] != "WATCH" || l["scope"] != "namespace" || l["resource"] != "jobs" {
		t.Errorf("%v", l)
	}
}
