package testenv

import (
	"testing"
	"time"
)

func TestStartPebbleProcess(t *testing.T) {
	start := time.Now()
	p := StartPebbleProcess(t, PebbleOptions{})
	t.Logf("StartPebbleProcess took %v", time.Since(start))
	checkDirectory(t, p)
	if p.IssuerRoots(t) == nil {
		t.Errorf("IssuerRoots returned nil")
	}

	p.Close()
	p.Close() // idempotent
	client := p.client()
	defer client.CloseIdleConnections()
	resp, err := client.Get(p.DirectoryURL)
	if err == nil {
		resp.Body.Close()
		t.Fatalf("GET %s after Close: %s, want an error", p.DirectoryURL, resp.Status)
	}
}

func TestStartPebbleClose(t *testing.T) {
	p := StartPebble(t, PebbleOptions{})
	getDirectory(t, p)
	p.Close()
	client := p.client()
	defer client.CloseIdleConnections()
	if resp, err := client.Get(p.DirectoryURL); err == nil {
		resp.Body.Close()
		t.Fatalf("GET %s after Close: %s, want an error", p.DirectoryURL, resp.Status)
	}
}
