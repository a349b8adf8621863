package main

import (
	"fmt"

	"github.com/tlspilot/tlspilot/internal/config"
)

// checkChallengeDirAccess says, for check, whether the user serve will
// run as may search the challenge directory, as serving the answers
// written there needs, from permission bits alone. The answer files
// themselves come and go; `tlspilot certs` writes them 0644.
func checkChallengeDirAccess(cfg *config.Config) error {
	if cfg.ChallengeDir == "" {
		return nil
	}
	uid, gid, err := runAs(cfg)
	if err != nil {
		return err
	}
	if err := accessible(cfg.ChallengeDir, uid, gid, 1); err != nil {
		hint := ""
		if cfg.User != "" {
			hint = fmt.Sprintf(" (serve runs as user %q after binding its ports and needs search permission on the directory and read permission on its files)", cfg.User)
		}
		return cfg.Errorf("challenge_dir", "%w%s", err, hint)
	}
	return nil
}
