package server

import "path"

// The static file server's Content-Type comes from the file name's
// extension alone, looked up in the table below: never from the file's
// bytes (http.DetectContentType would call an uploaded "<html>…" file
// with no or an unknown extension text/html, stored XSS for anyone
// serving an uploads folder) and never from the host (mime.TypeByExtension
// reads /etc/mime.types, so the same site would answer differently on
// another machine). Anything the table does not know is
// application/octet-stream, nginx's shipped default_type.
//
// Types are nginx's mime.types for the web, with the IANA-registered
// name where nginx still has a legacy one (text/javascript per RFC 9239,
// audio/mp4, image/bmp, video/mp4 for .m4v). Every text/* type carries
// "; charset=utf-8", so browsers do not fall back to windows-1252; other
// types carry none: JSON has no charset parameter (RFC 8259 §11) and
// XML-based types (SVG, RSS, Atom) declare their encoding in the file.

// octetStream is the Content-Type of files the table does not know.
var octetStream = []string{"application/octet-stream"}

// mimeTypes maps a lower-case extension, without its dot, to the
// Content-Type header value. Read only; the values are shared by every
// response and must never be modified (their capacity equals their
// length, so an append copies).
var mimeTypes = buildMimeTypes(map[string]string{
	"html": "text/html; charset=utf-8", "htm": "text/html; charset=utf-8",
	"shtml": "text/html; charset=utf-8", "xhtml": "application/xhtml+xml",
	"css": "text/css; charset=utf-8", "xml": "text/xml; charset=utf-8",
	"js": "text/javascript; charset=utf-8", "mjs": "text/javascript; charset=utf-8",
	"json": "application/json", "map": "application/json",
	"jsonld": "application/ld+json", "webmanifest": "application/manifest+json",
	"txt": "text/plain; charset=utf-8", "md": "text/markdown; charset=utf-8",
	"csv": "text/csv; charset=utf-8", "ics": "text/calendar; charset=utf-8",
	"vtt": "text/vtt; charset=utf-8",
	"rss": "application/rss+xml", "atom": "application/atom+xml",
	"wasm": "application/wasm", "pdf": "application/pdf",
	"crt": "application/x-x509-ca-cert", "der": "application/x-x509-ca-cert", "pem": "application/x-x509-ca-cert",

	"gif": "image/gif", "jpeg": "image/jpeg", "jpg": "image/jpeg",
	"png": "image/png", "apng": "image/apng", "webp": "image/webp",
	"avif": "image/avif", "svg": "image/svg+xml", "svgz": "image/svg+xml",
	"ico": "image/x-icon", "bmp": "image/bmp", "tif": "image/tiff", "tiff": "image/tiff",

	"woff": "font/woff", "woff2": "font/woff2", "ttf": "font/ttf", "otf": "font/otf",
	"eot": "application/vnd.ms-fontobject",

	"zip": "application/zip", "gz": "application/gzip", "tar": "application/x-tar",
	"bz2": "application/x-bzip2", "7z": "application/x-7z-compressed",
	"xz": "application/x-xz", "zst": "application/zstd",

	"mp3": "audio/mpeg", "ogg": "audio/ogg", "oga": "audio/ogg", "opus": "audio/ogg",
	"m4a": "audio/mp4", "aac": "audio/aac", "wav": "audio/wav", "flac": "audio/flac",
	"mp4": "video/mp4", "m4v": "video/mp4", "webm": "video/webm", "ogv": "video/ogg",
	"mov": "video/quicktime", "avi": "video/x-msvideo", "mkv": "video/x-matroska",
})

// maxExt is the longest extension in mimeTypes ("webmanifest").
const maxExt = len("webmanifest")

func buildMimeTypes(types map[string]string) map[string][]string {
	m := make(map[string][]string, len(types))
	for ext, t := range types {
		m[ext] = []string{t}
	}
	return m
}

// contentType returns the Content-Type header value for a file name,
// from its extension in any case: a shared slice, never to be modified.
// It does not allocate.
func contentType(name string) []string {
	ext := path.Ext(name)
	if len(ext) < 2 || len(ext) > 1+maxExt {
		return octetStream
	}
	var buf [maxExt]byte
	lower := buf[:len(ext)-1]
	for i := range lower {
		c := ext[1+i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		lower[i] = c
	}
	if t, ok := mimeTypes[string(lower)]; ok {
		return t
	}
	return octetStream
}
