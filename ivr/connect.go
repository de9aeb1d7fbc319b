package ivr

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"reflect"
	"time"
	"unsafe"

	"github.com/CyCoreSystems/ari/v5/client/native"
	"github.com/inconshreveable/log15"
	"github.com/sirupsen/logrus"
)

// ARIConfig is how to reach Asterisk. Every field of the native client's
// options is set from it: left empty, ari/v5 falls back to its own ARI_*
// environment variables and to localhost.
type ARIConfig struct {
	URL, WSURL, Username, Password, Application string
	Timeout                                     time.Duration
}

// NewClient makes a native ARI client for REST calls, with a timeout on every
// call. ari/v5 v5.3.1 builds requests without a context and keeps an
// unexported zero http.Client (no timeout, so a hung Asterisk hangs the call
// forever); SetRESTTimeout fixes that on this client only.
func NewClient(cfg ARIConfig) (*native.Client, error) {
	c := native.New(&native.Options{
		Application:     cfg.Application,
		URL:             cfg.URL,
		WebsocketURL:    cfg.WSURL,
		WebsocketOrigin: "http://localhost", // ari.conf allowed_origins, exactly
		Username:        cfg.Username,
		Password:        cfg.Password,
		SubscribeAll:    false,
	})
	if err := SetRESTTimeout(c, cfg.Timeout); err != nil {
		return nil, err
	}
	return c, nil
}

// SetRESTTimeout gives the client's REST calls a deadline and a transport of
// their own. It reaches the unexported field by reflection; the test that
// proves a hung Asterisk no longer hangs a call fails loudly if a new
// ari/v5 release moves the field.
func SetRESTTimeout(c *native.Client, d time.Duration) error {
	if d <= 0 {
		d = 5 * time.Second
	}
	f := reflect.ValueOf(c).Elem().FieldByName("httpClient")
	if !f.IsValid() || f.Type() != reflect.TypeOf(http.Client{}) {
		return errors.New("ari/v5 native client layout changed: cannot set the REST timeout")
	}
	hc := (*http.Client)(unsafe.Pointer(f.UnsafeAddr()))
	hc.Timeout = d
	hc.Transport = &http.Transport{
		DialContext:           (&net.Dialer{Timeout: d, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: d,
	}
	return nil
}

// Preflight asks Asterisk for its info with a deadline, so a wrong password
// or an unreachable Asterisk is reported at once and by name, where ari/v5's
// Connect would block forever and log nothing.
func Preflight(ctx context.Context, cfg ARIConfig) (entityID string, err error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, cfg.URL+"/asterisk/info", nil)
	if err != nil {
		return "", fmt.Errorf("ARI URL: %w", err)
	}
	req.SetBasicAuth(cfg.Username, cfg.Password)
	resp, err := (&http.Client{Timeout: cfg.Timeout}).Do(req)
	if err != nil {
		return "", fmt.Errorf("asterisk unreachable at %s: %w", req.URL.Host, errors.Unwrap(err))
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusUnauthorized:
		return "", ErrUnauthorized
	default:
		return "", fmt.Errorf("asterisk answered /asterisk/info with HTTP %d", resp.StatusCode)
	}
	var info struct {
		System struct {
			EntityID string `json:"entity_id"`
			Version  string `json:"version"`
		} `json:"system"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&info)
	return info.System.EntityID, nil
}

// RouteLibraryLogs sends ari/v5's log15 records (connection errors, which it
// otherwise discards) to logrus. Record values are not copied: only the
// message and the error, so no event payload can reach a log.
func RouteLibraryLogs(log *logrus.Entry) {
	native.Logger.SetHandler(log15.FuncHandler(func(r *log15.Record) error {
		e := log.WithField("component", "ari/v5")
		for i := 0; i+1 < len(r.Ctx); i += 2 {
			if k, _ := r.Ctx[i].(string); k == "error" {
				if err, ok := r.Ctx[i+1].(error); ok {
					e = e.WithField("error", err.Error())
				}
			}
		}
		switch r.Lvl {
		case log15.LvlCrit, log15.LvlError:
			e.Error(r.Msg)
		case log15.LvlWarn:
			e.Warn(r.Msg)
		case log15.LvlInfo:
			e.Info(r.Msg)
		default:
			e.Debug(r.Msg)
		}
		return nil
	}))
}
