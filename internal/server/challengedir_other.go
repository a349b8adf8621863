//go:build !unix

package server

// answerOpenFlags: elsewhere an answer file is opened plainly; it is
// still checked to be a regular file holding a key authorization.
const answerOpenFlags = 0
