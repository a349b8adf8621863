package config

// Defaults of the keys about the daemon's own log.
const (
	DefaultLogFormat = "text"
	DefaultLogFile   = "stderr"
)

// logging decodes "log_format" and "log_file"; "log_level" is decoded
// with the other keys of the process.
func (d *decoder) logging(t *table, c *Config) {
	c.LogFormat, c.LogFile = DefaultLogFormat, DefaultLogFile
	if t.str("log_format", &c.LogFormat) && c.LogFormat != "text" && c.LogFormat != "json" {
		d.errorf("log_format", "%q: want text or json", c.LogFormat)
	}
	if !t.str("log_file", &c.LogFile) {
		return
	}
	switch c.LogFile {
	case "stdout", "stderr":
	case "off":
		d.errorf("log_file", "the log cannot be turned off: use log_level = \"error\" to keep it short")
	default:
		c.LogFile = d.accessLog("log_file", c.LogFile)
	}
}
