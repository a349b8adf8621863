package devca

import (
	"fmt"
	"os"
	"strings"
)

// setEnv sets the variables of env (key=value) with os.Setenv and returns
// a function that restores their previous values.
func setEnv(env []string) (restore func(), err error) {
	type old struct {
		key, value string
		set        bool
	}
	var olds []old
	restore = func() {
		for i := len(olds) - 1; i >= 0; i-- {
			if o := olds[i]; o.set {
				_ = os.Setenv(o.key, o.value) // the key was valid a moment ago
			} else {
				_ = os.Unsetenv(o.key)
			}
		}
	}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		prev, set := os.LookupEnv(k)
		olds = append(olds, old{k, prev, set})
		if err := os.Setenv(k, v); err != nil {
			restore()
			return nil, fmt.Errorf("set %s: %w", k, err)
		}
	}
	return restore, nil
}

// checkEnv checks that the variables of env (key=value) have their values.
// A variable whose value is empty may also be unset.
func checkEnv(env []string) error {
	for _, kv := range env {
		k, want, _ := strings.Cut(kv, "=")
		if got := os.Getenv(k); got != want {
			return fmt.Errorf("KeepEnv is set but %s=%q, want %q", k, got, want)
		}
	}
	return nil
}
