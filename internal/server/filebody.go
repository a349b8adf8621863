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

// sendChunk is how much of a file one sendfile call may send before the
// write deadline is pushed forward: a client must take this much within
// 3/4 of the send timeout (5.6 KiB/s at the default 60 s).
const sendChunk = 256 << 10

// copyFileBody writes n bytes of b to the client: by sendfile(2) when it
// can (a plain HTTP/1 connection) and the body is large, else through a
// pooled buffer, pushing the write deadline forward as it goes.
func (w *logWriter) copyFileBody(rf io.ReaderFrom, b *fileBody, n int64) (int64, error) {
	if rf != nil && n >= sendfileMin {
		if _, err := b.f.Seek(b.off, io.SeekStart); err != nil {
			return 0, err
		}
		var done int64
		for done < n {
			w.progress()
			m, err := rf.ReadFrom(&io.LimitedReader{R: b.f, N: min(n-done, sendChunk)})
			done += m
			b.off += m
			if err != nil || m == 0 {
				return done, err
			}
		}
		return done, nil
	}
	buf := w.bufs.Get()
	defer w.bufs.Put(buf)
	var done int64
	for done < n {
		chunk := buf
		if rem := n - done; rem < int64(len(chunk)) {
			chunk = chunk[:rem]
		}
		k, err := b.Read(chunk)
		if k > 0 {
			w.progress()
			k, err = w.ResponseWriter.Write(chunk[:k])
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
