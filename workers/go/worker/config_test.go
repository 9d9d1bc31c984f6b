package worker

import (
	"reflect"
	"testing"

	pb "github.com/agentworker/agentworker/gen/go/agentworker/v1"
)

func TestConfigFromEnv(t *testing.T) {
	for _, name := range []string{"AGENTWORKER_CLIENT_ID", "AGENTWORKER_TLS_CA", "AGENTWORKER_TLS_SERVER_NAME",
		"AGENTWORKER_TLS_CERT", "AGENTWORKER_TLS_KEY", "AGENTWORKER_TOKEN"} {
		t.Setenv(name, "")
	}
	t.Setenv("AGENTWORKER_HOST_ADDRESS", "")
	if _, err := ConfigFromEnv(); err == nil {
		t.Fatal("a missing host address is accepted")
	}
	t.Setenv("AGENTWORKER_HOST_ADDRESS", " 127.0.0.1:5 ")
	t.Setenv("AGENTWORKER_CLIENT_ID", "me")
	t.Setenv("AGENTWORKER_TOKEN", "secret")
	c, err := ConfigFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if c.Address != "127.0.0.1:5" || c.ClientID != "me" || c.Token != "secret" || !c.Reconnect {
		t.Fatalf("config = %+v", c)
	}
}

func TestConfigValidation(t *testing.T) {
	bad := map[string]Config{
		"no address":              {},
		"cert without key":        {Address: "localhost:1", TLSCA: "ca", TLSCert: "c"},
		"token in clear, remote":  {Address: "example.com:443", Token: "t"},
		"token in clear, remote6": {Address: "[2001:db8::1]:443", Token: "t"},
	}
	for name, c := range bad {
		if err := c.validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	good := map[string]Config{
		"plain":                      {Address: "example.com:1"},
		"token on loopback":          {Address: "127.0.0.1:1", Token: "t"},
		"token on localhost":         {Address: "localhost:1", Token: "t"},
		"token on ::1":               {Address: "[::1]:1", Token: "t"},
		"token over TLS":             {Address: "example.com:1", Token: "t", TLSCA: "ca"},
		"mutual TLS":                 {Address: "example.com:1", TLSCA: "ca", TLSCert: "c", TLSKey: "k"},
		"server name with a CA":      {Address: "example.com:1", TLSCA: "ca", TLSServerName: "h"},
		"cert with system roots":     {Address: "example.com:1", TLSCert: "c", TLSKey: "k"},
		"token over system-root TLS": {Address: "example.com:1", TLSServerName: "h", Token: "t"},
	}
	for name, c := range good {
		if err := c.validate(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestCapabilitiesFollowTheConfiguration(t *testing.T) {
	base := []pb.Capability{pb.Capability_CAPABILITY_BATCHING, pb.Capability_CAPABILITY_STATE}
	cases := []struct {
		cfg  Config
		more []pb.Capability
	}{
		{Config{}, nil},
		{Config{Reconnect: true}, []pb.Capability{pb.Capability_CAPABILITY_RECONNECT}},
		{Config{TLSCA: "ca"}, []pb.Capability{pb.Capability_CAPABILITY_TLS}},
		{Config{TLSCA: "ca", TLSCert: "c", TLSKey: "k", Token: "t"}, []pb.Capability{
			pb.Capability_CAPABILITY_TLS, pb.Capability_CAPABILITY_MUTUAL_TLS, pb.Capability_CAPABILITY_BEARER_TOKEN}},
	}
	for _, c := range cases {
		want := append(append([]pb.Capability(nil), base...), c.more...)
		if got := c.cfg.capabilities(); !reflect.DeepEqual(got, want) {
			t.Errorf("capabilities(%+v) = %v, want %v", c.cfg, got, want)
		}
	}
}

func TestTransportCredentialsNeedReadableFiles(t *testing.T) {
	if _, err := (Config{TLSCA: t.TempDir() + "/missing.pem"}).transportCredentials(); err == nil {
		t.Fatal("a missing CA file is accepted")
	}
	creds, err := (Config{}).transportCredentials()
	if err != nil || creds.Info().SecurityProtocol != "insecure" {
		t.Fatalf("plain credentials = %v, %v", creds, err)
	}
}
