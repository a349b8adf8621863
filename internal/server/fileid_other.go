//go:build !linux

package server

import (
	"io/fs"
	"os"
)

// idOf reports no identity off Linux, which turns the file cache off.
func idOf(fs.FileInfo) (fileID, bool) { return fileID{}, false }

// statDir is not needed off Linux: there is no file cache to check.
func statDir(string, fs.FileInfo) *os.File { return nil }

func statID(int, string) (fileID, bool) { return fileID{}, false }
