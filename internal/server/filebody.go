package server

import (
	"errors"
	"io"
	"os"
)

// sendfileMin is the body size from which a plain HTTP/1 response is
// sent with sendfile(2); smaller bodies are cheaper through the buffer.
const sendfileMin = 64 << 10

// fileBody is the io.ReadSeeker given to http.ServeContent for a file
// whose size is known from its Stat: Seek is arithmetic and Read is
// pread(2), so serving a file costs no lseek calls.
type fileBody struct {
	f         *os.File
	size, off int64
}

func (b *fileBody) Read(p []byte) (int, error) {
	if b.off >= b.size {
		return 0, io.EOF
	}
	if rem := b.size - b.off; int64(len(p)) > rem {
		p = p[:rem]
	}
	n, err := b.f.ReadAt(p, b.off)
	b.off += int64(n)
	if err == io.EOF && n > 0 {
		err = nil
	}
	return n, err
}

var errSeek = errors.New("seek before the start of the file")

func (b *fileBody) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekCurrent:
		offset += b.off
	case io.SeekEnd:
		offset += b.size
	}
	if offset < 0 {
		return 0, errSeek
	}
	b.off = offset
	return offset, nil
}

// copyFileBody writes n bytes of b to w: by sendfile(2) when w can (a
// plain HTTP/1 connection) and the body is large, else through a pooled
// buffer.
func copyFileBody(w io.Writer, rf io.ReaderFrom, b *fileBody, n int64, bufs *bufferPool) (int64, error) {
	if rf != nil && n >= sendfileMin {
		if _, err := b.f.Seek(b.off, io.SeekStart); err != nil {
			return 0, err
		}
		m, err := rf.ReadFrom(&io.LimitedReader{R: b.f, N: n})
		b.off += m
		return m, err
	}
	buf := bufs.Get()
	defer bufs.Put(buf)
	var done int64
	for done < n {
		chunk := buf
		if rem := n - done; rem < int64(len(chunk)) {
			chunk = chunk[:rem]
		}
		k, err := b.Read(chunk)
		if k > 0 {
			k, err = w.Write(chunk[:k])
			done += int64(k)
		}
		if err != nil {
			if err == io.EOF {
				err = nil
			}
			return done, err
		}
	}
	return done, nil
}
