package devca

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"time"
)

// closeTimeout bounds how long Close waits for requests in progress.
const closeTimeout = 5 * time.Second

// serve serves h over HTTPS with cert on a new 127.0.0.1 port until Close,
// and returns its base URL, https://127.0.0.1:PORT. Like httptest's
// servers (which it does not use, since httptest registers a command-line
// flag), it speaks HTTP/1.1 only.
func (c *CA) serve(h http.Handler, cert *ServerCert, logw io.Writer) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	srv := &http.Server{
		Handler:           h,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert.TLS}, NextProtos: []string{"http/1.1"}},
		ErrorLog:          log.New(logw, "https ", log.Lmicroseconds),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       5 * time.Minute,
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.ServeTLS(ln, "", ""); !errors.Is(err, http.ErrServerClosed) {
			srv.ErrorLog.Printf("serve %s: %v", ln.Addr(), err)
		}
	}()
	c.closers = append(c.closers, func() {
		ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
		defer cancel()
		if srv.Shutdown(ctx) != nil {
			_ = srv.Close() // requests still in progress are cut off
		}
		<-done
	})
	return "https://" + ln.Addr().String(), nil
}
