//go:build race

package admin_test

// raceDetector reports whether the tests run with the race detector,
// which multiplies the memory of every allocation (bounds on peak RSS
// allow for it).
const raceDetector = true
