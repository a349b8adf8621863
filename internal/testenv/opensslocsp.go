package testenv

import (
	"errors"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// ocspProcess is a running openssl ocsp responder.
type ocspProcess struct {
	cmd    *exec.Cmd
	exited chan struct{}
}

// StartOCSP starts `openssl ocsp` on OCSPURL's port, answering from
// index.txt, and waits until it accepts connections. It fails the test if
// a responder already runs.
func (ca *OpenSSLCA) StartOCSP(opts OCSPResponderOptions) {
	ca.t.Helper()
	ca.mu.Lock()
	defer ca.mu.Unlock()
	if ca.ocsp != nil {
		ca.t.Fatal("openssl CA: OCSP responder already running")
	}
	nmin := int((opts.NextUpdate + time.Minute - 1) / time.Minute)
	if opts.NextUpdate <= 0 {
		nmin = 60
	}
	signer, key := ca.path("ocsp.crt"), ca.path("ocsp.key")
	if opts.SignWithCA {
		signer, key = ca.CertFile, ca.KeyFile
	}
	cmd := exec.Command("openssl", "ocsp", "-index", ca.path("index.txt"),
		"-port", strconv.Itoa(ca.port), "-rsigner", signer, "-rkey", key, "-CA", ca.CertFile,
		"-nmin", strconv.Itoa(nmin), "-ignore_err")
	cmd.Dir = ca.Dir
	logw := &testLog{}
	killWithParent(cmd)
	cmd.Stdout, cmd.Stderr = logw, logw
	if err := cmd.Start(); err != nil {
		ca.t.Fatalf("start openssl ocsp: %v", err)
	}
	p := &ocspProcess{cmd: cmd, exited: make(chan struct{})}
	go func() {
		_ = cmd.Wait() // killed by StopOCSP; its output is in logw
		close(p.exited)
	}()
	if err := waitReady(logw, p.exited); err != nil {
		_ = cmd.Process.Kill()
		<-p.exited
		ca.t.Fatalf("openssl ocsp: %v\n%s", err, logw.String())
	}
	ca.ocsp, ca.ocspOpt = p, opts
}

// StopOCSP stops the responder, if it runs, and waits until it exited.
func (ca *OpenSSLCA) StopOCSP() {
	ca.mu.Lock()
	p := ca.ocsp
	ca.ocsp = nil
	ca.mu.Unlock()
	if p != nil {
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// waitReady waits until the responder says it waits for connections, it
// exits, or 15 seconds pass. A probe connection will not do: openssl ocsp
// (3.0) serves one connection at a time and hangs on one closed without
// a request.
func waitReady(logw *testLog, exited <-chan struct{}) error {
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return errors.New("exited before accepting connections")
		default:
		}
		if strings.Contains(logw.String(), "waiting for OCSP client connections") {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return errors.New("not accepting connections after 15s")
}
