//go:build !linux

package server

import "net"

// connAlive reports whether an idle connection can take another request.
// Without a non-blocking peek it assumes so; a request without a body
// that finds the connection dead is sent again (upstreamTransport).
func connAlive(net.Conn) bool { return true }
