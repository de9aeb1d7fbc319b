package config

// Operations are how the running line is watched and named, and the lab
// switches: links in clear, lab key parts.
type Operations struct {
	LogLevel    string `envconfig:"LOG_LEVEL" default:"info" desc:"debug, info, warn or error"`
	LogFormat   string `envconfig:"LOG_FORMAT" default:"auto" desc:"json, text, or auto (text on a terminal)"`
	InstanceID  string `envconfig:"INSTANCE_ID" desc:"this instance's name in audit records and the fleet's Redis registry; unset: host name and process id"`
	MetricsAddr string `envconfig:"METRICS_ADDR" default:"127.0.0.1:9464" desc:"metrics and health listen address"`

	AllowInsecureHosts bool `envconfig:"ALLOW_INSECURE_HOSTS" default:"false" desc:"accept plain http host URLs to machines other than this one (a lab only; logged loudly)"`
	Lab                bool `envconfig:"LAB" default:"false" desc:"a lab: serve accepts a software zone PIN key and a SoftHSM2 token, with one warning at start and ivrpin_lab_mode 1; never in production"`
}

// problems checks the log level and format.
func (o *Operations) problems() []error {
	var out []error
	switch o.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		out = append(out, problem("LOG_LEVEL", "must be debug, info, warn or error"))
	}
	switch o.LogFormat {
	case "auto", "json", "text":
	default:
		out = append(out, problem("LOG_FORMAT", "must be json, text or auto"))
	}
	return out
}
