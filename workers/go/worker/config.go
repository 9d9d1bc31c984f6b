package worker

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	pb "github.com/agentworker/agentworker/gen/go/agentworker/v1"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// Config holds a worker's connection settings.
type Config struct {
	// Address is the host's HOST:PORT (required).
	Address string
	// ClientID names the worker; empty means a fresh UUID (AWP-CONN-006).
	ClientID string
	// TLSCA is the path of a PEM CA bundle; when set the worker connects
	// with TLS and verifies the host against it. A client certificate or
	// server name without it means TLS against the system's roots.
	TLSCA string
	// TLSServerName overrides the name verified in the host certificate.
	TLSServerName string
	// TLSCert and TLSKey are PEM files of a client certificate for mutual TLS.
	TLSCert, TLSKey string
	// Token is a bearer token sent on every call.
	Token string
	// Reconnect enables reconnecting with backoff after losing the host
	// (CAPABILITY_RECONNECT). ConfigFromEnv turns it on.
	Reconnect bool
	// MaxConcurrency bounds the handlers running at once; a handler waiting
	// for its own calls does not count (AWP-CONN-041). 0 means 256.
	MaxConcurrency int
	// MaxQueued bounds the messages read but not yet started, over all
	// agents' mailboxes (AWP-FLOW-031). A request beyond it is answered
	// OVERLOADED; an event beyond it is queued and the worker stops reading
	// until there is room (AWP-FLOW-032). 0 means 10000.
	MaxQueued int
	// ShutdownGrace bounds how long Shutdown lets running handlers finish
	// (AWP-CONN-017). 0 means 5 s.
	ShutdownGrace time.Duration
	// StartTimeout bounds how long Run waits for the first connection. 0
	// means one minute.
	StartTimeout time.Duration
	// Logger receives the worker's logs; nil means slog.Default().
	Logger *slog.Logger
	// OnNotice, when set, receives every Notice the host sends (after it is
	// logged); it must not block (AWP-ERR-011).
	OnNotice func(*pb.Notice)
}

// ConfigFromEnv reads the AGENTWORKER_* variables of spec 16.1
// (AWP-CNF-001).
func ConfigFromEnv() (Config, error) {
	c := Config{
		Address:       strings.TrimSpace(os.Getenv("AGENTWORKER_HOST_ADDRESS")),
		ClientID:      os.Getenv("AGENTWORKER_CLIENT_ID"),
		TLSCA:         os.Getenv("AGENTWORKER_TLS_CA"),
		TLSServerName: os.Getenv("AGENTWORKER_TLS_SERVER_NAME"),
		TLSCert:       os.Getenv("AGENTWORKER_TLS_CERT"),
		TLSKey:        os.Getenv("AGENTWORKER_TLS_KEY"),
		Token:         os.Getenv("AGENTWORKER_TOKEN"),
		Reconnect:     true,
	}
	return c, c.validate()
}

// LoggerFromEnv returns a text logger on standard error at the level named by
// AGENTWORKER_LOG_LEVEL (debug, info, warn, error; default warn).
func LoggerFromEnv() *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(os.Getenv("AGENTWORKER_LOG_LEVEL"))); err != nil {
		level = slog.LevelWarn
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

func (c Config) validate() error {
	if c.Address == "" {
		return errors.New("AGENTWORKER_HOST_ADDRESS is not set")
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return errors.New("mutual TLS needs both a client certificate and its key")
	}
	// AWP-SEC-007: never send a token in clear to another machine.
	if c.Token != "" && !c.usesTLS() && !isLoopback(c.Address) {
		return fmt.Errorf("refusing to send a bearer token to %s without TLS", c.Address)
	}
	return nil
}

// usesTLS reports whether the worker connects with TLS: with a CA, or with a
// client certificate or server name alone (then verifying against the
// system's roots, spec 16.1).
func (c Config) usesTLS() bool {
	return c.TLSCA != "" || c.TLSCert != "" || c.TLSServerName != ""
}

// capabilities returns what this configuration implements (AWP-VER-016).
func (c Config) capabilities() []pb.Capability {
	caps := []pb.Capability{pb.Capability_CAPABILITY_BATCHING, pb.Capability_CAPABILITY_STATE}
	if c.Reconnect {
		caps = append(caps, pb.Capability_CAPABILITY_RECONNECT)
	}
	if c.usesTLS() {
		caps = append(caps, pb.Capability_CAPABILITY_TLS)
		if c.TLSCert != "" {
			caps = append(caps, pb.Capability_CAPABILITY_MUTUAL_TLS)
		}
	}
	if c.Token != "" {
		caps = append(caps, pb.Capability_CAPABILITY_BEARER_TOKEN)
	}
	return caps
}

func (c Config) transportCredentials() (credentials.TransportCredentials, error) {
	if !c.usesTLS() {
		return insecure.NewCredentials(), nil
	}
	// A nil pool makes crypto/tls use the system's trusted roots.
	var pool *x509.CertPool
	if c.TLSCA != "" {
		pem, err := os.ReadFile(c.TLSCA)
		if err != nil {
			return nil, fmt.Errorf("read TLS CA: %w", err)
		}
		pool = x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("no certificates in %s", c.TLSCA)
		}
	}
	cfg := &tls.Config{RootCAs: pool, ServerName: c.TLSServerName, MinVersion: tls.VersionTLS12}
	if c.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(c.TLSCert, c.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("load client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return credentials.NewTLS(cfg), nil
}

// isLoopback reports whether HOST:PORT names this machine.
func isLoopback(address string) bool {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		host = address
	}
	host = strings.Trim(host, "[]")
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
