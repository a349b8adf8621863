package tlspilot

// DefaultStorageDir returns where the default storage lives when
// Config.StorageDir is empty: $XDG_DATA_HOME/tlspilot, else
// ~/.local/share/tlspilot.
func DefaultStorageDir() (string, error) { return defaultStorageDir() }
